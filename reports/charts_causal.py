"""Chart builders for the thought-anchors fields: dependencies and counterfactual importance.

One function per chart, Polars frame in, Altair chart out, data inline (as reports.charts).
The frames come from SQL views: sentence_graph (arcs), sentence_field_scores (scatter),
field_correlations (heads). The only computation here is geometry (the points of an arc).
"""

from __future__ import annotations

import math

import altair as alt
import polars as pl

from reports.charts import LINE_COLOR, OTHER_COLOR, TARGET_COLOR, inline

ARC_POINTS = 16  # points per arc: smooth at report sizes, 17 rows per edge
ARC_COLOR = "#2563eb"


def dependency_arcs(sentences: pl.DataFrame, *, title: str = "", width: int = 720) -> alt.LayerChart:
    """Dependency arcs over the sentence axis: an arc from each sentence to each it builds on.

    ``sentences``: rows of ``sentence_graph`` for one rollout (``idx``, ``text``,
    ``depends_on``, ``in_degree``, ``out_degree``). Arc height is half the distance, so
    long-range dependencies stand out; hovering a sentence's dot shows its text.
    """
    edges = [(row["idx"], target) for row in sentences.iter_rows(named=True)
             for target in row["depends_on"] or []]
    steps = [math.pi * s / ARC_POINTS for s in range(ARC_POINTS + 1)]
    arcs = pl.DataFrame(
        {
            "edge": [e for e, _ in enumerate(edges) for _ in steps],
            "step": [s for _ in edges for s in range(len(steps))],
            "x": [(a + b) / 2 + (a - b) / 2 * math.cos(t) for a, b in edges for t in steps],
            "y": [(a - b) / 2 * math.sin(t) for a, b in edges for t in steps],
            "source": [a for a, _ in edges for _ in steps],
            "target": [b for _, b in edges for _ in steps],
        },
        schema={"edge": pl.Int64, "step": pl.Int64, "x": pl.Float64, "y": pl.Float64,
                "source": pl.Int64, "target": pl.Int64},
    )
    first, last = sentences["idx"].min(), sentences["idx"].max()
    x_scale = alt.Scale(domain=[first, last] if first is not None else alt.Undefined, nice=False)
    lines = (
        alt.Chart(inline(arcs))
        .mark_line(color=ARC_COLOR, strokeWidth=1, opacity=0.6)
        .encode(
            x=alt.X("x:Q", title="sentence idx", scale=x_scale,
                    axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("y:Q", title=None, axis=None),
            detail="edge:N",
            order="step:Q",
            tooltip=[alt.Tooltip("source:Q", title="sentence"),
                     alt.Tooltip("target:Q", title="depends on")],
        )
    )
    dots = (
        alt.Chart(inline(sentences.select("idx", "text", "in_degree", "out_degree")))
        .mark_point(filled=True, color=LINE_COLOR)
        .encode(
            x=alt.X("idx:Q", scale=x_scale),
            y=alt.datum(0),
            size=alt.Size("in_degree:Q", title="depended on by",
                          scale=alt.Scale(range=[12, 160]),
                          legend=alt.Legend(orient="top-right", format="d", tickMinStep=1)),
            tooltip=[alt.Tooltip("idx:Q", title="sentence"), alt.Tooltip("text:N"),
                     alt.Tooltip("in_degree:Q", title="depended on by"),
                     alt.Tooltip("out_degree:Q", title="depends on")],
        )
    )
    return alt.layer(lines, dots).properties(
        title=title or f"Dependencies (depends_on): {len(edges)} edges", width=width, height=160)


def receiver_scatter(points: pl.DataFrame, *, target_tag: str | None = None, title: str = "",
                     width: int = 420) -> alt.Chart:
    """Receiver score against a sentence field, one dot per sentence; hover shows the sentence.

    ``points``: rows of ``sentence_field_scores`` for one rollout (``idx``, ``text``,
    ``tags``, ``field``, ``value``, ``receiver_score``). Sentences carrying ``target_tag``
    are red. Sentences without a receiver score (the last few) are left out.
    """
    field = points["field"][0] if points.height else "field"
    frame = points.filter(pl.col("receiver_score").is_not_null()).select(
        "idx", "text", "value", "receiver_score",
        pl.col("tags").list.join(", ").alias("tag_list"),
        (pl.col("tags").list.contains(target_tag or "") if points.height else pl.lit(False))
        .alias("is_target"),
    )
    return (
        alt.Chart(inline(frame))
        .mark_point(filled=True, opacity=0.8)
        .encode(
            x=alt.X("value:Q", title=field, scale=alt.Scale(zero=False)),
            y=alt.Y("receiver_score:Q", title="receiver score", scale=alt.Scale(zero=False)),
            color=alt.condition("datum.is_target", alt.value(TARGET_COLOR), alt.value(OTHER_COLOR)),
            tooltip=[alt.Tooltip("idx:Q", title="sentence"), alt.Tooltip("text:N"),
                     alt.Tooltip("tag_list:N", title="tags"),
                     alt.Tooltip("value:Q", title=field, format=".4f"),
                     alt.Tooltip("receiver_score:Q", title="receiver score", format=".4f")],
        )
        .properties(title=title or f"Receiver score vs {field}", width=width, height=300)
    )


def field_heads(correlations: pl.DataFrame, *, top: int = 15, title: str = "") -> alt.Chart:
    """The heads whose vertical scores correlate most (|Spearman ρ|, pooled) with a field.

    ``correlations``: pooled rows of ``field_correlations`` with ``score =
    'vertical_score'`` (``field``, ``layer``, ``head``, ``n_sentences``, ``spearman_rho``,
    ``p_value``); the ``top`` largest |ρ| are drawn, strongest first.
    """
    field = correlations["field"][0] if correlations.height else "field"
    frame = (
        correlations.filter(pl.col("spearman_rho").is_not_null())
        .with_columns(pl.format("L{} H{}", "layer", "head").alias("label"),
                      pl.col("spearman_rho").abs().alias("strength"))
        .sort(["strength", "layer", "head"], descending=[True, False, False])
        .head(top)
        .select("label", "layer", "head", "spearman_rho", "p_value", "n_sentences", "strength")
    )
    return (
        alt.Chart(inline(frame))
        .mark_bar()
        .encode(
            x=alt.X("spearman_rho:Q", title=f"Spearman ρ with {field} (pooled)",
                    scale=alt.Scale(domain=[-1, 1])),
            y=alt.Y("label:N", title=None, sort=alt.EncodingSortField("strength", order="descending")),
            color=alt.Color("spearman_rho:Q", title="ρ", legend=None,
                            scale=alt.Scale(scheme="redblue", reverse=True, domain=[-1, 1])),
            tooltip=[alt.Tooltip("layer:Q"), alt.Tooltip("head:Q"),
                     alt.Tooltip("spearman_rho:Q", title="ρ", format=".3f"),
                     alt.Tooltip("p_value:Q", title="permutation p", format=".4f"),
                     alt.Tooltip("n_sentences:Q", title="sentences")],
        )
        .properties(title=title or f"Heads whose attention tracks {field}", width=420,
                    height=alt.Step(16))
    )
