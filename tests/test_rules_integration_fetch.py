"""Demo fixtures against the real FHIR server (sekmet), in EHR-prefetch mode beside fetch mode.

The server is loaded with the fixtures shifted to the real clock (tests/conftest.py); the service runs
under gunicorn with the real clock. Expected cards come from the fixtures' scenario files
(cards/scenarios/<fixture>.yaml), which tests/test_scenarios.py runs in fetch and prefetch mode.
"""
from __future__ import annotations

import pytest

from cds_service.authoring import scenarios
from support.live import ehr_prefetch
from support.helpers import PV, REPO, assert_valid_response, hook_request, rule_of

pytestmark = pytest.mark.fhir_server


def _check(resp, fixture: str) -> None:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_valid_response(body)
    scenario = scenarios.load(REPO / "cards" / "scenarios" / f"{fixture}.yaml")
    got = scenarios.actual_cards(body)
    problems = scenarios.compare(scenario, got)
    assert not problems, scenarios.report(scenario, got, problems, "EHR prefetch")


@pytest.mark.parametrize("fixture", ["dx-cramp-post-session", "dx-tachycardia", "dx-neuro-no-aluminum",
                                     "decoy-entered-in-error", "esrd-transplant", "synthea-fletcher-dialysis",
                                     "dx-high-ufr", "dx-pd-low-k", "dx-crrt-low-mg", "dx-hyperkalemia-superseded",
                                     "decoy-future-result"])
def test_ehr_prefetch_mode_matches_fetch_mode(live_service, fhir_server, fixture):
    body = hook_request(PV, fixture)
    body["prefetch"] = ehr_prefetch(fhir_server, PV, body["context"])
    _check(live_service.post(f"/cds-services/{PV}", body), fixture)


def test_fetch_mode_cramp_suggestions(live_service, fhir_server):
    body = hook_request(PV, "dx-cramp-post-session", fhir_server=fhir_server.base_url, token=fhir_server.token)
    data = live_service.post(f"/cds-services/{PV}", body).json()
    [card] = [c for c in data["cards"] if rule_of(c) == "electrolyte-review"]
    assert card["selectionBehavior"] == "any"
    assert [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in card["suggestions"]] == [
        "1995-0", "2777-1"]
