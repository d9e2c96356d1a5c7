"""Progress of `cli.py ingest` when its output is not a terminal (a log file, a pipe, CI):
one plain line per finished rollout, no carriage return; and the serial path never
imports Ray. A real subprocess with its output redirected to files, the tiny model."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import DEMO_ROOT, ROOT

pytestmark = pytest.mark.slow


def test_redirected_ingest_prints_one_plain_line_per_rollout_and_no_ray(tiny_model_dir, tmp_path):
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    command = [sys.executable, "-X", "importtime", str(ROOT / "cli.py"), "ingest", str(DEMO_ROOT),
               "--pattern", "problem_9_va_0[0-1]", "--checkpoint", str(tiny_model_dir),
               "--warehouse", str(tmp_path / "wh")]
    for _ in range(2):  # computed, then skipped as unchanged
        with open(out, "w") as stdout, open(err, "w") as stderr:
            subprocess.run(command, stdout=stdout, stderr=stderr, check=True, cwd=tmp_path)
        text = out.read_text() + err.read_text()
        assert "\r" not in text
        lines = [line for line in err.read_text().splitlines() if not line.startswith("import time:")]
        if _ == 0:
            assert "2 ingested, 0 skipped (unchanged), 0 failed" in out.read_text()
            pattern = r"\[(\d)/2\] correct_base_solution/(problem_9_va_0\d): (\d+) sentences, " \
                      r"([\d,]+) tokens, [\d.]+ s \([\d,]+ tokens/s overall\)"
        else:
            assert "0 ingested, 2 skipped (unchanged), 0 failed" in out.read_text()
            pattern = r"\[(\d)/2\] correct_base_solution/(problem_9_va_0\d): (\d+) sentences, " \
                      r"unchanged \(skipped\)"
        matches = [re.fullmatch(pattern, line) for line in lines]
        assert all(matches) and len(matches) == 2, lines
        assert [m.group(1) for m in matches] == ["1", "2"]
        assert [m.group(2) for m in matches] == ["problem_9_va_00", "problem_9_va_01"]
        imported = {line.split("|")[-1].strip() for line in err.read_text().splitlines()
                    if line.startswith("import time:")}
        assert "torch" in imported or _ == 1  # the model ran (first run only)
        assert not {m for m in imported if m == "ray" or m.startswith("ray.")}
