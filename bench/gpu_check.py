"""One-shot GPU check: fused capture at Qwen3-4B's real dimensions (prepared for a GPU session).

Builds a random-weight Qwen3 from a config with Qwen3-4B's dimensions (36 layers, 32 query
heads, 8 KV heads, head dim 128, hidden 2560, intermediate 9728, vocab 151936) in bfloat16
on the GPU (no download), then for traces of 8k and 32k random tokens split into ~30-token
"sentences":

- a plain SDPA forward pass of the base model (use_cache=False): time, tokens/s, peak memory;
- the one-pass capture (all layers, [H, N, N] per layer handed to a callback): same numbers,
  and how far its last hidden states are from the plain pass's;
- a 2-layer model of the same geometry on a 1,024-token prefix: capture vs the eager
  reference (a sanity check of the kernel on the GPU; bf16 eager rounds probabilities).

Prints one JSON line per measurement and a summary table. `--small` runs a tiny config on
the CPU with short traces, to smoke-test the script anywhere.

Usage: python bench/gpu_check.py            # on a GPU machine, ~ a few minutes
       python bench/gpu_check.py --small    # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QWEN3_4B = dict(
    num_hidden_layers=36,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    hidden_size=2560,
    intermediate_size=9728,
)
SMALL = dict(num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2, head_dim=16,
             hidden_size=64, intermediate_size=128)


def build_model(dims: dict, device, dtype):
    import torch
    from transformers import Qwen3Config, Qwen3Model

    from ingest.capture import CAPTURE_ATTN_IMPLEMENTATION, register_capture_attention

    register_capture_attention()
    config = Qwen3Config(
        vocab_size=151936,
        max_position_embeddings=40960,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,
        attn_implementation=CAPTURE_ATTN_IMPLEMENTATION,
        **dims,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3Model(config).to(dtype).eval()
    return model


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device) -> float | None:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return None


def eager_check(dims: dict, device, dtype, ids, spans, n_layers: int = 2) -> float:
    """Capture vs eager reference on a 2-layer model of the same geometry, 1,024-token prefix."""
    import numpy as np

    from ingest.capture import reference_sentence_attention, sentence_attention

    model = build_model(dict(dims, num_hidden_layers=n_layers), device, dtype)
    t = min(ids.shape[1], 1024)
    prefix_spans = [(s, e) for s, e in spans if e <= t]
    small = ids[:, :t]
    ref = reference_sentence_attention(model, small, prefix_spans)
    got = sentence_attention(model, small, prefix_spans)
    return float(np.abs(ref - got).max())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny config on CPU, short traces")
    p.add_argument("--lengths", type=int, nargs="*", help="trace lengths in tokens")
    p.add_argument("--query-block", type=int, default=512)
    p.add_argument("--sentence-tokens", type=int, default=30)
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16",
                   help="model dtype on the GPU (the capture's softmax is float32 either way)")
    args = p.parse_args()

    import torch

    from ingest.capture import capture_sentence_attention

    if args.small:
        device, dtype, dims = torch.device("cpu"), torch.float32, SMALL
        lengths = args.lengths or [512, 1024]
    else:
        if not torch.cuda.is_available():
            sys.exit("no CUDA GPU: run with --small for a CPU smoke test")
        device, dtype, dims = torch.device("cuda"), getattr(torch, args.dtype), QWEN3_4B
        lengths = args.lengths or [8192, 32768]
    t0 = time.perf_counter()
    model = build_model(dims, device, dtype)
    sync(device)
    print(json.dumps({"event": "built", "dims": dims, "device": str(device), "dtype": str(dtype),
                      "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    if device.type == "cuda":
        print(json.dumps({"event": "gpu", "name": torch.cuda.get_device_name(device)}), flush=True)

    rows = []
    for n_tokens in lengths:
        g = torch.Generator().manual_seed(n_tokens)
        ids = torch.randint(0, 151000, (1, n_tokens), generator=g).to(device)
        st = args.sentence_tokens
        spans = [(s, min(s + st, n_tokens)) for s in range(0, n_tokens, st)]

        # Plain SDPA forward (the capture function is exactly SDPA outside a capture).
        reset_peak(device)
        with torch.inference_mode():
            model(input_ids=ids[:, :64], use_cache=False)  # warm-up
            sync(device)
            reset_peak(device)
            t1 = time.perf_counter()
            plain = model(input_ids=ids, use_cache=False).last_hidden_state
            sync(device)
        sdpa_s = time.perf_counter() - t1
        sdpa_peak = peak_gb(device)

        # One-pass capture (a short warm-up first, like the plain pass).
        capture_sentence_attention(model, ids[:, :64], [(0, 32), (32, 64)],
                                   query_block=args.query_block, on_layer=lambda i, a: None)
        reset_peak(device)
        seen = []
        t2 = time.perf_counter()
        hidden = capture_sentence_attention(
            model, ids, spans, query_block=args.query_block,
            on_layer=lambda i, a, seen=seen: seen.append((i, float(a.max()))),
        )
        sync(device)
        cap_s = time.perf_counter() - t2
        cap_peak = peak_gb(device)
        row = {
            "event": "trace", "n_tokens": n_tokens, "n_sentences": len(spans),
            "query_block": args.query_block,
            "sdpa_seconds": round(sdpa_s, 3), "sdpa_tokens_per_s": round(n_tokens / sdpa_s),
            "sdpa_peak_gb": sdpa_peak and round(sdpa_peak, 2),
            "capture_seconds": round(cap_s, 3), "capture_tokens_per_s": round(n_tokens / cap_s),
            "capture_peak_gb": cap_peak and round(cap_peak, 2),
            "slowdown_vs_sdpa": round(cap_s / sdpa_s, 2),
            "layers_reported": len(seen),
            # the capture computes each layer's output itself: last hidden states vs SDPA's
            "hidden_max_abs_diff": float((hidden.float() - plain.float()).abs().max()),
            "hidden_max_abs": float(plain.float().abs().max()),
        }
        del plain, hidden
        rows.append(row)
        print(json.dumps(row), flush=True)

    del model
    diff = eager_check(dims, device, dtype, ids, spans)
    print(json.dumps({"event": "eager_check", "max_abs_diff_first_layers": diff,
                      "note": "bf16 model: eager probabilities are rounded to bf16" if dtype ==
                      torch.bfloat16 else "float32"}), flush=True)
    print()
    print(f"{'tokens':>8} {'sdpa tok/s':>11} {'capture tok/s':>14} {'slowdown':>9} "
          f"{'sdpa peak GB':>13} {'capture peak GB':>16}")
    for r in rows:
        print(f"{r['n_tokens']:>8} {r['sdpa_tokens_per_s']:>11} {r['capture_tokens_per_s']:>14} "
              f"{r['slowdown_vs_sdpa']:>9} {r['sdpa_peak_gb']!s:>13} {r['capture_peak_gb']!s:>16}")


if __name__ == "__main__":
    main()
