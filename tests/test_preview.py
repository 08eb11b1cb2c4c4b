"""Card preview page, in-process: switched by CDS_PREVIEW, scenarios computed from the fixtures and card files,
markdown rendered with HTML escaped, nothing recorded. (The browser test is test_preview_browser.py.)"""
from __future__ import annotations

import json
import re
import shutil

import yaml
from sqlalchemy import func, select

from cds_service import fixtures
from cds_service.hooks.feedback import issued_cards
from support.helpers import PV, REPO, fixture_bundle, hook_request, prefetch_from_fixture


def sections(html: str) -> dict[str, str]:
    """scenario key -> the HTML of its section."""
    parts = re.split(r'(?=<section class="scenario")', html)
    out = {}
    for part in parts[1:]:
        key = re.search(r'data-scenario="([^"]+)"', part).group(1)
        out[key] = part.split("</section>")[0]
    return out


def summaries(fragment: str) -> list[str]:
    return re.findall(r'<h4 class="card-summary">(.*?)</h4>', fragment, re.S)


def test_preview_is_off_by_default(client):
    resp = client.get("/preview")
    assert resp.status_code == 404
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert client.post("/preview/render", json={"status": 200, "body": {"cards": []}}).status_code == 404


def test_preview_lists_every_fixture_scenario(make_app):
    resp = make_app(CDS_PREVIEW="true").test_client().get("/preview")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    expected = {f"patient-view/{fixtures.fixture_id(p)}" for p in (fixtures.FIXTURES_DIR / "patients").glob("*.json*")}
    for orders in (fixtures.FIXTURES_DIR / "orders").glob("*.json"):
        expected |= {f"order-select/{orders.stem}", f"order-sign/{orders.stem}"}
    assert set(sections(resp.get_data(as_text=True))) == expected


def test_scenario_cards_are_those_of_the_real_endpoint(make_app):
    client = make_app(CDS_PREVIEW="true").test_client()
    page = sections(client.get("/preview").get_data(as_text=True))
    answer = client.post(f"/cds-services/{PV}", json=hook_request(
        PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg")))).get_json()
    low_mg = page["patient-view/dx-low-mg"]
    assert summaries(low_mg) == [c["summary"] for c in answer["cards"]] != []
    card_file = yaml.safe_load((REPO / "cards" / "electrolyte-review.yaml").read_text())
    assert 'data-indicator="warning"' in low_mg and 'data-topic="ElectrolyteReview"' in low_mg
    assert "<strong>low</strong>" in low_mg and "<table>" in low_mg  # markdown rendered
    assert f'href="{card_file["source"]["url"]}"' in low_mg
    for reason in card_file["overrideReasons"]:
        assert f'<option value="{reason["code"]}">{reason["display"]}</option>' in low_mg
    for link in card_file["links"]:
        assert f'href="{link["url"]}"' in low_mg
    assert summaries(page["patient-view/no-dialysis"]) == []
    assert "No cards" in page["patient-view/no-dialysis"]


def test_page_follows_the_card_files(make_app, tmp_path):
    cards = tmp_path / "cards"
    shutil.copytree(REPO / "cards", cards)
    path = cards / "electrolyte-review.yaml"
    path.write_text(path.read_text().replace('summary: "{problems} on dialysis: {action}"',
                                             'summary: "Edited: {problems}"'))
    page = sections(make_app(CDS_PREVIEW="true", CDS_CARDS_DIR=str(cards)).test_client().get("/preview")
                    .get_data(as_text=True))
    assert summaries(page["patient-view/dx-low-mg"])[0] == "Edited: Low Mg 0.53 mmol/L"


def test_page_follows_the_fixtures(make_app, tmp_path, monkeypatch):
    folder = tmp_path / "fhir_fixtures"
    (folder / "patients").mkdir(parents=True)
    (folder / "orders").mkdir()
    bundle = json.loads((fixtures.FIXTURES_DIR / "patients" / "dx-low-mg.json").read_text())
    text = json.dumps(bundle).replace("dx-low-mg", "dx-lower-mg")
    bundle = json.loads(text)
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Observation" and res.get("valueQuantity", {}).get("value") == 1.3:
            res["valueQuantity"]["value"] = 1.0
    (folder / "patients" / "dx-lower-mg.json").write_text(json.dumps(bundle))
    monkeypatch.setattr(fixtures, "FIXTURES_DIR", folder)
    page = sections(make_app(CDS_PREVIEW="true").test_client().get("/preview").get_data(as_text=True))
    assert list(page) == ["patient-view/dx-lower-mg"]
    assert summaries(page["patient-view/dx-lower-mg"])[0] == (
        "Low Mg 0.41 mmol/L on dialysis: replace Mg and find the cause")


def test_preview_records_nothing(make_app):
    app = make_app(CDS_PREVIEW="true")
    assert app.test_client().get("/preview").status_code == 200
    store = app.extensions["cds"].feedback
    store.flush()
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(issued_cards)).scalar() == 0


def test_render_escapes_html_and_unsafe_links(make_app):
    client = make_app(CDS_PREVIEW="true").test_client()
    card = {"uuid": "u1", "summary": "<img src=x onerror=alert(1)>", "indicator": "critical",
            "detail": "**bold** <script>alert(1)</script> [click](javascript:alert(1))",
            "source": {"label": "Ref", "url": "javascript:alert(1)"},
            "links": [{"label": "bad", "url": "javascript:alert(2)", "type": "absolute"}],
            "suggestions": [{"label": "Do it", "uuid": "s1", "isRecommended": True,
                             "actions": [{"type": "create", "description": "Order Mg"}]}],
            "selectionBehavior": "at-most-one"}
    resp = client.post("/preview/render", json={"status": 200, "body": {"cards": [card]}})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert "<strong>bold</strong>" in html
    assert "javascript:" not in html.replace("[click](javascript:alert(1))", "")
    assert 'data-indicator="critical"' in html and "Do it" in html and "Order Mg" in html


def test_render_shows_an_operation_outcome(make_app):
    client = make_app(CDS_PREVIEW="true").test_client()
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "invalid", "details": {"text": "The request is bad."}}]}
    html = client.post("/preview/render", json={"status": 400, "body": outcome}).get_data(as_text=True)
    assert "HTTP 400" in html and "invalid: The request is bad." in html
    assert client.post("/preview/render", json={"nope": 1}).status_code == 400
