"""The attention grid the benchmarks default to: Qwen3-4B's 36 layers x 32 query heads."""

from __future__ import annotations

import argparse

QWEN3_4B_LAYERS = 36
QWEN3_4B_HEADS = 32


def add_grid_arguments(parser: argparse.ArgumentParser, *, rollouts: int | None = None,
                       sentences: int | None = None) -> None:
    """--layers and --heads (Qwen3-4B's grid), and --rollouts / --sentences when given a default."""
    if rollouts is not None:
        parser.add_argument("--rollouts", type=int, default=rollouts)
    parser.add_argument("--layers", type=int, default=QWEN3_4B_LAYERS)
    parser.add_argument("--heads", type=int, default=QWEN3_4B_HEADS)
    if sentences is not None:
        parser.add_argument("--sentences", type=int, default=sentences)
