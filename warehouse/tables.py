"""Arrow tables of the rows the warehouse writes, with schemas derived from sql/00_tables.

Each storage table is defined once, in its ``sql/00_tables/<name>.sql`` file; the Arrow
schema of its Parquet files is read from DuckDB (an in-memory database holding those
definitions), so the files and the tables cannot drift apart.
"""

from __future__ import annotations

import functools
import json

import duckdb
import pyarrow as pa

import sql
from warehouse.records import (
    AttentionRun,
    RolloutRecord,
    SentenceSpan,
    code_version,
    utc_now,
)

ROLLOUT_TABLES = ("rollouts", "sentences", "sentence_tags", "sentence_fields",
                  "sentence_dependencies")
ATTENTION_TABLES = ("attention", "sentence_spans", "attention_runs")
# The DuckDB table whose schema the attention Parquet files have.
ATTENTION_SCHEMA_TABLE = "attention_inline"


@functools.cache
def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a storage table, as sql/00_tables defines it."""
    con = duckdb.connect()
    try:
        for path in sql.table_files():
            con.execute(sql.render(path))
        return con.sql(f"select * from {table} limit 0").to_arrow_table().schema
    finally:
        con.close()


def _table(name: str, columns: dict) -> pa.Table:
    return pa.Table.from_pydict(columns, schema=arrow_schema(name))


def rollout_tables(rollout: RolloutRecord) -> dict[str, pa.Table]:
    n = len(rollout.sentences)
    rollout_row = _table("rollouts", {
        "rollout_id": [rollout.rollout_id],
        "rollout_name": [rollout.rollout_name],
        "root": [rollout.root],
        "source_path": [rollout.source_path],
        "problem_id": [rollout.problem_id],
        "solution_folder": [rollout.solution_folder],
        "is_correct": [rollout.is_correct],
        "path_parts": [rollout.rollout_id.split("/")],
        "n_sentences": [n],
        "sentence_source": [rollout.sentence_source],
        "text_hash": [rollout.text_hash],
        "content_hash": [rollout.content_hash],
        "metadata": [json.dumps(rollout.metadata, ensure_ascii=False)],
        "warnings": [list(rollout.warnings)],
        "loaded_at": [utc_now()],
    })
    sentences = _table("sentences", {
        "rollout_id": [rollout.rollout_id] * n,
        "idx": list(range(n)),
        "text": list(rollout.sentences),
        "char_start": [start for start, _ in rollout.char_spans],
        "char_end": [end for _, end in rollout.char_spans],
    })
    tag_rows = [(k, tag) for k, tags in enumerate(rollout.tags) for tag in tags]
    tags = _table("sentence_tags", {
        "rollout_id": [rollout.rollout_id] * len(tag_rows),
        "idx": [k for k, _ in tag_rows],
        "tag": [t for _, t in tag_rows],
    })
    return {"rollouts": rollout_row, "sentences": sentences, "sentence_tags": tags,
            **_sentence_field_tables(rollout)}


def _sentence_field_tables(rollout: RolloutRecord) -> dict[str, pa.Table]:
    """The thought-anchors measurements of each sentence, and its dependency edges."""
    fields, edges = list(rollout.fields), list(rollout.dependencies)
    return {
        "sentence_fields": _table("sentence_fields", {
            "rollout_id": [rollout.rollout_id] * len(fields),
            "idx": [row[0] for row in fields],
            "field": [row[1] for row in fields],
            "value": [row[2] for row in fields],
            "value_json": [row[3] for row in fields],
        }),
        "sentence_dependencies": _table("sentence_dependencies", {
            "rollout_id": [rollout.rollout_id] * len(edges),
            "idx": [edge[0] for edge in edges],
            "depends_on_idx": [edge[1] for edge in edges],
        }),
    }


def spans_table(
    model: str, rollout_id: str, text_source: str, spans: list[SentenceSpan]
) -> pa.Table:
    n = len(spans)
    return _table("sentence_spans", {
        "model": [model] * n,
        "rollout_id": [rollout_id] * n,
        "idx": list(range(n)),
        "text_source": [text_source] * n,
        "char_start": [s.char_start for s in spans],
        "char_end": [s.char_end for s in spans],
        "token_start": [s.token_start for s in spans],
        "token_end": [s.token_end for s in spans],
        "match": [s.match for s in spans],
    })


def run_table(model: str, rollout_id: str, run: AttentionRun) -> pa.Table:
    return _table("attention_runs", {
        "model": [model],
        "rollout_id": [rollout_id],
        "fingerprint": [run.fingerprint],
        "text_source": [run.text_source],
        "dtype": [run.dtype],
        "device": [run.device],
        "n_tokens": [run.n_tokens],
        "query_block": [run.query_block],
        "duration_s": [run.duration_s],
        "parameters": [json.dumps(run.parameters or {})],
        "code_version": [run.code_version or code_version()],
        "ingested_at": [utc_now()],
    })
