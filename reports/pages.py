"""The report's pages as small template functions: data in, HTML text out.

Every function here formats; none computes a number (those come from SQL, reports.data).
An undefined number is never printed as ``nan``: it is a dash with the reason
(:func:`number`), so a reader knows whether a value is missing because no sentence carries
the tag, because every analysed sentence does, or because no permutation was drawn.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from reports import causal
from reports.data import ALPHA, DEFAULT_TAG, RECEIVER_K, TOP_CONSISTENT, ReportData
from reports.html import chart_div, esc, page, table

P_VALUE_NOTE = (
    "Null used: position-matched shuffles (null_model 'position', docs/STATISTICS.md §2). A "
    "p-value here is the chance of a separation at least this large if the sentence labels were "
    "shuffled only among sentences at a similar place in the rollout (the same block of about 24 "
    "sentences), after removing what position and sentence length predict inside the blocks "
    "(each sentence weighed by how noisy its score is; late sentences are seen by fewer rows): "
    "small means the head prefers these sentences beyond what position and length explain; it "
    "says nothing about how large the effect is. q-values (Benjamini-Hochberg) "
    "bound the share of false findings among many tests; effect sizes with bootstrap intervals "
    "are in head_effects. The placebo columns repeat the tag's statistics for as many sentences "
    "drawn at matched positions: what position alone produces."
)
HEAD_HEADERS = ["layer", "head", "rollouts", "mean ΔVA", "t", "share same sign", "p", "p (FWER)"]


# --- numbers and small pieces ------------------------------------------------------------


def fmt(value, digits: int) -> str | None:
    """A number with ``digits`` decimals; None when undefined (NULL or NaN)."""
    if value is None or value != value:
        return None
    return f"{float(value):.{digits}f}"


def number(value, digits: int | None = None, reason: str = "undefined") -> str:
    """Markup of a number, or a dash with the reason it is undefined."""
    text = None if value is None or value != value else (
        fmt(value, digits) if digits is not None else str(value))
    if text is None:
        return f'<span class="undefined" title="{esc(reason)}">— ({esc(reason)})</span>'
    return esc(text)


def cell(value, digits: int | None = None, reason: str = "undefined") -> tuple[str, str]:
    """A right-aligned table cell (see :func:`number`); an empty cell stays a plain dash."""
    if value is None or value != value:
        return "—", "num"
    return number(value, digits, reason), "num"


def undefined_reason(rollout: dict, permutations: int | None = None) -> str:
    """Why a rollout's S or ΔVA (or p-value: give ``permutations``) is undefined."""
    if permutations == 0:
        return "no permutations drawn"
    if not rollout.get("n_va"):
        return "no target among the analysed sentences"
    if rollout.get("n_va") == rollout.get("n_sentences"):
        return "every analysed sentence is a target"
    return "no head has a defined ΔVA"


def target_label(tag: str) -> str:
    return "VA" if tag == DEFAULT_TAG else tag


def absent_tag_note(data: ReportData) -> str:
    """One sentence when the report's tag is on no sentence: it names the tags present."""
    if data.tag_present:
        return ""
    present = ", ".join(f"{t['tag']} ({t['n_sentences']} sentences)"
                        for t in data.tag_counts.iter_rows(named=True))
    return (f'<p class="absent"><b>No sentence of these rollouts carries the tag '
            f'<code>{esc(data.params.tag)}</code></b>, so the target-tag views are left out; '
            f"the tags present are: {esc(present) if present else 'none'}.</p>")


def permutations_note(data: ReportData) -> str:
    k = data.params.permutations
    if k == 0:
        return "0 permutations: no p-value is computed."
    return esc(f"{k} permutations, seed {data.params.seed}: no p-value is below 1/{k + 1} = "
               f"{1 / (k + 1):.4f}.")


def png_links(names) -> str:
    return " ".join(f'<a href="{esc(name)}.png">{esc(name)}.png</a>' for name in names)


def files_links(names) -> str:
    links = png_links(names)
    return f'<p class="files">{links}</p>' if links else ""


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(value) -> str:
    if value is None:
        return "?"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


# --- index.html --------------------------------------------------------------------------


def parameters_table(data: ReportData) -> str:
    p = data.params
    layers = (", ".join(map(str, data.layers)) + ("" if p.layers is not None else
                                                    " (representative early/mid/late)"))
    info = data.model_info
    model = data.model + "".join(
        f", {label} {info[key]}" for key, label in
        (("n_layers", "layers"), ("n_heads", "heads"), ("source", "from"), ("revision", "revision"))
        if info.get(key) is not None
    )
    rows = [
        ("tag", p.tag), ("proximity_ignore", p.proximity_ignore), ("trim", p.trim),
        ("control_depth", p.control_depth), ("score_type", p.score_type), ("layers", layers),
        ("rollouts", p.rollouts or "all"), ("model", model),
        ("permutations", p.permutations), ("seed", p.seed),
        ("attention ingested", f"{when(data.ingest.get('first_ingested_at'))} to "
                               f"{when(data.ingest.get('last_ingested_at'))} "
                               f"({data.ingest.get('attention_runs', 0)} rollouts)"),
        ("rollouts last loaded", when(data.ingest.get("last_loaded_at"))),
        ("report built", now()),
    ]
    return table(["parameter", "value"], [[(esc(k), ""), (f"<code>{esc(v)}</code>", "")] for k, v in rows])


def tags_section(data: ReportData, tag_reports: dict[str, tuple[str | None, str]]) -> str:
    """Every tag the data holds, with counts; each links to its report or gives the command.

    ``tag_reports``: tag -> (href of its report or None, the command that builds it).
    """
    rows = []
    for t in data.tag_counts.iter_rows(named=True):
        href, command = tag_reports.get(t["tag"], (None, ""))
        mark = "▶ " if t["tag"] == data.params.tag else ""
        if t["tag"] == data.params.tag:
            where = "this report"
        elif href:
            where = f'<a href="{esc(href)}">its report</a>'
        else:
            where = f"build it: <code>{esc(command)}</code>"
        rows.append([(f"{mark}<code>{esc(t['tag'])}</code>", ""), cell(t["n_sentences"]),
                     cell(t["n_rollouts"]), (where, "")])
    if not rows:
        return '<p class="muted">No sentence of these rollouts carries any tag.</p>'
    return table(["tag", "sentences", "rollouts", "report"], rows)


def index_page(data: ReportData, names: dict[str, str], index_charts: dict[str, dict],
               tag_reports: dict[str, tuple[str | None, str]]) -> str:
    """The index: tags present, ranking chart and table, best heads per layer, parameters."""
    layer_headers = [f"layer {layer}: head | ΔVA | lift | p (FWER)" for layer in data.layers]
    rows = []
    by_rollout = data.best.partition_by("rollout_id", as_dict=True)
    k = data.params.permutations
    for r in data.ranking.iter_rows(named=True):
        rid = r["rollout_id"]
        best = by_rollout.get((rid,), pl.DataFrame())
        per_layer = {b["layer"]: b for b in best.iter_rows(named=True)} if best.height else {}
        layer_p = dict(zip(r["layers"], r["p_value_fwer_by_layer"] or [], strict=False))
        why = undefined_reason(r)
        row = [
            cell(r["rank"]),
            (f'<a href="{esc(names[rid])}/index.html">{esc(rid)}</a>', ""),
            (number(r["distinctiveness_score"] if r["heads"] and any(
                h is not None for h in r["heads"]) else None, 4, why), "num"),
            (number(r["p_value_score"], 4, undefined_reason(r, k)), "num"),
            cell(r["n_sentences"]), cell(r["n_va"]), cell(r["va_rate"], 3),
            cell(r["n_sentences_original"]), cell(r["n_va_original"]),
        ]
        for layer in data.layers:
            b = per_layer.get(layer)
            if b is None or b["head"] is None:
                row.append(("—", ""))
            else:
                p_text = fmt(layer_p.get(layer), 4) or "—"
                row.append((esc(f"h{b['head']} | {fmt(b['delta_va_vert'], 4)} | "
                                f"{fmt(b['lift_in_va'], 3) or '—'} | {p_text}"), "num"))
        rows.append(row)
    headers = ["rank", "rollout", "S", "p (S)", "n (analysed)", "targets (analysed)", "rate (analysed)",
               "N (original)", "targets (original)", *layer_headers]
    charts_markup = "\n".join(chart_div(name) for name in index_charts)
    body = f"""
<h1>Attention report: {esc(data.model)}</h1>
<p class="muted">{data.ranking.height} rollouts, tag <code>{esc(data.params.tag)}</code>, ranked by
distinctiveness S = Σ over layers of |ΔVA| of the layer's best head (METRICS.md §7). Analysed
counts are after the trim of the first and last sentence; original counts before it.</p>
{absent_tag_note(data)}
<h2>Tags in the data</h2>
<p class="muted">Every tag on a sentence of the model's rollouts; a report is built for one tag
(<code>--tag</code>). The rollout pages also show tag-free views (receiver heads).</p>
{tags_section(data, tag_reports)}
<p><a href="heads.html">Statistics: is a separation real? Every head across rollouts, receiver
heads, and the tags compared →</a></p>
{charts_markup}
<h2>Ranking</h2>
<p class="muted">{esc(P_VALUE_NOTE)} <b>p (S)</b>: the same for the rollout's score S (its
best heads summed over layers, with the selection repeated on every shuffle). <b>p (FWER)</b>:
the family-wise p-value of the layer's best head, i.e. of the best of the layer's heads,
which is the one to read, not the head's own p-value. {permutations_note(data)}</p>
{table(headers, rows)}
<p class="files">Files: <a href="summary.csv">summary.csv</a> {png_links(index_charts)}</p>
<h2>Parameters</h2>
{parameters_table(data)}
"""
    return page(f"Attention report: {data.model}", body,
                {name: (spec, "svg") for name, spec in index_charts.items()})


# --- heads.html --------------------------------------------------------------------------


def _chart_or_note(name: str, specs: dict, note: str) -> str:
    if name in specs:
        return chart_div(name) + files_links([name])
    return f'<p class="muted">{esc(note)}</p>'


def _head_rows(frame: pl.DataFrame, *, rank: bool = False, kurtosis: bool = False) -> list:
    rows = []
    for h in frame.iter_rows(named=True):
        rows.append([
            *([cell(h["rank"])] if rank else []),
            cell(h["layer"]), cell(h["head"]),
            *([cell(h["mean_kurtosis"], 3)] if kurtosis else []),
            cell(h["n_rollouts"]), cell(h["mean_delta_va_vert"], 4), cell(h["t_statistic"], 2),
            cell(h["share_same_sign"], 2), cell(h["p_value"], 4), cell(h["p_value_fwer"], 4),
        ])
    return rows


def heads_page(data: ReportData, specs: dict[str, dict]) -> str:
    """Statistics (sql/40_stats): every head's mean ΔVA, receiver heads, tags compared."""
    p = data.params
    label = target_label(p.tag)
    scope = ("every rollout of the model in the warehouse" +
             (" (the --rollouts filter applies to the ranking only)" if p.rollouts else ""))
    significant = data.head_map.filter(pl.col("significant_fwer")) if data.head_map.height else data.head_map
    found = (f"{significant.height} head(s) have a family-wise p ≤ {ALPHA:g}."
             if data.head_map.height else "")
    tag_rows = []
    for t in data.tags.iter_rows(named=True):
        tag_rows.append([
            (("▶ " if t["is_report_tag"] else "") + esc(t["tag"]), ""),
            cell(t["n_rollouts"]), cell(t["mean_n_target"], 2), cell(t["n_selections"]),
            cell(t["mean_best_abs_delta_va"], 4), cell(t["share_uncorrected_significant"], 2),
            cell(t["share_fwer_significant"], 2), cell(t["median_p_value_fwer"], 4),
            (esc(f"L{t['top_layer']} H{t['top_head']}") if t["top_layer"] is not None else "—", "num"),
            cell(t["top_mean_delta_va_vert"], 4), cell(t["top_t_statistic"], 2),
            cell(t["top_p_value_fwer"], 4), cell(t["n_heads_fwer_significant"]),
            cell(t.get("placebo_share_fwer_significant"), 2), cell(t.get("placebo_top_p_value_fwer"), 4),
        ])
    tag_headers = ["tag", "rollouts", "mean targets", "selections", "mean best |ΔVA|",
                   f"share p ≤ {ALPHA:g}", f"share p (FWER) ≤ {ALPHA:g}", "median p (FWER)", "top head",
                   "top mean ΔVA", "top t", "top p (FWER)", f"heads p (FWER) ≤ {ALPHA:g}",
                   f"placebo share p (FWER) ≤ {ALPHA:g}", "placebo top p (FWER)"]
    tag_layers = (", ".join(map(str, data.layers)) +
                  ("" if p.layers is not None else " (representative)"))
    no_delta = (f"No head has a defined ΔVA in any rollout: no sentence carries {p.tag}."
                if not data.tag_present else "No head has a defined ΔVA in any rollout.")
    body = f"""
<p><a href="index.html">← all rollouts</a></p>
<h1>Heads and tags: {esc(data.model)}</h1>
<p class="muted">Tag <code>{esc(p.tag)}</code>; computed over {esc(scope)};
{permutations_note(data)} Definitions: docs/STATISTICS.md in the repository.</p>
{absent_tag_note(data)}
<h2>How to read a p-value here</h2>
<p>{esc(P_VALUE_NOTE)} Per rollout and layer the notebook keeps the best of the layer's heads;
the best of many noisy heads looks good by chance, so read the <b>family-wise</b> p-value
(p (FWER)), which repeats that selection on every shuffle, not the uncorrected one. Across
rollouts, the question is whether the same head separates {esc(label)} sentences in most of them.</p>

<h2>Mean ΔVA of every head across rollouts (all layers)</h2>
<p class="muted">Each cell is one head: its ΔVA averaged over the rollouts (red: {esc(label)}
sentences get more attention than the others, blue: less). Outlined cells have a family-wise
p ≤ {ALPHA:g}: a test of the mean against each rollout's own position-matched shuffles (rollouts
of one problem count once together), corrected for looking at every head of every layer.
A dot marks a head that is significant only without the correction: about {ALPHA:.0%} of the
heads get one by chance. {esc(found)}</p>
{_chart_or_note("head_map", specs, no_delta)}
<h3>The {TOP_CONSISTENT} most consistent heads (smallest family-wise p)</h3>
{table(HEAD_HEADERS, _head_rows(data.top_heads))}

<h2>Receiver heads</h2>
<p class="muted">Receiver heads (the paper's definition) concentrate attention on a few
sentences: their vertical scores have a high kurtosis (paper setting: no trim, no depth
control, every layer). The map shows each head's mean kurtosis over rollouts; the top
{RECEIVER_K} are outlined with their rank. The table gives their mean ΔVA for
<code>{esc(p.tag)}</code> across rollouts: a receiver head attends to some sentences strongly, and
the family-wise p says whether those are {esc(label)} sentences more than chance allows.</p>
{_chart_or_note("receiver_map", specs, "No head has a defined kurtosis.")}
{table(["rank", "layer", "head", "mean kurtosis", *HEAD_HEADERS[2:]],
       _head_rows(data.receiver_table, rank=True, kurtosis=True))}

<h2>Tags compared</h2>
<p class="muted">The same statistics for every tag, on layers {esc(tag_layers)}. Left: the share
of the notebook's selections (best head per rollout and layer) that look significant; without
correction it is well above {ALPHA:g} even when nothing is there, while the family-wise share
should be near {ALPHA:g} (dashed line) under no effect. If other tags get as many significant
selections or consistent heads as <code>{esc(p.tag)}</code> (▶, dark bars), the result is not
specific to it.</p>
{_chart_or_note("tag_comparison", specs, "No tag has a defined ΔVA.")}
{table(tag_headers, tag_rows)}
{causal.heads_block(data.causal, specs)}
"""
    return page(f"Heads and tags: {data.model}", body,
                {name: (spec, "svg") for name, spec in specs.items()})


# --- <rollout>/index.html ----------------------------------------------------------------


def figure(name: str, chart: dict) -> str:
    """One chart of a rollout page: a Vega chart div, or a PNG heatmap with hover and zoom.

    ``chart``: {"spec": ..., "renderer": ...} or {"png": True, "title", "first", "n"}.
    """
    if "png" not in chart:
        return chart_div(name)
    return (f'<figure class="raster" data-first="{chart["first"]}" data-n="{chart["n"]}">'
            f'<figcaption>{esc(chart["title"])}</figcaption>'
            f'<img src="{esc(name)}.png" alt="{esc(chart["title"])}" width="460" height="460">'
            '<div class="hover muted">Hover a cell for its two sentences; click to zoom.</div>'
            '</figure>')


def rollout_page(data: ReportData, rollout: dict, sentences: pl.DataFrame, sections: list,
                 texts: str) -> str:
    """One rollout: its receiver heads (tag-free), then per layer the best head's heatmap and
    vertical scores for the tag (when present), then its sentences. Reads nothing about the
    other rollouts, so the page is kept as long as this rollout is unchanged.

    ``sections``: (heading, note, {name: chart}) tuples (see :func:`figure`); the sentence
    table is also the charts' dataset ``texts`` (each sentence's text written once).
    """
    rid = rollout["rollout_id"]
    blocks, page_charts = [], {}
    for heading, note, charts in sections:
        blocks.append(f"<h2>{esc(heading)}</h2>")
        if note:
            blocks.append(f'<p class="muted">{esc(note)}</p>')
        for name, chart in charts.items():
            blocks.append(figure(name, chart))
            if "png" not in chart:
                page_charts[name] = (chart["spec"], chart["renderer"])
        blocks.append(files_links(charts))
    label = target_label(data.params.tag)
    rows, classes = [], []
    for s in sentences.iter_rows(named=True):
        rows.append([
            cell(s["idx"]), cell(s["r"]),
            (f"★ {esc(label)}" if s["is_target"] else "", ""),
            (esc(", ".join(s["tags"])), ""),
            (esc(s["text"]), "text"),
        ])
        classes.append(" ".join(c for c, on in (("target", s["is_target"]),
                                                ("trimmed", not s["analysed"])) if on))
    k = data.params.permutations
    if rollout["n_va_original"]:
        score = (f"S = {number(rollout['distinctiveness_score'], 4, undefined_reason(rollout))} "
                 f"(p = {number(rollout['p_value_score'], 4, undefined_reason(rollout, k))}, "
                 f"{k} permutations); ")
    else:
        score = ""
    summary = (f"{score}analysed: {rollout['n_sentences']} sentences, {rollout['n_va']} targets; "
               f"original: {rollout['n_sentences_original']} sentences, "
               f"{rollout['n_va_original']} targets")
    body = f"""
<p><a href="../index.html">← all rollouts</a></p>
<h1>{esc(rid)}</h1>
<p class="muted">{summary}. Model {esc(data.model)}, tag <code>{esc(data.params.tag)}</code>.
Heatmap color: 0 to the 99th percentile of the lower triangle; red bands mark target
sentences. Axes use the original sentence index.</p>
{''.join(blocks)}
<h2>Sentences</h2>
<p class="muted">r is the analysed index (empty: trimmed); ★ marks target sentences;
<a href="meta.json">meta.json</a></p>
{table(["idx", "r", "target", "tags", "text"], rows, classes, dataset=texts,
       row_ids=[f"s{s}" for s in sentences["idx"].to_list()])}
"""
    return page(f"{rid}: attention report", body, page_charts, root="../")
