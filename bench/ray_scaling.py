"""Ingest throughput on Ray: tokens/s with 1 and 2 workers (CPU here), or 1..N GPUs.

Ingests the same rollouts into a fresh warehouse per run, in one process: serially, then
with `--ray` and each worker count (one Ray runtime for all runs, started here with as many
CPUs as workers at most, or all GPUs with `--gpus`). Prints, per run, the wall time of the
whole ingest (actor start and model loads included), tokens, tokens/s, and the speed-up
over one Ray worker.

CPU (default): the tiny Qwen3 (8 layers x 16 query heads) on the bundled sample or `--root`.
GPU (`--gpus`): one actor per GPU, `--model` (a local checkpoint or cached Hub id, e.g.
Qwen/Qwen3-4B-Thinking-2507), bfloat16, worker counts 1, 2, 4, ... up to the GPUs present.

Then the one committer's rate: write and commit rollouts of Qwen3-4B's size (36 layers x
32 heads of sentence matrices for a real ~250-sentence trace): seconds per rollout,
rollouts per hour, stored bytes per cell.

Usage: python bench/ray_scaling.py [--root DIR] [--limit 10] [--workers 1 2]
       python bench/ray_scaling.py --gpus --model Qwen/Qwen3-4B-Thinking-2507 --root ROOT
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "examples" / "va_sample"
TRACE_6K = (ROOT.parent / "shared" / "data" / "rollouts" / "math" / "deepseek-r1-distill-llama-8b"
            / "correct_base_solution" / "problem_6596")


def copy_rollouts(root: Path, limit: int, dest: Path) -> int:
    from ingest.rollouts import discover

    dirs = discover([str(root)])[:limit]
    for d in dirs:
        shutil.copytree(d.path, dest / d.rollout_id)
    return len(dirs)


def run(label: str, roots: list[str], warehouse_dir: Path, options) -> dict:
    from ingest.pipeline import ingest
    from warehouse.store import Warehouse

    started = time.perf_counter()
    summary = ingest(roots, Warehouse(warehouse_dir), options, echo=lambda line: None)
    seconds = time.perf_counter() - started
    if summary.failed:
        sys.exit(f"{label}: {summary.failed}")
    return {"run": label, "rollouts": len(summary.ingested), "tokens": summary.n_tokens,
            "seconds": round(seconds, 1), "tokens_per_s": round(summary.n_tokens / seconds, 1)}


def commit_rate(trace: Path, n_rollouts: int, layers: int, heads: int, directory: Path) -> dict:
    """The one committer's rate: seconds to write and commit one rollout's attention.

    A real trace's rows with random sentence matrices of `layers` x `heads` (Qwen3-4B: 36 x
    32), through the same path the Ray driver uses (AttentionWriter, then write_rollout).
    """
    import dataclasses

    import numpy as np

    from ingest.pipeline import to_record
    from ingest.rollouts import discover, load_rollout
    from warehouse.store import AttentionRun, ModelInfo, PendingAttention, SentenceSpan, Warehouse

    record = to_record(load_rollout(discover([str(trace)])[0]))
    n = len(record.sentences)
    info = ModelInfo(name="commit-bench", n_layers=layers, n_heads=heads)
    warehouse = Warehouse(directory)
    rng = np.random.default_rng(0)
    mats = np.tril(rng.random((heads, n, n), dtype=np.float32))
    seconds = []
    with warehouse.write_lock():
        for k in range(n_rollouts):
            rid = f"{record.rollout_id}-{k}"
            started = time.perf_counter()
            writer = warehouse.attention_writer(info, rid, n, record.tags)
            with writer:
                for layer in range(layers):
                    writer.add_layer(layer, mats)
            spans = [SentenceSpan(0, 1, 0, 1, "exact")] * n
            run = AttentionRun(fingerprint=str(k), text_source="chunks", dtype="bfloat16", n_tokens=1)
            warehouse.write_rollout(dataclasses.replace(record, rollout_id=rid),
                                    PendingAttention(info, writer, spans, run))
            seconds.append(time.perf_counter() - started)
    cells = layers * heads * n * (n + 1) // 2
    parquet = sum(f.stat().st_size for f in (directory / "parquet").rglob("*.parquet"))
    return {"sentences": n, "cells_per_rollout": cells, "commit_s": round(min(seconds), 2),
            "rollouts_per_hour": round(3600 / min(seconds)),
            "parquet_bytes_per_cell": round(parquet / (cells * n_rollouts), 2),
            "duckdb_bytes_per_cell": round((directory / "va.duckdb").stat().st_size
                                           / (cells * n_rollouts), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=SAMPLE)
    parser.add_argument("--limit", type=int, default=10, help="rollouts to ingest")
    parser.add_argument("--workers", type=int, nargs="+", default=None)
    parser.add_argument("--gpus", action="store_true", help="one worker per GPU, bfloat16")
    parser.add_argument("--model", default=None, help="checkpoint [default: a tiny Qwen3 on CPU]")
    parser.add_argument("--no-serial", action="store_true", help="skip the serial baseline")
    parser.add_argument("--commit-trace", type=Path, default=TRACE_6K,
                        help="a trace whose rows the commit-rate measurement stores")
    parser.add_argument("--commit-rollouts", type=int, default=3,
                        help="rollouts of Qwen3-4B size (36 x 32) to commit; 0 skips it")
    args = parser.parse_args()

    import ray

    from ingest.pipeline import IngestOptions
    from ingest.tiny_model import write_tiny_qwen3

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = copy_rollouts(args.root, args.limit, tmp / "rollouts")
        if args.gpus:
            if not args.model:
                sys.exit("--gpus needs --model (a checkpoint with real dimensions)")
            ray.init(include_dashboard=False, log_to_driver=False)
            n_gpus = int(ray.cluster_resources().get("GPU", 0))
            if not n_gpus:
                sys.exit("no GPU in the Ray cluster")
            workers = args.workers or [w for w in (1, 2, 4, 8, 16, 32, 64) if w <= n_gpus]
            base = dict(model=args.model, device="cuda", dtype="bfloat16")
        else:
            workers = args.workers or [1, 2]
            model = args.model or str(write_tiny_qwen3(
                tmp / "tiny", n_layers=8, n_heads=16, n_kv_heads=4, hidden_size=256, head_dim=16,
                intermediate_size=512))
            ray.init(num_cpus=max(workers), include_dashboard=False, log_to_driver=False)
            base = dict(model=model, device="cpu", dtype="float32")
        print(f"# {n} rollouts from {args.root}, model {base['model']}, {base['device']}", flush=True)
        rows = []
        roots = [str(tmp / "rollouts")]
        if not args.no_serial:
            rows.append(run("serial", roots, tmp / "wh-serial",
                            IngestOptions(progress=False, **base)))
            print(json.dumps(rows[-1]), flush=True)
        for w in workers:
            rows.append(run(f"ray x{w}", roots, tmp / f"wh-ray{w}",
                            IngestOptions(progress=False, ray="local", workers=w, **base)))
            print(json.dumps(rows[-1]), flush=True)
        ray.shutdown()
        if args.commit_rollouts and args.commit_trace.is_dir():
            rate = commit_rate(args.commit_trace, args.commit_rollouts, 36, 32, tmp / "wh-commit")
            print(json.dumps({"run": "one committer, Qwen3-4B-sized rollouts", **rate}), flush=True)
    one = next((r for r in rows if r["run"] == f"ray x{workers[0]}"), None)
    print("\n| run | rollouts | tokens | seconds | tokens/s | vs first Ray run |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        speedup = f"{r['tokens_per_s'] / one['tokens_per_s']:.2f}x" if one else ""
        print(f"| {r['run']} | {r['rollouts']} | {r['tokens']:,} | {r['seconds']} | "
              f"{r['tokens_per_s']:,} | {speedup} |")


if __name__ == "__main__":
    main()
