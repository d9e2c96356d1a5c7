"""Every command has help with an example and is documented in the README's CLI section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = sorted(cli.main.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_with_example(name):
    result = CliRunner().invoke(cli.main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    assert f"cli.py {name}" in result.output or name == "demo" and "cli.py demo" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_readme_cli_section(name):
    text = README.read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"^\| `{re.escape(name)}` \|", section, re.MULTILINE), name


def test_status_of_a_missing_warehouse_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(cli.main, ["status", "--warehouse", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: no warehouse at {tmp_path / 'none'} (no va.duckdb); "
        "run `cli.py ingest` or `cli.py load` first"
    )


def test_load_sql_rank_attach_roundtrip(tmp_path):
    """The no-model commands on the bundled sample, end to end through the real CLI."""
    runner = CliRunner()
    wh = str(tmp_path / "wh")
    sample = Path(cli.DEMO_ROOT)
    result = runner.invoke(cli.main, ["load", str(sample), "--warehouse", wh])
    assert result.exit_code == 0, result.output
    assert "10 ingested, 0 skipped (unchanged), 0 failed" in result.output
    result = runner.invoke(cli.main, ["sql", "select count(*) as n from rollouts", "--format", "csv",
                                      "--warehouse", wh])
    assert result.output == "n\n10\n"
    grades = tmp_path / "grades.csv"
    grades.write_text("rollout_id,grade\ncorrect_base_solution/problem_9_va_03,A\nnope,B\n")
    result = runner.invoke(cli.main, ["attach", str(grades), "--warehouse", wh])
    assert result.exit_code == 0, result.output
    assert "attached view 'grades'" in result.output and "2 rows, 1 matching" in result.output
    result = runner.invoke(cli.main, [
        "sql", "select r.rollout_name, g.grade from rollouts r join grades g using (rollout_id)",
        "--format", "json", "--warehouse", wh])
    assert '"rollout_name": "problem_9_va_03"' in result.output and '"grade": "A"' in result.output
    result = runner.invoke(cli.main, ["attach", str(grades), "--name", "attention", "--warehouse", wh])
    assert result.exit_code == 1
    assert "'attention' is a warehouse table" in result.output


def test_rank_prints_table_csv_and_json_with_list_columns(sample_attention_warehouse):
    """The ranking has list columns (layers, heads, ΔVA by layer): every format prints them."""
    import csv
    import io
    import json

    warehouse = sample_attention_warehouse
    runner = CliRunner()
    args = ["rank", "--warehouse", str(warehouse.dir), "--layers", "0,2"]
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli.main, [*args, "--format", "csv"]).output)))
    records = json.loads(runner.invoke(cli.main, [*args, "--format", "json"]).output)
    table = runner.invoke(cli.main, args)
    assert table.exit_code == 0 and "problem_9_va_0" in table.output
    assert len(rows) == len(records) == 3
    for row, record in zip(rows, records, strict=True):
        assert row["layers"] == "0,2" and record["layers"] == [0, 2]
        assert row["heads"] == ",".join(map(str, record["heads"]))
        assert [float(x) for x in row["delta_va_vert_by_layer"].split(",")] == pytest.approx(
            record["delta_va_vert_by_layer"])
