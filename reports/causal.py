"""The report's thought-anchors sections: dependency arcs and receiver score against a field
on each rollout page, the heads that track that field on the heads page.

`load_causal_data` runs the SQL (views sentence_graph, sentence_field_scores,
field_correlations), `rollout_sections` and `heads_charts` build specs with
reports.charts_causal, `heads_block` is the HTML of the heads page's section.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from reports import charts_causal
from reports.html import chart_div, esc
from sql.query import macro_call

TOP_HEADS = 15  # heads listed on the heads page


@dataclass
class CausalData:
    """The frames of the thought-anchors sections (empty when the rollouts carry no fields)."""

    field: str | None  # the numeric field shown: default, the first counterfactual importance one
    graph: pl.DataFrame  # sentence_graph rows
    points: pl.DataFrame  # sentence_field_scores rows of the model
    heads: pl.DataFrame  # pooled per-head field_correlations rows of the model


def load_causal_data(con: duckdb.DuckDBPyConnection, params, model: str, rollout_ids: list[str],
                     field: str | None = None) -> CausalData:
    """Run the queries; ``params`` is the report's ReportParams (metric settings, permutations).
    The graph and the points are those of the rollouts whose pages are built (rollout_ids);
    the heads' correlations pool every rollout of the model."""
    from reports.data import frame

    graph = frame(con, "select * from sentence_graph where list_contains(?::varchar[], rollout_id) "
                       "order by rollout_id, idx", [rollout_ids])
    chosen = con.execute("select any_value(fields.field) from numeric_fields(field := ?) as fields "
                         "semi join rollout_versions as versions on versions.rollout_id = fields.rollout_id "
                         "and versions.model = ?", [field, model]).fetchall()[0][0]
    points, heads = pl.DataFrame(schema={"rollout_id": pl.String}), pl.DataFrame()
    if chosen is not None:  # without fields, no receiver scores to compute
        call, values = macro_call("sentence_field_scores", {"field": chosen, "only_rollouts": rollout_ids})
        points = frame(con, f"select * from {call} where model = ?", [*values, model])
        args = {key: value for key, value in params.stats_args().items() if key != "tag"}
        call, values = macro_call("field_correlations", {"field": chosen, **args})
        heads = frame(con, f"select * from {call} where model = ? and rollout_id is null "
                      "and score = 'vertical_score'", [*values, model])
    return CausalData(chosen, graph, points, heads)


def rollout_sections(causal: CausalData | None, rollout_id: str, tag: str) -> list:
    """[(title, note, {chart name: {"spec", "renderer"}})] for one rollout page (the sections
    of reports.pages.rollout_page); [] without fields."""
    if causal is None:
        return []
    graph = causal.graph.filter(pl.col("rollout_id") == rollout_id)
    specs = {}
    if graph.height and graph["out_degree"].sum():
        specs["dependencies"] = {"spec": charts_causal.dependency_arcs(graph).to_dict(validate=False),
                                 "renderer": "svg"}
    points = causal.points.filter(pl.col("rollout_id") == rollout_id)
    if points.height:
        specs["receiver_vs_field"] = {
            "spec": charts_causal.receiver_scatter(points, target_tag=tag).to_dict(validate=False),
            "renderer": "svg"}
    if not specs:
        return []
    what = f" and receiver score vs {causal.field}" if points.height else ""
    return [(f"Sentence dependencies{what} (chunks_labeled.json)", "", specs)]


def heads_charts(causal: CausalData | None) -> dict[str, dict]:
    """{chart name: spec} for the heads page."""
    if causal is None or not causal.heads.height:
        return {}
    return {"field_heads": charts_causal.field_heads(causal.heads, top=TOP_HEADS)
            .to_dict(validate=False)}


def heads_block(causal: CausalData | None, specs: dict) -> str:
    """The heads page's section (HTML); empty when no rollout carries a numeric field."""
    if causal is None or "field_heads" not in specs:
        return ""
    return f"""
<h2>Heads whose attention tracks {esc(causal.field)}</h2>
<p class="muted">Spearman correlation, over every rollout's sentences (pooled), between each
head's vertical scores and the sentence field <code>{esc(causal.field)}</code> (a black-box
measurement from chunks_labeled.json); the p-value shuffles the field within each rollout.
One p-value per head, uncorrected: with many heads, some look strong by chance
(docs/STATISTICS.md §13).</p>
{chart_div("field_heads")}
"""
