"""The cost report in a real headless browser: it loads, shows the total, asks for nothing.

Chromium runs headless with its DevTools protocol on a local port; the test drives it over
a WebSocket (``websocket-client``) to open the page and listen to what happens:

* every network request the page makes (only the ``file:`` page itself is allowed);
* console messages of level error, uncaught exceptions and JavaScript dialogs (an
  ``alert`` from an unescaped ``<script>`` in a message body would open one);
* the rendered text, which must hold the headline total;
* a screenshot (a PNG of the whole page), which must be a real image.

DNS is mapped to nowhere (``--host-resolver-rules``), so even a request that slipped
through could not leave the machine. The test skips when no Chromium is installed
(``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import json
import queue
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smsanalytics.report import cost_report

from . import test_report as fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)")


class _DevTools:
    """A minimal Chrome DevTools Protocol client: send commands, collect events."""

    def __init__(self, ws_url: str) -> None:
        websocket = pytest.importorskip("websocket", reason="needs websocket-client")
        self._ws = websocket.create_connection(ws_url, timeout=TIMEOUT, suppress_origin=True)
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def _send(self, method: str, params: dict[str, Any]) -> int:
        self._next += 1
        self._ws.send(json.dumps({"id": self._next, "method": method, "params": params}))
        return self._next

    def _receive(self) -> dict[str, Any]:
        msg = json.loads(self._ws.recv())
        if "method" in msg:
            self.events.append(msg)
            if msg["method"] == "Page.javascriptDialogOpening":
                # An open alert() blocks the page: record it (above), then dismiss it.
                self._send("Page.handleJavaScriptDialog", {"accept": True})
        return msg

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = self._send(method, params)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = self._receive()
            if msg.get("id") == ident:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise TimeoutError(method)

    def wait_for(self, method: str) -> dict[str, Any]:
        for e in self.events:
            if e["method"] == method:
                return e
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = self._receive()
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def close(self) -> None:
        self._ws.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[str]:
    """Start headless Chromium on a free DevTools port; yield its HTTP endpoint."""
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-default-apps", "--hide-scrollbars", "--mute-audio",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         "--remote-allow-origins=*", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1200,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + TIMEOUT
        endpoint = None
        while endpoint is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                if proc.poll() is not None:
                    pytest.fail(f"chromium exited with {proc.returncode}")
                continue
            if "DevTools listening on ws://" in line:
                host = line.split("ws://", 1)[1].split("/", 1)[0]
                endpoint = f"http://{host}"
        if endpoint is None:
            pytest.fail("chromium did not start its DevTools endpoint in time")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _page(endpoint: str) -> _DevTools:
    with urllib.request.urlopen(f"{endpoint}/json/list", timeout=TIMEOUT) as r:
        targets = json.load(r)
    page = next(t for t in targets if t.get("type") == "page")
    return _DevTools(page["webSocketDebuggerUrl"])


# What the page looks like, measured in the browser (CSS px): how wide the document is,
# the right edge of each table, the width of each visible table cell, and the height of
# each text of the chart (matplotlib draws text as glyph paths, one <g id="text_N"> each).
_LAYOUT_JS = """(() => {
  const box = e => e.getBoundingClientRect();
  const cells = [...document.querySelectorAll('td')].filter(td => box(td).width > 0);
  const texts = [...document.querySelectorAll('svg.chart g[id^="text_"]')]
    .map(g => box(g)).filter(b => b.width > 0);
  return {
    scrollWidth: document.scrollingElement.scrollWidth,
    tableRight: Math.max(...[...document.querySelectorAll('table')].map(t => box(t).right)),
    narrowestCell: Math.min(...cells.map(td => box(td).width)),
    cells: cells.length,
    chartTexts: texts.length,
    smallestText: Math.min(...texts.map(b => Math.min(b.width, b.height))),
    chartWidth: box(document.querySelector('svg.chart')).width,
  };
})()"""


def render(endpoint: str, html_file: Path, screenshot: Path, width: int = 1100,
           mobile: bool = False) -> dict[str, Any]:
    """Open `html_file` `width` CSS px wide, wait for it to load, report what it did."""
    tab = _page(endpoint)
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            tab.call(f"{domain}.enable")
        tab.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
                 deviceScaleFactor=1, mobile=mobile)
        tab.call("Page.navigate", url=html_file.as_uri())
        tab.wait_for("Page.loadEventFired")
        text = tab.call("Runtime.evaluate", expression="document.body.innerText",
                        returnByValue=True)["result"]["value"]
        height = tab.call("Runtime.evaluate", returnByValue=True,
                          expression="document.documentElement.scrollHeight")["result"]["value"]
        layout = tab.call("Runtime.evaluate", expression=_LAYOUT_JS,
                          returnByValue=True)["result"]["value"]
        shot = tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        # A last round trip flushes the events the page may still be sending.
        tab.call("Runtime.evaluate", expression="1")
        events = tab.events
    finally:
        tab.close()
    requests = [e["params"]["request"]["url"] for e in events
                if e["method"] == "Network.requestWillBeSent"]
    errors = [e["params"] for e in events if e["method"] == "Runtime.exceptionThrown"]
    errors += [e["params"] for e in events if e["method"] == "Runtime.consoleAPICalled"
               and e["params"].get("type") in ("error", "assert")]
    errors += [e["params"]["entry"] for e in events if e["method"] == "Log.entryAdded"
               and e["params"]["entry"].get("level") == "error"]
    dialogs = [e["params"] for e in events if e["method"] == "Page.javascriptDialogOpening"]
    return {"text": text, "requests": requests, "errors": errors, "dialogs": dialogs,
            "height": height, "layout": layout}


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_report_renders_in_a_real_browser(browser: str, tmp_path: Path) -> None:
    report = cost_report(fixture.table(), **fixture.MARCH, tz=fixture.PARIS, currency="EUR")
    page = tmp_path / "report.html"
    report.write_html(page)
    shot = tmp_path / "report.png"

    seen = render(browser, page, shot)

    assert seen["requests"] == [page.as_uri()], "the page asked for something else"
    assert seen["errors"] == []
    assert seen["dialogs"] == [], "a script from the data ran"
    assert "12.35\nEUR" in seen["text"] or "12.35 EUR" in seen["text"]  # headline total
    assert fixture.XSS in seen["text"]  # the hostile body is shown as text
    width, height = _png_size(shot)
    assert width == 1100 and height == seen["height"] > 1500
    assert shot.stat().st_size > 50_000  # a page with a chart, not a blank image


def test_report_reads_on_a_phone(browser: str, tmp_path: Path) -> None:
    # The sample's hostile rows make long cells: an unbroken sender, a long message body.
    report = cost_report(fixture.table(), **fixture.MARCH, tz=fixture.PARIS, currency="EUR")
    page = tmp_path / "report.html"
    report.write_html(page)
    shot = tmp_path / "phone.png"

    seen = render(browser, page, shot, width=390, mobile=True)
    layout = seen["layout"]

    assert seen["errors"] == [] and seen["dialogs"] == []
    assert "12.35" in seen["text"]
    # Nothing scrolls sideways: neither the page nor any table is wider than the screen.
    assert layout["scrollWidth"] <= 390
    assert layout["tableRight"] <= 390
    # No column squeezed to a word per line: each cell is a full-width "label  value" line.
    assert layout["cells"] > 50 and layout["narrowestCell"] >= 150
    # Chart text readable: the smallest glyph run (a digit is ~0.73 em high) is at least
    # 7 px, a font of ~10 CSS px; the chart fills the screen's width.
    assert layout["chartTexts"] >= 5 and layout["smallestText"] >= 7.0
    assert 300 <= layout["chartWidth"] <= 390
    width, height = _png_size(shot)
    assert width == 390 and height == seen["height"]


def test_report_chart_text_is_not_huge_on_a_desktop(browser: str, tmp_path: Path) -> None:
    report = cost_report(fixture.table(), **fixture.MARCH, tz=fixture.PARIS, currency="EUR")
    page = tmp_path / "report.html"
    report.write_html(page)
    layout = render(browser, page, tmp_path / "desktop.png")["layout"]
    assert layout["chartWidth"] <= 600 and layout["smallestText"] <= 16
    assert layout["scrollWidth"] <= 1100
