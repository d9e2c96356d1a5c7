"""Ingest progress: bars on a terminal, one plain line per finished rollout anywhere else.

A log file, a pipe, cron or CI gets no carriage returns: one line per rollout as it
finishes (its name, sentences, tokens, seconds, and the run's tokens/s so far), which
reads well with `tail -f` and `grep`. Progress goes to standard error, like the bars.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TextIO


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _NoBar:
    """Stands in for a tqdm bar where none is drawn."""

    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc) -> None:
        pass


class Progress:
    """Progress over `total` rollouts; `enabled=False` (``--no-progress``) prints nothing."""

    def __init__(self, total: int, *, enabled: bool = True, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.bars = enabled and is_terminal(self.stream)
        self.total = total
        self.done = 0
        self.tokens = 0
        self.started = time.monotonic()
        self._bar = None
        if self.bars:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="rollouts", unit="rollout", file=self.stream)

    @property
    def tokens_per_second(self) -> float:
        """Tokens of the finished rollouts per wall second (across all workers)."""
        elapsed = time.monotonic() - self.started
        return self.tokens / elapsed if elapsed > 0 else 0.0

    def working_on(self, rollout_id: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(rollout_id[-40:])

    def layer_bar(self, total: int):
        """An inner bar over tokens x layers on a terminal (a long trace shows progress)."""
        if not self.bars:
            return _NoBar()
        from tqdm import tqdm

        return tqdm(total=total, desc="  tokens x layers", unit="tok", unit_scale=True,
                    leave=False, file=self.stream)

    def finished(self, rollout_id: str, *, sentences: int, tokens: int | None = None,
                 seconds: float | None = None, outcome: str = "ingested") -> None:
        """One rollout is done: `outcome` is 'ingested', 'skipped' or 'failed'."""
        self.done += 1
        self.tokens += tokens or 0
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(f"{self.tokens_per_second:,.0f} tok/s")
            return
        if not self.enabled:
            return
        head = f"[{self.done}/{self.total}] {rollout_id}:"
        if outcome == "ingested":
            line = (f"{head} {sentences} sentences, {tokens:,} tokens, {seconds:.1f} s "
                    f"({self.tokens_per_second:,.0f} tokens/s overall)")
        elif outcome == "skipped":
            line = f"{head} {sentences} sentences, unchanged (skipped)"
        else:
            line = f"{head} failed"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            with contextlib.suppress(Exception):
                self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
