"""The patient-view service end to end in-process, prefetch mode: the low-Mg patient's electrolyte review."""
from __future__ import annotations

from support.helpers import PV, assert_valid_response, fixture_bundle, hook_request, prefetch_from_fixture, rule_of, topics


def _call(client, patient_id, prefetch):
    resp = client.post(f"/cds-services/{PV}", json=hook_request(PV, patient_id, prefetch=prefetch))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert_valid_response(body)
    return body


def test_low_mg_dialysis_patient_gets_the_electrolyte_review(client):
    body = _call(client, "dx-low-mg", prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg")))
    assert topics(body) == ["electrolyte-review"]
    card = next(c for c in body["cards"] if rule_of(c) == "electrolyte-review")
    assert card["indicator"] == "warning"
    assert card["summary"] == "Low Mg 0.53 mmol/L on dialysis: replace Mg and find the cause"
    assert "0.53 mmol/L (1.3 mg/dL) **low**" in card["detail"]
    assert "before the session that ended" in card["detail"]
    assert card["source"]["topic"] == {"system": "https://cds.dialysis-cramps.example/rules",
                                       "code": "ElectrolyteReview", "display": "Electrolyte review in a dialysis patient"}
    assert card["source"]["url"].startswith("https://")


def test_normal_labs_give_no_magnesium_card(client):
    body = _call(client, "dx-normal", prefetch_from_fixture(PV, "dx-normal", fixture_bundle("dx-normal")))
    assert topics(body) == []


def test_patient_not_on_dialysis_gets_no_cards_even_with_low_mg(client):
    body = _call(client, "no-dialysis", prefetch_from_fixture(PV, "no-dialysis", fixture_bundle("no-dialysis")))
    assert body["cards"] == []


def test_server_timing_header_names_the_stages(client):
    resp = client.post(f"/cds-services/{PV}", json=hook_request(
        PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))))
    header = resp.headers["Server-Timing"]
    for stage in ("validate", "prefetch", "snapshot", "rules", "render", "total"):
        assert f"{stage};dur=" in header


def test_each_card_has_a_fresh_uuid(client):
    prefetch = prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))
    a = _call(client, "dx-low-mg", prefetch)["cards"][0]["uuid"]
    b = _call(client, "dx-low-mg", prefetch)["cards"][0]["uuid"]
    assert a != b
