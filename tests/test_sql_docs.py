"""Column docs (`--- name: description` lines) match each view's `describe`."""

from __future__ import annotations

import re

import pytest
from sql_fixtures import connect

import sql

DOC_LINE = re.compile(r"^--- (\w+): (.+)$")
OBJECT_DIRS = ("10_base", "20_metrics", "30_ranking")
FILES = [p for p in sql.sql_files() if p.parent.name in OBJECT_DIRS]


def documented_columns(path) -> list[str]:
    return [m.group(1) for line in path.read_text().splitlines() if (m := DOC_LINE.match(line))]


@pytest.fixture(scope="module")
def con():
    c = connect()
    yield c
    c.close()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_documented_columns_match_describe(con, path):
    described = [row[0] for row in con.execute(f"describe {path.stem}").fetchall()]
    assert documented_columns(path) == described


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_defines_its_object(path):
    text = path.read_text()
    assert f"create or replace view {path.stem} as" in text
    assert "attach" not in text.lower()


def test_only_the_base_layer_reads_storage():
    storage = [p.stem for p in sql.sql_files() if p.parent.name == "00_tables"]
    for path in FILES:
        if path.parent.name == "10_base":
            continue
        text = re.sub(r"--.*", "", path.read_text())
        for table in storage:
            assert not re.search(rf"\b(from|join)\s+{table}\b", text), (path.name, table)
