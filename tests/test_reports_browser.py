"""Headless Chromium opens the generated pages from disk, offline: charts render, no script runs.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
NUL-separated JSON on file descriptors 3 and 4), so the test needs no Python package
and no driver binary. Network access is unavailable to the page twice over: the DevTools
offline emulation, and a proxy that does not exist.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_reports_build import HOSTILE, HOSTILE_ID, make_warehouse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--window-size=1280,1600"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install "
                                                "chromium chromium-driver; .ci/run does it)"),
]


class DevTools:
    """A minimal DevTools-protocol client over chromium's debugging pipe."""

    def __init__(self, binary: str, profile: Path):
        from_browser, browser_out = os.pipe()
        browser_in, to_browser = os.pipe()

        def child_fds():  # the browser reads commands on fd 3 and answers on fd 4
            read_end = fcntl.fcntl(browser_in, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(browser_out, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=child_fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(browser_in)
        os.close(browser_out)
        self.reader, self.writer = from_browser, to_browser
        self.buffer = b""
        self.last_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def call(self, method: str, params: dict | None = None, *, timeout: float = 30.0) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self.writer, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for answer in self._messages(deadline):
                if answer.get("id") == self.last_id:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]
                self.events.append(answer)

    def _messages(self, deadline: float) -> list[dict]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer")
            if select.select([self.reader], [], [], left)[0]:
                chunk = os.read(self.reader, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the debugging pipe")
                self.buffer += chunk
        *complete, self.buffer = self.buffer.split(b"\0")
        return [json.loads(m) for m in complete]

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.call("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def load(self, path: Path, *, timeout: float = 30.0) -> dict:
        """Open a file; wait until every chart settled; return the page's state."""
        self.events.clear()
        self.call("Page.navigate", {"url": path.as_uri()})
        deadline = time.monotonic() + timeout
        while self.evaluate("document.body && document.body.getAttribute('data-charts-rendered')") is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"charts of {path} did not finish rendering")
            time.sleep(0.1)
        return self.evaluate("""({
            rendered: Number(document.body.getAttribute('data-charts-rendered')),
            failed: Number(document.body.getAttribute('data-charts-failed')),
            charts: document.querySelectorAll('.chart').length,
            drawn: document.querySelectorAll('.chart svg.marks, .chart canvas.marks').length,
            pwned: window.__pwned === undefined ? null : String(window.__pwned),
            images: document.querySelectorAll('img').length,
            text: document.body.innerText,
        })""")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries, non-local requests."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value")) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                found.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append("log: " + params["entry"]["text"])
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file:", "data:", "blob:", "about:")):
                    found.append("request: " + url)
        return found

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.reader)
        os.close(self.writer)


@pytest.fixture
def browser(tmp_path):
    devtools = DevTools(CHROMIUM, tmp_path / "profile")
    try:
        devtools.open_page()
        yield devtools
    finally:
        devtools.close()


def test_pages_render_offline_and_untrusted_text_stays_text(tmp_path, browser):
    from reports.build import build_report, rollout_dir_names

    warehouse = make_warehouse(tmp_path / "wh")
    result = build_report(warehouse, tmp_path / "out", png=False, permutations=50)

    index = browser.load(result.index_path)
    assert browser.problems() == []
    assert index["failed"] == 0 and index["rendered"] == index["charts"] == 2
    assert index["drawn"] == 2
    assert HOSTILE_ID in index["text"]  # the id with markup is shown as text
    assert index["pwned"] is None and index["images"] == 0
    assert "p (S)" in index["text"]

    # the statistics page: layer x head map, receiver heads, tags compared
    heads = browser.load(result.out_dir / "heads.html")
    browser.screenshot(tmp_path / "heads.png")
    assert browser.problems() == []
    assert heads["failed"] == 0 and heads["rendered"] == heads["charts"] == 3
    assert heads["drawn"] == 3 and heads["images"] == 0
    assert "How to read a p-value here" in heads["text"] and "Receiver heads" in heads["text"]
    assert browser.evaluate("document.querySelectorAll('#head_map svg .mark-rect path').length") >= 4 * 3
    assert (tmp_path / "heads.png").read_bytes()[:4] == b"\x89PNG"

    page = result.out_dir / rollout_dir_names([HOSTILE_ID])[HOSTILE_ID] / "index.html"
    state = browser.load(page)
    browser.screenshot(tmp_path / "rollout.png")
    assert browser.problems() == []
    assert state["failed"] == 0 and state["rendered"] == state["charts"] == 12  # (3 layers + 3 receivers) x 2
    assert state["drawn"] == 12
    assert state["pwned"] is None and state["images"] == 0
    for text in HOSTILE:  # the sentence table shows the text literally
        assert text.replace("\u2028", "").replace("\u2029", "")[:30] in state["text"].replace(
            "\u2028", "").replace("\u2029", "")
    assert (tmp_path / "rollout.png").read_bytes()[:4] == b"\x89PNG"

    # Hover a target point of the first vertical-score chart: its tooltip shows the
    # hostile sentence as text (vega-tooltip escapes it) and still nothing runs.
    point = browser.evaluate("""(() => {
        const marks = document.querySelectorAll('[id^="vert_"] svg .mark-symbol path');
        marks[1].scrollIntoView({block: "center"});  // below the receiver-head charts
        const r = marks[1].getBoundingClientRect();   // sentence 2: a target, hostile text
        return [r.x + r.width / 2, r.y + r.height / 2];
    })()""")
    for kind in ("mouseMoved", "mouseMoved"):
        browser.call("Input.dispatchMouseEvent", {"type": kind, "x": point[0], "y": point[1]})
    time.sleep(0.3)
    tooltip = browser.evaluate(
        "(document.getElementById('vg-tooltip-element') || {}).innerText || ''")
    assert HOSTILE[0] in tooltip
    assert browser.evaluate("window.__pwned === undefined") is True
    assert browser.problems() == []


def test_large_heatmaps_load_as_png_with_hover_and_no_nan(tmp_path, browser):
    """Above VEGA_MAX_SENTENCES the heatmaps are PNG files: they load under the page's CSP,
    hover names both sentences, and no page's visible text says 'nan' (absent tag included)."""
    import re

    from reports.build import build_report
    from reports.raster import VEGA_MAX_SENTENCES

    n = VEGA_MAX_SENTENCES + 10
    warehouse = make_warehouse(tmp_path / "wh", [("long", [f"Long sentence {i}." for i in range(n)],
                                                  {4, 30})], n_layers=2, n_heads=2)
    result = build_report(warehouse, tmp_path / "out", png=False, permutations=10)
    state = browser.load(result.out_dir / "long" / "index.html")
    assert browser.problems() == []
    assert state["failed"] == 0 and state["images"] == 1 + 3  # layer 0 (L = 2), 3 receiver heads
    assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    box = browser.evaluate("""(() => {
        const img = document.querySelector('figure.raster img');
        img.scrollIntoView({block: "center"});
        const r = img.getBoundingClientRect();
        return [r.x + r.width * 0.25, r.y + r.height * 0.75];
    })()""")
    browser.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": box[0], "y": box[1]})
    time.sleep(0.2)
    hover = browser.evaluate("document.querySelector('figure.raster .hover').innerText")
    assert re.search(r"source i = \d+: Long sentence \d+\.", hover) and "target j = " in hover
    absent = build_report(warehouse, tmp_path / "absent", png=False, permutations=10, tag="missing")
    for page in [absent.index_path, absent.out_dir / "heads.html", absent.out_dir / "long" / "index.html",
                 result.index_path]:
        text = browser.load(page)["text"]
        assert browser.problems() == []
        assert "nan" not in re.findall(r"[a-z]+", text.lower()), page
