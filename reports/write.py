"""Writing the report's files: the shared assets, the index group and one rollout directory.

Specs are built with ``to_dict(validate=False)``: the builders' output is validated by
their own tests (tests/test_reports_charts.py), and validating again here is slow.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

import polars as pl
import vl_convert

from reports import causal, charts, pages
from reports.data import ALPHA, RECEIVER_K, RECEIVER_SETTING, ReportData
from reports.files import safe_dir_names, write_atomic
from reports.html import write_assets
from reports.raster import VEGA_MAX_SENTENCES, heatmap_png

SUMMARY_COLUMNS = ["rollout_id", "n_sentences", "n_va", "va_rate", "distinctiveness_score", "layers",
                   "heads", "delta_va_vert_by_layer", "lift_in_va_by_layer"]
PNG_SCALE = 2
SHARED_TEXTS = "sentences"  # the rollout page's sentence table, read by its charts as a dataset


def write_png(spec: dict, path: Path, datasets: dict | None = None) -> None:
    if datasets:
        spec = {**spec, "datasets": {**datasets, **spec.get("datasets", {})}}
    write_atomic(path, vl_convert.vegalite_to_png(spec, scale=PNG_SCALE))


def write_index_files(data: ReportData, out: Path, names: dict[str, str], out_dir: Path, *,
                      png: bool, step: Callable[[str], None]) -> int:
    """summary.csv, assets/, index.html and heads.html with their PNGs; the number of files."""
    files = len(write_assets(out))
    write_atomic(out / "summary.csv", summary_frame(data).write_csv())
    files += 1
    step("summary.csv")

    index_charts = {}
    if data.tag_present:
        defined = data.best.filter(pl.col("head").is_not_null())
        index_charts["ranking"] = charts.ranking_bar(data.ranking).to_dict(validate=False)
        if defined.height:
            index_charts["delta_by_layer"] = charts.delta_by_layer(defined).to_dict(validate=False)
    heads_charts = {**statistics_charts(data), **causal.heads_charts(data.causal)}
    for name, spec in [*index_charts.items(), *heads_charts.items()] if png else []:
        write_png(spec, out / f"{name}.png")
        files += 1
    write_atomic(out / "index.html", pages.index_page(data, names, index_charts,
                                                      tag_reports(data, out_dir)))
    step("index.html")
    write_atomic(out / "heads.html", pages.heads_page(data, heads_charts))
    step("heads.html")
    return files + 2


def tag_reports(data: ReportData, out_dir: Path) -> dict[str, tuple[str | None, str]]:
    """Per tag present: the link to its report (a sibling ``<out>-<tag>`` built by this
    command) when there is one, and the command that builds it."""
    found = {}
    suffixes = safe_dir_names(data.tag_counts["tag"].to_list())
    for tag, suffix in suffixes.items():
        sibling = out_dir.with_name(f"{out_dir.name}-{suffix}")
        href = f"../{sibling.name}/index.html" if (sibling / "index.html").is_file() else None
        command = f"python cli.py report --tag {shlex.quote(tag)} --out {shlex.quote(str(sibling))}"
        found[tag] = (href, command)
    return found


def statistics_charts(data: ReportData) -> dict[str, dict]:
    """The statistics page's chart specs (a chart without rows is left out)."""
    specs = {}
    if data.head_map.height:
        specs["head_map"] = charts.head_consistency_map(data.head_map, alpha=ALPHA).to_dict(validate=False)
    if data.receivers.height:
        specs["receiver_map"] = charts.receiver_map(data.receivers, k=RECEIVER_K,
                                                    alpha=ALPHA).to_dict(validate=False)
    if data.tags.height:
        specs["tag_comparison"] = charts.tag_comparison(data.tags, alpha=ALPHA).to_dict(validate=False)
    return specs


def summary_frame(data: ReportData) -> pl.DataFrame:
    """summary.csv: the notebook's columns and meanings (counts before trim, as it wrote them;
    'nan' where undefined, as the notebook's CSV has it)."""
    def joined(values, digits):
        return ",".join(pages.fmt(x, digits) or "nan" for x in values)

    rows = []
    for r in data.ranking.iter_rows(named=True):
        rows.append({
            "rollout_id": r["rollout_id"],
            "n_sentences": r["n_sentences_original"],
            "n_va": r["n_va_original"],
            "va_rate": r["va_rate_original"],
            "distinctiveness_score": r["distinctiveness_score"],
            "layers": ",".join(str(x) for x in r["layers"]),
            "heads": ",".join("nan" if x is None else str(x) for x in r["heads"]),
            "delta_va_vert_by_layer": joined(r["delta_va_vert_by_layer"], 4),
            "lift_in_va_by_layer": joined(r["lift_in_va_by_layer"], 3),
        })
    schema = {"rollout_id": pl.String, "n_sentences": pl.Int64, "n_va": pl.Int64, "va_rate": pl.Float64,
              "distinctiveness_score": pl.Float64, "layers": pl.String, "heads": pl.String,
              "delta_va_vert_by_layer": pl.String, "lift_in_va_by_layer": pl.String}
    return pl.DataFrame(rows, schema=schema).select(SUMMARY_COLUMNS)


# --- one rollout -----------------------------------------------------------------------------


def write_rollout(data: ReportData, rollout: dict, folder: Path, *, png: bool) -> int:
    """meta.json, the page and its PNGs of one rollout; the number of files."""
    rid = rollout["rollout_id"]
    sentences = data.sentences.filter(pl.col("rollout_id") == rid)
    best = data.best.filter(pl.col("rollout_id") == rid).sort("layer")
    meta = {
        "rollout_id": rid,
        "n_sentences": rollout["n_sentences_original"],
        "n_va": rollout["n_va_original"],
        "va_idxs": sentences.filter(pl.col("is_target"))["idx"].to_list(),
        "layers": [int(x) for x in best["layer"]],
        "heads": [None if x is None else int(x) for x in best["head"]],
    }
    write_atomic(folder / "meta.json", json.dumps(meta, indent=2))
    shared = {SHARED_TEXTS: sentences.select("idx", "text").to_dicts()}  # for the PNG renderer
    sections = [receiver_section(data, rid, sentences, folder)]
    sections += target_sections(data, rollout, best, sentences, folder)
    sections += causal.rollout_sections(data.causal, rid, data.params.tag)
    files = 1 + sum(1 for _, _, charts_ in sections for c in charts_.values() if "png" in c)
    if png:
        for _, _, section_charts in sections:
            for name, chart in section_charts.items():
                if "spec" in chart:
                    write_png(chart["spec"], folder / f"{name}.png", shared)
                    files += 1
    write_atomic(folder / "index.html", pages.rollout_page(data, rollout, sentences, sections,
                                                           SHARED_TEXTS))
    return files + 1


def heatmap(name: str, cells: pl.DataFrame, sentences: pl.DataFrame, color_max, title: str,
            folder: Path) -> dict:
    """A heatmap of a rollout page: Vega (hover on every cell) up to VEGA_MAX_SENTENCES
    analysed sentences, else a PNG written next to the page (raster.py says why)."""
    n = sentences.height
    if n <= VEGA_MAX_SENTENCES:
        spec = charts.heatmap(cells, sentences, title=title, color_max=color_max).to_dict(validate=False)
        return {"spec": spec, "renderer": "canvas"}
    targets = sentences.filter(pl.col("is_target"))["r"].to_list()
    write_atomic(folder / f"{name}.png", heatmap_png(cells, n=n, color_max=color_max, target_rows=targets))
    return {"png": True, "title": title, "first": int(sentences["idx"].min()), "n": n}


def vertical(scores: pl.DataFrame, title: str, data: ReportData) -> dict:
    chart = charts.vertical_scores_chart(scores, title=title, texts=SHARED_TEXTS,
                                         target_label=pages.target_label(data.params.tag))
    return {"spec": chart.to_dict(validate=False), "renderer": "svg"}


def _color_max(frame: pl.DataFrame, key) -> float | None:
    values = frame.filter(key)["color_max"] if frame.height else pl.Series([])
    return values[0] if values.len() else None


def receiver_section(data: ReportData, rid: str, sentences: pl.DataFrame, folder: Path):
    """Tag-free: the rollout's top receiver heads (METRICS.md §8, the paper's setting)."""
    heads = (data.receivers_by_rollout.filter(pl.col("rollout_id") == rid)
             if data.receivers_by_rollout.height else data.receivers_by_rollout)
    setting = RECEIVER_SETTING
    note = (f"Tag-free: the rollout's {heads.height} heads whose vertical scores have the highest "
            "kurtosis (METRICS.md §8, the paper's setting: no trim, no depth control, "
            f"proximity_ignore {setting['proximity_ignore']}), i.e. the heads that focus attention "
            "on a few sentences, whatever the tags.")
    if not heads.height:
        note = "No head has a defined kurtosis of its vertical scores in this rollout (too few sentences)."
    every = sentences.with_columns(r=pl.col("idx"))  # no trim: analysed index = original index
    found = {}
    for h in heads.iter_rows(named=True):
        layer, head = h["layer"], h["head"]
        key = (pl.col("rollout_id") == rid) & (pl.col("layer") == layer) & (pl.col("head") == head)
        stem = f"layer{layer:02d}_head{head:02d}"
        title = (f"{rid} | receiver head {h['rank']}: layer={layer} head={head} | "
                 f"kurtosis={pages.fmt(h['kurtosis'], 2)}")
        found[f"recv_attn_{stem}"] = heatmap(
            f"recv_attn_{stem}", data.receiver_cells.filter(key), every,
            _color_max(data.receiver_color_max, key), title, folder)
        found[f"recv_vert_{stem}"] = vertical(
            data.receiver_vertical.filter(key),
            f"Vertical scores (paper setting) | {rid} | layer={layer} head={head}", data)
    return "Receiver heads of this rollout", note, found


def target_sections(data: ReportData, rollout: dict, best: pl.DataFrame, sentences: pl.DataFrame,
                    folder: Path) -> list:
    """Per layer, the best head for the report's tag: heatmap and vertical scores."""
    rid, tag = rollout["rollout_id"], data.params.tag
    if not rollout["n_va"] or rollout["n_va"] == rollout["n_sentences"]:
        own = sorted({t for tags in sentences["tags"].to_list() for t in tags})
        return [(f"Best heads for {tag}",
                 f"No best head: {pages.undefined_reason(rollout)} ({rollout['n_va']} of "
                 f"{rollout['n_sentences']} analysed sentences carry {tag}), so ΔVA is undefined in "
                 f"every head. Tags of this rollout: {', '.join(own) or 'none'}.", {})]
    analysed = sentences.filter(pl.col("analysed"))
    sections = []
    for b in best.iter_rows(named=True):
        layer, head = b["layer"], b["head"]
        if head is None:
            sections.append((f"layer={layer}: no head has a defined ΔVA (no target, or no non-target, "
                             "among the analysed sentences with a vertical score)", "", {}))
            continue
        key = (pl.col("rollout_id") == rid) & (pl.col("layer") == layer) & (pl.col("head") == head)
        title = (f"{rid} | layer={layer} head={head} | delta_va_vert={pages.fmt(b['delta_va_vert'], 4)} "
                 f"lift_in_va={pages.fmt(b['lift_in_va'], 3) or '— (undefined)'}")
        stem = f"layer{layer:02d}_head{head:02d}"
        sections.append((title, "", {
            f"attn_{stem}": heatmap(f"attn_{stem}", data.cells.filter(key), analysed,
                                    _color_max(data.color_max, key), title, folder),
            f"vert_{stem}": vertical(
                data.vertical.filter(key), f"Vertical scores | {rid} | layer={layer} head={head}", data),
        }))
    return sections
