"""Issue 15 point 4: only the pages of changed rollouts are rebuilt; the others are kept."""

from __future__ import annotations

import re
from pathlib import Path

from test_reports_build import listing, make_warehouse, sample_rollouts, table_rows

from reports.build import build_report, code_sources
from reports.data import frame
from reports.kept_stats import BUCKET_KINDS, ROLLOUT_KINDS


def inodes(directory: Path) -> dict[str, int]:
    return {p.relative_to(directory).as_posix(): p.stat().st_ino
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_one_rollout_change_rebuilds_only_its_files(tmp_path):
    rollouts = sample_rollouts()[:2] + [("problem_9_va_02", [f"Third {i}." for i in range(11)], {3, 6})]
    warehouse = make_warehouse(tmp_path / "wh", rollouts)
    out = tmp_path / "out"
    first = build_report(warehouse, out, png=True, permutations=10)
    assert sorted(first.rebuilt) == [rid for rid, _, _ in rollouts]
    before, before_inodes = listing(out), inodes(out)

    # new attention for one rollout (another seed): only its directory is written again
    make_warehouse(tmp_path / "wh", [rollouts[1]], seed=7)
    second = build_report(warehouse, out, png=True, permutations=10)
    assert not second.skipped and second.reason.startswith("warehouse content changed")
    assert second.rebuilt == ("problem_9_va_01",)
    # the statistics page combines kept per-rollout draws: only the changed rollout's are
    # computed, and the page says what a build from nothing says
    assert sorted(first.statistics_computed) == [rid for rid, _, _ in rollouts]
    assert second.statistics_computed == ("problem_9_va_01",)
    fresh = tmp_path / "fresh"
    build_report(warehouse, fresh, png=False, permutations=10)
    assert table_rows((out / "heads.html").read_text()) == table_rows((fresh / "heads.html").read_text())
    # per rollout its draws, selections and kurtoses, per bucket (one: the rollouts share a
    # problem) what the combination reads of them; the old versions' files pruned
    assert len(list((tmp_path / ".out.kept").glob("*.parquet"))) == 3 * len(ROLLOUT_KINDS) + len(BUCKET_KINDS)
    after, after_inodes = listing(out), inodes(out)
    kept = {n for n in before if n.split("/")[0] in ("problem_9_va_00", "problem_9_va_02")}
    assert kept == {n for n in after if n.split("/")[0] in ("problem_9_va_00", "problem_9_va_02")}
    for name in kept:
        assert after_inodes[name] == before_inodes[name], name  # the very same file, kept
        assert after[name] == before[name]
    changed = [n for n in after if n.startswith("problem_9_va_01/") and after[n] != before.get(n)]
    assert "problem_9_va_01/index.html" in changed and any(n.endswith(".png") for n in changed)
    # the index and heads page are rewritten from the kept and the new results: the kept
    # p-values of unchanged rollouts and the new ones equal the SQL's for every rollout
    assert after_inodes["index.html"] != before_inodes["index.html"]
    with warehouse.connect(read_only=True) as con:
        expected = frame(con, "select rollout_id, p_value_score from rollout_ranking_pvalues("
                              "permutations := 10) order by rank")
    rows = [row for row in table_rows((out / "index.html").read_text()) if len(row) == 12]
    assert [re.sub(r"<[^>]+>", "", row[1]) for row in rows] == expected["rollout_id"].to_list()
    assert [row[3] for row in rows] == [f"{p:.4f}" for p in expected["p_value_score"]]

    # parameters, or --force: every page again
    assert len(build_report(warehouse, out, png=False, permutations=10).rebuilt) == 3
    assert build_report(warehouse, out, png=False, permutations=10).skipped
    assert len(build_report(warehouse, out, png=False, permutations=10, force=True).rebuilt) == 3


def test_a_removed_page_is_rebuilt_and_a_new_rollout_added(tmp_path):
    warehouse = make_warehouse(tmp_path / "wh", sample_rollouts()[:2])
    out = tmp_path / "out"
    build_report(warehouse, out, png=False, permutations=0)
    make_warehouse(tmp_path / "wh", [("problem_9_va_09", [f"New {i}." for i in range(9)], {2, 5})])
    grown = build_report(warehouse, out, png=False, permutations=0)
    assert grown.rebuilt == ("problem_9_va_09",) and grown.n_rollouts == 3
    assert (out / "problem_9_va_09" / "index.html").is_file()


def test_the_code_digest_covers_the_rendered_sql_defaults():
    """A default changed in sql/defaults.py changes the installed SQL, so pages rebuild."""
    root = Path(__file__).resolve().parent.parent
    expected = {root / "sql" / "defaults.py", root / "sql" / "placeholders.py",
                root / "sql" / "20_metrics" / "vertical_scores.sql", root / "reports" / "pages.py"}
    assert expected <= set(code_sources())
