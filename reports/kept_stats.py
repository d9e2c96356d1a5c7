"""Per-rollout statistics kept between report builds, combined across rollouts in SQL.

The statistics page combines every rollout of the model: ``head_consistency_of`` over
the rollouts' observed permutation draws (``consistency_draws``) and their partial sums
(``consistency_partials_of``), ``tag_summary_of`` over their best-head selections
(``selected_head_pvalues``) and that combination. A rollout's draws and selections depend
on that rollout and the parameters alone, so they are computed once per rollout version
(``only_rollouts``, a batch of rollouts per query) and kept as Parquet files in a cache
beside the report (``.<out>.kept/``), each named by a key that hashes the rollout's
version, the statistics parameters and the code. Rollouts are grouped in buckets by their
problem; a bucket's files (its rollouts' observed draws and selections, and the partial
sums of their draws) are named by the keys of its rollouts. A changed rollout gets new
files and its bucket new ones; the others are read back, so a one-rollout change
recomputes one rollout's permutations and one bucket's sums, and the combination reads the
buckets' files, whatever the number of rollouts. Files are written under a temporary name
and renamed (a killed build leaves no half file); after a report is published, files no
rollout or bucket of it needs are removed.

What one rollout keeps (``permutations`` = K; L = the report's layers):

- draws: ``consistency_draws`` rows (K + 1 per head) of the report tag over every layer
  (the layer x head map, receiver heads), of every other tag over L, and of the report
  tag's placebo over L (``tag_summary``);
- selections: ``selected_head_pvalues`` rows of every tag and the placebo over L;
- kurtosis: ``receiver_head_kurtosis`` rows (the receiver heads' setting, every layer),
  which ``receiver_heads_of`` ranks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb

from sql.placeholders import sql_literal
from sql.query import macro_call

# Rollouts whose statistics one query computes: a scoped query has a fixed cost (planning
# the expanded macros, ~1-2 s) that a batch shares; the batch's rows are sorted on disk.
BATCH_ROLLOUTS = 16

# Rollouts are kept in buckets by a hash of their problem (a problem's rollouts share one):
# a bucket's files hold what the combination reads of its rollouts (their observed draws,
# selections and consistency_partials_of), so a build reads BUCKETS files of each kind
# whatever the number of rollouts, and a changed rollout recomputes its bucket's alone.
BUCKETS = 32
BUCKET_KINDS = ("observed", "selections", "partials", "kurtosis")
ROLLOUT_KINDS = ("draws", "selections", "kurtosis")
ROW_ORDER = {"draws": "tag, layer, head, permutation", "selections": "tag, layer, head",
             "kurtosis": "layer, head"}

SELECTION_COLUMNS = ("tag", "model", "rollout_id", "layer", "head", "delta_va_vert", "abs_delta_va_vert",
                     "n_heads", "permutations", "p_value_uncorrected", "p_value_fwer", "n_target",
                     "n_labellings")


def cache_dir_of(out_dir: Path) -> Path:
    """Where the report in out_dir keeps its per-rollout statistics (a hidden sibling)."""
    return out_dir.with_name(f".{out_dir.name}.kept")


def bucket_of(cluster_id: str) -> int:
    """The bucket of a problem (or of a rollout without one): stable across builds."""
    return int(hashlib.md5(cluster_id.encode()).hexdigest()[:8], 16) % BUCKETS


def placebo_tag(tag: str) -> str:
    """The placebo of a tag (docs/STATISTICS.md §10)."""
    return f"placebo:{tag}"


class KeptStatistics:
    """The kept per-rollout statistics of one report directory.

    ``prepare`` makes sure every rollout of the model has its files (computing the missing
    ones on the open read-only connection) and defines the temporary views the combination
    macros read; ``prune`` removes the files of rollout versions no longer reported.
    """

    def __init__(self, cache_dir: Path, code_digest: str,
                 on_step: Callable[[str], None] | None = None):
        self.cache_dir, self.code_digest = cache_dir, code_digest
        self.step = on_step or (lambda message: None)
        self.used: set[str] = set()  # keys of this build's files
        self.computed: list[str] = []  # rollouts whose statistics this build computed

    def key(self, rollout_id: str, version: list[str], scope: dict) -> str:
        blob = json.dumps([self.code_digest, scope, rollout_id, version], default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def path(self, key: str, kind: str) -> Path:
        return self.cache_dir / f"{key}.{kind}.parquet"

    def prepare(self, con: duckdb.DuckDBPyConnection, stats_args: dict, model: str,
                layers: list[int]) -> None:
        """Keep the statistics of every rollout of ``model`` and of every bucket of them,
        and define the views ``report_observed``, ``report_partials``,
        ``report_selections`` and ``report_kurtosis`` over the buckets' files."""
        scope = {**stats_args, "layers": layers, "model": model}
        versions = con.sql(
            "select rollout_id, content_hash, loaded_at::varchar, fingerprint, ingested_at::varchar "
            "from rollout_versions where model = ? order by rollout_id", params=[model]).fetchall()
        keys = {row[0]: self.key(row[0], [str(x) for x in row[1:]], scope) for row in versions}
        self.used = set(keys.values())
        missing = [rid for rid, key in keys.items()
                   if not all(self.path(key, kind).is_file() for kind in ROLLOUT_KINDS)]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(missing), BATCH_ROLLOUTS):
            batch = missing[start:start + BATCH_ROLLOUTS]
            self._compute(con, stats_args, model, layers, {rid: keys[rid] for rid in batch})
            self.step(f"statistics of {start + len(batch)} of {len(missing)} rollouts computed")
        self.computed = missing
        bucket_keys = self._prepare_buckets(con, keys)
        self.used |= set(bucket_keys)
        for kind in BUCKET_KINDS:
            files = [str(self.path(key, kind)) for key in bucket_keys]
            con.execute(f"create or replace temp view report_{kind} as "
                        f"select * from read_parquet([{', '.join(map(sql_literal, files))}])")

    def _prepare_buckets(self, con: duckdb.DuckDBPyConnection, keys: dict[str, str]) -> list[str]:
        """The keys of the buckets of these rollouts (id -> key), computing missing files."""
        clusters = dict(con.sql("select rollout_id, coalesce(problem_id, rollout_id) from rollouts")
                        .fetchall())
        buckets: dict[int, list[str]] = {}
        for rollout_id, key in keys.items():
            buckets.setdefault(bucket_of(clusters.get(rollout_id, rollout_id)), []).append(key)
        bucket_keys = []
        for member_keys in buckets.values():
            key = hashlib.sha256(json.dumps(["bucket", sorted(member_keys)]).encode()).hexdigest()
            if not all(self.path(key, kind).is_file() for kind in BUCKET_KINDS):
                self._combine_bucket(con, sorted(member_keys), key)
            bucket_keys.append(key)
        return bucket_keys

    def _combine_bucket(self, con: duckdb.DuckDBPyConnection, member_keys: list[str], key: str) -> None:
        """A bucket's files from its rollouts' files: the observed draws (permutation 0), the
        selections and the kurtoses, concatenated, and the partial sums of
        ``consistency_partials_of``."""
        def files(kind: str) -> str:
            return "[" + ", ".join(sql_literal(str(self.path(k, kind))) for k in member_keys) + "]"
        con.execute("create or replace temp view bucket_draws as "
                    f"select * from read_parquet({files('draws')})")
        queries = {
            "observed": "select * from bucket_draws where permutation = 0 "
                        "order by rollout_id, tag, layer, head",
            "selections": f"select * from read_parquet({files('selections')}) "
                          "order by rollout_id, tag, layer",
            "kurtosis": f"select * from read_parquet({files('kurtosis')}) order by rollout_id, layer, head",
            "partials": "select * from consistency_partials_of(draws := 'bucket_draws') "
                        "order by tag, layer, head, permutation",
        }
        for kind, query in queries.items():
            write_atomically(con.sql(query), self.path(key, kind))

    def _compute(self, con: duckdb.DuckDBPyConnection, stats_args: dict, model: str,
                 layers: list[int], keys: dict[str, str]) -> None:
        """The draws, selections and kurtoses of a batch of rollouts (rollout id -> key): one
        query per kind scoped to the batch (only_rollouts) into a batch file, then one file
        per rollout cut from it."""
        tag = stats_args["tag"]
        metric = {k: v for k, v in stats_args.items() if k not in ("tag", "layers")}
        metric["only_rollouts"] = list(keys)
        on_layers = {**metric, "layers": layers, "all_layers": False}
        parts = {
            "draws": [  # (macro, arguments, extra condition)
                ("consistency_draws", {**metric, "tag": tag, "all_layers": True}, ""),
                ("consistency_draws", {**on_layers, "all_tags": True}, " and rows.tag <> ?"),
                ("consistency_draws", {**on_layers, "tag": placebo_tag(tag)}, ""),
            ],
            "selections": [
                ("selected_head_pvalues", {**on_layers, "all_tags": True}, ""),
                ("selected_head_pvalues", {**on_layers, "tag": placebo_tag(tag)}, ""),
            ],
            # the receiver heads' setting (the macro's defaults), not the report's metric
            "kurtosis": [("receiver_head_kurtosis", {"only_rollouts": list(keys)}, "")],
        }
        for kind, kind_parts in parts.items():
            columns = SELECTION_COLUMNS if kind == "selections" else None
            queries = [_part_query(part, model, tag, columns) for part in kind_parts]
            order = ROW_ORDER[kind]
            batch_file = self.cache_dir / f".batch.{kind}.{os.getpid()}.tmp"
            union = " union all ".join(f"({query})" for query, _ in queries)
            con.sql(f"{union} order by rollout_id, {order}",
                    params=[v for _, values in queries for v in values]).write_parquet(
                        str(batch_file), compression="zstd")
            try:
                for rollout_id, key in keys.items():
                    rows = con.sql(f"select * from read_parquet(?) where rollout_id = ? order by {order}",
                                   params=[str(batch_file), rollout_id])
                    write_atomically(rows, self.path(key, kind))
            finally:
                batch_file.unlink(missing_ok=True)

    def prune(self) -> int:
        """Remove the kept files no rollout of the last prepared build uses; how many."""
        removed = 0
        for path in self.cache_dir.glob("*.parquet"):
            if path.name.split(".")[0] not in self.used:
                path.unlink(missing_ok=True)
                removed += 1
        for path in self.cache_dir.glob(".*.tmp"):  # what killed builds left
            path.unlink(missing_ok=True)
        return removed



def write_atomically(relation: duckdb.DuckDBPyRelation, target: Path) -> None:
    """The relation as a Parquet file at target, written under a temporary name and renamed
    (a killed build leaves no half file; prune removes the temporary ones)."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    relation.write_parquet(str(partial), compression="zstd")
    os.replace(partial, target)


def _part_query(part: tuple[str, dict, str], model: str, tag: str,
                columns: tuple[str, ...] | None) -> tuple[str, list]:
    """The rows of one macro call for the model, and its values."""
    macro, args, condition = part
    call, values = macro_call(macro, args)
    projection = ", ".join(f"rows.{c}" for c in columns) if columns else "rows.*"
    query = f"select {projection} from {call} as rows where rows.model = ?{condition}"
    return query, values + [model] + ([tag] if condition else [])
