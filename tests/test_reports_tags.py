"""Issue 15 points 1-3: the tags the data holds, an absent tag, no 'nan', shared assets,
tag-free receiver views, large heatmaps as PNG."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from test_reports_build import TAG, make_warehouse, sample_rollouts

from reports.build import build_report, rollout_dir_names


def visible_text(path: Path) -> str:
    """A page's text as a reader sees it: markup, scripts and the JSON blocks removed."""
    body = path.read_text().split("<body>", 1)[1]
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    body = re.sub(r"</?(code|b)>", "", body)  # inline markup: no word break
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def every_page(out: Path) -> list[Path]:
    return [out / "index.html", out / "heads.html", *sorted(out.glob("*/index.html"))]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """One warehouse with a rollout that has no target; reports for a present and an absent tag."""
    root = tmp_path_factory.mktemp("tags")
    rollouts = [*sample_rollouts()[:2], ("problem_9_no_target", [f"Plain {i}." for i in range(10)], set())]
    warehouse = make_warehouse(root / "wh", rollouts)
    present = build_report(warehouse, root / "out", png=False, permutations=20)
    absent = build_report(warehouse, root / "out-absent", png=False, permutations=20, tag="no_such_tag")
    return warehouse, present, absent


def test_index_lists_every_tag_with_counts_and_links(reports, tmp_path):
    warehouse, present, _ = reports
    text = present.index_path.read_text()
    section = text.split("<h2>Tags in the data</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>")[1])
    # 'other' is on all 12 + 14 + 10 sentences of 3 rollouts; the target tag on 3 + 3
    assert [re.findall(r"<td[^>]*>(.*?)</td>", r)[:3] for r in rows] == [
        ["<code>other</code>", "36", "3"], [f"▶ <code>{TAG}</code>", "6", "2"]]
    assert "this report" in rows[1]
    # the other tag: the command that builds its report, then a link once it exists
    sibling = present.out_dir.with_name(f"{present.out_dir.name}-other")
    assert f"python cli.py report --tag other --out {sibling}" in html.unescape(rows[0])
    build_report(warehouse, sibling, png=False, permutations=20, tag="other")
    again = build_report(warehouse, present.out_dir, png=False, permutations=20, force=True)
    assert '<a href="../out-other/index.html">its report</a>' in again.index_path.read_text()


def test_absent_tag_is_explained_in_one_sentence(reports):
    _, _, absent = reports
    text = visible_text(absent.index_path)
    sentence = re.search(r"No sentence of these rollouts carries the tag no_such_tag[^.]*\.", text)
    assert sentence, text[:2000]
    assert f"the tags present are: other (36 sentences), {TAG} (6 sentences)" in sentence.group(0)
    assert "no_such_tag" in visible_text(absent.out_dir / "heads.html")
    # rollout pages: the tag-free receiver views, and one sentence instead of the target views
    page = absent.out_dir / "problem_9_va_00" / "index.html"
    assert "No best head: no target among the analysed sentences" in visible_text(page)
    assert 'id="recv_attn_layer' in page.read_text() and 'id="attn_layer' not in page.read_text()


def test_no_page_shows_nan(reports):
    _, present, absent = reports
    for out in (present.out_dir, absent.out_dir):
        for page in every_page(out):
            words = re.findall(r"[A-Za-z]+", visible_text(page))
            assert "nan" not in {w.lower() for w in words}, page
    # an undefined number is a dash with its reason
    no_target = visible_text(present.out_dir / "index.html")
    assert "— (no target among the analysed sentences)" in no_target


def test_shared_assets_are_referenced_not_inlined(reports):
    _, present, _ = reports
    out = present.out_dir
    bundle = (out / "assets" / "vega-bundle.js").read_text()
    assert len(bundle) > 100_000
    for page in every_page(out):
        text = page.read_text()
        assert bundle[1000:1200] not in text and len(text) < 100_000
        assert "assets/vega-bundle.js" in text and "assets/report.css" in text


def test_tag_free_receiver_views_on_every_rollout_page(reports):
    warehouse, present, _ = reports
    from reports.data import frame

    with warehouse.connect(read_only=True) as con:
        top = frame(con, "select rollout_id, layer, head from receiver_head_kurtosis "
                         "where kurtosis is not null qualify row_number() over (partition by rollout_id "
                         "order by kurtosis desc, layer, head) <= 3 order by rollout_id, kurtosis desc")
    names = rollout_dir_names(top["rollout_id"].unique(maintain_order=True).to_list())
    for rid, name in names.items():
        text = (present.out_dir / name / "index.html").read_text()
        drawn = re.findall(r'id="recv_attn_layer(\d\d)_head(\d\d)"', text)
        expected = top.filter(top["rollout_id"] == rid)
        assert [(int(a), int(b)) for a, b in drawn] == list(zip(expected["layer"], expected["head"],
                                                                strict=True))
        assert len(re.findall(r'id="recv_vert_layer', text)) == expected.height


def test_large_heatmaps_are_png_with_hover_and_zoom(tmp_path):
    from reports.raster import VEGA_MAX_SENTENCES

    n = VEGA_MAX_SENTENCES + 12
    warehouse = make_warehouse(tmp_path / "wh", [("long", [f"Sentence {i}." for i in range(n)],
                                                  {5, 20, 40})], n_layers=2, n_heads=2)
    result = build_report(warehouse, tmp_path / "out", png=False, permutations=0)
    text = (result.out_dir / "long" / "index.html").read_text()
    figures = re.findall(r'<figure class="raster" data-first="(\d+)" data-n="(\d+)">.*?'
                         r'<img src="([^"]+)"', text)
    # best heads (trimmed: first 1, n - 2 sentences) and receiver heads (no trim)
    assert ("1", str(n - 2), "attn_layer00_head00.png") in figures or any(
        f[:2] == ("1", str(n - 2)) and f[2].startswith("attn_") for f in figures)
    assert any(f[:2] == ("0", str(n)) and f[2].startswith("recv_attn_") for f in figures)
    for _, size, src in figures:
        png = (result.out_dir / "long" / src).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == int(size)
    assert "0 permutations: no p-value is computed." in visible_text(result.index_path)
