"""A warehouse written by main at 16cb5a4 (two copies of the cells) opens and is upgraded.

The fixture (tests/fixtures/warehouse_16cb5a4.tar.gz, 2 rollouts, 4 layers x 2 heads) was
written by tests/fixtures/make_warehouse_16cb5a4.py run from that commit.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from sql_fixtures import close
from test_reliability_support import cli

from warehouse.check import check
from warehouse.store import Warehouse

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "warehouse_16cb5a4.tar.gz"
RANKING = "select * from rollout_ranking order by rollout_id"


@pytest.fixture
def old_warehouse(tmp_path) -> Warehouse:
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    return Warehouse(tmp_path / "wh")


def rows(warehouse: Warehouse, query: str) -> list[tuple]:
    with warehouse.connect(read_only=True) as con:
        return con.execute(query).fetchall()


def same(a: list[tuple], b: list[tuple]) -> bool:
    def flat(row):
        return [x for v in row for x in (v if isinstance(v, list) else [v])]
    return len(a) == len(b) and all(
        all(close(x, y) if isinstance(x, float) or x is None else x == y
            for x, y in zip(flat(r), flat(s), strict=True))
        for r, s in zip(a, b, strict=True))


def test_old_warehouse_reads_then_upgrades_on_the_next_write(old_warehouse, tmp_path):
    before = rows(old_warehouse, RANKING)
    cells = rows(old_warehouse, "select * from attention order by all")
    old_files = {p.name for p in (old_warehouse.dir / "parquet").rglob("attention-*.parquet")}
    assert len(before) == 2 and len(cells) == 4 * 2 * (7 * 8 // 2 + 9 * 10 // 2)

    root = tmp_path / "root"  # a write: load one new rollout
    (root / "new").mkdir(parents=True)
    (root / "new" / "chunks_labeled.json").write_text(
        '[{"chunk": "One.", "function_tags": ["plan_generation"]},'
        ' {"chunk": "Two.", "function_tags": []}]')
    result = cli("load", str(root), "--warehouse", str(old_warehouse.dir))
    assert result.exit_code == 0, result.output

    with old_warehouse.connect(read_only=True) as con:
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables "
                                 "where table_name in ('attention', 'kept_scores')").fetchall())
        assert kinds == {"attention": "VIEW", "kept_scores": "BASE TABLE"}
    assert rows(old_warehouse, "select * from attention order by all") == cells
    assert same(rows(old_warehouse, RANKING), before)
    new_files = {p.name for p in (old_warehouse.dir / "parquet").rglob("attention-*.parquet")}
    assert len(new_files) == 2 and not new_files & old_files  # rewritten, old ones gone
    assert check(old_warehouse) == []


def test_repair_upgrades_too(old_warehouse):
    before = rows(old_warehouse, RANKING)
    result = cli("repair", "--warehouse", str(old_warehouse.dir))
    assert result.exit_code == 0, result.output
    assert same(rows(old_warehouse, RANKING), before)
    assert rows(old_warehouse, "select count(*) from kept_scores") == [(4 * 2 * (7 + 9),)]
    assert cli("check", "--warehouse", str(old_warehouse.dir)).stdout == "warehouse ok\n"
