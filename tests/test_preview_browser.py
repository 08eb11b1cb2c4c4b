"""Card preview in a real browser: headless Chromium against the service running under gunicorn.

Chromium is driven over the DevTools protocol with a small websocket client written here (stdlib only).
Skipped, with a message, where Chromium is not installed; under CI=true a missing Chromium is a failure.
Screenshots go to test-artifacts/.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from support.helpers import PV, REPO, hook_request, save_artifact
from support.live import start_service, stop_service

pytestmark = [pytest.mark.browser, pytest.mark.fhir_server]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--window-size=1280,1800",
                  "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


def _require_or_skip(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def chromium_executable() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


# ------------------------------------------------------------------------------ a minimal DevTools client

class DevTools:
    """Just enough of RFC 6455 (client side, text frames) to speak the Chrome DevTools protocol."""

    def __init__(self, ws_url: str, timeout: float = 30.0):
        parts = urlsplit(ws_url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"DevTools refused the websocket: {status!r}")
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _message(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            if b1 & 0x80:
                mask = self._read(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
            else:
                payload = self._read(n)
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self._send_frame(0x1, json.dumps({"id": my_id, "method": method, "params": params}).encode())
        while True:
            msg = self._message()
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"page never satisfied: {expression}")

    def screenshot(self, clip_selector: str | None = None) -> bytes:
        params: dict = {"format": "png", "captureBeyondViewport": True}
        if clip_selector:
            box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(clip_selector)})"
                                ".getBoundingClientRect(); return {x: r.left + scrollX, y: r.top + scrollY, "
                                "width: r.width, height: r.height}; })()")
            params["clip"] = {**box, "scale": 1}
        else:
            height = self.evaluate("document.documentElement.scrollHeight")
            params["clip"] = {"x": 0, "y": 0, "width": 1280, "height": min(int(height), 8000), "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])

    def close(self) -> None:
        self.sock.close()


def launch_chromium(exe: str, profile) -> tuple[subprocess.Popen, DevTools]:
    """Start headless Chromium with a fresh profile and connect to its first page (also used by bench/)."""
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start: {proc.stderr.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t.get("type") == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        tools.call("Page.enable")
        tools.call("Emulation.setDeviceMetricsOverride", width=1280, height=1800, deviceScaleFactor=1, mobile=False)
        return proc, tools
    except BaseException:
        stop_chromium(proc)
        raise


def stop_chromium(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    exe = chromium_executable()
    if exe is None:
        _require_or_skip("Chromium is not installed (Debian: apt-get install chromium); browser tests skipped")
    proc, tools = launch_chromium(exe, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield tools
        tools.close()
    finally:
        stop_chromium(proc)


@pytest.fixture(scope="module")
def preview_service(fhir_server, tmp_path_factory):
    service = start_service(tmp_path_factory.mktemp("preview-service"),
                            {"CDS_PREVIEW": "true", "CDS_ALLOWED_FHIR_SERVERS": fhir_server.base_url})
    yield service
    stop_service(service)


READY = "document.readyState === 'complete' && document.body && document.body.dataset.ready === 'true'"

READ_SHOWN = """
(() => {
  const s = document.querySelector('section.scenario');
  return {
    key: s.dataset.scenario,
    service: s.dataset.service,
    noCards: !!s.querySelector('.sidebar .no-cards'),
    cards: [...s.querySelectorAll('.sidebar article.card')].map(c => ({
      summary: c.querySelector('.card-summary').textContent,
      indicator: c.dataset.indicator,
      topic: c.dataset.topic,
      colour: getComputedStyle(c).borderLeftColor,
      detailHtml: c.querySelector('.card-detail') ? c.querySelector('.card-detail').innerHTML : '',
      source: c.querySelector('.source a') ? c.querySelector('.source a').href : '',
      links: [...c.querySelectorAll('.card-links a')].map(a => a.href),
      suggestions: [...c.querySelectorAll('.suggestion > summary')].map(x => x.textContent.trim()),
      reasons: [...c.querySelectorAll('.override option')].filter(o => o.value).map(o => o.textContent),
    })),
  };
})()
"""

LAYOUT = """
(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {left: r.left + scrollX, top: r.top + scrollY,
                                                                    right: r.right + scrollX, bottom: r.bottom + scrollY,
                                                                    width: r.width, height: r.height}; };
  const s = document.querySelector('section.scenario');
  const cards = [...s.querySelectorAll('.sidebar article.card')];
  return {
    pageHeight: document.documentElement.scrollHeight,
    tryBox: box(document.querySelector('#try')),
    scenario: box(s),
    values: box(s.querySelector('.values')),
    sidebar: box(s.querySelector('.sidebar')),
    nav: box(document.querySelector('nav.rules')),
    cards: cards.map(box),
    menus: cards.flatMap(c => [...c.querySelectorAll('select')].map(m => ({menu: box(m), card: box(c)}))),
    buttons: cards.flatMap(c => [...c.querySelectorAll('.btn')].map(b => ({button: box(b), card: box(c)}))),
    text: document.body.innerText,
    openDecoys: [...document.querySelectorAll('nav details.decoys')]
      .filter(d => d.open && !d.querySelector('[aria-current]')).length,  // the chosen scenario's own box opens
    decoyBoxes: document.querySelectorAll('nav details.decoys').length,
    navKeys: [...new Set([...document.querySelectorAll('nav a.nav-item')].map(a => a.dataset.key))],
  };
})()
"""


def _rules(codes) -> list[str]:
    """Topic codes or rule ids, compared as the words they are made of (EHR-safe codes drop the hyphens)."""
    return [re.sub(r"[^a-z0-9]", "", str(c).lower()) for c in codes]


def _open(chromium, url: str):
    chromium.call("Page.navigate", url=url)
    chromium.wait_for(READY)


def test_preview_layout_rule_navigation_and_sidebar_width(chromium, preview_service):
    """The scenario with the most cards: request box on top, values beside a ~400 px sidebar, menus inside
    their cards, decoys collapsed, no spec words; screenshot for the record."""
    from cds_service.authoring import scenarios as sc

    busiest = max((sc.load(p) for p in sc.scenario_files([REPO / "cards" / "scenarios"])), key=lambda s: len(s.cards))
    _open(chromium, f"{preview_service.base_url}/preview?s={busiest.key}")
    layout = chromium.evaluate(LAYOUT)
    save_artifact("preview-page.png", chromium.screenshot())
    assert len(layout["cards"]) >= 3
    assert 395 <= layout["sidebar"]["width"] <= 405, layout["sidebar"]
    assert layout["sidebar"]["left"] >= layout["values"]["right"], "the cards sit beside the patient's values"
    assert abs(layout["sidebar"]["top"] - layout["values"]["top"]) < 40
    assert layout["tryBox"]["top"] < 150 and layout["tryBox"]["bottom"] <= layout["scenario"]["top"]
    assert layout["nav"]["right"] <= layout["tryBox"]["left"], "the rule navigation runs down the left"
    for item in layout["menus"] + layout["buttons"]:
        inner = item.get("menu") or item.get("button")
        assert item["card"]["left"] <= inner["left"] and inner["right"] <= item["card"]["right"] + 0.5, item
    assert "Selection:" not in layout["text"] and "at-most-one" not in layout["text"]
    assert layout["decoyBoxes"] >= 1 and layout["openDecoys"] == 0, "decoys start collapsed (but the chosen one's)"
    assert layout["pageHeight"] < 4000, layout["pageHeight"]  # was 46,000 px with every scenario stacked
    save_artifact("preview-sidebar.png", chromium.screenshot("section.scenario .sidebar"))

    # A scenario far down the list: the list scrolls to it, the page does not (the request box stays on top).
    last = layout["navKeys"][-1]
    _open(chromium, f"{preview_service.base_url}/preview?s={last}")
    place = chromium.evaluate("(() => { const nav = document.querySelector('nav.rules').getBoundingClientRect(); "
                              "const item = document.querySelector('nav .nav-item--current').getBoundingClientRect(); "
                              "return {scrollY, inside: item.top >= nav.top && item.bottom <= nav.bottom}; })()")
    assert place == {"scrollY": 0, "inside": True}, place


def test_every_scenario_is_drawn_with_the_real_endpoints_cards(chromium, preview_service):
    _open(chromium, preview_service.base_url + "/preview")
    keys = chromium.evaluate(LAYOUT)["navKeys"]
    assert "dx-low-mg" in keys and len(keys) > 20
    drawn_with_cards = 0
    for key in keys:
        _open(chromium, f"{preview_service.base_url}/preview?s={key}")
        scenario = chromium.evaluate(READ_SHOWN)
        assert scenario["key"] == key
        request = preview_service.get(f"/preview/request/{key}").json()
        answer = preview_service.post(f"/cds-services/{scenario['service']}", request)
        assert answer.status_code == 200, (key, answer.text)
        expected = [(c["summary"], c["indicator"], c["source"]["topic"]["code"]) for c in answer.json()["cards"]]
        drawn = [(c["summary"], c["indicator"], c["topic"]) for c in scenario["cards"]]
        assert drawn == expected, key
        assert scenario["noCards"] == (not expected), key
        drawn_with_cards += bool(drawn)
    assert drawn_with_cards >= 10

    _open(chromium, preview_service.base_url + "/preview?s=dx-low-mg")
    card = chromium.evaluate(READ_SHOWN)["cards"][0]
    card_file = yaml.safe_load((REPO / "cards" / "electrolyte-review.yaml").read_text())
    assert _rules([card["topic"]]) == _rules(["electrolyte-review"]) and card["indicator"] == "warning"
    assert card["colour"] == "rgb(179, 107, 0)"  # the warning colour of the sidebar
    assert "<strong>low</strong>" in card["detailHtml"] and "<table>" in card["detailHtml"]
    assert card["source"] == card_file["source"]["url"]
    assert card["links"] == [link["url"] for link in card_file["links"]]
    assert card["reasons"] == [r["display"] for r in card_file["overrideReasons"]]


def test_request_box_sends_to_the_real_endpoint_and_draws_the_answer(chromium, preview_service, fhir_server):
    _open(chromium, preview_service.base_url + "/preview")
    # fhirServer mode: the service fetches the patient from the FHIR server itself (nothing prefetched).
    body = hook_request(PV, "dx-low-mg", fhir_server=fhir_server.base_url, token=fhir_server.token)
    chromium.evaluate(f"document.querySelector('#request').value = {json.dumps(json.dumps(body, indent=2))}; "
                      "document.querySelector('#send').click(); true")
    chromium.wait_for("document.querySelector('#result').dataset.state === 'done'")
    cards = chromium.evaluate("[...document.querySelectorAll('#result article.card')].map(c => "
                              "({topic: c.dataset.topic, indicator: c.dataset.indicator, "
                              "summary: c.querySelector('.card-summary').textContent}))")
    # dx-low-mg: low Mg drawn before a session that ended 2 h ago
    assert _rules(c["topic"] for c in cards) == _rules(["electrolyte-review"])  # one consolidated card (v1: two)
    assert cards[0]["summary"].startswith("Low Mg 0.53 mmol/L")
    assert chromium.evaluate("document.querySelector('#status').textContent").startswith("HTTP 200")
    width = chromium.evaluate("document.querySelector('#try .sidebar').getBoundingClientRect().width")
    assert 395 <= width <= 405
    shot = save_artifact("preview-request-box.png", chromium.screenshot("#try"))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # An error answer (here: wrong hook for the chosen service) is drawn as an error, not as "no cards".
    chromium.evaluate("document.querySelector('#service').value = 'dialysis-electrolytes-order-sign'; "
                      "document.querySelector('#send').click(); true")
    chromium.wait_for("document.querySelector('#result').dataset.state === 'done' && "
                      "document.querySelector('#status').textContent.startsWith('HTTP 400')")
    assert "order-sign" in chromium.evaluate("document.querySelector('#result .error-box').textContent")

    # Not JSON at all: refused in the page.
    chromium.evaluate("document.querySelector('#request').value = '{not json'; "
                      "document.querySelector('#send').click(); true")
    chromium.wait_for("document.querySelector('#result').dataset.state === 'error'")
    assert "not valid JSON" in chromium.evaluate("document.querySelector('#result').textContent")


def test_load_button_puts_the_scenario_request_in_the_box(chromium, preview_service):
    _open(chromium, preview_service.base_url + "/preview?s=dx-low-mg")
    chromium.evaluate("document.querySelector('button.load-request').click(); true")
    chromium.wait_for("document.querySelector('#result').dataset.state === 'loaded'")
    assert chromium.evaluate("document.querySelector('#service').value") == PV
    chromium.evaluate("document.querySelector('#send').click(); true")
    chromium.wait_for("document.querySelector('#result').dataset.state === 'done'")
    topics = chromium.evaluate("[...document.querySelectorAll('#result article.card')].map(c => c.dataset.topic)")
    assert _rules(topics) == _rules(["electrolyte-review"])
