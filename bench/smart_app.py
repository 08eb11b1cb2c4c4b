"""Electrolyte trend app: 10,000 observations loaded and drawn (target: under 2 s).

A year of a dialysis patient's Mg, ionized Ca, K and phosphate (10,000 results: 2,500 panels of
the four, Mg in mmol/L or mg/dL), three HD sessions a week with pre/post weights, served by a loopback FHIR stub in
pages of 1,000 (next links, as Epic and Oracle page). The service runs under gunicorn (2 workers);
the app's session cookie is sealed here with the service's CDS_SMART_SECRET, as the callback would
seal it, so only the page is measured: the FHIR reads (10 pages of labs and the other queries at
once), parsing, classifying every result against every session, SVG charts and the table.

Two figures, each the median of the runs (after one warm-up):
- server: GET /smart/?days=365 over HTTP until the last byte (what the EHR's browser waits for);
- browser: headless Chromium, navigation start to the load event (download, parse, layout, paint
  of the 10,000 markers and the 10,000-row table), the figure the target is about.

    .venv/bin/python bench/smart_app.py [--observations 10000] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

import requests

from common import REPO, ServiceProcess, write_result

sys.path.insert(0, str(REPO / "tests"))
from cds_service.devtools.fhir_stubs import Reply, StubServer  # noqa: E402
from cds_service.smart.sealed import Sealer  # noqa: E402

TARGET_MS = 2000.0
SECRET = "bench-secret"
PID = "bench-trend"
PAGE = 1000
PANEL = [("2601-3", "mmol/L", 0.45, 1.1), ("19123-9", "mg/dL", 1.1, 2.7), ("1995-0", "mmol/L", 0.95, 1.35),
         ("2823-3", "mmol/L", 3.2, 6.2), ("2777-1", "mg/dL", 2.5, 7.5)]


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def history(n_obs: int, now: datetime, seed: int = 11) -> dict[str, list[dict]]:
    rnd = random.Random(seed)
    sessions, weights, labs = [], [], []
    end = now - timedelta(hours=3)
    i = 0
    while end > now - timedelta(days=366):
        start = end - timedelta(hours=4)
        sessions.append({"resourceType": "Procedure", "id": f"hd-{i}", "status": "completed",
                         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "302497006"}]},
                         "subject": {"reference": f"Patient/{PID}"},
                         "performedPeriod": {"start": _ts(start), "end": _ts(end)}})
        pre = round(70 + rnd.random() * 3, 1)
        for kg, when in ((pre, start - timedelta(minutes=20)), (pre - 2.4, end + timedelta(minutes=15))):
            weights.append({"resourceType": "Observation", "id": f"w-{len(weights)}", "status": "final",
                            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                            "subject": {"reference": f"Patient/{PID}"}, "effectiveDateTime": _ts(when),
                            "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org",
                                              "code": "kg"}})
        end -= timedelta(days=(2, 2, 3)[i % 3])
        i += 1
    span = 365 * 24 * 3600
    draws = n_obs // 4  # a draw is a panel: Mg (mmol/L or mg/dL), iCa, K, phosphate at one time
    for k in range(n_obs):
        loinc, unit, lo, hi = PANEL[2 + k % 4 - 1] if k % 4 else PANEL[(k // 4) % 2]
        when = now - timedelta(seconds=span * (k // 4 + 0.5) / draws)
        labs.append({"resourceType": "Observation", "id": f"o-{k}", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                     "subject": {"reference": f"Patient/{PID}"}, "effectiveDateTime": _ts(when),
                     "valueQuantity": {"value": round(lo + rnd.random() * (hi - lo), 2), "unit": unit,
                                       "system": "http://unitsofmeasure.org", "code": unit}})
    return {"labs": labs, "procedures": sessions, "weights": weights}


def handler_for(data: dict[str, list[dict]], base_holder: list[str]):
    def bundle(resources: list[dict], next_url: str | None) -> bytes:
        body = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
                "entry": [{"resource": r} for r in resources]}
        if next_url:
            body["link"] = [{"relation": "next", "url": next_url}]
        return json.dumps(body).encode()

    pages: dict[tuple[str, int], bytes] = {}

    def handle(request) -> Reply:
        path, query = request.path, request.query
        if path.endswith(f"/Patient/{PID}"):
            return Reply(body={"resourceType": "Patient", "id": PID, "name": [{"text": "Bench Trend"}]})
        kind = None
        if path.endswith("/Procedure"):
            kind = "procedures"
        elif path.endswith("/Observation") and "19123-9" in query.get("code", ""):
            kind = "labs"
        elif path.endswith("/Observation") and "29463-7" in query.get("code", ""):
            kind = "weights"
        if kind is None:
            return Reply(body=bundle([], None))
        page = int(query.get("_page", "0"))
        key = (kind, page)
        if key not in pages:
            items = data[kind]
            more = (page + 1) * PAGE < len(items)
            nxt = f"{base_holder[0]}/{path.rsplit('/', 1)[-1]}?patient={PID}&_page={page + 1}&code={query.get('code', '')}"
            pages[key] = bundle(items[page * PAGE:(page + 1) * PAGE], nxt if more else None)
        return Reply(body=pages[key])
    return handle


def browser_load_ms(base_url: str, cookie: str, url: str, runs: int) -> list[float]:
    from test_preview_browser import CHROMIUM_FLAGS, DevTools, chromium_executable
    import subprocess
    import tempfile
    from pathlib import Path

    exe = chromium_executable()
    if exe is None:
        return []
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium did not start")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        page = next(t for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
                    if t.get("type") == "page")
        tools = DevTools(page["webSocketDebuggerUrl"], timeout=60)
        tools.call("Page.enable")
        tools.call("Network.enable")
        tools.call("Network.setCookie", name="smart_session", value=cookie, url=base_url + "/smart/")
        out = []
        for i in range(runs + 1):
            tools.call("Page.navigate", url=url)
            tools.wait_for("document.readyState === 'complete' && performance.getEntriesByType('navigation')[0]"
                           " && performance.getEntriesByType('navigation')[0].loadEventEnd > 0", timeout=60)
            nav = tools.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0]; "
                                 "return {load: n.loadEventEnd, labs: +document.body.dataset.labs, "
                                 "markers: [...document.querySelectorAll('svg.chart path.marker')].reduce((a, p) => "
                                 "a + +p.dataset.count, 0)}; })()")
            if nav["labs"] < 1 or nav["markers"] != nav["labs"]:
                raise RuntimeError(f"page did not draw every result: {nav}")
            if i:  # the first navigation warms up
                out.append(nav["load"])
        tools.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    data = history(args.observations, now)
    base_holder = [""]
    stub = StubServer(handler_for(data, base_holder)).start()
    base_holder[0] = stub.base_url
    try:
        env = {"CDS_ALLOWED_FHIR_SERVERS": stub.base_url, "CDS_SMART_SECRET": SECRET}
        with ServiceProcess(workers=2, env=env) as service:
            cookie = Sealer(SECRET, "session").seal({"iss": stub.base_url, "token": "bench-token", "patient": PID,
                                                     "exp": int(time.time()) + 3600, "analyte": "mg"})
            url = f"{service.base_url}/smart/?days=365"
            server_ms, sizes, timings = [], [], []
            for i in range(args.runs + 1):
                t0 = time.perf_counter()
                resp = requests.get(url, cookies={"smart_session": cookie}, timeout=60)
                elapsed = (time.perf_counter() - t0) * 1000.0
                if resp.status_code != 200 or f'data-labs="{args.observations}"' not in resp.text:
                    raise RuntimeError(f"the page did not show every result: HTTP {resp.status_code}")
                if i:
                    server_ms.append(elapsed)
                    sizes.append(len(resp.content))
                    timings.append(resp.headers.get("Server-Timing", ""))
            browser_ms = browser_load_ms(service.base_url, cookie, url, args.runs)
    finally:
        stub.stop()
    server_median = statistics.median(server_ms)
    browser_median = statistics.median(browser_ms) if browser_ms else None
    figure = browser_median if browser_median is not None else server_median
    result = {
        "observations": args.observations, "sessions": len(data["procedures"]), "runs": args.runs,
        "server_ms": [round(x, 1) for x in server_ms], "server_median_ms": round(server_median, 1),
        "browser_load_ms": [round(x, 1) for x in browser_ms],
        "browser_median_ms": round(browser_median, 1) if browser_median is not None else None,
        "page_bytes": sizes[0], "server_timing_last": timings[-1], "target_ms": TARGET_MS,
        "passed": figure < TARGET_MS,
        "method": "FHIR stub on loopback paging 1,000 per page; service under gunicorn, 2 workers; "
                  "server = HTTP GET to last byte; browser = headless Chromium navigation start to loadEventEnd",
    }
    path = write_result("smart_app", result)
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
