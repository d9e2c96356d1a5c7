"""The attention writer: one rollout's cells, streamed layer by layer into one Parquet file.

The file is the one durable copy of the cells (the README's "Storage"): rows sorted by
(layer, head, i, j) as the layers arrive, float32 values with BYTE_STREAM_SPLIT, keys
dictionary- or delta-encoded, zstd, and row groups of whole heads of one layer, so a
filter on layer (or head) skips the rest. Its schema is attention_inline's
(sql/00_tables); the model's record travels in the file's metadata, so the catalog can be
rebuilt from the files alone (`cli.py repair`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse import faults, kept_scores
from warehouse.files import fsync_rename, new_version
from warehouse.records import AttentionRun, DiskFullError, ModelInfo, SentenceSpan, WarehouseError
from warehouse.tables import ATTENTION_SCHEMA_TABLE, arrow_schema

MODEL_METADATA_KEY = b"va.model"
# Bytes per stored cell, generously (4.4 measured, README "Storage"): only used to say how
# much space a rollout needs when the disk filled up before any of it was written.
BYTES_PER_CELL_ESTIMATE = 8
HEADS_PER_ROW_GROUP = 8  # 8 heads x 31,375 cells (N = 250): ~250k rows per row group
PARQUET_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["model", "rollout_id", "layer", "head", "i"],
    "column_encoding": {"j": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"},
}


def attention_file_schema(model: ModelInfo) -> pa.Schema:
    """attention_inline's schema; constant string columns held as dictionaries."""
    schema = arrow_schema(ATTENTION_SCHEMA_TABLE)
    for name in ("model", "rollout_id"):
        field = schema.field(name)
        schema = schema.set(schema.get_field_index(name),
                            field.with_type(pa.dictionary(pa.int32(), pa.string())))
    record = json.dumps(dataclasses.asdict(model)).encode("utf-8")
    return schema.with_metadata({MODEL_METADATA_KEY: record})


def model_of_file(path: Path) -> ModelInfo | None:
    """The ModelInfo recorded in an attention file, or None (files of older versions)."""
    metadata = pq.read_schema(path).metadata or {}
    record = metadata.get(MODEL_METADATA_KEY)
    return ModelInfo(**json.loads(record)) if record else None


@dataclass(frozen=True)
class PendingAttention:
    """One model's attention for a rollout, written to Parquet but not yet visible."""

    model: ModelInfo
    writer: AttentionWriter
    spans: list[SentenceSpan]
    run: AttentionRun


class AttentionWriter:
    """Streams one rollout's attention, layer by layer, into a not-yet-visible Parquet file.

    Only the lower triangle (j <= i) is written: METRICS.md §3 makes the rest 0.
    """

    def __init__(self, root: Path, rel_dir: Path, model: ModelInfo, rollout_id: str, n: int,
                 tags: list[list[str]] | None = None):
        self.tags = None if tags is None else [list(t) for t in tags]
        self.root, self.rel_dir, self.model = root, rel_dir, model.name
        self.n_layers, self.n_heads = model.n_layers, model.n_heads
        self.schema = attention_file_schema(model)
        self.rollout_id, self.n = rollout_id, n
        self.version = new_version()
        self.rel_path = rel_dir / f"attention-{self.version}.parquet"
        self._tmp = root / rel_dir / f"attention-{self.version}.parquet.tmp"
        self._writer: pq.ParquetWriter | None = None
        self.closed = False
        self.layers_written: list[int] = []
        self._kept: list[tuple[int, dict[str, np.ndarray]]] = []  # (layer, kept columns)
        self._blocks: list[tuple[int, dict[str, np.ndarray]]] = []  # (layer, tag -> [head])
        self._rows, self._cols = np.tril_indices(n)

    def __enter__(self) -> AttentionWriter:
        try:
            self._tmp.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self._tmp, self.schema, **PARQUET_OPTIONS)
        except Exception as exc:
            self._writer = None
            full = self._disk_full(exc) if faults.is_disk_full(exc) else None
            self.__exit__(type(exc), exc, None)  # no partial file stays behind
            if full is None:
                raise
            raise full from exc
        return self

    def _disk_full(self, exc: Exception) -> DiskFullError:
        """DiskFullError naming the file and the space the whole rollout needs (twice, for
        the commit's copy). Extrapolated from the layers written so far, or estimated
        from the cell count when none was."""
        written = 0
        with contextlib.suppress(OSError):
            written = self._tmp.stat().st_size
        n_layers = self.n_layers or len(self.layers_written) + 1
        if self.layers_written and written:
            total = written * n_layers / len(self.layers_written)
        else:
            total = n_layers * (self.n_heads or 1) * len(self._rows) * BYTES_PER_CELL_ESTIMATE
        return DiskFullError(faults.disk_full_message(self._tmp, int(2 * total) + (1 << 20),
                                                      freed_bytes=written))

    def add_layer(self, layer: int, mats: np.ndarray) -> None:
        """Append one layer: ``mats`` is [head, i, j] float32 sentence attention."""
        mats = np.asarray(mats, dtype=np.float32)
        if mats.ndim != 3 or mats.shape[1:] != (self.n, self.n):
            raise WarehouseError(
                f"rollout '{self.rollout_id}': layer {layer} matrices have shape {mats.shape}, "
                f"expected (heads, {self.n}, {self.n})"
            )
        n_heads, cells = mats.shape[0], len(self._rows)
        values = mats[:, self._rows, self._cols].reshape(-1)  # [head * cells]
        constant = np.zeros(n_heads * cells, np.int32)  # dictionary-encoded constant columns
        table = pa.Table.from_pydict({
            "model": pa.DictionaryArray.from_arrays(constant, [self.model]),
            "rollout_id": pa.DictionaryArray.from_arrays(constant, [self.rollout_id]),
            "layer": np.full(n_heads * cells, layer, np.int16),
            "head": np.repeat(np.arange(n_heads, dtype=np.int16), cells),
            "i": np.tile(self._rows.astype(np.int32), n_heads),
            "j": np.tile(self._cols.astype(np.int32), n_heads),
            "value": values,
        }, schema=self.schema)
        try:
            self._writer.write_table(table, row_group_size=max(1, cells * HEADS_PER_ROW_GROUP))
        except Exception as exc:
            if not faults.is_disk_full(exc):
                raise
            raise self._disk_full(exc) from exc
        self._kept.append((layer, kept_scores.layer_scores(mats)))
        if self.tags is not None:
            self._blocks.append((layer, kept_scores.layer_blocks(mats, self.tags)))
        self.layers_written.append(layer)

    def kept_rows(self) -> pa.Table:
        """The kept_scores rows of everything written (warehouse/kept_scores.py)."""
        schema = arrow_schema("kept_scores")
        parts = []
        for layer, columns in self._kept:
            heads, n = columns["receiver_score"].shape
            size = heads * n
            data = {
                "model": [self.model] * size,
                "rollout_id": [self.rollout_id] * size,
                "layer": np.full(size, layer, np.int16),
                "head": np.repeat(np.arange(heads, dtype=np.int16), n),
                "idx": np.tile(np.arange(n, dtype=np.int32), heads),
            }
            for name, values in columns.items():
                flat = values.reshape(-1)
                data[name] = pa.array(flat, mask=np.isnan(flat)).cast(schema.field(name).type)
            parts.append(pa.Table.from_pydict(data, schema=schema))
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def kept_block_rows(self, tags: list[list[str]]) -> pa.Table | None:
        """The kept_tag_blocks rows for these tags, or None when the writer was given other
        tags (or none): the commit then computes them in SQL."""
        if self.tags is None or self.tags != [list(t) for t in tags]:
            return None
        rows: dict[str, list] = {name: [] for name in arrow_schema("kept_tag_blocks").names}
        for layer, blocks in self._blocks:
            for tag, sums in sorted(blocks.items()):
                for head, total in enumerate(sums.tolist()):
                    for name, value in zip(rows, (self.model, self.rollout_id, layer, head, tag,
                                                  total), strict=True):
                        rows[name].append(value)
        return pa.Table.from_pydict(rows, schema=arrow_schema("kept_tag_blocks"))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if exc_type is None:
                fsync_rename(self._tmp, self.root / self.rel_path)
        except Exception as error:
            if exc_type is None:  # the file could not be finished: report that
                full = self._disk_full(error) if faults.is_disk_full(error) else None
                with contextlib.suppress(FileNotFoundError):
                    self._tmp.unlink()
                if full is not None:
                    raise full from error
                raise
        if exc_type is not None:  # keep the error that stopped the writing (e.g. a full disk)
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            return
        self.closed = True
