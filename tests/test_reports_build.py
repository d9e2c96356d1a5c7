"""build_report: files, numbers from SQL, untrusted text, skip / --force / failure swap."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

TAG = "verbalized_evaluation_awareness"
# Sentence text a rollout may hold: it must be shown literally and never run.
HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "</script><img src=x onerror=\"window.__pwned = 'img'\">",
    "He said \"yes\" & 'no' \u2028 next line \u2029 <!-- comment",
]
HOSTILE_ID = "evil \"quoted\" <b>id</b> & 'single'"
PERMUTATIONS, SEED = 50, 3  # small K: fast; a non-default seed: it must reach the SQL


def sample_rollouts() -> list[tuple[str, list[str], set[int]]]:
    """(rollout_id, sentences, target indices): two plain rollouts and a hostile one."""
    plain = [(f"problem_9_va_0{k}", [f"Sentence {k}.{i} of the trace." for i in range(12 + 2 * k)],
              {2, 5, 8}) for k in range(2)]
    hostile_sentences = [f"Plain sentence {i}." for i in range(12)]
    hostile_sentences[2], hostile_sentences[3], hostile_sentences[4] = HOSTILE
    return [*plain, (HOSTILE_ID, hostile_sentences, {2, 4, 7})]


def make_warehouse(directory: Path, rollouts=None, *, model: str = "test-model", n_layers: int = 4,
                   n_heads: int = 3, seed: int = 0):
    """A warehouse with random lower-triangular attention for each rollout."""
    from ingest.pipeline import to_record
    from ingest.rollouts import Rollout
    from warehouse.store import ModelInfo, Warehouse

    warehouse = Warehouse(directory)
    rng = np.random.default_rng(seed)
    with warehouse.write_lock():
        for rid, sentences, targets in rollouts or sample_rollouts():
            tags = tuple((TAG, "other") if k in targets else ("other",) for k in range(len(sentences)))
            rollout = Rollout(rid, Path("/data"), Path("/data") / rid, tuple(sentences), tags,
                              "chunks.json")
            n = len(sentences)
            matrices = np.tril(rng.random((n_layers, n_heads, n, n))).astype(np.float32)
            warehouse.write_attention(to_record(rollout), ModelInfo(model, n_layers, n_heads),
                                      matrices)
    return warehouse


def listing(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full report (PNG files included), shared by the read-only tests below."""
    from reports.build import build_report

    root = tmp_path_factory.mktemp("report")
    warehouse = make_warehouse(root / "wh")
    result = build_report(warehouse, root / "out", permutations=PERMUTATIONS, seed=SEED)
    return warehouse, result


def test_writes_every_file(built):
    from reports.build import rollout_dir_names

    _, result = built
    out = result.out_dir
    assert not result.skipped and result.reason.startswith("no previous report")
    assert result.index_path == out / "index.html" and result.index_path.is_file()
    assert (out / "ranking.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    names = rollout_dir_names([rid for rid, _, _ in sample_rollouts()])
    assert names[HOSTILE_ID] == "evil--quoted--b--id--b--single"
    for rid in names:
        folder = out / names[rid]
        meta = json.loads((folder / "meta.json").read_text())
        assert list(meta) == ["rollout_id", "n_sentences", "n_va", "va_idxs", "layers", "heads"]
        assert meta["rollout_id"] == rid and meta["layers"] == [0, 1, 2]
        for layer, head in zip(meta["layers"], meta["heads"], strict=True):
            for kind in ("attn", "vert"):
                png = folder / f"{kind}_layer{layer:02d}_head{head:02d}.png"
                assert png.read_bytes()[:4] == b"\x89PNG"
        assert (folder / "index.html").is_file()
    index = result.index_path.read_text()
    assert f'href="{names["problem_9_va_00"]}/index.html"' in index
    for page in [result.index_path, *out.glob("*/index.html")]:
        text = page.read_text()
        # offline: the scripts and the style sheet are the report's own shared files
        root = "" if page.parent == out else "../"
        assert re.findall(r'<script src="([^"]*)"', text) == [f"{root}assets/vega-bundle.js",
                                                              f"{root}assets/report.js"]
        assert re.findall(r'<link rel="stylesheet" href="([^"]*)"', text) == [f"{root}assets/report.css"]
        assert "Content-Security-Policy" in text and "://" not in text.split("<body>")[0]
    assert "vegaEmbed" in (out / "assets" / "report.js").read_text()
    assert not list(out.parent.glob(".out.tmp-*"))
    assert '<a href="heads.html">' in index
    for name in ("head_map", "receiver_map", "tag_comparison"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_csv_has_the_notebook_columns_and_sql_numbers(built):
    from reports.data import frame

    warehouse, result = built
    with open(result.out_dir / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["rollout_id", "n_sentences", "n_va", "va_rate", "distinctiveness_score",
                             "layers", "heads", "delta_va_vert_by_layer", "lift_in_va_by_layer"]
    with warehouse.connect(read_only=True) as con:
        ranking = frame(con, "select * from rollout_ranking order by rank")
    assert [r["rollout_id"] for r in rows] == ranking["rollout_id"].to_list()
    for row, expected in zip(rows, ranking.iter_rows(named=True), strict=True):
        assert float(row["distinctiveness_score"]) == pytest.approx(expected["distinctiveness_score"])
        # the notebook's summary counts are before the trim
        assert int(row["n_sentences"]) == expected["n_sentences_original"]
        assert int(row["n_va"]) == expected["n_va_original"]
        assert row["heads"] == ",".join(map(str, expected["heads"]))
        assert row["delta_va_vert_by_layer"] == ",".join(
            f"{x:.4f}" for x in expected["delta_va_vert_by_layer"])


def test_color_max_is_the_notebooks_99th_percentile(built):
    """np.nanquantile(np.tril(B), 0.99), B the analysed matrix, as the notebook computes it."""
    from reports.data import ReportParams, load_report_data

    warehouse, _ = built
    with warehouse.connect(read_only=True) as con:
        data = load_report_data(con, ReportParams())
    row = data.color_max.row(0, named=True)
    cells = data.cells.filter(
        (data.cells["rollout_id"] == row["rollout_id"]) & (data.cells["layer"] == row["layer"])
        & (data.cells["head"] == row["head"])
    )
    n = int(data.ranking.filter(data.ranking["rollout_id"] == row["rollout_id"])["n_sentences"][0])
    matrix = np.zeros((n, n))
    matrix[cells["r"].to_numpy(), cells["c"].to_numpy()] = cells["value"].to_numpy()
    assert row["color_max"] == pytest.approx(float(np.nanquantile(np.tril(matrix), 0.99)), abs=1e-6)


def test_untrusted_text_is_escaped(built):
    from reports.build import rollout_dir_names

    _, result = built
    folder = result.out_dir / rollout_dir_names([HOSTILE_ID])[HOSTILE_ID]
    text = (folder / "index.html").read_text()
    # markup: escaped; chart JSON: '<', '>', '&' and U+2028/2029 as \\u escapes
    assert "&lt;script&gt;window.__pwned = &#x27;script&#x27;&lt;/script&gt;" in text
    assert "&lt;/script&gt;&lt;img src=x onerror=&quot;window.__pwned" in text
    assert "\\u003cscript\\u003ewindow.__pwned" in text
    assert "\\u003cimg src=x" in text
    body = text.split("<body>")[1]
    assert "<img" not in body and "window.__pwned = 'script'</script>" not in body
    blocks = re.findall(r'<script type="application/json" id="[^"]*">(.*?)</script>', body, re.S)
    assert len(blocks) == 2 and not any("\u2028" in b or "\u2029" in b for b in blocks)
    assert text.count("<script") == 4  # bundle and init (shared files), two JSON blocks
    assert "&lt;b&gt;id&lt;/b&gt;" in text and "<b>id</b>" not in text
    index = result.index_path.read_text()
    assert "<b>id</b>" not in index and "&lt;b&gt;id&lt;/b&gt;" in index


def test_second_run_skips_force_rebuilds_changes_rebuild(tmp_path):
    from reports.build import build_report

    warehouse = make_warehouse(tmp_path / "wh", sample_rollouts()[:2])
    out = tmp_path / "out"
    first = build_report(warehouse, out, png=False)
    assert not first.skipped
    before = listing(out)

    again = build_report(warehouse, out, png=False)
    assert again.skipped and again.reason.startswith("up to date")
    assert listing(out) == before

    forced = build_report(warehouse, out, png=False, force=True)
    assert not forced.skipped and forced.reason == "forced (--force)"

    changed = build_report(warehouse, out, png=False, proximity_ignore=2)
    assert not changed.skipped and changed.reason == "parameters changed: proximity_ignore 4 -> 2"

    make_warehouse(tmp_path / "wh", [("problem_9_va_05", [f"s{i}" for i in range(9)], {3})])
    grown = build_report(warehouse, out, png=False, proximity_ignore=2)
    assert not grown.skipped and grown.reason.startswith("warehouse content changed")
    assert grown.n_rollouts == 3


def test_failure_halfway_leaves_the_previous_report(tmp_path):
    from reports.build import ReportError, build_report

    warehouse = make_warehouse(tmp_path / "wh", sample_rollouts()[:2])
    out = tmp_path / "out"
    build_report(warehouse, out, png=False)
    before = listing(out)
    steps = []

    def fail_on_second_rollout(step: str) -> None:
        steps.append(step)
        if step == "rollout problem_9_va_01":
            raise RuntimeError("disk on fire")

    with pytest.raises(ReportError, match=r"report not written \(RuntimeError: disk on fire\); "
                                          r"the previous report is unchanged"):
        build_report(warehouse, out, png=False, force=True, on_step=fail_on_second_rollout)
    assert "rollout problem_9_va_00" in steps  # it did fail halfway
    assert listing(out) == before
    # no temporary directory is left; the kept per-rollout statistics stay (content-addressed)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.kept", ".out.lock", "out", "wh"]
    assert build_report(warehouse, out, png=False).skipped  # still the complete old report


def test_refuses_to_replace_a_directory_that_is_not_a_report(tmp_path):
    from reports.build import ReportError, build_report

    warehouse = make_warehouse(tmp_path / "wh", sample_rollouts()[:1])
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ReportError, match="refusing to write the report into .*precious"):
        build_report(warehouse, precious, png=False)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_options_select_rollouts_layers_and_model(tmp_path):
    from reports.build import ReportError, build_report

    warehouse = make_warehouse(tmp_path / "wh", sample_rollouts()[:2])
    make_warehouse(tmp_path / "wh", sample_rollouts()[:1], model="other-model", n_layers=2)
    with pytest.raises(ReportError, match=r"2 models \(other-model, test-model\); choose one with --model"):
        build_report(warehouse, tmp_path / "out", png=False)
    with pytest.raises(ReportError, match=r"no rollout .* matches --rollouts 'nothing_\*'"):
        build_report(warehouse, tmp_path / "out", png=False, model="test-model", rollouts="nothing_*")

    result = build_report(warehouse, tmp_path / "out", png=False, model="test-model",
                          rollouts="*_01", layers=[3, 1], trim=False, tag="other")
    assert result.n_rollouts == 1 and result.model == "test-model"
    meta = json.loads((tmp_path / "out" / "problem_9_va_01" / "meta.json").read_text())
    assert meta["layers"] == [1, 3] and meta["n_va"] == 14  # every sentence carries 'other'
    index = result.index_path.read_text()
    assert "problem_9_va_00" not in index
    assert "<code>other</code>" in index and "<code>False</code>" in index
    assert not (tmp_path / "out" / "problem_9_va_00").exists()


def test_empty_warehouse_is_a_clear_error(tmp_path):
    from reports.build import ReportError, build_report
    from warehouse.store import Warehouse

    warehouse = Warehouse(tmp_path / "wh")
    with warehouse.connect():
        pass
    with pytest.raises(ReportError, match="holds no attention yet; run `cli.py ingest` first"):
        build_report(warehouse, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_state_file_records_what_was_built(tmp_path):
    from reports.build import STATE_FILE, build_report

    warehouse = make_warehouse(tmp_path / "wh", sample_rollouts()[:1])
    build_report(warehouse, tmp_path / "out", png=False)
    state = json.loads((tmp_path / "out" / STATE_FILE).read_text())
    assert state["params"]["tag"] == TAG and state["params"]["png"] is False
    assert state["model"] == "test-model" and state["n_rollouts"] == 1
    assert len(state["warehouse_digest"]) == 64 and os.path.isabs(str(tmp_path / "out"))


def page_specs(path: Path) -> dict:
    """The chart specs a page embeds (its report-specs JSON block)."""
    text = path.read_text()
    block = text.split('<script type="application/json" id="report-specs">')[1].split("</script>")[0]
    return {name: entry["spec"] for name, entry in json.loads(block).items()}


def spec_rows(spec: dict) -> list[dict]:
    """The rows of a chart's (first) dataset with a given column, inline or named."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "data" in node and isinstance(node["data"], dict):
                data = node["data"]
                found.append(data["values"] if "values" in data else spec["datasets"][data["name"]])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(spec)
    return max(found, key=lambda rows: len(rows[0]) if rows and isinstance(rows, list) else 0)


def table_rows(text: str) -> list[list[str]]:
    """The cells (markup) of every body row of every table in a page."""
    import re

    body = text.split("\n<body>\n")[-1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)]


def test_ranking_table_shows_the_sql_p_values(built):
    from reports.data import frame

    warehouse, result = built
    with warehouse.connect(read_only=True) as con:
        expected = frame(con, "select * from rollout_ranking_pvalues(permutations := ?, seed := ?) "
                              "order by rank", [PERMUTATIONS, SEED])
    assert expected["permutations"].to_list() == [PERMUTATIONS] * 3
    index = result.index_path.read_text()
    assert "<th>p (S)</th>" in index and "<th>layer 0: head | ΔVA | lift | p (FWER)</th>" in index
    rows = [row for row in table_rows(index) if len(row) == 12]  # the ranking table
    assert len(rows) == expected.height
    for row, want in zip(rows, expected.iter_rows(named=True), strict=True):
        assert row[0] == str(want["rank"])
        assert row[3] == f"{want['p_value_score']:.4f}"
        for cell, head, delta, p_fwer in zip(row[9:], want["heads"], want["delta_va_vert_by_layer"],
                                            want["p_value_fwer_by_layer"], strict=True):
            assert cell.startswith(f"h{head} | {delta:.4f} |") and cell.endswith(f"| {p_fwer:.4f}")
    assert f"{PERMUTATIONS} permutations, seed {SEED}" in index


def test_heads_page_shows_the_sql_statistics(built):
    import polars as pl
    from polars.testing import assert_frame_equal

    from reports.data import RECEIVER_K, frame

    warehouse, result = built
    heads = result.out_dir / "heads.html"
    specs = page_specs(heads)
    assert list(specs) == ["head_map", "receiver_map", "tag_comparison"]
    with warehouse.connect(read_only=True) as con:
        consistency = frame(con, "select * from head_consistency(permutations := ?, seed := ?) "
                                 "order by layer, head", [PERMUTATIONS, SEED])
        receivers = frame(con, "select * from receiver_head_delta_va(k := ?, permutations := ?, seed := ?) "
                               "order by rank", [RECEIVER_K, PERMUTATIONS, SEED])
        tags = frame(con, "select * from tag_summary(permutations := ?, seed := ?) order by tag",
                     [PERMUTATIONS, SEED])
    # layer x head map: every layer (4, not the 3 representative ones), head_consistency's numbers
    drawn = pl.DataFrame(spec_rows(specs["head_map"]))
    assert sorted(set(drawn["layer"])) == [0, 1, 2, 3] and drawn.height == 4 * 3
    columns = ["layer", "head", "n_rollouts", "mean_delta_va_vert", "t_statistic", "p_value", "p_value_fwer"]
    assert_frame_equal(drawn.select(columns), consistency.select(columns), check_dtypes=False)
    assert drawn["significant_fwer"].to_list() == (consistency["p_value_fwer"] <= 0.05).to_list()
    # receiver heads: the top k of the map carry receiver_head_delta_va's row (12 heads: all)
    drawn = pl.DataFrame(spec_rows(specs["receiver_map"])).filter(pl.col("is_receiver"))
    columns = ["rank", "layer", "head", "mean_kurtosis", "mean_delta_va_vert", "t_statistic", "p_value_fwer"]
    assert_frame_equal(drawn.select(columns), receivers.select(columns), check_dtypes=False)
    # tags: one row per tag of tag_summary ('other' is on every sentence: no ΔVA, no row)
    drawn = pl.DataFrame(spec_rows(specs["tag_comparison"]))
    assert drawn["tag"].to_list() == tags["tag"].to_list() == [TAG]
    assert drawn["share_fwer_significant"].to_list() == tags["share_fwer_significant"].to_list()
    text = heads.read_text()
    assert "How to read a p-value here" in text and "family-wise" in text
    assert '<a href="index.html">' in text
    top = consistency.sort("p_value_fwer", "layer", "head").row(0, named=True)
    assert f"<td class=\"num\">{top['p_value_fwer']:.4f}</td>" in text
    assert text.split("\n<body>\n")[-1].count("<table>") == 3


def test_receiver_heads_equal_the_macro(built):
    """The receiver table and the tag table are receiver_head_delta_va and tag_summary as the
    macros give them, with the report's parameters; the receiver map's top heads carry its
    numbers."""
    from polars.testing import assert_frame_equal

    from reports.data import RECEIVER_K, ReportParams, frame, load_report_data

    warehouse, _ = built
    with warehouse.connect(read_only=True) as con:
        data = load_report_data(con, ReportParams(permutations=PERMUTATIONS, seed=SEED, trim=False,
                                                  proximity_ignore=2))
        expected = frame(con, "select * exclude (tag, model) from receiver_head_delta_va("
                              "k := ?, permutations := ?, seed := ?, trim := false, proximity_ignore := 2) "
                              "order by rank", [RECEIVER_K, PERMUTATIONS, SEED])
        tags = frame(con, "select * exclude (model) from tag_summary(permutations := ?, seed := ?, "
                          "trim := false, proximity_ignore := 2) order by tag", [PERMUTATIONS, SEED])
    assert_frame_equal(data.receiver_table, expected, check_dtypes=False)
    # the kept per-rollout draws and selections, read back and combined, give the macros' numbers
    assert tags.height
    assert_frame_equal(data.tags.select(tags.columns), tags, check_dtypes=False)
    # the map's receiver heads carry the table's numbers
    columns = ["rank", "layer", "head", "mean_kurtosis", "mean_delta_va_vert", "t_statistic", "p_value_fwer"]
    mine = data.receivers.filter(data.receivers["is_receiver"]).select(columns)
    assert_frame_equal(mine, expected.select(columns), check_dtypes=False)


def test_permutations_and_seed_are_parameters_of_the_report(tmp_path):
    from reports.build import STATE_FILE, ReportError, build_report

    warehouse = make_warehouse(tmp_path / "wh", sample_rollouts()[:2])
    out = tmp_path / "out"
    build_report(warehouse, out, png=False, permutations=20)
    state = json.loads((out / STATE_FILE).read_text())
    assert state["params"]["permutations"] == 20 and state["params"]["seed"] == 0
    again = build_report(warehouse, out, png=False, permutations=20, seed=1)
    assert again.reason == "parameters changed: seed 0 -> 1"
    assert build_report(warehouse, out, png=False, permutations=20, seed=1).skipped
    with pytest.raises(ReportError, match="permutations must be 0 or more"):
        build_report(warehouse, out, png=False, permutations=-1)
