"""The statistics SQL documents its columns, installs in order and runs on an empty warehouse."""

from __future__ import annotations

import re

import pytest
from sql_fixtures import records, warehouse  # noqa: F401

import sql

# analysed_tags reads storage, so it lives in the base layer; the rest are statistics.
STATS_FILES = [sql.SQL_DIR / "10_base" / "analysed_tags.sql"]
STATS_FILES += sorted((sql.SQL_DIR / "40_stats").glob("*.sql"))
DOC_LINE = re.compile(r"^--- (\w+): .+$", re.MULTILINE)


def test_stats_files_exist():
    names = {path.stem for path in STATS_FILES}
    assert {
        "analysed_tags",
        "column_permutations",
        "delta_va_permutations",
        "head_pvalues",
        "selected_head_pvalues",
        "rollout_ranking_pvalues",
        "head_consistency",
        "receiver_head_delta_va",
        "tag_summary",
    } <= names


@pytest.mark.parametrize("path", STATS_FILES, ids=lambda p: p.stem)
def test_documented_columns_match_describe(warehouse, path):  # noqa: F811
    text = path.read_text(encoding="utf-8")
    assert f"create or replace macro {path.stem}(" in text
    assert f"create or replace view {path.stem} as" in text
    documented = DOC_LINE.findall(text)
    described = [r["column_name"] for r in records(warehouse, f"describe select * from {path.stem}")]
    assert documented == described


@pytest.mark.parametrize("path", STATS_FILES, ids=lambda p: p.stem)
def test_views_run_on_empty_warehouse(warehouse, path):  # noqa: F811
    assert records(warehouse, f"select * from {path.stem}") == []


def test_docs_cover_every_object():
    text = (sql.SQL_DIR.parent / "docs" / "STATISTICS.md").read_text(encoding="utf-8")
    for path in STATS_FILES:
        assert f"`{path.stem}" in text, path.stem
