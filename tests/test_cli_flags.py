"""One meaning per flag: renamed flags work, their old spellings fail with one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import cli


@pytest.mark.parametrize("args, line", [
    (["ingest", str(cli.DEMO_ROOT), "--model", "./models/tiny-qwen3"],
     "Error: ingest: --model is now --checkpoint (--model selects stored rows in rank and report)"),
    (["tiny-model", "--layers", "8"],
     "Error: tiny-model: --layers is now --n-layers (a count; --layers lists layers in rank and "
     "report)"),
    (["tiny-model", "--heads", "16"],
     "Error: tiny-model: --heads is now --n-heads (a count, spelled as --n-layers)"),
    (["attach", str(cli.DEMO_ROOT / "README.md"), "--format", "csv"],
     "Error: attach: --format is now --file-type (--format is the output format of sql and rank)"),
])
def test_an_old_spelling_that_changed_meaning_fails_with_one_line(tmp_path, args, line):
    wh = tmp_path / "wh"
    result = CliRunner().invoke(cli.main, [*args, "--warehouse", str(wh)] if args[0] != "tiny-model"
                                else [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.output.splitlines() == [line]
    assert not wh.exists() and not (tmp_path / "m").exists()  # nothing was done


def test_attach_file_type_names_a_type_the_extension_does_not(tmp_path):
    runner = CliRunner()
    wh = str(tmp_path / "wh")
    assert runner.invoke(cli.main, ["load", str(cli.DEMO_ROOT), "--warehouse", wh]).exit_code == 0
    grades = tmp_path / "grades.txt"
    grades.write_text("rollout_id,grade\ncorrect_base_solution/problem_9_va_03,A\n")
    result = runner.invoke(cli.main, ["attach", str(grades), "--warehouse", wh])
    assert result.exit_code == 1
    assert result.output.strip().endswith("pass --file-type csv|parquet")
    result = runner.invoke(cli.main, ["attach", str(grades), "--file-type", "csv", "--warehouse", wh])
    assert result.exit_code == 0, result.output
    assert "(csv): 1 rows, 1 matching" in result.output


def test_rank_trim_and_control_depth_flags_reach_the_macro(sample_attention_warehouse):
    """--no-trim / --no-control-depth (and their positive forms) are the macro's arguments."""
    from sql.query import macro_frame

    warehouse = sample_attention_warehouse

    def ranked(*flags):
        result = CliRunner().invoke(cli.main, ["rank", *flags, "--format", "json",
                                               "--warehouse", str(warehouse.dir)])
        assert result.exit_code == 0, result.output
        return [row["distinctiveness_score"] for row in json.loads(result.output)]

    def expected(**params):
        frame = macro_frame(warehouse, "rollout_ranking", params)
        return frame["distinctiveness_score"].to_list()

    def same(a, b):  # float sums may differ in the last bit between runs (parallel order)
        return a == pytest.approx(b, rel=1e-12)

    assert same(ranked(), expected()) and same(ranked("--trim", "--control-depth"), expected())
    assert same(ranked("--no-trim"), expected(trim=False))
    assert same(ranked("--no-control-depth"), expected(control_depth=False))
    assert not same(expected(trim=False), expected())
    assert not same(expected(control_depth=False), expected())


@pytest.mark.slow
def test_tiny_model_counts_are_spelled_n(tmp_path):
    out = tmp_path / "m"
    result = CliRunner().invoke(cli.main, ["tiny-model", "--out", str(out), "--n-layers", "2",
                                           "--n-heads", "4", "--n-kv-heads", "2"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["num_hidden_layers"], config["num_attention_heads"],
            config["num_key_value_heads"]) == (2, 4, 2)
