"""Demo fixtures end to end through the Flask app in prefetch mode: the details of their cards.

Which cards each fixture gives is in its scenario file (cards/scenarios/<fixture>.yaml, run by
tests/test_scenarios.py). The clock here is set a month and a half after the fixtures' anchor, so
these tests also prove that fixture time-shifting keeps each scenario's relative times intact.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cds_service import fixtures
from cds_service.authoring import scenarios
from helpers import NOW, PV, REPO, assert_valid_response, fixture_bundle, hook_request, prefetch_from_fixture

FIXTURES = sorted(fixtures.fixture_id(path) for path, _b in fixtures.patient_bundles())
LATER = NOW + timedelta(days=45, hours=3, minutes=17)


def patient_id(bundle: dict) -> str:
    return next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def call(make_app, fixture: str, now=LATER, prefetch_now=None):
    bundle = fixture_bundle(fixture)
    pid = patient_id(bundle)
    client = make_app(NOW_FN=lambda: now).test_client()
    prefetch = prefetch_from_fixture(PV, pid, bundle, now=prefetch_now or now)
    resp = client.post(f"/cds-services/{PV}", json=hook_request(PV, pid, prefetch=prefetch))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert_valid_response(body)
    return body


def card(body: dict, rule: str) -> dict:
    [found] = [c for c in body["cards"] if c["source"]["topic"]["code"] == rule]
    return found


@pytest.mark.parametrize("fixture", FIXTURES)
def test_fixture_gives_its_scenario_cards_later_and_every_card_is_complete(make_app, fixture):
    body = call(make_app, fixture)
    scenario = scenarios.load(REPO / "cards" / "scenarios" / f"{fixture}.yaml")
    got = scenarios.actual_cards(body)
    problems = scenarios.compare(scenario, got)
    assert not problems, scenarios.report(scenario, got, problems, "prefetch, 45 days later")
    for c in body["cards"]:
        assert len(c["summary"]) < 140
        assert c["source"]["label"] and c["source"]["url"].startswith("https://")
        assert c["detail"] and "(not available)" not in c["detail"] and "(not available)" not in c["summary"]


def test_cramp_card_panel_and_suggestions(make_app):
    c = card(call(make_app, "dx-cramp-post-session"), "spasm-workup")
    assert c["indicator"] == "warning"
    assert "| Magnesium | 0.62 mmol/L (1.51 mg/dL) |" in c["detail"]
    assert "2 h after the last session ended" in c["detail"]
    assert c["selectionBehavior"] == "any"
    loincs = [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in c["suggestions"]]
    assert loincs == ["1995-0", "2777-1"]  # ionized Ca and phosphate have no result since the session
    for s in c["suggestions"]:
        resource = s["actions"][0]["resource"]
        assert s["actions"][0]["type"] == "create"
        assert resource["resourceType"] == "ServiceRequest"
        assert (resource["status"], resource["intent"]) == ("draft", "proposal")
        assert resource["subject"] == {"reference": "Patient/dx-cramp-post-session"}


def test_missing_mg_suggests_a_level(make_app):
    c = card(call(make_app, "dx-low-k-mg-missing"), "magnesium-first")
    assert "no usable magnesium result" in c["detail"] and "co-management, not a ban" in c["detail"]
    [s] = c["suggestions"]
    assert s["actions"][0]["resource"]["code"]["coding"][0]["code"] == "19123-9"


def test_neuro_signs_suggest_an_aluminium_level(make_app):
    c = card(call(make_app, "dx-neuro-no-aluminum"), "aluminum-toxicity")
    assert "Disturbance in speech" in c["detail"]
    [s] = c["suggestions"]
    assert s["actions"][0]["resource"]["code"]["coding"][0]["code"] == "5574-9"


def test_aluminium_card_says_the_reference_overrides_the_seed(make_app):
    c = card(call(make_app, "dx-aluminum-high"), "aluminum-toxicity")
    assert "85 µg/L" in c["summary"] and "150–350" in c["detail"] and "KDOQI" in c["detail"]


def test_critical_potassium(make_app):
    c = card(call(make_app, "dx-hyperkalemia-critical"), "hyperkalemia")
    assert c["indicator"] == "critical" and "6.8 mmol/L" in c["summary"] and "pre-dialysis" in c["detail"]


@pytest.mark.parametrize("after,fires", [(timedelta(hours=2), True), (timedelta(hours=2, minutes=1), False)])
def test_post_dialysis_window_on_the_fixture(make_app, after, fires):
    # dx-cramp-post-session: the session ended 3 h before the anchor. Data as at the anchor, clock moved on:
    # 5 h after the session end the card still shows; 5 h 1 min after, it does not.
    body = call(make_app, "dx-cramp-post-session", now=LATER + after, prefetch_now=LATER)
    topics = [c["source"]["topic"]["code"] for c in body["cards"]]
    assert ("post-dialysis-monitoring" in topics) is fires
    assert "spasm-workup" in topics  # the cramp is still within 7 days


def test_synthea_long_history_patient(make_app):
    bundle = fixture_bundle("synthea-fletcher-dialysis")
    assert len(bundle["entry"]) > 1000 and all(e["request"]["method"] == "PUT" for e in bundle["entry"])
    text = json.dumps(bundle)
    assert "urn:uuid:" not in text.replace('"fullUrl": "urn:uuid:', "")  # references rewritten to Type/id
    c = card(call(make_app, "synthea-fletcher-dialysis"), "dysrhythmia-risk")
    assert "Chronic congestive heart failure" in c["detail"]


def test_fixture_bundles_are_well_formed():
    for path, bundle in fixtures.patient_bundles():
        assert bundle["type"] == "transaction" and fixtures.anchor(bundle) is not None, path
        pid = patient_id(bundle)
        for entry in bundle["entry"]:
            res = entry["resource"]
            assert entry["request"] == {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}, path
            if res["resourceType"] in ("Observation", "Condition", "Procedure", "Encounter"):
                assert (res.get("subject") or {}).get("reference") == f"Patient/{pid}", (path, res["id"])
