"""A 32,000-token synthetic trace through the fused capture on CPU.

The trace repeats real math sentences (joined with "\\n") until it reaches the target length.
Prints the time of the span computation and of the capture, tokens/s, the process's peak
RSS, and the memory the reference algorithm would need for the same input (computed, not
run: eager keeps every layer's `H x T x T` float32 attention, plus one layer's scores and
weights while it runs).

Usage: python bench/long_trace.py [--tokens 32000] [--query-block 128] [--layers 4 --heads 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MATH = ROOT.parent / "shared" / "data" / "rollouts" / "math"


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_sentences(tokenizer, n_tokens: int) -> list[str]:
    pool = []
    for f in sorted(MATH.rglob("chunks_labeled.json")):
        pool += [c["chunk"] for c in json.loads(f.read_text())]
    if not pool:
        sys.exit(f"no math traces under {MATH}")
    out, i = [], 0
    while True:
        # add sentences by estimate, then check the real length of the joined text
        total = len(tokenizer.encode("\n".join(out)))
        if total >= n_tokens:
            return out
        budget = n_tokens - total
        while budget > 0:
            s = pool[i % len(pool)]
            out.append(s)
            budget -= len(tokenizer.encode(s))
            i += 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tokens", type=int, default=32000)
    p.add_argument("--query-block", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    args = p.parse_args()

    from ingest.capture import capture_sentence_attention
    from ingest.model import load_model
    from ingest.spans import char_spans, token_spans
    from ingest.tiny_model import write_tiny_qwen3

    with tempfile.TemporaryDirectory() as tmp:
        d = write_tiny_qwen3(
            Path(tmp) / "tiny", n_layers=args.layers, n_heads=args.heads, n_kv_heads=args.kv_heads
        )
        loaded = load_model(str(d), device="cpu", dtype="float32", offline=True)
    sentences = synthetic_sentences(loaded.tokenizer, args.tokens)
    text = "\n".join(sentences)
    t0 = time.perf_counter()
    spans = token_spans(loaded.tokenizer, text, char_spans(text, sentences))
    ids = loaded.encode(text)
    t_spans = time.perf_counter() - t0
    n_tokens, n = ids.shape[1], len(sentences)
    rss_before = peak_rss_mb()

    layer_times = []
    checks = []
    t1 = time.perf_counter()

    def on_layer(layer: int, a) -> None:
        layer_times.append(time.perf_counter())
        checks.append((layer, float(a.max()), bool((a >= 0).all())))

    capture_sentence_attention(loaded, ids, spans, query_block=args.query_block, on_layer=on_layer)
    t_capture = time.perf_counter() - t1
    peak = peak_rss_mb()

    h, L = args.heads, args.layers
    ref_bytes = L * h * n_tokens**2 * 4 + 2 * h * n_tokens**2 * 4
    print(f"trace: {n_tokens} tokens, {n} sentences (repeated real math sentences)")
    print(f"model: tiny Qwen3, {L} layers, {h} query heads, {args.kv_heads} KV heads, CPU float32")
    print(f"query_block: {args.query_block}")
    print(f"token spans (ingest.spans.token_spans, default method): {t_spans:.1f} s")
    print(f"capture: {t_capture:.1f} s  ({n_tokens / t_capture:,.0f} tokens/s, "
          f"{t_capture / L:.1f} s per layer)")
    print(f"peak RSS: {peak / 1024:.2f} GiB (before capture: {rss_before / 1024:.2f} GiB)")
    print(f"reference algorithm would need >= {ref_bytes / 2**30:,.1f} GiB for attention "
          f"probabilities alone ({L} x {h} x {n_tokens}^2 float32 kept + 2 x {h} x {n_tokens}^2 transient)")
    print(f"layers reported: {[c[0] for c in checks]}, all finite/non-negative: "
          f"{all(c[2] for c in checks)}")


if __name__ == "__main__":
    main()
