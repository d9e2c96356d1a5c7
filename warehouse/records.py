"""What the warehouse stores about a rollout, a model and an attention run (plain records).

Also the one clock (`utc_now`), the code version stamped on every write, and the errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path


class WarehouseError(Exception):
    """The warehouse cannot be opened, read or written as asked."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the warehouse and did not let go in time."""


class DiskFullError(WarehouseError):
    """The file system ran out of space; nothing of the failed write is visible."""


def utc_now() -> dt.datetime:
    """UTC now without a time zone (DuckDB ``timestamp``): the one clock of the warehouse."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ModelInfo:
    """What the attention rows of one model need to say about it."""

    name: str
    n_layers: int
    n_heads: int
    source: str | None = None
    revision: str | None = None
    n_kv_heads: int | None = None
    head_dim: int | None = None
    config: dict | None = None


@dataclass(frozen=True)
class RolloutRecord:
    """One rollout as the warehouse stores it (rows of the ROLLOUT_TABLES)."""

    rollout_id: str
    rollout_name: str
    root: str
    source_path: str
    sentences: list[str]
    char_spans: list[tuple[int, int]]  # of each sentence in the 'chunks' text
    tags: list[list[str]]  # tags[k] = the tags of sentence k
    sentence_source: str
    text_hash: str
    metadata: dict
    warnings: list[str]
    problem_id: str | None = None
    solution_folder: str | None = None
    is_correct: bool | None = None
    # sentence_fields rows: (idx, field, value or None, value_json)
    fields: list[tuple[int, str, float | None, str]] = ()
    dependencies: list[tuple[int, int]] = ()  # sentence_dependencies: (idx, depends_on_idx)

    @property
    def content_hash(self) -> str:
        """Changes whenever anything stored about the rollout would change."""
        payload = [self.rollout_name, self.root, self.source_path, self.sentences,
                   self.char_spans, self.tags, self.sentence_source, self.metadata,
                   self.warnings, self.problem_id, self.solution_folder, self.is_correct,
                   self.fields, self.dependencies]
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SentenceSpan:
    char_start: int | None
    char_end: int | None
    token_start: int
    token_end: int
    match: str


@dataclass(frozen=True)
class AttentionRun:
    """How one rollout's attention was produced (the attention_runs row)."""

    fingerprint: str
    text_source: str
    dtype: str
    n_tokens: int
    device: str | None = None
    query_block: int | None = None
    duration_s: float | None = None
    parameters: dict | None = None
    code_version: str | None = None


def code_version() -> str:
    """The git commit of this checkout, or the package version outside git."""
    head = Path(__file__).resolve().parent.parent / ".git"
    try:
        ref = (head / "HEAD").read_text().strip()
        if ref.startswith("ref: "):
            ref = (head / ref[5:]).read_text().strip()
        return ref[:12]
    except OSError:
        return "0.1.0"


def model_slug(model: str) -> str:
    """A directory name for a model name (Hub ids hold '/')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model)
