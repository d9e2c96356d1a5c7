"""Chart builders: one small function per chart, from Polars frames to an Altair chart.

Builders aggregate nothing: every number they draw is a column of a frame that came out
of the SQL views and macros (reports.data). Data is embedded as explicit inline values
(``alt.InlineData``: JSON rows, or one CSV string for the large cell lists), never through
Altair's data transformers: the report is a set of self-contained files anyway, and a
300-sentence heatmap (45,150 stored cells) must not hit the default transformer's
5,000-row ``MaxRowsError``. Passing ``InlineData`` makes that choice per chart,
independent of any global ``alt.data_transformers`` setting.
"""

from __future__ import annotations

import math

import altair as alt
import polars as pl

TARGET_COLOR = "#ef4444"  # red, as the notebook's VA points and overlays
OTHER_COLOR = "#94a3b8"  # gray, the notebook's non-VA points
LINE_COLOR = "#0f172a"
HIGHLIGHT_OPACITY = 0.18  # the notebook's axhspan / axvspan alpha


def inline(frame: pl.DataFrame) -> alt.InlineData:
    """A frame as inline Vega-Lite values (no transformer, no row limit)."""
    return alt.InlineData(values=frame.to_dicts())


def inline_csv(frame: pl.DataFrame) -> alt.InlineData:
    """Numeric columns as one inline CSV string: compact, and cheap for Altair to copy and
    validate (a 300-sentence heatmap is 45,150 rows). Every column is parsed as a number."""
    return alt.InlineData(
        values=frame.write_csv(),
        format=alt.DataFormat(type="csv", parse={name: "number" for name in frame.columns}),
    )


def _color_max(color_max: float | None) -> float:
    """The top of the color scale: 1.0 when undefined or 0 (a degenerate [0, 0] domain)."""
    if color_max is None or not math.isfinite(color_max) or color_max <= 0:
        return 1.0
    return float(color_max)


def heatmap(
    cells: pl.DataFrame,
    sentences: pl.DataFrame,
    *,
    color_max: float | None = None,
    title: str = "",
    size: int = 460,
) -> alt.LayerChart:
    """Sentence attention heatmap with target sentences highlighted on rows and columns.

    ``cells``: the stored (lower-triangle) cells of one head, columns ``i`` (source
    sentence), ``j`` (target sentence), ``value``. ``sentences``: the analysed sentences,
    columns ``idx``, ``text``, ``is_target``. Unstored cells (j > i) are 0 and left blank;
    the color scale runs from 0 to ``color_max`` (the notebook's 99th percentile),
    clamped above. Rows run top to bottom as in ``imshow``. Tooltips show both sentences.
    """
    top = _color_max(color_max)
    lookup_rows = inline(sentences.select("idx", "text", "is_target"))
    x_scale = alt.Scale(zero=False, nice=False)
    y_scale = alt.Scale(zero=False, nice=False, reverse=True)
    x_axis = alt.Axis(title="target sentence j (attended to)", tickMinStep=1, format="d", grid=False)
    y_axis = alt.Axis(title="source sentence i (attending)", tickMinStep=1, format="d", grid=False)
    targets = inline(sentences.filter(pl.col("is_target")).select("idx"))

    # Full-length bands under the cells: visible where nothing is stored (j > i).
    column_bands = (
        alt.Chart(targets)
        .mark_rect(color=TARGET_COLOR, opacity=HIGHLIGHT_OPACITY)
        .transform_calculate(lo="datum.idx - 0.5", hi="datum.idx + 0.5")
        .encode(x=alt.X("lo:Q", scale=x_scale, axis=x_axis), x2="hi:Q")
    )
    row_bands = (
        alt.Chart(targets)
        .mark_rect(color=TARGET_COLOR, opacity=HIGHLIGHT_OPACITY)
        .transform_calculate(lo="datum.idx - 0.5", hi="datum.idx + 0.5")
        .encode(y=alt.Y("lo:Q", scale=y_scale, axis=y_axis), y2="hi:Q")
    )

    tooltip = [
        alt.Tooltip("i:Q", title="source i"),
        alt.Tooltip("source_text:N", title="source sentence"),
        alt.Tooltip("j:Q", title="target j"),
        alt.Tooltip("target_text:N", title="target sentence"),
        alt.Tooltip("value:Q", title="A[i, j]", format=".5f"),
    ]
    position = {
        "x": alt.X("x_lo:Q", scale=x_scale, axis=x_axis),
        "x2": "x_hi:Q",
        "y": alt.Y("y_lo:Q", scale=y_scale, axis=y_axis),
        "y2": "y_hi:Q",
    }
    base = alt.Chart().mark_rect().encode(tooltip=tooltip, **position)
    matrix = base.encode(
        color=alt.Color(
            "value:Q",
            title="A[i, j]",
            scale=alt.Scale(scheme="blues", domain=[0, top], clamp=True),
        )
    )
    # Overlays on the stored cells of target rows and columns, with the same tooltip.
    row_overlay = base.mark_rect(color=TARGET_COLOR, opacity=HIGHLIGHT_OPACITY).transform_filter(
        "datum.source_is_target"
    )
    column_overlay = base.mark_rect(color=TARGET_COLOR, opacity=HIGHLIGHT_OPACITY).transform_filter(
        "datum.target_is_target"
    )
    cell_layers = (
        alt.layer(matrix, row_overlay, column_overlay, data=inline_csv(cells.select("i", "j", "value")))
        .transform_lookup(
            lookup="i",
            from_=alt.LookupData(data=lookup_rows, key="idx", fields=["text", "is_target"]),
            as_=["source_text", "source_is_target"],
        )
        .transform_lookup(
            lookup="j",
            from_=alt.LookupData(data=lookup_rows, key="idx", fields=["text", "is_target"]),
            as_=["target_text", "target_is_target"],
        )
        .transform_calculate(
            x_lo="datum.j - 0.5", x_hi="datum.j + 0.5", y_lo="datum.i - 0.5", y_hi="datum.i + 0.5"
        )
    )
    return alt.layer(column_bands, row_bands, cell_layers).properties(
        title=title, width=size, height=size
    )


def vertical_scores_chart(
    scores: pl.DataFrame,
    *,
    title: str = "",
    target_label: str = "VA",
    width: int = 720,
) -> alt.LayerChart:
    """Vertical (receiver) score per analysed sentence: target points red, the others gray.

    ``scores``: columns ``idx`` (original sentence index), ``vertical_score`` (NULL where
    undefined, the last proximity_ignore columns), ``is_target``, ``text``.
    """
    other_label = f"non-{target_label}"
    first, last = scores["idx"].min(), scores["idx"].max()
    domain = [first, last] if first is not None else alt.Undefined
    data = inline(scores.select("idx", "vertical_score", "is_target", "text"))
    base = (
        alt.Chart(data)
        .transform_filter("isValid(datum.vertical_score)")
        .transform_calculate(kind=f"datum.is_target ? {_js_string(target_label)} : {_js_string(other_label)}")
        .encode(
            x=alt.X("idx:Q", title="sentence idx", scale=alt.Scale(domain=domain, nice=False),
                    axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("vertical_score:Q", title="vertical score", scale=alt.Scale(zero=False)),
        )
    )
    line = base.mark_line(color=LINE_COLOR, strokeWidth=1)
    points = base.mark_point(filled=True, opacity=0.95).encode(
        color=alt.Color(
            "kind:N",
            title=None,
            scale=alt.Scale(domain=[target_label, other_label], range=[TARGET_COLOR, OTHER_COLOR]),
            legend=alt.Legend(orient="top-right"),
        ),
        size=alt.condition("datum.is_target", alt.value(60), alt.value(28)),
        tooltip=[
            alt.Tooltip("idx:Q", title="sentence"),
            alt.Tooltip("kind:N", title="kind"),
            alt.Tooltip("text:N", title="text"),
            alt.Tooltip("vertical_score:Q", title="vertical score", format=".4f"),
        ],
    )
    return alt.layer(line, points).properties(title=title, width=width, height=170)


def ranking_bar(ranking: pl.DataFrame, *, width: int = 520) -> alt.Chart:
    """Rollout distinctiveness S (sum over layers of the best head's |ΔVA|), ranked.

    ``ranking``: rows of ``rollout_ranking`` (``rank``, ``rollout_id``,
    ``distinctiveness_score``, ``n_va``, ``n_sentences``, ``n_sentences_original``,
    ``n_va_original``).
    """
    columns = ["rank", "rollout_id", "distinctiveness_score", "n_sentences", "n_va",
               "n_sentences_original", "n_va_original"]
    return (
        alt.Chart(inline(ranking.select(columns)))
        .mark_bar(color="#2563eb")
        .encode(
            x=alt.X("distinctiveness_score:Q", title="distinctiveness S = Σ layers |ΔVA| of best head"),
            y=alt.Y("rollout_id:N", title=None, sort=alt.EncodingSortField("rank", order="ascending"),
                    axis=alt.Axis(labelLimit=320)),
            tooltip=[
                alt.Tooltip("rank:Q"),
                alt.Tooltip("rollout_id:N", title="rollout"),
                alt.Tooltip("distinctiveness_score:Q", title="S", format=".4f"),
                alt.Tooltip("n_va:Q", title="targets (analysed)"),
                alt.Tooltip("n_sentences:Q", title="sentences (analysed)"),
                alt.Tooltip("n_va_original:Q", title="targets (original)"),
                alt.Tooltip("n_sentences_original:Q", title="sentences (original)"),
            ],
        )
        .properties(title="Rollout ranking by distinctiveness", width=width,
                    height=alt.Step(18))
    )


def delta_by_layer(best_heads: pl.DataFrame) -> alt.Chart:
    """ΔVA of each rollout's best head per layer (diverging color, head number printed).

    ``best_heads``: rows of ``best_heads`` (``rollout_id``, ``layer``, ``head``,
    ``delta_va_vert``, ``lift_in_va``) plus ``rank`` for the row order.
    """
    data = inline(best_heads.select("rank", "rollout_id", "layer", "head", "delta_va_vert",
                                    "lift_in_va"))
    base = alt.Chart(data).encode(
        x=alt.X("layer:O", title="layer", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("rollout_id:N", title=None, sort=alt.EncodingSortField("rank", order="ascending"),
                axis=alt.Axis(labelLimit=320)),
        tooltip=[
            alt.Tooltip("rollout_id:N", title="rollout"),
            alt.Tooltip("layer:O"),
            alt.Tooltip("head:Q", title="best head"),
            alt.Tooltip("delta_va_vert:Q", title="ΔVA", format=".4f"),
            alt.Tooltip("lift_in_va:Q", title="lift_in_va", format=".3f"),
        ],
    )
    cells = base.mark_rect().encode(
        color=alt.Color("delta_va_vert:Q", title="ΔVA",
                        scale=alt.Scale(scheme="redblue", reverse=True, domainMid=0)),
    )
    labels = base.mark_text(fontSize=10).encode(text=alt.Text("head:Q", format="d"))
    return alt.layer(cells, labels).properties(
        title="Best head (number) and its ΔVA, per layer", width=alt.Step(44), height=alt.Step(18)
    )


def _js_string(text: str) -> str:
    """A JavaScript string literal for a Vega expression."""
    import json

    return json.dumps(text)
