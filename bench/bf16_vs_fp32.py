"""float32 vs bfloat16: how much do the sentence-attention matrices and the ranking move?

Same tiny Qwen3 (8 layers, 16 query heads, 4 KV heads), same inputs: the shorter math traces
(joined chunks text). Prints the largest absolute difference of `A` over all traces, layers
and heads, and compares the rollout ranking of METRICS.md §7 (tag `plan_generation`,
representative layers, notebook defaults) computed from either dtype with the NumPy
evaluation of METRICS.md in tests/metrics_reference.py (the SQL views are tested against it
to 1e-6).

Usage: python bench/bf16_vs_fp32.py [--max-tokens 4500] [--tag plan_generation]
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
sys.path.insert(0, str(ROOT / "tests"))

MATH = ROOT.parent / "shared" / "data" / "rollouts" / "math"
MODEL_ARGS = dict(n_layers=8, n_heads=16, n_kv_heads=4, hidden_size=64, head_dim=16)


def scores_for(A, mask, layers) -> float:
    import metrics_reference as mr

    stats = {}
    for layer in layers:
        stats[layer] = {}
        for head in range(A.shape[1]):
            B, m = mr.analysed(A[layer, head], mask)
            stats[layer][head] = mr.head_stats(B, m)
    return mr.distinctiveness(stats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--max-tokens", type=int, default=4500)
    p.add_argument("--tag", default="plan_generation")
    args = p.parse_args()

    import metrics_reference as mr
    import numpy as np

    from ingest.capture import sentence_attention
    from ingest.model import load_model
    from ingest.spans import char_spans, token_spans
    from ingest.tiny_model import write_tiny_qwen3

    traces = sorted(f.parent for f in MATH.rglob("chunks_labeled.json"))
    if not traces:
        sys.exit(f"no math traces under {MATH}")
    with tempfile.TemporaryDirectory() as tmp:
        d = write_tiny_qwen3(Path(tmp) / "tiny8x16", **MODEL_ARGS)
        fp32 = load_model(str(d), device="cpu", dtype="float32", offline=True)
        bf16 = load_model(str(d), device="cpu", dtype="bfloat16", offline=True)
    layers = mr.representative_layers(MODEL_ARGS["n_layers"])
    worst = 0.0
    worst_rel = 0.0
    s32, s16 = {}, {}
    best_changed = 0
    n_layer_checks = 0
    t0 = time.perf_counter()
    for trace in traces:
        labels = json.loads((trace / "chunks_labeled.json").read_text())
        sentences = [c["chunk"] for c in labels]
        text = "\n".join(sentences)
        spans = token_spans(fp32.tokenizer, text, char_spans(text, sentences))
        ids = fp32.encode(text)
        if ids.shape[1] > args.max_tokens:
            continue
        mask = [args.tag in (c.get("function_tags") or []) for c in labels]
        a32 = sentence_attention(fp32, ids, spans)
        a16 = sentence_attention(bf16, ids, spans)
        diff = np.abs(a32 - a16)
        worst = max(worst, float(diff.max()))
        worst_rel = max(worst_rel, float(diff.max() / max(a32.max(), 1e-12)))
        rid = f"{trace.parent.name}/{trace.name}"
        s32[rid] = scores_for(a32, mask, layers)
        s16[rid] = scores_for(a16, mask, layers)
        for layer in layers:
            st32 = {h: mr.head_stats(*mr.analysed(a32[layer, h], mask)) for h in range(a32.shape[1])}
            st16 = {h: mr.head_stats(*mr.analysed(a16[layer, h], mask)) for h in range(a16.shape[1])}
            best_changed += mr.best_head(st32) != mr.best_head(st16)
            n_layer_checks += 1
        print(f"  {rid:50s} T={ids.shape[1]:5d}  max|dA|={diff.max():.2e}  "
              f"S32={s32[rid]:.4f}  S16={s16[rid]:.4f}")
    r32, r16 = mr.ranking(s32), mr.ranking(s16)
    print(f"model: tiny Qwen3 {MODEL_ARGS}, CPU; {len(s32)} traces <= {args.max_tokens} tokens; "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"largest |A_fp32 - A_bf16|: {worst:.3e}  (relative to max A: {worst_rel:.2%})")
    print(f"best head changed in {best_changed} of {n_layer_checks} (rollout, layer) pairs")
    print(f"ranking (tag {args.tag!r}) identical: {r32 == r16}")
    if r32 != r16:
        moved = sum(a != b for a, b in zip(r32, r16, strict=True))
        print(f"  {moved} of {len(r32)} positions differ")
        print(f"  fp32: {r32}")
        print(f"  bf16: {r16}")


if __name__ == "__main__":
    main()
