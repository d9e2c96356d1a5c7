"""Every query of the README's SQL cookbook runs on a warehouse shaped like the demo's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import to_record
from ingest.rollouts import load_all
from warehouse.attach import attach_table
from warehouse.store import ModelInfo

README = Path(__file__).resolve().parent.parent / "README.md"
DEMO_ROOT = Path(__file__).resolve().parent.parent / "examples" / "va_sample"


def cookbook_statements() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## SQL cookbook", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.DOTALL)
    return [s.strip() for block in blocks for s in block.split(";") if s.strip()]


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """The bundled sample with seeded random causal attention for a 4-layer, 8-head model."""
    from warehouse.store import Warehouse

    tmp = tmp_path_factory.mktemp("cookbook")
    warehouse = Warehouse(tmp / "wh")
    rng = np.random.default_rng(0)
    model = ModelInfo("tiny-qwen3", n_layers=4, n_heads=8)
    with warehouse.write_lock():
        for rollout in load_all([DEMO_ROOT]).rollouts:
            n = len(rollout.sentences)
            matrices = np.tril(rng.random((4, 8, n, n), dtype=np.float32))
            warehouse.write_attention(to_record(rollout), model, matrices)
    grades = tmp / "my_grades.csv"
    grades.write_text("rollout_id,grade,annotator\n"
                      "correct_base_solution/problem_9_va_07,A,kim\n"
                      "correct_base_solution/problem_9_va_01,C,lee\n")
    attach_table(warehouse, grades, name="grades")
    return warehouse


def test_cookbook_has_at_least_five_queries_and_a_join():
    statements = cookbook_statements()
    assert len(statements) >= 5
    assert any("join grades" in s for s in statements)


@pytest.mark.parametrize("statement", cookbook_statements(), ids=lambda s: s.split("\n")[0][:50])
def test_cookbook_query_runs(demo_like, statement):
    with demo_like.connect(read_only=True) as con:
        rows = con.execute(statement).fetchall()
    assert isinstance(rows, list)
