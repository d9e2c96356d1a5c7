"""Chart builders: fast to_dict() checks for each, one PNG render of a 300 x 300 heatmap."""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import polars as pl
import pytest

from reports import charts
from reports.html import script_json


def heatmap_frames(n: int, targets=(2, 5), first: int = 1, seed: int = 0):
    """Stored lower-triangle cells and the analysed sentences of an n-sentence matrix."""
    rows, cols = np.tril_indices(n)
    rng = np.random.default_rng(seed)
    cells = pl.DataFrame({"i": rows + first, "j": cols + first, "value": rng.random(len(rows))})
    sentences = pl.DataFrame({
        "idx": np.arange(first, n + first),
        "text": [f"sentence {k}" for k in range(first, n + first)],
        "is_target": [k in targets for k in range(first, n + first)],
    })
    return cells, sentences


def layers_of(spec: dict) -> list[dict]:
    """Every unit (non-layer) spec inside a layered spec."""
    if "layer" in spec:
        return [unit for child in spec["layer"] for unit in layers_of(child)]
    return [spec]


def values(spec: dict, data: dict):
    """The rows (or CSV text) of a data reference: inline, or one of Altair's named datasets."""
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def test_heatmap_encodes_the_notebook_view():
    cells, sentences = heatmap_frames(10)
    spec = charts.heatmap(cells, sentences, color_max=0.7, title="r | layer=3 head=1").to_dict()
    assert spec["title"] == "r | layer=3 head=1"
    units = layers_of(spec)
    colored = [u for u in units if "color" in u.get("encoding", {})]
    assert len(colored) == 1
    scale = colored[0]["encoding"]["color"]["scale"]
    assert scale == {"scheme": "blues", "domain": [0, 0.7], "clamp": True}
    # target highlights: row and column bands, plus overlays on the stored cells
    red = [u for u in units if u["mark"].get("color") == charts.TARGET_COLOR]
    assert len(red) == 4
    assert all(u["mark"]["opacity"] == charts.HIGHLIGHT_OPACITY for u in red)
    bands = [u for u in red if "data" in u]
    assert [row["idx"] for row in values(spec, bands[0]["data"])] == [2, 5]
    # rows top to bottom, as imshow
    assert colored[0]["encoding"]["y"]["scale"]["reverse"] is True
    tooltip_fields = [t["field"] for t in colored[0]["encoding"]["tooltip"]]
    assert tooltip_fields == ["i", "source_text", "j", "target_text", "value"]
    # sentence text is looked up from the sentences, not repeated in every cell
    cells_layer = next(layer for layer in spec["layer"] if "data" in layer and "layer" in layer)
    lookups = [t for t in cells_layer["transform"] if "lookup" in t]
    assert [t["as"] for t in lookups] == [["source_text", "source_is_target"],
                                         ["target_text", "target_is_target"]]
    assert cells_layer["data"]["format"]["type"] == "csv"
    assert values(spec, cells_layer["data"]).count("\n") == 1 + 55  # header + 10 * 11 / 2 cells


@pytest.mark.parametrize("color_max", [None, 0.0, float("nan")])
def test_heatmap_degenerate_color_max_falls_back(color_max):
    cells, sentences = heatmap_frames(4)
    spec = charts.heatmap(cells, sentences, color_max=color_max).to_dict()
    colored = [u for u in layers_of(spec) if "color" in u.get("encoding", {})]
    assert colored[0]["encoding"]["color"]["scale"]["domain"] == [0, 1.0]


def test_heatmap_300_sentences_has_no_row_limit():
    """45,150 stored cells: no MaxRowsError, whatever the active data transformer allows."""
    cells, sentences = heatmap_frames(300, targets=range(0, 300, 37), first=0)
    with alt.data_transformers.enable("default", max_rows=10):
        spec = charts.heatmap(cells, sentences, color_max=0.99).to_dict()
    cells_layer = next(layer for layer in spec["layer"] if "layer" in layer)
    assert values(spec, cells_layer["data"]).count("\n") == 1 + 300 * 301 // 2


@pytest.mark.slow
def test_heatmap_300_sentences_renders_png():
    import vl_convert

    cells, sentences = heatmap_frames(300, targets=range(0, 300, 37), first=0)
    spec = charts.heatmap(cells, sentences, color_max=0.99, size=300).to_dict()
    png = vl_convert.vegalite_to_png(spec, scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_vertical_scores_chart_colors_targets_red_and_others_gray():
    frame = pl.DataFrame({
        "idx": [1, 2, 3, 4, 5],
        "vertical_score": [0.5, 0.7, 0.2, None, None],
        "is_target": [False, True, False, True, False],
        "text": ["a", "b <i>", "c", "d", "e"],
    })
    spec = charts.vertical_scores_chart(frame, title="Vertical scores | r | layer=3 head=1").to_dict()
    assert spec["title"] == "Vertical scores | r | layer=3 head=1"
    line, points = spec["layer"]
    assert line["mark"]["type"] == "line"
    color = points["encoding"]["color"]
    assert color["scale"] == {"domain": ["VA", "non-VA"], "range": [charts.TARGET_COLOR, charts.OTHER_COLOR]}
    assert {"text", "vertical_score", "idx"} <= {t["field"] for t in points["encoding"]["tooltip"]}
    assert values(spec, spec["data"])[1] == {"idx": 2, "vertical_score": 0.7, "is_target": True,
                                         "text": "b <i>"}
    assert line["encoding"]["x"]["scale"]["domain"] == [1, 5]  # undefined scores keep their place
    other = charts.vertical_scores_chart(frame, target_label="uncertainty_management").to_dict()
    assert other["layer"][1]["encoding"]["color"]["scale"]["domain"] == [
        "uncertainty_management", "non-uncertainty_management"]


def test_ranking_bar_sorts_by_rank():
    frame = pl.DataFrame({
        "rank": [1, 2], "rollout_id": ["b", "a"], "distinctiveness_score": [1.4, 0.6],
        "n_sentences": [21, 26], "n_va": [2, 4], "n_sentences_original": [23, 28],
        "n_va_original": [2, 4], "extra": ["ignored", "ignored"],
    })
    spec = charts.ranking_bar(frame).to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["x"]["field"] == "distinctiveness_score"
    assert spec["encoding"]["y"]["sort"] == {"field": "rank", "order": "ascending"}
    assert "extra" not in values(spec, spec["data"])[0]


def test_delta_by_layer_diverges_around_zero():
    frame = pl.DataFrame({
        "rank": [1, 1], "rollout_id": ["r", "r"], "layer": [3, 17], "head": [1, 10],
        "delta_va_vert": [-0.47, 0.45], "lift_in_va": [0.39, None],
    })
    spec = charts.delta_by_layer(frame).to_dict()
    rect, text = spec["layer"]
    assert rect["encoding"]["color"]["scale"]["domainMid"] == 0
    assert text["encoding"]["text"]["field"] == "head"


def test_script_json_cannot_close_its_script_block():
    value = {"t": "</script><img src=x onerror=alert(1)> & \u2028\u2029", "n": float("nan")}
    text = script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"t": value["t"], "n": None}


def head_frame() -> pl.DataFrame:
    """head_consistency rows (plus the SQL significance flags) of a 2-layer, 2-head model."""
    return pl.DataFrame({
        "layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "n_rollouts": [10, 10, 10, 9],
        "mean_delta_va_vert": [-0.2, 0.05, 0.1, None], "sd_delta_va_vert": [0.1, 0.2, 0.1, None],
        "t_statistic": [-6.3, 0.8, 3.2, None], "share_same_sign": [1.0, 0.6, 0.9, None],
        "permutations": [50] * 4, "p_value": [0.02, 0.5, 0.04, None],
        "p_value_fwer": [0.04, 1.0, 0.3, None], "significant": [True, False, True, False],
        "significant_fwer": [True, False, False, False], "extra": ["x"] * 4,
    })


def test_head_consistency_map_diverges_and_marks_significant_heads():
    spec = charts.head_consistency_map(head_frame(), alpha=0.05).to_dict()
    cells, outlined, dots = spec["layer"]
    assert cells["encoding"]["color"]["field"] == "mean_delta_va_vert"
    assert cells["encoding"]["color"]["scale"] == {"scheme": "redblue", "reverse": True, "domainMid": 0}
    assert (cells["encoding"]["x"]["field"], cells["encoding"]["y"]["field"]) == ("head", "layer")
    # family-wise significant heads outlined; uncorrected-only ones dotted (flags from SQL)
    assert outlined["mark"]["fill"] is None and outlined["mark"]["stroke"] == charts.SIGNIFICANT_STROKE
    assert outlined["transform"] == [{"filter": "datum.significant_fwer"}]
    assert dots["transform"] == [{"filter": "datum.significant && !datum.significant_fwer"}]
    assert dots["mark"]["type"] == "point"
    tooltip = {t["field"] for t in cells["encoding"]["tooltip"]}
    assert tooltip == {"layer", "head", "mean_delta_va_vert", "t_statistic", "share_same_sign",
                       "n_rollouts", "p_value", "p_value_fwer"}
    rows = values(spec, spec["data"])
    assert len(rows) == 4 and "extra" not in rows[0] and rows[3]["mean_delta_va_vert"] is None
    assert "p ≤ 0.05" in spec["title"]["subtitle"]


def test_receiver_map_outlines_the_top_k_with_their_rank():
    frame = pl.DataFrame({
        "rank": [1, 2, 3, 4], "layer": [1, 0, 1, 0], "head": [1, 0, 0, 1],
        "mean_kurtosis": [4.2, 2.0, 1.1, -0.3], "n_rollouts_kurtosis": [10] * 4,
        "is_receiver": [True, True, False, False], "n_rollouts": [10, 10, None, None],
        "mean_delta_va_vert": [0.1, -0.02, None, None], "t_statistic": [2.5, -0.3, None, None],
        "p_value_fwer": [0.2, 1.0, None, None],
    })
    spec = charts.receiver_map(frame, k=2).to_dict()
    cells, outlined, ranks = spec["layer"]
    assert cells["encoding"]["color"]["field"] == "mean_kurtosis"
    assert outlined["transform"] == [{"filter": "datum.is_receiver"}]
    assert ranks["mark"]["type"] == "text" and ranks["encoding"]["text"]["field"] == "rank"
    assert {"mean_delta_va_vert", "p_value_fwer", "rank"} <= {
        t["field"] for t in cells["encoding"]["tooltip"]}
    assert "top 2" in spec["title"]["subtitle"]
    assert [r["rank"] for r in values(spec, spec["data"])] == [1, 2, 3, 4]


def test_tag_comparison_compares_uncorrected_and_family_wise_shares():
    frame = pl.DataFrame({
        "tag": ["b_tag", "a_tag"], "is_report_tag": [True, False], "n_rollouts": [10, 9],
        "mean_n_target": [2.8, 1.9], "n_selections": [30, 27], "mean_best_abs_delta_va": [0.22, 0.29],
        "share_uncorrected_significant": [0.37, 0.48], "share_fwer_significant": [0.1, 0.11],
        "median_p_value_fwer": [0.3, 0.2], "top_layer": [1, 2], "top_head": [6, 3],
        "top_mean_delta_va_vert": [-0.13, 0.1], "top_t_statistic": [-6.5, 3.0],
        "top_share_same_sign": [1.0, 0.8], "top_p_value": [0.002, 0.01],
        "top_p_value_fwer": [0.006, 0.01], "n_heads_fwer_significant": [2, 1], "permutations": [50, 50],
    })
    spec = charts.tag_comparison(frame, alpha=0.05).to_dict()
    shares_panel, best, consistent = spec["hconcat"]
    chance, shares = shares_panel["layer"]
    assert chance["mark"]["type"] == "rule" and values(spec, chance["data"]) == [{"alpha": 0.05}]
    fold = shares["transform"][0]["fold"]
    assert fold == ["share_uncorrected_significant", "share_fwer_significant"]
    assert shares["encoding"]["x"]["scale"]["domain"] == [0, 1]
    assert shares["encoding"]["color"]["scale"]["range"] == [charts.UNCORRECTED_COLOR, charts.FWER_COLOR]
    assert best["encoding"]["x"]["field"] == "mean_best_abs_delta_va"
    assert consistent["encoding"]["x"]["field"] == "n_heads_fwer_significant"
    assert consistent["encoding"]["color"]["condition"]["test"] == "datum.is_report_tag"
    rows = values(spec, shares["data"] if "data" in shares else spec["data"])
    assert {r["tag"] for r in rows} == {"a_tag", "b_tag"}


def test_ranking_bar_shows_the_p_value_when_given():
    frame = pl.DataFrame({
        "rank": [1], "rollout_id": ["b"], "distinctiveness_score": [1.4], "n_sentences": [21],
        "n_va": [2], "n_sentences_original": [23], "n_va_original": [2], "p_value_score": [0.04],
    })
    spec = charts.ranking_bar(frame).to_dict()
    assert "p_value_score" in {t["field"] for t in spec["encoding"]["tooltip"]}
    assert values(spec, spec["data"])[0]["p_value_score"] == 0.04
