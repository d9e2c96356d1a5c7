"""HTML pages that work offline from disk, with shared assets written once per report.

The JavaScript (Vega, Vega-Lite and vega-embed, shipped inside vl-convert-python: nothing
is fetched from a CDN), the init script and the style sheet are files under ``assets/`` of
the report (:func:`write_assets`), referenced by every page, so a page carries only its
own text and chart data. A Content-Security-Policy allows scripts and styles from the
report's own files only and no network access at all. Untrusted text (sentence text,
rollout ids, tags) reaches a page in exactly two ways: ``html.escape`` for markup, and
:func:`script_json` for the chart specs, which escapes ``<``, ``>``, ``&`` and
U+2028/U+2029 so no string can close the ``<script>`` block that holds it (a JSON block,
never executed).
"""

from __future__ import annotations

import functools
import html
import json
import math
from pathlib import Path

import altair as alt
import vl_convert

from reports.files import write_atomic

ASSETS_DIR = "assets"
ASSET_FILES = ("vega-bundle.js", "report.js", "report.css")

EMBED_OPTIONS = {"actions": {"export": True, "source": False, "compiled": False, "editor": False}}

# Renders every chart of the page, then records the outcome on <body> for anyone
# (a person, a test, a monitoring script) who wants to know the page is complete.
# A table marked data-dataset (a rollout page's sentences) is also a dataset of the page's
# charts, handed to every spec by name: the sentence texts are written once. Heatmaps drawn as
# PNG (large ones) get hover detail from the sentence table and a click-to-zoom view.
INIT_SCRIPT = """
(function () {
  function json(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : {};
  }
  const specs = json("report-specs");
  const shared = {};
  document.querySelectorAll("table[data-dataset]").forEach(function (table) {
    shared[table.dataset.dataset] = Array.from(table.querySelectorAll("tbody tr")).map(function (tr) {
      return {idx: Number(tr.id.slice(1)), text: tr.querySelector("td.text").textContent};
    });
  });
  const embedOptions = json("report-embed-options");
  const jobs = Object.keys(specs).map(function (id) {
    const options = Object.assign({}, embedOptions, {renderer: specs[id].renderer});
    const spec = Object.assign({}, specs[id].spec);
    spec.datasets = Object.assign({}, shared, spec.datasets || {});
    return vegaEmbed("#" + id, spec, options).catch(function (error) {
      document.getElementById(id).textContent = "This chart could not be drawn: " + error;
      console.error(error);
      throw error;
    });
  });
  function sentence(idx) {
    const row = document.getElementById("s" + idx);
    return row ? row.querySelector("td.text").textContent : "";
  }
  document.querySelectorAll("figure.raster").forEach(function (figure) {
    const img = figure.querySelector("img");
    const info = figure.querySelector(".hover");
    const first = Number(figure.dataset.first), n = Number(figure.dataset.n);
    img.addEventListener("click", function () { figure.classList.toggle("zoomed"); });
    img.addEventListener("mousemove", function (event) {
      const box = img.getBoundingClientRect();
      const c = Math.floor((event.clientX - box.left) / box.width * n);
      const r = Math.floor((event.clientY - box.top) / box.height * n);
      if (c < 0 || r < 0 || c >= n || r >= n) { return; }
      const i = first + r, j = first + c;
      info.textContent = "source i = " + i + ": " + sentence(i) + "\\n" +
        "target j = " + j + ": " + sentence(j) + (c > r ? "\\n(above the diagonal: 0)" : "");
    });
  });
  Promise.allSettled(jobs).then(function (results) {
    const failed = results.filter(function (r) { return r.status === "rejected"; }).length;
    document.body.setAttribute("data-charts-rendered", String(results.length - failed));
    document.body.setAttribute("data-charts-failed", String(failed));
  });
})();
"""

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; color: #0f172a; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; }
h3 { font-size: 15px; }
.muted { color: #64748b; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f8fafc; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { white-space: pre-wrap; word-break: break-word; max-width: 760px; }
tr.target td { background: #fee2e2; }
tr.trimmed td { color: #94a3b8; }
.chart { margin: 8px 0 4px; }
.files a { margin-right: 12px; }
code { background: #f1f5f9; padding: 0 3px; border-radius: 3px; }
figure.raster { margin: 8px 0 4px; }
figure.raster img { width: 460px; height: 460px; image-rendering: pixelated; cursor: zoom-in;
                    border: 1px solid #e2e8f0; }
figure.raster.zoomed { overflow: auto; max-width: 100%; max-height: 90vh; }
figure.raster.zoomed img { width: auto; height: auto; zoom: 6; cursor: zoom-out; }
figure.raster figcaption { font-weight: 600; }
figure.raster .hover { white-space: pre-wrap; color: #334155; min-height: 3em; max-width: 760px; }
.undefined { color: #64748b; }
body #vg-tooltip-element table tr td.value { max-width: 520px; white-space: pre-wrap;
                                           word-break: break-word; }
"""


@functools.cache
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (from vl-convert, built once)."""
    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    try:
        return vl_convert.javascript_bundle(vl_version=major_minor)
    except ValueError:  # a vl-convert without Altair's exact Vega-Lite version: its latest
        return vl_convert.javascript_bundle()


def write_assets(out: Path) -> list[Path]:
    """The shared files every page references, written once per report under ``assets/``."""
    folder = out / ASSETS_DIR
    folder.mkdir(exist_ok=True)
    contents = dict(zip(ASSET_FILES, (javascript_bundle(), INIT_SCRIPT, STYLE), strict=True))
    for name, text in contents.items():
        write_atomic(folder / name, text)
    return [folder / name for name in ASSET_FILES]


def script_json(value) -> str:
    """JSON that is safe inside a ``<script>`` element (and valid: NaN/inf become null)."""
    text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def esc(value) -> str:
    """Text for HTML content or a quoted attribute value."""
    return html.escape("" if value is None else str(value), quote=True)


# Scripts and styles from the report's own files only ('self'; 'file:' for pages opened
# from disk, whose origin is opaque); Vega compiles expressions with Function() (unsafe-eval);
# vega-embed and the tooltips set inline styles.
CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self' file: 'unsafe-eval'",
    "style-src 'self' file: 'unsafe-inline'",
    "img-src data: blob: 'self' file:",
    "connect-src 'none'",
    "font-src data:",
])


def page(title: str, body: str, charts: dict[str, tuple[dict, str]], *, root: str = "") -> str:
    """A complete HTML document.

    ``body`` is trusted markup built with :func:`esc`; ``charts`` maps a chart div id
    (which the body must contain) to (Vega-Lite spec dict, renderer 'svg' or 'canvas');
    ``root`` is the path from the page to the report's top directory ('' or '../').
    """
    specs = {cid: {"spec": spec, "renderer": renderer} for cid, (spec, renderer) in charts.items()}
    assets = f"{root}{ASSETS_DIR}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{assets}/report.css">
<script src="{assets}/vega-bundle.js"></script>
</head>
<body>
{body}
<script type="application/json" id="report-specs">{script_json(specs)}</script>
<script type="application/json" id="report-embed-options">{script_json(EMBED_OPTIONS)}</script>
<script src="{assets}/report.js"></script>
</body>
</html>
"""


def chart_div(chart_id: str) -> str:
    return f'<div class="chart" id="{esc(chart_id)}"></div>'


def table(headers: list[str], rows: list[list[tuple[str, str]]], row_classes: list[str] | None = None,
          row_ids: list[str] | None = None, dataset: str | None = None) -> str:
    """An HTML table; each cell is (already escaped markup, css class). ``dataset``: the
    charts may read the table as a named dataset (rows ``s<idx>`` with a ``text`` cell)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{esc(row_classes[k])}"' if row_classes and row_classes[k] else ""
        cls += f' id="{esc(row_ids[k])}"' if row_ids else ""
        cells = "".join(f'<td class="{esc(c)}">{markup}</td>' if c else f"<td>{markup}</td>"
                        for markup, c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    marked = f' data-dataset="{esc(dataset)}"' if dataset else ""
    return f"<table{marked}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
