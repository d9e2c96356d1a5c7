"""Store size and ranking cost at Qwen3-4B's head grid, through the real ingest.

The 20 shared math traces (../shared/data/rollouts/math) run through a random-weight
Qwen3 with 36 layers x 32 query heads (8 KV heads) and a tiny hidden size, so the
warehouse holds exactly the cells a Qwen3-4B ingest would. Prints bytes per stored cell
(every file of the warehouse directory) and the rankings' time against one scan of every
cell, all in one run (bench/store_queries.py).

    python bench/scale_store.py                 # all 20 traces (CPU: tens of minutes)
    python bench/scale_store.py --limit 5       # the 5 shortest traces
    python bench/scale_store.py --out /tmp/wh   # keep the warehouse; a re-run resumes it
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from grid import add_grid_arguments  # noqa: E402
from store_queries import directory_bytes, report  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "rollouts" / "math"


def traces(limit: int | None) -> list[Path]:
    found = sorted(p.parent for p in SHARED.rglob("chunks_labeled.json"))
    found.sort(key=lambda p: len(json.loads((p / "chunks_labeled.json").read_text())))
    return found[:limit] if limit else found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the N shortest traces")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the model and warehouse here (a re-run ingests only what is missing)")
    add_grid_arguments(parser)
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"shared math traces not found at {SHARED}")

    from ingest.pipeline import IngestOptions, ingest
    from ingest.tiny_model import write_tiny_qwen3
    from warehouse.store import Warehouse

    tmp = args.out or Path(tempfile.mkdtemp(prefix="va-scale-"))
    try:
        root = tmp / "root"
        shutil.rmtree(root, ignore_errors=True)
        for trace in traces(args.limit):
            target = root / trace.relative_to(SHARED)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(trace, target_is_directory=True)
        model = tmp / "model"
        if not (model / "config.json").exists():
            write_tiny_qwen3(model, n_layers=args.layers, n_heads=args.heads,
                             n_kv_heads=max(1, args.heads // 4), hidden_size=64, head_dim=16)
        warehouse = Warehouse(tmp / "wh")
        started = time.perf_counter()
        summary = ingest([str(root)], warehouse, IngestOptions(model=str(model), progress=False),
                         echo=lambda line: None)
        seconds = time.perf_counter() - started
        with warehouse.connect(read_only=True) as con:
            cells = con.execute("select count(*) from attention").fetchone()[0]
            longest = con.execute("select max(n_sentences) from rollouts").fetchone()[0]
            kept = con.execute("select count(*) from kept_scores").fetchone()[0]
        size = directory_bytes(warehouse.dir)
        n = len(summary.ingested) + len(summary.skipped)
        print(f"{n} traces ({len(summary.ingested)} ingested now) in {seconds:.0f} s "
              f"({summary.n_tokens:,} tokens), "
              f"{args.layers} x {args.heads} heads, longest {longest} sentences")
        print(f"{cells:,} cells, {kept:,} kept score rows; warehouse directory {size / 2**20:.1f} "
              f"MiB = {size / cells:.2f} bytes per cell (Parquet attention "
              f"{directory_bytes(warehouse.dir / 'parquet' / 'attention') / cells:.2f}, "
              f"va.duckdb {warehouse.db_path.stat().st_size / cells:.2f})")
        with warehouse.connect(read_only=True) as con:
            report(con, n)
    finally:
        if args.out is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
