"""Every demo fixture against the real FHIR server (sekmet), in fetch mode and in EHR-prefetch mode.

The server is loaded with the fixtures shifted to the real clock (tests/conftest.py); the service runs
under gunicorn with the real clock. Expected cards come from fhir_fixtures/expected-cards.json, the
same table the in-process prefetch tests use.
"""
from __future__ import annotations

import json

import pytest

from cds_service import fixtures
from live import ehr_prefetch
from helpers import PV, assert_valid_response, hook_request, rule_of

pytestmark = pytest.mark.fhir_server

EXPECTED = {k: [tuple(x) for x in v] for k, v in json.loads(
    (fixtures.FIXTURES_DIR / "expected-cards.json").read_text()).items() if not k.startswith("_")}


def _cards(resp) -> list[tuple[str, str]]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_valid_response(body)
    return [(rule_of(c), c["indicator"]) for c in body["cards"]]



@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fetch_mode_cards(live_service, fhir_server, fixture):
    body = hook_request(PV, fixture, fhir_server=fhir_server.base_url, token=fhir_server.token)
    assert _cards(live_service.post(f"/cds-services/{PV}", body)) == EXPECTED[fixture]


@pytest.mark.parametrize("fixture", ["dx-cramp-post-session", "dx-tachycardia", "dx-neuro-no-aluminum",
                                     "decoy-entered-in-error", "esrd-transplant", "synthea-fletcher-dialysis"])
def test_ehr_prefetch_mode_matches_fetch_mode(live_service, fhir_server, fixture):
    body = hook_request(PV, fixture)
    body["prefetch"] = ehr_prefetch(fhir_server, PV, body["context"])
    assert _cards(live_service.post(f"/cds-services/{PV}", body)) == EXPECTED[fixture]


def test_fetch_mode_cramp_suggestions(live_service, fhir_server):
    body = hook_request(PV, "dx-cramp-post-session", fhir_server=fhir_server.base_url, token=fhir_server.token)
    data = live_service.post(f"/cds-services/{PV}", body).json()
    [card] = [c for c in data["cards"] if rule_of(c) == "spasm-workup"]
    assert card["selectionBehavior"] == "any"
    assert [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in card["suggestions"]] == [
        "1995-0", "2777-1"]
