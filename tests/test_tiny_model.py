"""The tiny random-weight Qwen3 checkpoint with the real Qwen3 tokenizer."""

from __future__ import annotations

import hashlib
import json

import pytest

from ingest.tiny_model import STAMP_FILE, write_tiny_qwen3

pytestmark = pytest.mark.slow


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_byte_identical_weights(tmp_path):
    a = write_tiny_qwen3(tmp_path / "a", seed=3)
    b = write_tiny_qwen3(tmp_path / "b", seed=3)
    c = write_tiny_qwen3(tmp_path / "c", seed=4)
    assert sha256(a / "model.safetensors") == sha256(b / "model.safetensors")
    assert sha256(a / "model.safetensors") != sha256(c / "model.safetensors")
    assert json.loads((a / "config.json").read_text()) == json.loads((b / "config.json").read_text())


def test_idempotent_and_rewrites_on_new_arguments(tmp_path):
    d = write_tiny_qwen3(tmp_path / "m")
    weights = d / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert write_tiny_qwen3(tmp_path / "m") == d
    assert weights.stat().st_mtime_ns == before
    write_tiny_qwen3(tmp_path / "m", n_layers=2)
    assert json.loads((d / STAMP_FILE).read_text())["n_layers"] == 2
    assert json.loads((d / "config.json").read_text())["num_hidden_layers"] == 2


def test_standard_checkpoint_loads_with_gqa_and_real_tokenizer(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = write_tiny_qwen3(tmp_path / "m", n_layers=2, n_heads=8, n_kv_heads=2)
    model = AutoModelForCausalLM.from_pretrained(d)
    tok = AutoTokenizer.from_pretrained(d)
    cfg = model.config
    assert cfg.model_type == "qwen3"
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (8, 2)
    assert cfg.vocab_size >= len(tok) == 151669
    assert tok.encode("hello world") == [14990, 1879]  # the real Qwen3 vocabulary
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_rejects_heads_not_multiple_of_kv_heads(tmp_path):
    with pytest.raises(ValueError, match="multiple"):
        write_tiny_qwen3(tmp_path / "m", n_heads=6, n_kv_heads=4)
