"""Load a causal language model for the fused attention capture.

`load_model(source)` returns the base transformer (no LM head), its tokenizer and a
description (`warehouse.store.ModelInfo`: name, source, revision, geometry, config).
`describe_model(source)` gives the same description from the config alone, without loading
weights. The model is loaded with `attn_implementation` set to the project's registered
capture function (`ingest.capture.CAPTURE_ATTN_IMPLEMENTATION`), which behaves exactly as
SDPA outside a capture.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ingest.capture import CAPTURE_ATTN_IMPLEMENTATION, register_capture_attention
from warehouse.store import ModelInfo

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class ModelLoadError(Exception):
    """A model could not be loaded for attention capture."""


@dataclass
class LoadedModel:
    """A base transformer (no LM head) ready for capture, with its tokenizer and info."""

    model: Any  # transformers PreTrainedModel, e.g. Qwen3Model
    tokenizer: Any
    info: ModelInfo
    dtype: str = "float32"

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    def encode(self, text: str) -> torch.Tensor:
        """The model input of METRICS.md §2: `encode(text)`, LongTensor `[1, T]`, no template."""
        return torch.tensor([self.tokenizer.encode(text)], dtype=torch.long)

    def peak_gpu_bytes(self) -> int | None:
        """Peak CUDA memory allocated so far on the model's device; None on CPU."""
        device = next(self.model.parameters()).device
        if device.type != "cuda":
            return None
        return int(torch.cuda.max_memory_allocated(device))


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cuda", "cpu"):
        raise ModelLoadError(f"device '{device}' is not one of 'auto', 'cuda', 'cpu'")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was requested but no CUDA GPU is available; use 'cpu'")
    return torch.device(device)


def _load_config(source: str, offline: bool):
    """(config, local_files_only) for a local directory, the HF cache, or the Hub."""
    from transformers import AutoConfig

    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"'{source}' is a directory without config.json: pass a Hugging Face "
                "checkpoint directory (config.json, weights, tokenizer files)"
            )
        try:
            return AutoConfig.from_pretrained(str(path)), True
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"model '{source}': cannot read config.json ({exc})") from exc
    try:
        return AutoConfig.from_pretrained(source, local_files_only=True), True
    except (OSError, ValueError):
        pass
    hint = (
        "pass a local checkpoint directory, or set HF_HOME to a cache that holds it, or "
        f"download it once with network access (`hf download {source}`)"
    )
    if offline:
        raise ModelLoadError(
            f"model '{source}' is not a local directory and not in the local Hugging Face cache "
            f"(offline mode, the Hub was not asked): {hint}"
        )
    if not _hub_reachable():
        raise ModelLoadError(
            f"model '{source}' is not a local directory and not in the local Hugging Face cache, "
            f"and the Hub ({_hub_host()}) cannot be reached from this machine: {hint}"
        )
    try:
        return AutoConfig.from_pretrained(source), False
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"model '{source}' is not a local directory, not in the local Hugging Face cache, "
            f"and the Hub cannot be reached (or has no such model): {hint}"
        ) from exc


def _hub_host() -> str:
    from urllib.parse import urlparse

    return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """One quick TCP connect, so a machine without network fails in seconds, not after the
    Hub client's minute of retries. Behind a proxy the client knows better: assume yes."""
    import socket

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        socket.create_connection((_hub_host(), 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _revision(source: str, local_only: bool) -> str:
    if Path(source).expanduser().is_dir():
        return "local"
    try:
        from transformers.utils import cached_file

        resolved = cached_file(source, "config.json", local_files_only=True)
    except (OSError, ValueError):
        return "unknown"
    parts = Path(resolved).parts if resolved else ()
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return "local" if local_only else "unknown"


def _model_class(config, source: str):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM._model_mapping[type(config)]
    except KeyError as exc:
        raise ModelLoadError(
            f"model '{source}' (model_type '{getattr(config, 'model_type', '?')}') is not a causal "
            "language model that transformers knows: use a decoder-only checkpoint "
            "(e.g. Qwen3, Llama, Mistral)"
        ) from exc


def _info(source: str, config, local_only: bool, name: str | None) -> ModelInfo:
    text = config.get_text_config()
    n_heads = int(text.num_attention_heads)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // n_heads
    path = Path(source).expanduser()
    default_name = path.resolve().name if path.is_dir() else str(source)
    return ModelInfo(
        name=name or default_name,
        source=str(source),
        revision=_revision(source, local_only),
        n_layers=int(text.num_hidden_layers),
        n_heads=n_heads,
        n_kv_heads=int(getattr(text, "num_key_value_heads", None) or n_heads),
        head_dim=int(head_dim),
        config=json.loads(config.to_json_string(use_diff=False)),
    )


def _resolve(source: str, offline: bool | None):
    """(config, model class, local_files_only); raises ModelLoadError."""
    if offline is None:
        from huggingface_hub import is_offline_mode

        offline = is_offline_mode()
    config, local_only = _load_config(source, offline)
    cls = _model_class(config, source)
    if not getattr(cls, "_supports_attention_backend", False):
        raise ModelLoadError(
            f"model '{source}' ({cls.__name__}) does not compute attention through transformers' "
            "AttentionInterface, so the fused capture cannot see its attention: use a model "
            "class that supports attention backends (e.g. Qwen3, Llama, Mistral, Qwen2)"
        )
    return config, cls, local_only


def describe_model(source: str, *, name: str | None = None, offline: bool | None = None) -> ModelInfo:
    """The `ModelInfo` that `load_model` would return, from the config alone (no weights).

    `name` defaults to the Hub id, or a local directory's name.
    """
    config, _, local_only = _resolve(source, offline)
    return _info(source, config, local_only, name)


def load_model(
    source: str,
    *,
    device: Literal["auto", "cuda", "cpu"] = "auto",
    dtype: Literal["float32", "bfloat16"] = "float32",
    name: str | None = None,
    offline: bool | None = None,
) -> LoadedModel:
    """Load `source` (local checkpoint dir or Hub id) for the fused capture.

    Returns the base model (no LM head) on `device` ('auto': CUDA when available) in `dtype`.
    `offline=None` follows `HF_HUB_OFFLINE`; when offline, the Hub is never contacted (a
    missing model fails at once instead of after the Hub client's retries).

    Raises `ModelLoadError` naming the model and what to try when the model cannot be found,
    is not a causal LM, or does not route attention through transformers' AttentionInterface.
    """
    if dtype not in DTYPES:
        raise ModelLoadError(f"dtype '{dtype}' is not one of {sorted(DTYPES)}")
    torch_device = _resolve_device(device)
    config, _, local_only = _resolve(source, offline)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    register_capture_attention()
    try:
        full = AutoModelForCausalLM.from_pretrained(
            source,
            attn_implementation=CAPTURE_ATTN_IMPLEMENTATION,
            dtype=DTYPES[dtype],
            local_files_only=local_only,
        )
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model '{source}': loading weights or tokenizer failed ({exc})") from exc
    model = full.base_model.to(torch_device).eval()
    del full  # drop the LM head; the base model keeps the weights it needs
    info = _info(source, config, local_only, name)
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, dtype=dtype)
