"""The trend app in headless Chromium: a card's smart link in the EHR double's sidebar, through the whole
SMART launch (authorize, PKCE, code exchange), to the charts and table of the patient's values.

Screenshots go to test-artifacts/ (smart-app.png, smart-app-narrow.png).
"""
from __future__ import annotations

import json

import pytest

from support.helpers import save_artifact
from support.smart import TREND, fixture_results
from test_preview_browser import chromium  # noqa: F401 (the headless Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.fhir_server]

READ_PAGE = """(() => ({
  url: location.href,
  focus: document.body.dataset.focus,
  charts: [...document.querySelectorAll('svg.chart[data-analyte]')].map(s => ({
    analyte: s.dataset.analyte, points: +s.dataset.points,
    markers: [...s.querySelectorAll('path.marker')].reduce((n, p) => n + +p.dataset.count, 0),
    sessions: s.querySelectorAll('rect.session').length,
    width: s.getBoundingClientRect().width, height: s.getBoundingClientRect().height})),
  rows: [...document.querySelectorAll('table.results tbody tr')].map(r => [...r.cells].map(c => c.textContent)),
  latest: Object.fromEntries([...document.querySelectorAll('figure.analyte')].map(f =>
    [f.dataset.analyte, (f.querySelector('.latest strong') || {}).textContent])),
  timeline: document.querySelector('svg.timeline') ? +document.querySelector('svg.timeline').dataset.meds : -1,
  styled: getComputedStyle(document.querySelector('figure.analyte--focus')).borderTopColor,
}))()"""




def _open_from_card(chromium, env) -> dict:  # noqa: F811
    chromium.call("Page.navigate", url=f"{env.double.base_url}/ehr/patient/{TREND}")
    chromium.wait_for("document.body && document.body.dataset.ready === 'true' && !!document.querySelector('a.smart-link')")
    chromium.evaluate("document.querySelector('article[data-topic=\"ElectrolyteReview\"] a.smart-link').click(); true")
    chromium.wait_for(f"location.href.startsWith({json.dumps(env.service.base_url + '/smart/')}) && "
                      "document.readyState === 'complete' && document.body.dataset.ready === 'true'", timeout=60)
    return chromium.evaluate(READ_PAGE)


def test_card_link_opens_the_trend_app_with_the_patients_values(chromium, env):  # noqa: F811
    page = _open_from_card(chromium, env)
    assert page["focus"] == "mg" and page["url"].startswith(env.service.base_url + "/smart/?analyte=mg")
    drawn = {c["analyte"]: c for c in page["charts"]}
    assert list(drawn) == ["mg", "ica", "k", "po4"]  # the card's analyte first
    for analyte, chart in drawn.items():
        expected = fixture_results(TREND, analyte, env.fhir.loaded_at)
        assert chart["points"] == chart["markers"] == len(expected), analyte
        assert chart["sessions"] >= 36 and chart["width"] > 400 and chart["height"] > 80
    # The table holds the same values, newest first, as the lab reported them and in mmol/L.
    mg_rows = [r for r in page["rows"] if r[1] == "Mg"]
    expected_mg = fixture_results(TREND, "mg", env.fhir.loaded_at)
    assert len(mg_rows) == len(expected_mg)
    newest = expected_mg[-1][1]["valueQuantity"]
    assert mg_rows[0][2] == "0.52" and mg_rows[0][3] == "mmol/L" and mg_rows[0][5] == "pre-session"
    assert mg_rows[0][4] == f"{newest['value']} {newest['code']}"
    assert page["latest"]["mg"] == "0.52 mmol/L" and page["timeline"] == 3
    assert page["styled"] == "rgb(11, 92, 173)"  # the stylesheet loaded under the strict CSP
    shot = save_artifact("smart-app.png", chromium.screenshot())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_units_and_a_narrow_ehr_activity(chromium, env):  # noqa: F811
    _open_from_card(chromium, env)
    chromium.evaluate("[...document.querySelectorAll('a.pill')].find(a => a.textContent === 'mg/dL').click(); true")
    chromium.wait_for("document.body && document.body.dataset.unit === 'mg/dL'")
    page = chromium.evaluate(READ_PAGE)
    assert page["latest"]["mg"] == "1.3 mg/dL" and page["focus"] == "mg"
    chromium.call("Emulation.setDeviceMetricsOverride", width=420, height=1400, deviceScaleFactor=1, mobile=False)
    try:
        chromium.call("Page.reload")
        chromium.wait_for("document.readyState === 'complete' && document.body.dataset.ready === 'true'")
        overflow = chromium.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, "the page scrolls sideways in a narrow activity"
        widths = [c["width"] for c in chromium.evaluate(READ_PAGE)["charts"]]
        assert all(380 <= w <= 420 for w in widths), widths
        save_artifact("smart-app-narrow.png", chromium.evaluate("1") and _shot(chromium, 420))
    finally:
        chromium.call("Emulation.setDeviceMetricsOverride", width=1280, height=1800, deviceScaleFactor=1,
                      mobile=False)


def _shot(chromium, width: int) -> bytes:  # noqa: F811
    import base64
    height = chromium.evaluate("document.documentElement.scrollHeight")
    return base64.b64decode(chromium.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                          clip={"x": 0, "y": 0, "width": width, "height": min(height, 6000),
                                                "scale": 1})["data"])
