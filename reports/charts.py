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
    texts: str | None = None,
) -> alt.LayerChart:
    """Vertical (receiver) score per analysed sentence: target points red, the others gray.

    ``scores``: columns ``idx`` (original sentence index), ``vertical_score`` (NULL where
    undefined, the last proximity_ignore columns), ``is_target``, and ``text`` unless
    ``texts`` names a dataset of the page (rows ``idx``, ``text``) shared by its charts,
    from which the text is looked up (a page's sentences are then written once).
    """
    other_label = f"non-{target_label}"
    first, last = scores["idx"].min(), scores["idx"].max()
    domain = [first, last] if first is not None else alt.Undefined
    if texts:  # numbers only: one compact CSV string (is_target as 0/1), the text looked up
        numbers = scores.select("idx", "vertical_score", pl.col("is_target").cast(pl.Int8))
        chart = alt.Chart(inline_csv(numbers)).transform_lookup(
            lookup="idx", from_=alt.LookupData(data=alt.NamedData(name=texts), key="idx", fields=["text"]))
    else:
        chart = alt.Chart(inline(scores.select("idx", "vertical_score", "is_target", "text")))
    base = (
        chart
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
    ``n_va_original``), and ``p_value_score`` when present (``rollout_ranking_pvalues``).
    """
    columns = ["rank", "rollout_id", "distinctiveness_score", "n_sentences", "n_va",
               "n_sentences_original", "n_va_original"]
    with_p = "p_value_score" in ranking.columns
    p_tooltip = [alt.Tooltip("p_value_score:Q", title="p-value of S", format=".4f")] if with_p else []
    return (
        alt.Chart(inline(ranking.select(columns + ["p_value_score"] * with_p)))
        .mark_bar(color="#2563eb")
        .encode(
            x=alt.X("distinctiveness_score:Q", title="distinctiveness S = Σ layers |ΔVA| of best head"),
            y=alt.Y("rollout_id:N", title=None, sort=alt.EncodingSortField("rank", order="ascending"),
                    axis=alt.Axis(labelLimit=320)),
            tooltip=[
                alt.Tooltip("rank:Q"),
                alt.Tooltip("rollout_id:N", title="rollout"),
                alt.Tooltip("distinctiveness_score:Q", title="S", format=".4f"),
                *p_tooltip,
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
    cells = _diverging_cells(base, "delta_va_vert:Q", "ΔVA")
    labels = base.mark_text(fontSize=10).encode(text=alt.Text("head:Q", format="d"))
    return alt.layer(cells, labels).properties(
        title="Best head (number) and its ΔVA, per layer", width=alt.Step(44), height=alt.Step(18)
    )


def _diverging_cells(base: alt.Chart, field: str, title: str) -> alt.Chart:
    """Rectangles colored red (positive) to blue (negative), white at 0: ΔVA's sign."""
    return base.mark_rect().encode(
        color=alt.Color(field, title=title, scale=alt.Scale(scheme="redblue", reverse=True, domainMid=0)),
    )


def _js_string(text: str) -> str:
    """A JavaScript string literal for a Vega expression."""
    import json

    return json.dumps(text)


# --- statistics page (sql/40_stats) ----------------------------------------------------

SIGNIFICANT_STROKE = "#0f172a"
FWER_COLOR = "#2563eb"
UNCORRECTED_COLOR = "#f59e0b"


# Tooltips of a head on the layer x head maps, and its consistency across rollouts.
_HEAD_KEYS = [alt.Tooltip("layer:O"), alt.Tooltip("head:O")]
_CONSISTENCY = [
    alt.Tooltip("mean_delta_va_vert:Q", title="mean ΔVA", format=".4f"),
    alt.Tooltip("t_statistic:Q", title="t", format=".2f"),
    alt.Tooltip("p_value_fwer:Q", title="p (family-wise)", format=".4f"),
]


def _head_axes() -> dict:
    """Head across, layer down (layer 0 at the top, as a table of layers)."""
    return {
        "x": alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)),
        "y": alt.Y("layer:O", title="layer", sort="ascending"),
    }


def head_consistency_map(heads: pl.DataFrame, *, alpha: float = 0.05, title: str = "") -> alt.LayerChart:
    """Layer x head map of the mean ΔVA across rollouts (diverging color, 0 in the middle).

    ``heads``: rows of ``head_consistency`` (``layer``, ``head``, ``n_rollouts``,
    ``mean_delta_va_vert``, ``t_statistic``, ``share_same_sign``, ``p_value``,
    ``p_value_fwer``) plus the booleans ``significant`` (p_value <= alpha) and
    ``significant_fwer`` (p_value_fwer <= alpha), decided in SQL. A family-wise significant
    head is outlined; an uncorrected-only one gets a small dot.
    """
    columns = ["layer", "head", "n_rollouts", "mean_delta_va_vert", "t_statistic", "share_same_sign",
               "p_value", "p_value_fwer", "significant", "significant_fwer"]
    base = alt.Chart(inline(heads.select(columns))).encode(
        **_head_axes(),
        tooltip=[
            *_HEAD_KEYS,
            *_CONSISTENCY,
            alt.Tooltip("share_same_sign:Q", title="share same sign", format=".2f"),
            alt.Tooltip("n_rollouts:Q", title="rollouts"),
            alt.Tooltip("p_value:Q", title="p (uncorrected)", format=".4f"),
        ],
    )
    cells = _diverging_cells(base, "mean_delta_va_vert:Q", "mean ΔVA")
    outlined = base.mark_rect(fill=None, stroke=SIGNIFICANT_STROKE, strokeWidth=2.5).transform_filter(
        "datum.significant_fwer")
    dots = base.mark_point(shape="circle", filled=True, size=16, color=SIGNIFICANT_STROKE).transform_filter(
        "datum.significant && !datum.significant_fwer")
    return alt.layer(cells, outlined, dots).properties(
        title=alt.TitleParams(
            title or "Mean ΔVA across rollouts, every layer and head",
            subtitle=f"outlined: family-wise p ≤ {alpha:g}; dot: uncorrected p ≤ {alpha:g} only",
        ),
        width=alt.Step(26), height=alt.Step(18),
    )


def receiver_map(receivers: pl.DataFrame, *, k: int = 20, alpha: float = 0.05) -> alt.LayerChart:
    """Layer x head map of the mean receiver-head kurtosis; the top-k receiver heads outlined
    with their rank printed.

    ``receivers``: rows of ``receiver_heads`` for every ranked head (``rank``, ``layer``,
    ``head``, ``mean_kurtosis``, ``n_rollouts_kurtosis``), ``is_receiver`` (rank <= k) and,
    for the receiver heads, their ``head_consistency`` columns (``mean_delta_va_vert``,
    ``t_statistic``, ``p_value_fwer``; NULL for the other heads).
    """
    columns = ["rank", "layer", "head", "mean_kurtosis", "n_rollouts_kurtosis", "is_receiver",
               "mean_delta_va_vert", "t_statistic", "p_value_fwer"]
    base = alt.Chart(inline(receivers.select(columns))).encode(
        **_head_axes(),
        tooltip=[
            *_HEAD_KEYS,
            alt.Tooltip("rank:Q", title="kurtosis rank"),
            alt.Tooltip("mean_kurtosis:Q", title="mean kurtosis", format=".3f"),
            alt.Tooltip("n_rollouts_kurtosis:Q", title="rollouts (kurtosis)"),
            *_CONSISTENCY,
        ],
    )
    cells = base.mark_rect().encode(
        color=alt.Color("mean_kurtosis:Q", title="mean kurtosis", scale=alt.Scale(scheme="oranges")),
    )
    outlined = base.mark_rect(fill=None, stroke=SIGNIFICANT_STROKE, strokeWidth=2).transform_filter(
        "datum.is_receiver")
    ranks = base.mark_text(fontSize=9, color=SIGNIFICANT_STROKE).encode(
        text=alt.Text("rank:Q", format="d")).transform_filter("datum.is_receiver")
    return alt.layer(cells, outlined, ranks).properties(
        title=alt.TitleParams(
            "Receiver heads: mean kurtosis of the vertical scores",
            subtitle=f"outlined with its rank: the top {k} receiver heads",
        ),
        width=alt.Step(26), height=alt.Step(18),
    )


def tag_comparison(tags: pl.DataFrame, *, alpha: float = 0.05) -> alt.HConcatChart:
    """Per tag: shares of the notebook's selections significant (uncorrected vs family-wise,
    with alpha marked: the share expected by chance), the mean |ΔVA| of the selected heads,
    and the number of heads consistent across rollouts (family-wise p <= alpha).

    ``tags``: rows of ``tag_summary`` (``tag``, ``share_uncorrected_significant``,
    ``share_fwer_significant``, ``mean_best_abs_delta_va``, ``n_heads_fwer_significant``,
    ``n_rollouts``, ``mean_n_target``, ``top_layer``, ``top_head``, ``top_t_statistic``,
    ``top_p_value_fwer``) plus ``is_report_tag`` (the tag the rest of the report uses).
    """
    columns = ["tag", "is_report_tag", "n_rollouts", "mean_n_target", "n_selections",
               "mean_best_abs_delta_va", "share_uncorrected_significant", "share_fwer_significant",
               "n_heads_fwer_significant", "top_layer", "top_head", "top_t_statistic", "top_p_value_fwer"]
    data = inline(tags.select(columns))
    y = alt.Y("tag:N", title=None, sort="ascending", axis=alt.Axis(labelLimit=260))
    y_shared = alt.Y("tag:N", title=None, sort="ascending", axis=None)  # the panels to the right
    tooltip = [
        alt.Tooltip("tag:N"),
        alt.Tooltip("n_rollouts:Q", title="rollouts"),
        alt.Tooltip("mean_n_target:Q", title="mean targets", format=".2f"),
        alt.Tooltip("n_selections:Q", title="selections (rollout, layer)"),
        alt.Tooltip("share_uncorrected_significant:Q", title="share p ≤ α (uncorrected)", format=".2f"),
        alt.Tooltip("share_fwer_significant:Q", title="share p ≤ α (family-wise)", format=".2f"),
        alt.Tooltip("mean_best_abs_delta_va:Q", title="mean best |ΔVA|", format=".4f"),
        alt.Tooltip("n_heads_fwer_significant:Q", title="consistent heads"),
        alt.Tooltip("top_layer:Q", title="top head: layer"),
        alt.Tooltip("top_head:Q", title="top head: head"),
        alt.Tooltip("top_t_statistic:Q", title="top head: t", format=".2f"),
        alt.Tooltip("top_p_value_fwer:Q", title="top head: p (family-wise)", format=".4f"),
    ]
    measure_names = {"share_uncorrected_significant": "uncorrected p ≤ α",
                     "share_fwer_significant": "family-wise p ≤ α"}
    shares = (
        alt.Chart(data)
        .transform_fold(list(measure_names), as_=["measure", "share"])
        .transform_calculate(kind=" : ".join([
            *(f"datum.measure === {_js_string(k)} ? {_js_string(v)}" for k, v in measure_names.items()),
            "''"]))
        .mark_point(filled=True, size=70, opacity=0.9)
        .encode(
            x=alt.X("share:Q", title="share of selected heads (rollout, layer)",
                    scale=alt.Scale(domain=[0, 1])),
            y=y,
            color=alt.Color("kind:N", title=None,
                            scale=alt.Scale(domain=list(measure_names.values()),
                                            range=[UNCORRECTED_COLOR, FWER_COLOR]),
                            legend=alt.Legend(orient="bottom")),
            tooltip=tooltip,
        )
    )
    chance = alt.Chart(inline(pl.DataFrame({"alpha": [alpha]}))).mark_rule(
        color=OTHER_COLOR, strokeDash=[4, 3]).encode(x="alpha:Q")
    emphasis = alt.condition("datum.is_report_tag", alt.value(LINE_COLOR), alt.value(OTHER_COLOR))
    best = alt.Chart(data).mark_bar().encode(
        x=alt.X("mean_best_abs_delta_va:Q", title="mean |ΔVA| of the selected head",
                axis=alt.Axis(tickCount=4)),
        y=y_shared, color=emphasis, tooltip=tooltip,
    )
    consistent = alt.Chart(data).mark_bar().encode(
        x=alt.X("n_heads_fwer_significant:Q", title="consistent heads (family-wise p ≤ α)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=y_shared, color=emphasis, tooltip=tooltip,
    )
    return alt.hconcat(
        alt.layer(chance, shares).properties(width=260, height=alt.Step(20)),
        best.properties(width=180, height=alt.Step(20)),
        consistent.properties(width=180, height=alt.Step(20)),
    ).properties(title=alt.TitleParams(
        "Tags compared", subtitle=f"α = {alpha:g}; dashed line: the share expected by chance; "
                                  "dark bars: the report's tag"))
