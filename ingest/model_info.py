"""What a model is called and which revision it is, without importing torch.

The ingest pipeline needs a model's name, source and revision before it touches any
rollout: they key the stored attention and enter every fingerprint. When every rollout
is current, that is all it needs, and importing torch and transformers (seconds) would
be the run's main cost. `quick_describe` reads ``config.json`` directly for a local
checkpoint directory or a Hub id already in the local Hugging Face cache; in every other
case (and for any config it cannot read) it defers to `ingest.model.describe_model`,
which imports torch, checks the model class and raises `ModelLoadError` naming the model
and what to try.

The values must equal those of `ingest.model` (`_info` and `_revision`):
`tests/test_reliability_model.py` compares them.
"""

from __future__ import annotations

import json
from pathlib import Path

from warehouse.store import ModelInfo


def quick_describe(source: str, *, name: str | None = None) -> ModelInfo:
    """The ModelInfo of `source` (local directory or cached Hub id), torch-free when possible."""
    info = _from_config_file(source, name)
    if info is not None:
        return info
    from ingest.model import describe_model  # imports torch; raises ModelLoadError

    return describe_model(source, name=name)


def _from_config_file(source: str, name: str | None) -> ModelInfo | None:
    path = Path(source).expanduser()
    if path.is_dir():
        config_path, revision = path / "config.json", "local"
        default_name = path.resolve().name
    else:
        config_path, revision = _cached_config(source)
        default_name = str(source)
        if config_path is None:
            return None
    try:
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        text = config.get("text_config") or config
        n_heads = int(text["num_attention_heads"])
        n_layers = int(text["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # the full describe gives the precise error
    if not isinstance(config.get("model_type"), str):
        return None
    return ModelInfo(name=name or default_name, source=str(source), revision=revision,
                     n_layers=n_layers, n_heads=n_heads)


def _cached_config(source: str) -> tuple[str | None, str | None]:
    """(path of config.json in the local HF cache, snapshot revision) or (None, None)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        resolved = try_to_load_from_cache(source, "config.json")
    except Exception:  # an id the hub client rejects: let the full describe explain
        return None, None
    if not isinstance(resolved, str):
        return None, None
    parts = Path(resolved).parts
    if "snapshots" not in parts or parts.index("snapshots") + 1 >= len(parts):
        return None, None
    return resolved, parts[parts.index("snapshots") + 1]
