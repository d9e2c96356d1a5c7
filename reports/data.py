"""The report's queries: Polars frames from the SQL views and macros, in one snapshot.

Every number in the report comes from here, and every number here comes from SQL
(sql/20_metrics, sql/30_ranking, sql/40_stats). All queries run on one read-only connection, so
the report shows one consistent state of the warehouse; the frames are then held in
memory and the connection is closed before any chart is rendered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import duckdb
import polars as pl

from sql.defaults import DEFAULTS
from sql.query import macro_call

DEFAULT_TAG = DEFAULTS["tag"]
ALPHA = DEFAULTS["alpha"]  # significance level marked on the statistics page (docs/STATISTICS.md)
RECEIVER_K = DEFAULTS["k"]  # receiver heads shown (receiver_heads' and receiver_head_delta_va's k)
TOP_CONSISTENT = 10  # rows of the "most consistent heads" table


class ReportError(Exception):
    """The report cannot be built from this warehouse with these parameters."""


@dataclass(frozen=True)
class ReportParams:
    """The parameters of one report; every metric one is passed to the SQL macros as is.

    Defaults: the macros' own (sql/defaults.py, checked against every macro header).
    """

    tag: str = DEFAULTS["tag"]
    proximity_ignore: int = DEFAULTS["proximity_ignore"]
    control_depth: bool = DEFAULTS["control_depth"]
    score_type: str = DEFAULTS["score_type"]
    trim: bool = DEFAULTS["trim"]
    layers: tuple[int, ...] | None = DEFAULTS["layers"]  # None: each model's representative layers
    rollouts: str | None = None  # glob on rollout_id or rollout_name
    model: str | None = None  # None: the only model with attention
    permutations: int = DEFAULTS["permutations"]  # K of the permutation p-values (sql/40_stats)
    seed: int = DEFAULTS["seed"]  # seed of the permutations

    def stats_args(self) -> dict:
        """Named arguments of the statistics macros: the metric ones plus permutations and seed."""
        return {**self.metric_args(), "permutations": self.permutations, "seed": self.seed}

    def metric_args(self) -> dict:
        """Named arguments of the metric macros (head_stats, best_heads, rollout_ranking, ...)."""
        return {
            "tag": self.tag,
            "proximity_ignore": self.proximity_ignore,
            "control_depth": self.control_depth,
            "score_type": self.score_type,
            "trim": self.trim,
            "layers": list(self.layers) if self.layers is not None else None,
        }

    def as_dict(self) -> dict:
        values = asdict(self)
        values["layers"] = list(self.layers) if self.layers is not None else None
        return values


@dataclass
class ReportData:
    """Everything the report shows, as frames (one row layout per SQL object)."""

    params: ReportParams
    model: str
    model_info: dict  # the models row
    layers: list[int]  # the layers scored (explicit, or the representative ones)
    ranking: pl.DataFrame  # rollout_ranking_pvalues rows of the chosen rollouts
    best: pl.DataFrame  # best_heads rows, plus rank
    cells: pl.DataFrame  # stored analysed cells of every best head: rollout_id, layer, head, i, j, value
    color_max: pl.DataFrame  # rollout_id, layer, head, color_max (99th percentile, notebook style)
    vertical: pl.DataFrame  # vertical_scores rows of every best head
    sentences: pl.DataFrame  # rollout_id, idx, r, text, tags, is_target, analysed
    ingest: dict = field(default_factory=dict)  # when the data was ingested
    # sql/40_stats, over every rollout of the model (the --rollouts filter does not apply):
    head_map: pl.DataFrame = field(default_factory=pl.DataFrame)  # head_consistency, every layer
    top_heads: pl.DataFrame = field(default_factory=pl.DataFrame)  # its most consistent heads
    receivers: pl.DataFrame = field(default_factory=pl.DataFrame)  # every head's mean kurtosis
    tags: pl.DataFrame = field(default_factory=pl.DataFrame)  # tag_summary of every tag
    causal: object = None  # reports.causal.CausalData: the thought-anchors sections

    def rollout_ids(self) -> list[str]:
        return self.ranking["rollout_id"].to_list()


def frame(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> pl.DataFrame:
    """One query's rows as a Polars frame."""
    try:
        return con.sql(query, params=params or None).pl()
    except duckdb.Error as exc:
        raise ReportError(f"report query failed: {exc}") from None


def warehouse_digest(con: duckdb.DuckDBPyConnection) -> str:
    """Changes whenever anything the report reads changes: rollouts, attention, models.

    Each rollout's content_hash covers its sentences and tags; each attention run has a
    fingerprint and the time it was written; the models rows give the layer counts.
    """
    parts = [
        frame(con, "select rollout_id, content_hash, loaded_at::varchar as loaded_at "
                   "from rollouts order by rollout_id"),
        frame(con, "select model, rollout_id, fingerprint, ingested_at::varchar as ingested_at "
                   "from attention_runs order by model, rollout_id"),
        frame(con, "select model, n_layers, n_heads, source, revision from models order by model"),
    ]
    blob = json.dumps([p.rows() for p in parts], default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def choose_model(con: duckdb.DuckDBPyConnection, model: str | None) -> str:
    """The model to report on: the one asked for, or the only one with attention."""
    models = frame(con, "select distinct model from attention_runs order by model")["model"].to_list()
    if not models:
        raise ReportError("the warehouse holds no attention yet; run `cli.py ingest` first")
    if model is None:
        if len(models) > 1:
            raise ReportError(
                f"the warehouse holds attention of {len(models)} models ({', '.join(models)}); "
                "choose one with --model"
            )
        return models[0]
    if model not in models:
        raise ReportError(f"no attention for model '{model}' (models: {', '.join(models)})")
    return model


def load_report_data(con: duckdb.DuckDBPyConnection, params: ReportParams) -> ReportData:
    """Run every report query on one connection and return the frames."""
    model = choose_model(con, params.model)
    args = params.metric_args()
    info = frame(con, "select * from models where model = ?", [model]).to_dicts()
    model_info = info[0] if info else {"model": model}
    if params.layers is not None:
        layers = sorted(set(params.layers))
    else:
        rep = frame(con, "select layers from representative_layers where model = ?", [model])
        layers = list(rep["layers"][0]) if rep.height else []

    # rollout_ranking plus p_value_score and p_value_fwer_by_layer (aligned with layers).
    call, values = macro_call("rollout_ranking_pvalues", params.stats_args())
    # va_rate_original: the notebook's summary.csv rate, over the counts before trim.
    ranking_query = (
        "select ranking.*, ranking.n_va_original / greatest(1, ranking.n_sentences_original)::double "
        f"as va_rate_original from {call} as ranking where ranking.model = ?"
    )
    values.append(model)
    if params.rollouts:
        ranking_query += " and (ranking.rollout_id glob ? or ranking.rollout_name glob ?)"
        values += [params.rollouts, params.rollouts]
    ranking = frame(con, ranking_query + " order by ranking.rank", values)
    if ranking.height == 0:
        if params.rollouts:
            raise ReportError(f"no rollout with attention of model '{model}' matches "
                              f"--rollouts '{params.rollouts}'")
        raise ReportError(f"no rollout has attention of model '{model}' in layers {layers}")

    # The chosen rollouts, and each one's best head per layer, as temporary tables the
    # detail queries join with (a read-only connection may create temporary objects).
    con.register("report_rollouts_frame", ranking.select("rollout_id", "rank").to_arrow())
    con.execute("create or replace temp table report_rollouts as "
                "select * from report_rollouts_frame")
    con.unregister("report_rollouts_frame")
    call, values = macro_call("best_heads", args)
    con.execute(
        f"create or replace temp table report_best as select best.*, chosen.rank from {call} as best "
        "inner join report_rollouts as chosen on chosen.rollout_id = best.rollout_id "
        "where best.model = ?",
        values + [model],
    )
    best = frame(con, "select * from report_best order by rank, layer")
    join_best = (
        "inner join report_best as best on best.model = {t}.model "
        "and best.rollout_id = {t}.rollout_id and best.layer = {t}.layer and best.head = {t}.head"
    )

    cell_args = {k: args[k] for k in ("tag", "trim", "layers")}
    call, values = macro_call("analysed_cells", cell_args)
    con.execute(
        "create or replace temp table report_cells as "
        "select cells.rollout_id, cells.layer, cells.head, cells.i, cells.j, cells.r, cells.c, "
        f"cells.value from {call} as cells {join_best.format(t='cells')}",
        values,
    )
    cells = frame(con, "select * from report_cells order by rollout_id, layer, head, i, j")

    # The notebook's color maximum: np.nanquantile(np.tril(B), 0.99), i.e. the 99th
    # percentile (linear interpolation) of all n*n values of tril(B): the stored cells
    # plus the n*(n-1)/2 zeros that tril puts above the diagonal.
    call, values = macro_call("analysed_rollouts", {"tag": args["tag"], "trim": args["trim"]})
    color_max = frame(
        con,
        f"""
        with sizes as (
            select rollouts.rollout_id, rollouts.n_sentences
            from {call} as rollouts
        ),
        upper_zeros as (
            select best.rollout_id, best.layer, best.head, 0.0::double as value
            from report_best as best
            inner join sizes on sizes.rollout_id = best.rollout_id
            cross join range(sizes.n_sentences * (sizes.n_sentences - 1) // 2)
            where best.head is not null
        ),
        all_values as (
            select rollout_id, layer, head, value::double as value from report_cells
            union all
            select rollout_id, layer, head, value from upper_zeros
        )
        select rollout_id, layer, head, quantile_cont(value, 0.99) as color_max
        from all_values
        group by rollout_id, layer, head
        order by rollout_id, layer, head
        """,
        values,
    )

    call, values = macro_call("vertical_scores", args)
    vertical = frame(
        con,
        "select scores.rollout_id, scores.layer, scores.head, scores.c, scores.idx, "
        f"scores.is_target, scores.vertical_score from {call} as scores "
        f"{join_best.format(t='scores')} order by scores.rollout_id, scores.layer, scores.c",
        values,
    )

    call, values = macro_call("analysed_sentences", {"tag": args["tag"], "trim": args["trim"]})
    sentences = frame(
        con,
        f"""
        with tags as (
            select rollout_id, idx, list(distinct tag order by tag) as tags
            from sentence_tags
            group by rollout_id, idx
        )
        select
            sentences.rollout_id,
            sentences.idx,
            analysed.r,
            sentences.text,
            coalesce(tags.tags, []::varchar[]) as tags,
            coalesce(list_contains(tags.tags, ?), false) as is_target,
            analysed.r is not null as analysed
        from sentences
        inner join report_rollouts as chosen on chosen.rollout_id = sentences.rollout_id
        left join tags on tags.rollout_id = sentences.rollout_id and tags.idx = sentences.idx
        left join {call} as analysed
            on analysed.rollout_id = sentences.rollout_id and analysed.idx = sentences.idx
        order by sentences.rollout_id, sentences.idx
        """,
        [args["tag"], *values],
    )

    ingest = frame(
        con,
        """
        select
            count(*) as attention_runs,
            min(runs.ingested_at) as first_ingested_at,
            max(runs.ingested_at) as last_ingested_at,
            max(rollouts.loaded_at) as last_loaded_at
        from attention_runs as runs
        inner join report_rollouts as chosen on chosen.rollout_id = runs.rollout_id
        inner join rollouts on rollouts.rollout_id = runs.rollout_id
        where runs.model = ?
        """,
        [model],
    ).to_dicts()[0]

    for table in ("report_cells", "report_best", "report_rollouts"):
        con.execute(f"drop table if exists {table}")
    return ReportData(
        params=params, model=model, model_info=model_info, layers=layers, ranking=ranking,
        best=best, cells=cells, color_max=color_max, vertical=vertical, sentences=sentences,
        ingest=ingest, **load_head_statistics(con, params, model),
    )


def load_head_statistics(con: duckdb.DuckDBPyConnection, params: ReportParams, model: str) -> dict:
    """The statistics page's frames: head_consistency over every layer, receiver heads, tags.

    ``head_consistency`` (every stored layer) is computed once into a temporary table: the
    layer x head map, the most consistent heads and the receiver heads all read it. The
    receiver query is ``receiver_head_delta_va`` (receiver_heads inner join head_consistency)
    written out on that table, so its permutations are not run a second time; every head with
    a defined kurtosis is kept, the top ``RECEIVER_K`` ones with their ΔVA statistics.
    """
    args = params.stats_args()
    consistency = {k: v for k, v in args.items() if k != "layers"}  # every layer: all_layers
    call, values = macro_call("head_consistency", {**consistency, "all_layers": True})
    con.execute(
        "create or replace temp table report_head_consistency as "
        "select consistency.layer, consistency.head, consistency.n_rollouts, "
        "consistency.mean_delta_va_vert, consistency.sd_delta_va_vert, consistency.t_statistic, "
        "consistency.share_same_sign, consistency.permutations, consistency.p_value, "
        "consistency.p_value_fwer, "
        "coalesce(consistency.p_value <= ?, false) as significant, "
        "coalesce(consistency.p_value_fwer <= ?, false) as significant_fwer "
        f"from {call} as consistency where consistency.model = ?",
        [ALPHA, ALPHA, *values, model],
    )
    head_map = frame(con, "select * from report_head_consistency order by layer, head")
    top_heads = frame(
        con,
        "select * from report_head_consistency where p_value_fwer is not null "
        "order by p_value_fwer, abs(t_statistic) desc nulls last, layer, head limit ?",
        [TOP_CONSISTENT],
    )

    # Every ranked head (k: all of them) for the map; the top RECEIVER_K carry their
    # head_consistency row, exactly as receiver_head_delta_va(k := RECEIVER_K) would.
    receivers = frame(
        con,
        """
        select
            receivers.rank,
            receivers.layer,
            receivers.head,
            receivers.mean_kurtosis,
            receivers.n_rollouts as n_rollouts_kurtosis,
            receivers.rank <= ? as is_receiver,
            consistency.n_rollouts,
            consistency.mean_delta_va_vert,
            consistency.sd_delta_va_vert,
            consistency.t_statistic,
            consistency.share_same_sign,
            consistency.p_value,
            consistency.p_value_fwer,
            consistency.significant_fwer
        from receiver_heads(k := 2147483647) as receivers
        left join report_head_consistency as consistency
            on receivers.rank <= ?
            and consistency.layer = receivers.layer
            and consistency.head = receivers.head
        where receivers.model = ?
        order by receivers.rank
        """,
        [RECEIVER_K, RECEIVER_K, model],
    )
    con.execute("drop table if exists report_head_consistency")

    # Every tag, on the report's layers (representative by default: every layer would
    # repeat the label permutations for every tag and every head).
    tag_args = {k: v for k, v in args.items() if k != "tag"}
    call, values = macro_call("tag_summary", {**tag_args, "all_tags": True, "alpha": ALPHA})
    tags = frame(
        con,
        f"select summary.* exclude (model), summary.tag = ? as is_report_tag from {call} as summary "
        "where summary.model = ? order by summary.tag",
        [params.tag, *values, model],
    )
    # The report tag's placebo (docs/STATISTICS.md §10): as many sentences at matched
    # positions and lengths; its numbers sit beside the real tag's as placebo_* columns.
    call, values = macro_call("tag_summary", {**tag_args, "tag": f"placebo:{params.tag}", "all_tags": False,
                                              "alpha": ALPHA})
    placebo = frame(
        con,
        "select ? as tag, summary.share_fwer_significant as placebo_share_fwer_significant, "
        f"summary.top_p_value_fwer as placebo_top_p_value_fwer from {call} as summary "
        "where summary.model = ?",
        [params.tag, *values, model],
    )
    if tags.height:
        tags = tags.join(placebo, on="tag", how="left") if placebo.height else tags.with_columns(
            placebo_share_fwer_significant=None, placebo_top_p_value_fwer=None)
    return {"head_map": head_map, "top_heads": top_heads, "receivers": receivers, "tags": tags}
