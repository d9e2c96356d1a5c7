"""Shared fixtures: a fresh warehouse per test, the shared real rollouts, the tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED_DATA = ROOT.parent / "shared" / "data" / "rollouts"
DEMO_ROOT = ROOT / "examples" / "va_sample"


@pytest.fixture
def warehouse(tmp_path):
    """A fresh, empty warehouse directory."""
    from warehouse.store import Warehouse

    return Warehouse(tmp_path / "wh")


@pytest.fixture(scope="session")
def shared_rollouts() -> Path:
    """The real public rollouts beside the checkout (absent in a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real rollouts not found at {SHARED_DATA} (they ship beside the project, "
                    "not in it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A deterministic tiny Qwen3 checkpoint (random weights, real Qwen3 tokenizer)."""
    from ingest.tiny_model import write_tiny_qwen3

    return write_tiny_qwen3(tmp_path_factory.mktemp("models") / "tiny-qwen3")


@pytest.fixture
def sample_attention_warehouse(tmp_path):
    """Three rollouts of the bundled sample with seeded random attention (model 'm', 3 layers x
    2 heads): the metric commands without running a model."""
    import numpy as np

    from ingest.pipeline import to_record
    from ingest.rollouts import load_all
    from warehouse.store import ModelInfo, Warehouse

    warehouse = Warehouse(tmp_path / "wh")
    rng = np.random.default_rng(1)
    with warehouse.write_lock():
        for rollout in load_all([DEMO_ROOT]).rollouts[:3]:
            n = len(rollout.sentences)
            warehouse.write_attention(to_record(rollout), ModelInfo("m", 3, 2),
                                      np.tril(rng.random((3, 2, n, n), dtype=np.float32)))
    return warehouse
