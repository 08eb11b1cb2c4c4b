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
from support.helpers import (NOW, PV, REPO, assert_valid_response, fixture_bundle, hook_request,
                             prefetch_from_fixture, rule_of, topics)

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
    [found] = [c for c in body["cards"] if rule_of(c) == rule]
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


def test_cramp_patient_gets_one_card_with_the_table_and_orders(make_app):
    body = call(make_app, "dx-cramp-post-session")
    assert topics(body) == ["electrolyte-review"]  # v1 gave five overlapping cards
    c = body["cards"][0]
    assert c["indicator"] == "warning" and c["source"]["topic"]["code"] == "ElectrolyteReview"
    assert "| Magnesium | 0.62 mmol/L **low** | drawn 1 h ago, 2 h after the session that ended 3 h ago |" in c["detail"]
    assert "rebounds, not counted as low" in c["detail"]  # the post-dialysis K 3.3
    assert c["selectionBehavior"] == "any"
    loincs = [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in c["suggestions"]]
    assert loincs == ["1995-0", "2777-1"]  # ionized Ca and phosphate: only from before the session
    for s in c["suggestions"]:
        resource = s["actions"][0]["resource"]
        assert s["actions"][0]["type"] == "create"
        assert resource["resourceType"] == "ServiceRequest"
        assert (resource["status"], resource["intent"]) == ("draft", "proposal")
        assert resource["subject"] == {"reference": "Patient/dx-cramp-post-session"}


def test_missing_mg_with_low_k_asks_to_measure_it(make_app):
    c = card(call(make_app, "dx-low-k-mg-missing"), "electrolyte-review")
    assert "measure Mg and correct it if low" in c["detail"] and "first" not in c["detail"].lower()
    [s] = c["suggestions"]
    assert s["actions"][0]["resource"]["code"]["coding"][0]["code"] == "19123-9"


def test_neuro_signs_suggest_an_aluminum_level(make_app):
    c = card(call(make_app, "dx-neuro-no-aluminum"), "aluminum-toxicity")
    assert "Disturbance in speech" in c["detail"]
    [s] = c["suggestions"]
    assert s["actions"][0]["resource"]["code"]["coding"][0]["code"] == "5574-9"


def test_aluminum_card_names_the_patients_source(make_app):
    c = card(call(make_app, "dx-aluminum-high"), "aluminum-toxicity")
    assert "85 µg/L" in c["summary"] and "aluminum hydroxide 320 mg/5 mL" in c["detail"]
    assert "Guideline 11" in c["detail"]


def test_critical_potassium_says_what_to_do(make_app):
    c = card(call(make_app, "dx-hyperkalemia-critical"), "hyperkalemia")
    assert c["indicator"] == "critical" and "6.8 mmol/L" in c["summary"]
    assert "drawn 2 h ago, 2 d 18 h after the session that ended 2 d 20 h ago" in c["detail"]
    assert "urgent dialysis" in c["detail"].lower() and "IV calcium" in c["detail"]


def test_superseded_potassium_is_a_recheck_with_the_session_named(make_app):
    c = card(call(make_app, "dx-hyperkalemia-superseded"), "hyperkalemia")
    assert c["indicator"] == "warning"
    assert "drawn 6 h ago, before the session that ended 1 h ago" in c["detail"]
    assert "emergency" not in c["summary"].lower()


@pytest.mark.parametrize("after,shifting", [(timedelta(hours=1, minutes=59), True), (timedelta(hours=2, minutes=1), False)])
def test_shifting_window_on_the_fixture(make_app, after, shifting):
    # dx-cramp-post-session: the session ended 3 h before the anchor. Data as at the anchor, clock moved on:
    # just under 5 h after the session end the card still says values are shifting; just over, it does not.
    body = call(make_app, "dx-cramp-post-session", now=LATER + after, prefetch_now=LATER)
    c = card(body, "electrolyte-review")  # the cramp is still within 7 days
    assert ("values keep shifting" in c["detail"]) is shifting


def test_no_fixture_patient_gets_more_than_three_patient_view_cards(make_app):
    counts = {fixture: len(call(make_app, fixture)["cards"]) for fixture in FIXTURES}
    assert max(counts.values()) <= 3, counts


def test_synthea_long_history_patient(make_app):
    bundle = fixture_bundle("synthea-fletcher-dialysis")
    assert len(bundle["entry"]) > 1000 and all(e["request"]["method"] == "PUT" for e in bundle["entry"])
    text = json.dumps(bundle)
    assert "urn:uuid:" not in text.replace('"fullUrl": "urn:uuid:', "")  # references rewritten to Type/id
    c = card(call(make_app, "synthea-fletcher-dialysis"), "electrolyte-review")
    assert "0.58 mmol/L" in c["detail"]  # heart failure alone with a mild low Mg: no dysrhythmia card


def test_fixture_bundles_are_well_formed():
    for path, bundle in fixtures.patient_bundles():
        assert bundle["type"] == "transaction" and fixtures.anchor(bundle) is not None, path
        pid = patient_id(bundle)
        for entry in bundle["entry"]:
            res = entry["resource"]
            assert entry["request"] == {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}, path
            if res["resourceType"] in ("Observation", "Condition", "Procedure", "Encounter"):
                assert (res.get("subject") or {}).get("reference") == f"Patient/{pid}", (path, res["id"])
