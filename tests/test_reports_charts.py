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
