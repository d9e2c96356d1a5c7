"""A whole `cli.py ingest` of a ~6k-token trace vs loading the model plus one plain forward.

Qwen3-4B's layer geometry (hidden 2560, 32 query / 8 KV heads, head dim 128, intermediate
9728, the real 151,936-token vocabulary and tokenizer) in a 2-layer random-weight
checkpoint written to a temporary directory, float32, CPU. Each variant runs in a fresh
subprocess, timed from start to exit (interpreter, imports, loading included), alternating
`--repeat` times; the best of each is kept:

- baseline: `load_model` + tokenize + one plain SDPA forward of the base model;
- ingest:   `cli.py ingest ROOT --no-progress` into an empty warehouse (check, load,
            spans, the one-pass capture, Parquet and the DuckDB commit).

Prints both, the ratio, and the ingest's own split (model pass vs the rest).

Usage: python bench/ingest_vs_forward.py [--trace DIR] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_TRACE = (ROOT.parent / "shared" / "data" / "rollouts" / "math" / "deepseek-r1-distill-llama-8b"
                 / "correct_base_solution" / "problem_6596")

BASELINE = """
import sys, time, torch
from ingest.model import load_model
from ingest.rollouts import discover, load_rollout
loaded = load_model(sys.argv[1], device="cpu", dtype="float32", offline=True)
rollout = load_rollout(discover([sys.argv[2]])[0])
ids = loaded.encode(rollout.text)
t0 = time.perf_counter()
with torch.inference_mode():
    loaded.model(input_ids=ids, use_cache=False)
print(ids.shape[1], time.perf_counter() - t0)
"""


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not args.trace.is_dir():
        sys.exit(f"trace not found: {args.trace}")

    from ingest.tiny_model import write_tiny_qwen3

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = write_tiny_qwen3(tmp / "qwen3-4b-2layer", n_layers=2, n_heads=32, n_kv_heads=8,
                                 hidden_size=2560, head_dim=128, intermediate_size=9728)
        root = tmp / "root"
        shutil.copytree(args.trace, root / args.trace.name)
        baseline, ingest, split = [], [], None
        for k in range(args.repeat):
            seconds, out = timed([sys.executable, "-c", BASELINE, str(model), str(root)])
            n_tokens, forward_s = out.split()
            baseline.append(seconds)
            seconds, out = timed([sys.executable, "cli.py", "ingest", str(root), "--checkpoint", str(model),
                                  "--warehouse", str(tmp / f"wh{k}"), "--no-progress"])
            ingest.append(seconds)
            rate = re.search(r"([\d,]+) tokens at ([\d,]+) tokens/s", out)
            model_s = int(rate.group(1).replace(",", "")) / int(rate.group(2).replace(",", ""))
            split = {"ingest_s": round(seconds, 1), "capture_s": round(model_s, 1),
                     "plain_forward_s": round(float(forward_s), 1)}
            print(json.dumps({"run": k, "baseline_s": round(baseline[-1], 1), **split}), flush=True)
        ratio = min(ingest) / min(baseline)
        print(f"\n{n_tokens} tokens, {args.trace.name}: load + plain forward {min(baseline):.1f} s, "
              f"whole ingest {min(ingest):.1f} s: ratio {ratio:.2f}x")


if __name__ == "__main__":
    main()
