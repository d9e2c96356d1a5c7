"""Report build time at research shape: full builds of N rollouts and a one-rollout change.

Builds a synthetic warehouse through the real write path (random lower-triangular
attention, 36 layers x 32 heads by default, 100-250 sentences per rollout, a few tags),
then for each N: a full report build of the first N rollouts (fresh output directory),
the same build again (skipped: nothing changed), and a rebuild after one rollout's
attention is rewritten (only that rollout's page is built; the index and heads page are
recomputed). Prints each time with its split (queries vs files), the page weights, and
the extrapolation to 1,000 rollouts from the per-rollout slope measured here.

    python bench/report_scale.py --rollouts 5,20 --permutations 1000
    python bench/report_scale.py --rollouts 5 --layers 4 --heads 8 --quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grid import add_grid_arguments  # noqa: E402

TAGS = ["verbalized_evaluation_awareness", "plan_generation", "active_computation",
        "uncertainty_management", "result_consolidation"]
RATES = [0.08, 0.15, 0.3, 0.1, 0.12]  # share of sentences carrying each tag


def write_rollouts(warehouse, first: int, count: int, *, layers: int, heads: int, lo: int, hi: int,
                   seed: int) -> None:
    """Rollouts first..first+count-1 with random attention (one layer at a time in memory)."""
    from ingest.pipeline import to_record
    from ingest.rollouts import Rollout
    from warehouse.store import ModelInfo

    for k in range(first, first + count):
        rng = np.random.default_rng([seed, k])
        n = int(rng.integers(lo, hi + 1))
        sentences = tuple(f"Sentence {i} of synthetic trace {k}: some words here." for i in range(n))
        tags = tuple(tuple(t for t, rate in zip(TAGS, RATES, strict=True) if rng.random() < rate)
                     for _ in range(n))
        rid = f"problem_{k // 10}/va_{k:04d}"
        rollout = Rollout(rid, Path("/bench"), Path("/bench") / rid, sentences, tags, "chunks.json")
        matrices = np.tril(rng.random((layers, heads, n, n), dtype=np.float32))
        matrices /= np.maximum(matrices.sum(axis=-1, keepdims=True), 1e-9)  # rows sum to 1
        with warehouse.write_lock():
            warehouse.write_attention(to_record(rollout), ModelInfo("bench-model", layers, heads), matrices)


def timed_build(warehouse, out: Path, **options) -> tuple[float, float, object]:
    """Seconds in total and until the first file was written (the queries, with the kept
    statistics they compute), and the result."""
    from reports.build import build_report

    marks: list[float] = []
    start = time.perf_counter()

    def step(message: str) -> None:
        if not message.startswith("statistics of"):  # kept_stats' progress: still queries
            marks.append(time.perf_counter())

    result = build_report(warehouse, out, on_step=step, **options)
    total = time.perf_counter() - start
    return total, (marks[0] - start) if marks else total, result


def page_weights(out: Path) -> tuple[int, int]:
    """Largest rollout page: its HTML bytes, and HTML plus the images it shows."""
    import re

    html_max = with_images = 0
    for page in out.glob("*/index.html"):
        text = page.read_text()
        images = sum((page.parent / src).stat().st_size for src in re.findall(r'<img src="([^"]+)"', text))
        html_max = max(html_max, len(text.encode()))
        with_images = max(with_images, len(text.encode()) + images)
    return html_max, with_images


def render_seconds(page: Path) -> tuple[float, int]:
    """Open a page in headless Chromium (offline) until every chart is drawn: seconds, charts."""
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_reports_browser import DevTools  # the browser test's DevTools-pipe client

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(binary, Path(profile))
        try:
            browser.open_page()
            browser.load(page)  # warm: the shared assets are now in the cache, as for a reader
            start = time.perf_counter()
            state = browser.load(page)
            seconds = time.perf_counter() - start
            if state["failed"] or browser.problems():
                raise RuntimeError(f"{page}: {state['failed']} charts failed; {browser.problems()}")
            return seconds, state["rendered"]
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", default="5,20,100", help="comma-separated report sizes")
    add_grid_arguments(parser)
    parser.add_argument("--min-sentences", type=int, default=100)
    parser.add_argument("--max-sentences", type=int, default=250)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--png", action="store_true", help="also write the PNG files (cli default)")
    parser.add_argument("--quick", action="store_true", help="100 permutations")
    parser.add_argument("--render", action="store_true",
                        help="time the largest rollout page in headless Chromium")
    parser.add_argument("--keep", type=Path, help="build the warehouse and reports here and keep them")
    args = parser.parse_args(argv)
    sizes = sorted(int(x) for x in args.rollouts.split(","))
    permutations = 100 if args.quick else args.permutations

    from reports.kept_stats import cache_dir_of
    from warehouse.store import Warehouse

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        print(f"shape: {args.layers} layers x {args.heads} heads, {args.min_sentences}-"
              f"{args.max_sentences} sentences, {permutations} permutations, png={args.png}")
        warehouse = Warehouse(root / "wh")
        rows, have = [], 0
        for size in sizes:
            start = time.perf_counter()
            write_rollouts(warehouse, have, size - have, layers=args.layers, heads=args.heads,
                           lo=args.min_sentences, hi=args.max_sentences, seed=0)
            have = size
            print(f"warehouse: {size} rollouts ({time.perf_counter() - start:.1f} s to write)", flush=True)
            out = root / f"report-{size}"
            options = {"permutations": permutations, "png": args.png}
            full, full_queries, result = timed_build(warehouse, out, **options)
            skip, _, skipped = timed_build(warehouse, out, **options)
            assert skipped.skipped
            write_rollouts(warehouse, 0, 1, layers=args.layers, heads=args.heads,
                           lo=args.min_sentences, hi=args.max_sentences, seed=size)  # one changed
            one, one_queries, changed = timed_build(warehouse, out, **options)
            html_kb, image_kb = (x / 1024 for x in page_weights(out))
            kept_mb = sum(f.stat().st_size for f in cache_dir_of(out).glob("*.parquet")) / 2**20
            rows.append((size, full, one))
            print(f"  full build {full:7.1f} s (queries {full_queries:.1f} s, files "
                  f"{full - full_queries:.1f} s); unchanged {skip:.2f} s; one rollout changed "
                  f"{one:6.1f} s (queries {one_queries:.1f} s, {len(changed.rebuilt)} page rebuilt, "
                  f"statistics of {len(changed.statistics_computed)} rollout computed); "
                  f"largest rollout page {html_kb:.0f} KB HTML, {image_kb:.0f} KB with its images; "
                  f"kept statistics {kept_mb:.1f} MB ({kept_mb / size:.2f} MB per rollout)",
                  flush=True)
            print(f"  ratio one-rollout change / full build: {one / full:.2f}", flush=True)
            if args.render:
                page = max(out.glob("*/index.html"), key=lambda p: p.stat().st_size)
                seconds, drawn = render_seconds(page)
                print(f"  Chromium: {page.parent.name}/index.html drawn in {seconds:.2f} s "
                      f"({drawn} Vega charts, the heatmaps as PNG)", flush=True)
        if len(rows) >= 2:
            (n0, f0, o0), (n1, f1, o1) = rows[0], rows[-1]
            per_full, per_one = (f1 - f0) / (n1 - n0), (o1 - o0) / (n1 - n0)
            print(f"per-rollout slope: full {per_full:.2f} s, one-rollout change {per_one:.3f} s; "
                  f"extrapolated to 1,000 rollouts: full {(f1 + per_full * (1000 - n1)) / 60:.1f} min, "
                  f"one-rollout change {(o1 + per_one * (1000 - n1)) / 60:.1f} min (linear; on this "
                  "machine, this storage layout)")


if __name__ == "__main__":
    main()
