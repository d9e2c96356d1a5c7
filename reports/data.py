"""The report's queries: Polars frames from the SQL views and macros, in one snapshot.

Every number in the report comes from here, and every number here comes from SQL
(sql/20_metrics, sql/30_ranking, sql/40_stats): the report reads views and macros only,
never a storage table (sql/10_base holds the views it needs: rollout_versions, model_grids,
sentence_texts, tag_counts). All queries run on one read-only connection, so
the report shows one consistent state of the warehouse; the frames are then held in
memory and the connection is closed before any chart is rendered.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from reports.kept_stats import KeptStatistics, placebo_tag
from sql.defaults import DEFAULTS, macro_defaults
from sql.placeholders import sql_literal
from sql.query import macro_call

DEFAULT_TAG = DEFAULTS["tag"]
ALPHA = DEFAULTS["alpha"]  # significance level marked on the statistics page (docs/STATISTICS.md)
RECEIVER_K = DEFAULTS["k"]  # receiver heads shown (receiver_heads' and receiver_head_delta_va's k)
TOP_CONSISTENT = 10  # rows of the "most consistent heads" table
ALL_HEADS = 2147483647  # k of receiver_heads that ranks every head
RECEIVERS_PER_ROLLOUT = 3  # tag-free views on each rollout page: its top receiver heads
# The paper's receiver-head setting (METRICS.md §8): receiver_head_kurtosis' own defaults.
RECEIVER_SETTING = {k: macro_defaults("receiver_head_kurtosis")[k]
                    for k in ("proximity_ignore", "control_depth", "score_type", "trim")}


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
    """Everything the report shows, as frames (one row layout per SQL object).

    The detail frames (``cells`` to ``receiver_vertical``) hold only the rollouts whose
    pages are being built (``detail_ids``); the others' pages are kept from the last build.
    """

    params: ReportParams
    model: str
    model_info: dict  # the model_grids row
    layers: list[int]  # the layers scored (explicit, or the representative ones)
    ranking: pl.DataFrame  # rollout_ranking rows of the chosen rollouts, their versions, p-values
    best: pl.DataFrame  # best_heads rows of the chosen rollouts, plus rank
    tag_counts: pl.DataFrame  # tag_counts rows of the model: tag, n_sentences, n_rollouts
    detail_ids: list[str] = field(default_factory=list)  # rollouts whose pages are built
    cells: pl.DataFrame = field(default_factory=pl.DataFrame)  # analysed cells of every best head
    color_max: pl.DataFrame = field(default_factory=pl.DataFrame)  # rollout_id, layer, head, color_max
    vertical: pl.DataFrame = field(default_factory=pl.DataFrame)  # vertical_scores of every best head
    sentences: pl.DataFrame = field(default_factory=pl.DataFrame)  # rollout_id, idx, r, text, tags, ...
    # tag-free views (METRICS.md §8, the paper's setting): each rollout's top receiver heads
    receivers_by_rollout: pl.DataFrame = field(default_factory=pl.DataFrame)  # rollout_id, rank, ...
    receiver_cells: pl.DataFrame = field(default_factory=pl.DataFrame)
    receiver_color_max: pl.DataFrame = field(default_factory=pl.DataFrame)
    receiver_vertical: pl.DataFrame = field(default_factory=pl.DataFrame)
    ingest: dict = field(default_factory=dict)  # when the data was ingested
    # sql/40_stats, over every rollout of the model (the --rollouts filter does not apply):
    head_map: pl.DataFrame = field(default_factory=pl.DataFrame)  # head_consistency, every layer
    top_heads: pl.DataFrame = field(default_factory=pl.DataFrame)  # its most consistent heads
    receivers: pl.DataFrame = field(default_factory=pl.DataFrame)  # every head's mean kurtosis
    receiver_table: pl.DataFrame = field(default_factory=pl.DataFrame)  # receiver_head_delta_va rows
    tags: pl.DataFrame = field(default_factory=pl.DataFrame)  # tag_summary of every tag
    causal: object = None  # reports.causal.CausalData: the thought-anchors sections

    def rollout_ids(self) -> list[str]:
        return self.ranking["rollout_id"].to_list()

    @property
    def tag_present(self) -> bool:
        """Whether any sentence of the model's rollouts carries the report's tag."""
        return self.params.tag in self.tag_counts["tag"].to_list()


def frame(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> pl.DataFrame:
    """One query's rows as a Polars frame."""
    try:
        return con.sql(query, params=params or None).pl()
    except duckdb.Error as exc:
        raise ReportError(f"report query failed: {exc}") from None


VERSION_COLUMNS = ["content_hash", "loaded_at", "fingerprint", "ingested_at"]
PVALUE_COLUMNS = ["p_value_score", "p_value_fwer_by_layer", "permutations"]  # kept per rollout


def warehouse_digest(con: duckdb.DuckDBPyConnection) -> str:
    """Changes whenever anything the report reads changes: rollouts, attention, models.

    Each rollout's content_hash covers its sentences and tags; each attention run has a
    fingerprint and the time it was written; the model grids give the layer counts.
    """
    parts = [
        frame(con, "select model, rollout_id, content_hash, loaded_at::varchar as loaded_at, "
                   "fingerprint, ingested_at::varchar as ingested_at "
                   "from rollout_versions order by model, rollout_id"),
        frame(con, "select model, n_layers, n_heads, source, revision from model_grids order by model"),
    ]
    blob = json.dumps([p.rows() for p in parts], default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def choose_model(con: duckdb.DuckDBPyConnection, model: str | None) -> str:
    """The model to report on: the one asked for, or the only one with attention."""
    models = frame(con, "select distinct model from rollout_versions order by model")["model"].to_list()
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


def load_report_data(
    con: duckdb.DuckDBPyConnection, params: ReportParams,
    choose_details: Callable[[pl.DataFrame], tuple[list[str], dict[str, dict]]] | None = None,
    kept_stats: KeptStatistics | None = None,
) -> ReportData:
    """Run every report query on one connection and return the frames.

    ``choose_details`` gets the ranking (with each rollout's version columns) and returns
    the rollouts whose pages are built, so detail frames and p-values are loaded for those
    only, and the kept ``PVALUE_COLUMNS`` of every other rollout; ``None``: build all.
    ``kept_stats``: where the per-rollout statistics are kept between builds (reports.kept_stats);
    ``None``: a temporary directory, dropped on return.
    """
    if kept_stats is None:
        with tempfile.TemporaryDirectory() as scratch:
            return load_report_data(con, params, choose_details, KeptStatistics(Path(scratch), ""))
    model = choose_model(con, params.model)
    args = params.metric_args()
    info = frame(con, "select * from model_grids where model = ?", [model]).to_dicts()
    model_info = info[0] if info else {"model": model}
    if params.layers is not None:
        layers = sorted(set(params.layers))
    else:
        rep = frame(con, "select layers from representative_layers where model = ?", [model])
        layers = list(rep["layers"][0]) if rep.height else []
    tag_counts = frame(con, "select tag, n_sentences, n_rollouts from tag_counts where model = ? "
                            "order by tag", [model])

    # rollout_ranking of the chosen rollouts, with each one's version (rollout_versions).
    call, values = macro_call("rollout_ranking", args)
    # va_rate_original: the notebook's summary.csv rate, over the counts before trim.
    ranking_query = (
        "select ranking.*, ranking.n_va_original / greatest(1, ranking.n_sentences_original)::double "
        "as va_rate_original, " + ", ".join(f"versions.{c}" for c in VERSION_COLUMNS) +
        f" from {call} as ranking inner join rollout_versions as versions "
        "on versions.model = ranking.model and versions.rollout_id = ranking.rollout_id "
        "where ranking.model = ?"
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

    # The rollouts whose pages are built, as temporary tables the detail queries join with
    # (a read-only connection may create temporary objects).
    detail_ids, kept = choose_details(ranking) if choose_details else (ranking["rollout_id"].to_list(), {})
    _temp_table(con, "report_rollouts", ranking.select("rollout_id", "rank"))
    _temp_table(con, "report_detail", pl.DataFrame({"rollout_id": detail_ids},
                                                   schema={"rollout_id": pl.String}))
    # Permutation p-values (rollout_ranking_pvalues) of those rollouts; the others' are kept
    # from the previous build (they depend on the rollout and the parameters only).
    pvalues = _rollout_pvalues(con, params, model, detail_ids)
    if kept:
        pvalues = pl.concat([pvalues, pl.DataFrame([{"rollout_id": rid, **row} for rid, row in kept.items()],
                                                   schema=pvalues.schema)])
    ranking = ranking.join(pvalues, on="rollout_id", how="left", maintain_order="left")

    call, values = macro_call("best_heads", args)
    con.execute(
        f"create or replace temp table report_best as select best.*, chosen.rank from {call} as best "
        "inner join report_rollouts as chosen on chosen.rollout_id = best.rollout_id "
        "where best.model = ?",
        values + [model],
    )
    best = frame(con, "select * from report_best order by rank, layer")
    con.execute("create or replace temp table report_best_detail as select best.* from report_best "
                "as best semi join report_detail using (rollout_id) where best.head is not null")
    details = _head_details(con, "report_best_detail", args)

    # Tag-free: each rollout's receiver heads (the paper's setting, receiver_head_kurtosis'
    # defaults), its top RECEIVERS_PER_ROLLOUT by kurtosis.
    con.execute(
        "create or replace temp table report_receivers as "
        "select kurt.model, kurt.rollout_id, kurt.layer, kurt.head, kurt.kurtosis, kurt.n_scores, "
        "row_number() over (partition by kurt.rollout_id "
        "order by kurt.kurtosis desc, kurt.layer, kurt.head) as rank "
        "from receiver_head_kurtosis(only_rollouts := ?) as kurt "
        "where kurt.model = ? and kurt.kurtosis is not null qualify rank <= ?",
        [detail_ids, model, RECEIVERS_PER_ROLLOUT],
    )
    receivers_by_rollout = frame(con, "select * exclude (model) from report_receivers "
                                      "order by rollout_id, rank")
    receiver_layers = sorted(set(receivers_by_rollout["layer"].to_list()))
    receiver_details = _head_details(con, "report_receivers", RECEIVER_SETTING | {
        "tag": args["tag"], "layers": receiver_layers})

    call, values = macro_call("analysed_sentences", {"tag": args["tag"], "trim": args["trim"]})
    sentences = frame(
        con,
        f"""
        select
            texts.rollout_id,
            texts.idx,
            analysed.r,
            texts.text,
            texts.tags,
            list_contains(texts.tags, ?) as is_target,
            analysed.r is not null as analysed
        from sentence_texts as texts
        semi join report_detail using (rollout_id)
        left join {call} as analysed
            on analysed.rollout_id = texts.rollout_id and analysed.idx = texts.idx
        order by texts.rollout_id, texts.idx
        """,
        [args["tag"], *values],
    )

    ingest = frame(
        con,
        """
        select
            count(*) as attention_runs,
            min(versions.ingested_at) as first_ingested_at,
            max(versions.ingested_at) as last_ingested_at,
            max(versions.loaded_at) as last_loaded_at
        from rollout_versions as versions
        semi join report_rollouts using (rollout_id)
        where versions.model = ?
        """,
        [model],
    ).to_dicts()[0]

    for table in ("report_best_detail", "report_best", "report_receivers", "report_detail",
                  "report_rollouts"):
        con.execute(f"drop table if exists {table}")
    return ReportData(
        params=params, model=model, model_info=model_info, layers=layers, ranking=ranking,
        best=best, tag_counts=tag_counts, detail_ids=detail_ids, sentences=sentences,
        cells=details["cells"], color_max=details["color_max"], vertical=details["vertical"],
        receivers_by_rollout=receivers_by_rollout, receiver_cells=receiver_details["cells"],
        receiver_color_max=receiver_details["color_max"], receiver_vertical=receiver_details["vertical"],
        ingest=ingest, **load_head_statistics(con, params, model, layers, kept_stats),
    )


def _rollout_pvalues(con: duckdb.DuckDBPyConnection, params: ReportParams, model: str,
                     rollout_ids: list[str]) -> pl.DataFrame:
    """The ``PVALUE_COLUMNS`` of these rollouts (rollout_ranking_pvalues): one call scoped to
    them (only_rollouts), so rollouts whose pages are kept cost nothing."""
    columns = "p.rollout_id, " + ", ".join(f"p.{c}" for c in PVALUE_COLUMNS)
    call, values = macro_call("rollout_ranking_pvalues",
                              {**params.stats_args(), "only_rollouts": rollout_ids})
    return frame(con, f"select {columns} from {call} as p where p.model = ?", [*values, model])


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, rows: pl.DataFrame) -> None:
    con.register(f"{name}_frame", rows.to_arrow())
    con.execute(f"create or replace temp table {name} as select * from {name}_frame")
    con.unregister(f"{name}_frame")


def _head_details(con: duckdb.DuckDBPyConnection, heads: str, args: dict) -> dict[str, pl.DataFrame]:
    """Cells, color maximum and vertical scores of the heads in temporary table ``heads``
    (rollout_id, layer, head), computed with the metric arguments ``args``."""
    join = ("semi join {heads} as chosen on chosen.rollout_id = {t}.rollout_id "
            "and chosen.layer = {t}.layer and chosen.head = {t}.head")
    call, values = macro_call("analysed_cells", {k: args[k] for k in ("tag", "trim", "layers")})
    con.execute(
        "create or replace temp table report_cells as "
        "select cells.rollout_id, cells.layer, cells.head, cells.i, cells.j, cells.r, cells.c, "
        f"cells.value from {call} as cells {join.format(heads=heads, t='cells')}",
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
            select heads.rollout_id, heads.layer, heads.head, 0.0::double as value
            from {heads} as heads
            inner join sizes on sizes.rollout_id = heads.rollout_id
            cross join range(sizes.n_sentences * (sizes.n_sentences - 1) // 2)
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
    con.execute("drop table if exists report_cells")

    call, values = macro_call("vertical_scores", args)
    vertical = frame(
        con,
        "select scores.rollout_id, scores.layer, scores.head, scores.c, scores.idx, "
        f"scores.is_target, scores.vertical_score from {call} as scores "
        f"{join.format(heads=heads, t='scores')} "
        "order by scores.rollout_id, scores.layer, scores.head, scores.c",
        values,
    )
    return {"cells": cells, "color_max": color_max, "vertical": vertical}


def load_head_statistics(con: duckdb.DuckDBPyConnection, params: ReportParams, model: str,
                         layers: list[int], kept_stats: KeptStatistics) -> dict:
    """The statistics page's frames: every head's mean ΔVA, receiver heads, tags.

    Every rollout's permutation draws and best-head selections are kept per rollout, and
    what the combination reads of them per bucket of rollouts (reports.kept_stats: computed
    only for rollouts and buckets not seen with these parameters), and combined here by the
    SQL combination macros: ``head_consistency_of`` over the report tag's observed draws and
    partial sums in every stored layer gives each head's row for the layer x head map, the
    most consistent heads and, through ``receiver_head_delta_va_of`` over the rows of
    ``receiver_heads_of`` (the kept kurtoses, ranked as ``receiver_heads`` ranks them) with
    ``k`` = every ranked head (one call, kept in a temporary table),
    the receiver table (its first ``RECEIVER_K`` ranks, exactly
    ``receiver_head_delta_va(k := RECEIVER_K)``). A head whose kurtosis is undefined in
    every rollout (constant vertical scores) is not ranked, so it is not on the map either.
    The receiver map reads the same ranked rows (no permutations), so it is
    drawn even when no head has a ΔVA (a tag on no sentence). ``tag_summary_of`` compares every tag on the
    report's layers, and the report tag's placebo beside it.
    """
    kept_stats.prepare(con, params.stats_args(), model, layers)
    tag, placebo = sql_literal(params.tag), sql_literal(placebo_tag(params.tag))
    on_layers = f"list_contains([{', '.join(str(int(x)) for x in layers)}]::integer[], layer)"
    subsets = {  # the kept rows each combination reads
        "map": f"tag = {tag}",
        "tag": f"tag <> {placebo} and {on_layers}",
        "placebo": f"tag = {placebo}",
    }
    for name, condition in subsets.items():
        for kind in ("observed", "partials"):
            con.execute(f"create or replace temp view report_{name}_{kind} as "
                        f"select * from report_{kind} where {condition}")
    con.execute("create or replace temp view report_tag_selections as "
                f"select * from report_selections where tag <> {placebo}")
    con.execute("create or replace temp view report_placebo_selections as "
                f"select * from report_selections where tag = {placebo}")
    null = {"permutations": params.permutations, "seed": params.seed}
    for name in subsets:
        call, values = macro_call("head_consistency_of", {"draws": f"report_{name}_observed",
                                                          "partials": f"report_{name}_partials", **null})
        con.execute(f"create or replace temp table report_{name}_consistency as select * from {call}", values)

    # every ranked head once: the receiver table's rows and the receiver map's
    con.execute("create or replace temp table report_ranked_heads as select * from "
                "receiver_heads_of(kurtosis := 'report_kurtosis', k := ?) where model = ?",
                [ALL_HEADS, model])
    call, values = macro_call("receiver_head_delta_va_of", {"consistency": "report_map_consistency",
                                                            "receivers": "report_ranked_heads"})
    con.execute(
        "create or replace temp table report_head_consistency as "
        "select heads.* exclude (model, tag), "
        "coalesce(heads.p_value <= ?, false) as significant, "
        "coalesce(heads.p_value_fwer <= ?, false) as significant_fwer "
        f"from {call} as heads where heads.model = ?",
        [ALPHA, ALPHA, *values, model],
    )
    head_map = frame(con, "select layer, head, n_rollouts, mean_delta_va_vert, sd_delta_va_vert, "
                          "t_statistic, share_same_sign, permutations, p_value, p_value_fwer, "
                          "significant, significant_fwer from report_head_consistency order by layer, head")
    top_heads = frame(
        con,
        "select * from report_head_consistency where p_value_fwer is not null "
        "order by p_value_fwer, abs(t_statistic) desc nulls last, layer, head limit ?",
        [TOP_CONSISTENT],
    )
    receiver_table = frame(con, "select * exclude (significant, significant_fwer) "
                                "from report_head_consistency where rank <= ? order by rank", [RECEIVER_K])
    receivers = frame(
        con,
        "select ranked.rank, ranked.layer, ranked.head, ranked.mean_kurtosis, "
        "ranked.n_rollouts as n_rollouts_kurtosis, ranked.rank <= ? as is_receiver, "
        "heads.mean_delta_va_vert, heads.t_statistic, heads.p_value_fwer "
        "from report_ranked_heads as ranked "
        "left join report_head_consistency as heads on heads.rank = ranked.rank and ranked.rank <= ? "
        "order by ranked.rank",
        [RECEIVER_K, RECEIVER_K],
    )

    # Every tag on the report's layers (representative by default: every layer would
    # repeat the label permutations for every tag and every head), and the report tag's
    # placebo (docs/STATISTICS.md §10): as many sentences at matched positions and
    # lengths; its numbers sit beside the real tag's as placebo_* columns.
    summaries = {}
    for name in ("tag", "placebo"):
        call, values = macro_call("tag_summary_of", {
            "selections": f"report_{name}_selections", "consistency": f"report_{name}_consistency",
            "permutations": params.permutations, "alpha": ALPHA})
        summaries[name] = (call, values)
    call, values = summaries["tag"]
    tags = frame(
        con,
        f"select summary.* exclude (model), summary.tag = ? as is_report_tag from {call} as summary "
        "where summary.model = ? order by summary.tag",
        [params.tag, *values, model],
    )
    call, values = summaries["placebo"]
    placebo_rows = frame(
        con,
        "select ? as tag, summary.share_fwer_significant as placebo_share_fwer_significant, "
        f"summary.top_p_value_fwer as placebo_top_p_value_fwer from {call} as summary "
        "where summary.model = ?",
        [params.tag, *values, model],
    )
    for name in ("head", "map", "tag", "placebo"):
        con.execute(f"drop table if exists report_{name}_consistency")
    con.execute("drop table if exists report_ranked_heads")
    for name in [f"{subset}_{kind}" for subset in subsets for kind in ("observed", "partials")] + [
            "tag_selections", "placebo_selections"]:
        con.execute(f"drop view if exists report_{name}")
    if tags.height:
        tags = tags.join(placebo_rows, on="tag", how="left") if placebo_rows.height else tags.with_columns(
            placebo_share_fwer_significant=None, placebo_top_p_value_fwer=None)
    return {"head_map": head_map, "top_heads": top_heads, "receivers": receivers,
            "receiver_table": receiver_table, "tags": tags}
