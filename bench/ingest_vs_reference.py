"""Project capture vs the reference algorithm on a real ~4,000-token math trace.

Both variants run in a fresh subprocess each (same tiny Qwen3: 8 layers, 16 query heads,
4 KV heads), from the text to the `[L, H, N, N]` matrices:

- project:   char_spans + batched token_spans + fused capture (SDPA + block reduction);
- reference: eager attention with output_attentions=True (all layers materialized), the
             Python pair loop of the notebook, and prefix-count spans encoded one by one.

Peak memory is the process's peak RSS (VmHWM, reset after the model is loaded via
/proc/self/clear_refs) minus its RSS at that point. Prints wall time, peak extra memory,
both ratios, and the largest difference between the two results.

Usage: python bench/ingest_vs_reference.py [--trace DIR] [--query-block 256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_TRACE = (ROOT.parent / "shared" / "data" / "rollouts" / "math" / "deepseek-r1-distill-llama-8b"
                 / "correct_base_solution" / "problem_3448")
MODEL_ARGS = dict(n_layers=8, n_heads=16, n_kv_heads=4, hidden_size=64, head_dim=16)


def proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def run_variant(variant: str, model_dir: str, trace: Path, query_block: int, out: str) -> None:
    import numpy as np
    import torch

    from ingest.capture import reference_sentence_attention, sentence_attention
    from ingest.model import load_model
    from ingest.spans import char_spans, token_spans

    torch.set_num_threads(torch.get_num_threads())
    loaded = load_model(model_dir, device="cpu", dtype="float32", offline=True)
    sentences = [c["chunk"] for c in json.loads((trace / "chunks_labeled.json").read_text())]
    text = "\n".join(sentences)
    tok = loaded.tokenizer
    tok.encode("warm up")
    reset_peak_rss()
    base_kb = proc_status_kb("VmRSS")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if variant == "project":
        spans = token_spans(tok, text, char_spans(text, sentences))
        ids = loaded.encode(text)
        result = sentence_attention(loaded, ids, spans, query_block=query_block)
    else:
        cspans = char_spans(text, sentences)
        spans = [
            (len(tok.encode(text[: s.start])) if s.start else 0, len(tok.encode(text[: s.end])))
            for s in cspans
        ]
        ids = loaded.encode(text)
        result = reference_sentence_attention(loaded, ids, spans)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - cpu0
    peak_kb = proc_status_kb("VmHWM")
    np.save(out, result)
    print(
        json.dumps(
            {
                "variant": variant,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_extra_mb": (peak_kb - base_kb) / 1024,
                "peak_rss_mb": peak_kb / 1024,
                "n_tokens": int(ids.shape[1]),
                "n_sentences": len(sentences),
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    p.add_argument("--query-block", type=int, default=256)
    p.add_argument("--variant", choices=["project", "reference"], help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        run_variant(args.variant, args.model_dir, args.trace, args.query_block, args.out)
        return
    if not args.trace.is_dir():
        sys.exit(f"trace directory not found: {args.trace}")

    import numpy as np

    from ingest.tiny_model import write_tiny_qwen3

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_tiny_qwen3(Path(tmp) / "tiny8x16", **MODEL_ARGS)
        results = {}
        for variant in ("project", "reference"):
            out = str(Path(tmp) / f"{variant}.npy")
            cmd = [sys.executable, __file__, "--variant", variant, "--model-dir", str(model_dir),
                   "--trace", str(args.trace), "--query-block", str(args.query_block), "--out", out]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
            results[variant]["array"] = np.load(out)
    proj, ref = results["project"], results["reference"]
    diff = float(np.abs(proj.pop("array") - ref.pop("array")).max())
    print(f"trace: {args.trace} ({proj['n_tokens']} tokens, {proj['n_sentences']} sentences)")
    print(f"model: tiny Qwen3 {MODEL_ARGS}, CPU float32, query_block={args.query_block}")
    for r in (proj, ref):
        print(f"  {r['variant']:9s}  {r['seconds']:8.2f} s wall  {r['cpu_seconds']:8.2f} s CPU   "
              f"peak extra RSS {r['peak_extra_mb']:9.1f} MB")
    print(f"speed ratio (reference / project), wall: {ref['seconds'] / proj['seconds']:.1f}x")
    print(f"speed ratio (reference / project), CPU:  {ref['cpu_seconds'] / proj['cpu_seconds']:.1f}x")
    print(f"peak-memory ratio (reference / project): {ref['peak_extra_mb'] / proj['peak_extra_mb']:.1f}x")
    print(f"max |project - reference|:               {diff:.2e}")


if __name__ == "__main__":
    main()
