"""Card preview load time in headless Chromium, with every scenario on the page.

The service runs under gunicorn (1 worker, CDS_PREVIEW=true); Chromium loads /preview (every scenario
in the navigation, the first one drawn) and the time from navigation start to the load event is read
from the browser's own clock. Two cases, 5 loads each:

- *after an edit*: a card file is changed before each load, so the service re-runs every scenario
  against the card files (what an informaticist sees after saving a card file);
- *reload*: nothing changed (the scenarios' answers are reused; only the page is drawn);

plus the very first load after the service started (everything computed, nothing cached).

Target: every load under 1,000 ms. Writes bench/results/preview_load.json (and a screenshot to
test-artifacts/preview_load.png).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, ServiceProcess, write_result

sys.path.insert(0, str(REPO / "tests"))
from test_preview_browser import chromium_executable, launch_chromium, stop_chromium  # noqa: E402

TARGET_MS = 1000.0
READY = "document.readyState === 'complete' && document.body && document.body.dataset.ready === 'true'"
TIMING = ("(() => { const n = performance.getEntriesByType('navigation')[0]; return {ttfb: n.responseStart, "
          "html: n.responseEnd, dom: n.domContentLoadedEventEnd, load: n.loadEventEnd, "
          "bytes: n.transferSize, scenarios: new Set([...document.querySelectorAll('nav.rules a.nav-item')].map(a => a.dataset.key)).size}; })()")


def one_load(tools, url: str) -> dict:
    tools.call("Page.navigate", url=url)
    tools.wait_for(READY, timeout=60)
    tools.wait_for("performance.getEntriesByType('navigation')[0].loadEventEnd > 0", timeout=30)
    return tools.evaluate(TIMING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5, help="loads per case (default: %(default)s)")
    args = parser.parse_args()
    exe = chromium_executable()
    if exe is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    cards = Path(tempfile.mkdtemp(prefix="cds-bench-cards-"))
    os.system(f"cp -r {REPO / 'cards'}/. {cards}/")
    touched = sorted(cards.glob("*.yaml"))[0]
    results: dict[str, list[dict]] = {"after_an_edit": [], "reload": []}
    with ServiceProcess(workers=1, env={"CDS_PREVIEW": "true", "CDS_CARDS_DIR": str(cards)}) as service:
        proc, tools = launch_chromium(exe, Path(tempfile.mkdtemp(prefix="cds-bench-chromium-")))
        try:
            url = service.base_url + "/preview"
            first = one_load(tools, url)  # the first load after the service started (Chromium's caches cold too)
            for _ in range(args.loads):
                touched.write_text(touched.read_text() + "\n")  # an edit: every scenario is run again
                time.sleep(0.05)
                results["after_an_edit"].append(one_load(tools, url))
            for _ in range(args.loads):
                results["reload"].append(one_load(tools, url))
            (REPO / "test-artifacts").mkdir(exist_ok=True)
            (REPO / "test-artifacts" / "preview_load.png").write_bytes(tools.screenshot())
        finally:
            tools.close()
            stop_chromium(proc)
    summary = {}
    for case, loads in results.items():
        ready = [load["load"] for load in loads]
        summary[case] = {"median_ms": round(statistics.median(ready)), "max_ms": round(max(ready)),
                         "ttfb_median_ms": round(statistics.median(load["ttfb"] for load in loads)),
                         "page_kb": round(loads[-1]["bytes"] / 1024), "scenarios": loads[-1]["scenarios"]}
    summary["first_after_start"] = {"load_ms": round(first["load"]), "ttfb_ms": round(first["ttfb"])}
    met = all(s.get("max_ms", s.get("load_ms")) < TARGET_MS for s in summary.values())
    path = write_result("preview_load", {
        "what": "navigation start to load event of /preview in headless Chromium (1280x1800), service under "
                "gunicorn with 1 worker, on loopback",
        "target": f"every load < {TARGET_MS:.0f} ms", "met": met, "cases": summary,
        "loads": results})
    print(path.read_text())
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
