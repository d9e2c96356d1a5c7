"""Self-contained HTML pages: inlined Vega/Vega-Lite/vega-embed, specs as escaped JSON.

Pages work offline from disk: the JavaScript bundle shipped inside vl-convert-python is
inlined (nothing is fetched from a CDN), and a Content-Security-Policy allows only the
page's own two scripts (by hash) and no network access at all. Untrusted text (sentence
text, rollout ids, tags) reaches a page in exactly two ways: ``html.escape`` for markup,
and :func:`script_json` for the chart specs, which escapes ``<``, ``>``, ``&`` and
U+2028/U+2029 so no string can close the ``<script>`` block that holds it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math

import altair as alt
import vl_convert

EMBED_OPTIONS = {"actions": {"export": True, "source": False, "compiled": False, "editor": False}}

# Renders every chart of the page, then records the outcome on <body> for anyone
# (a person, a test, a monitoring script) who wants to know the page is complete.
INIT_SCRIPT = """
(function () {
  const specs = JSON.parse(document.getElementById("report-specs").textContent);
  const embedOptions = JSON.parse(document.getElementById("report-embed-options").textContent);
  const jobs = Object.keys(specs).map(function (id) {
    const options = Object.assign({}, embedOptions, {renderer: specs[id].renderer});
    return vegaEmbed("#" + id, specs[id].spec, options).catch(function (error) {
      document.getElementById(id).textContent = "This chart could not be drawn: " + error;
      console.error(error);
      throw error;
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
body #vg-tooltip-element table tr td.value { max-width: 520px; white-space: pre-wrap;
                                           word-break: break-word; }
"""


@functools.cache
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one inline script (from vl-convert, built once)."""
    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    try:
        bundle = vl_convert.javascript_bundle(vl_version=major_minor)
    except ValueError:  # a vl-convert without Altair's exact Vega-Lite version: its latest
        bundle = vl_convert.javascript_bundle()
    # Cannot happen in a JS bundle without a literal "</script", but must never break out.
    return bundle.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


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


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def page(title: str, body: str, charts: dict[str, tuple[dict, str]]) -> str:
    """A complete HTML document.

    ``body`` is trusted markup built with :func:`esc`; ``charts`` maps a chart div id
    (which the body must contain) to (Vega-Lite spec dict, renderer 'svg' or 'canvas').
    """
    bundle = javascript_bundle()
    specs = {cid: {"spec": spec, "renderer": renderer} for cid, (spec, renderer) in charts.items()}
    csp = "; ".join([
        "default-src 'none'",
        # the bundle and the init script, by hash; Vega compiles expressions with Function()
        f"script-src {_csp_hash(bundle)} {_csp_hash(INIT_SCRIPT)} 'unsafe-eval'",
        "style-src 'unsafe-inline'",
        "img-src data: blob: 'self'",
        "connect-src 'none'",
        "font-src data:",
    ])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
<script>{bundle}</script>
</head>
<body>
{body}
<script type="application/json" id="report-specs">{script_json(specs)}</script>
<script type="application/json" id="report-embed-options">{script_json(EMBED_OPTIONS)}</script>
<script>{INIT_SCRIPT}</script>
</body>
</html>
"""


def chart_div(chart_id: str) -> str:
    return f'<div class="chart" id="{esc(chart_id)}"></div>'


def table(headers: list[str], rows: list[list[tuple[str, str]]], row_classes: list[str] | None = None
          ) -> str:
    """An HTML table; each cell is (already escaped markup, css class)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{esc(row_classes[k])}"' if row_classes and row_classes[k] else ""
        cells = "".join(f'<td class="{esc(c)}">{markup}</td>' if c else f"<td>{markup}</td>"
                        for markup, c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
