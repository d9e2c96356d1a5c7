"""One-pass capture vs a plain SDPA forward at Qwen3-4B's layer geometry (CPU, float32).

A 2-layer random-weight Qwen3 with Qwen3-4B's layer dimensions (hidden 2560, 32 query / 8
KV heads, head dim 128, intermediate 9728; a small vocabulary, the embedding lookup costs
nothing) runs, for each length, a plain SDPA forward of the base model and the fused
capture (`capture_sentence_attention`, sentence matrices of every layer to a callback) on
the same random tokens cut into ~30-token "sentences". Runs alternate (plain, capture,
plain, capture, ...) and the best of `--repeat` is kept, so a busy machine hurts both
alike. Prints one JSON line per length and the capture / plain ratio.

Usage: python bench/capture_vs_sdpa.py [--tokens 4096 8192 16384] [--repeat 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QWEN3_4B_LAYER = dict(hidden_size=2560, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                      intermediate_size=9728)


def build_model(n_layers: int, dims: dict, device: str, dtype):
    import torch
    from transformers import Qwen3Config, Qwen3Model

    config = Qwen3Config(vocab_size=1024, num_hidden_layers=n_layers, max_position_embeddings=40960,
                         rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
                         attn_implementation="sdpa", **dims)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Qwen3Model(config).to(device=device, dtype=dtype).eval()


def sentence_spans(n_tokens: int, length: int = 30) -> list[tuple[int, int]]:
    return [(s, min(s + length, n_tokens)) for s in range(0, n_tokens, length)]


def time_pair(model, n_tokens: int, repeat: int, query_block: int, device: str) -> dict:
    """Best-of-`repeat` seconds of a plain forward and of the capture, alternating."""
    import torch

    from ingest.capture import capture_sentence_attention

    ids = torch.randint(0, model.config.vocab_size, (1, n_tokens),
                        generator=torch.Generator().manual_seed(n_tokens)).to(device)
    spans = sentence_spans(n_tokens)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    plain, capture = [], []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(input_ids=ids, use_cache=False)
        sync()
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        capture_sentence_attention(model, ids, spans, query_block=query_block,
                                   on_layer=lambda layer, mats: None)
        sync()
        capture.append(time.perf_counter() - t0)
    return {"tokens": n_tokens, "sentences": len(spans), "plain_s": round(min(plain), 2),
            "capture_s": round(min(capture), 2), "ratio": round(min(capture) / min(plain), 3),
            "plain_all_s": [round(x, 2) for x in plain], "capture_all_s": [round(x, 2) for x in capture]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--query-block", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args.layers, QWEN3_4B_LAYER, "cpu", torch.float32)
    print(f"# {args.layers}-layer Qwen3-4B layer geometry, float32, CPU, {torch.get_num_threads()} "
          f"threads, query block {args.query_block}", flush=True)
    rows = []
    for n in args.tokens:
        row = time_pair(model, n, args.repeat, args.query_block, "cpu")
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| tokens | plain SDPA forward (s) | capture (s) | capture / plain |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['tokens']:,} | {r['plain_s']} | {r['capture_s']} | {r['ratio']:.2f}x |")


if __name__ == "__main__":
    main()
