"""Over real HTTP: the service under gunicorn against the real sekmet-fhir server loaded with the fixtures.

Both modes: fetch (the service queries the FHIR server itself) and prefetch (the request carries the data,
here read from the same FHIR server the way an EHR would, by running the service's own templates).
"""
from __future__ import annotations

import json

import pytest

from support.live import ehr_prefetch
from support.helpers import OSEL, OSIGN, PV, assert_valid_response, hook_request, orders_bundle, topics

pytestmark = pytest.mark.fhir_server



def test_discovery_over_http(live_service):
    resp = live_service.get("/cds-services")
    assert resp.status_code == 200
    assert len(resp.json()["services"]) == 3


def test_health_over_http(live_service):
    body = live_service.get("/health").json()
    assert body["status"] == "ok" and "electrolyte-review" in body["rules"]


def test_fetch_mode_low_mg_card(live_service, fhir_server):
    body = hook_request(PV, "dx-low-mg", fhir_server=fhir_server.base_url, token=fhir_server.token)
    resp = live_service.post(f"/cds-services/{PV}", body)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert_valid_response(data)
    assert "electrolyte-review" in topics(data)
    assert "fetch;dur=" in resp.headers["Server-Timing"]


def test_prefetch_mode_low_mg_card_without_touching_the_fhir_server(live_service, fhir_server):
    body = hook_request(PV, "dx-low-mg")
    body["prefetch"] = ehr_prefetch(fhir_server, PV, body["context"])
    resp = live_service.post(f"/cds-services/{PV}", body)
    assert resp.status_code == 200, resp.text
    assert "electrolyte-review" in topics(resp.json())


def test_fetch_mode_normal_and_non_dialysis_patients_get_no_mg_card(live_service, fhir_server):
    for patient in ("dx-normal", "no-dialysis"):
        body = hook_request(PV, patient, fhir_server=fhir_server.base_url, token=fhir_server.token)
        resp = live_service.post(f"/cds-services/{PV}", body)
        assert resp.status_code == 200
        assert "electrolyte-review" not in topics(resp.json()), patient


def test_wrong_fhir_token_gives_412(live_service, fhir_server):
    body = hook_request(PV, "dx-low-mg", fhir_server=fhir_server.base_url, token="not-the-token")
    resp = live_service.post(f"/cds-services/{PV}", body)
    assert resp.status_code == 412
    assert resp.json()["resourceType"] == "OperationOutcome"
    assert "not-the-token" not in resp.text


def test_fhir_server_not_on_allowlist_is_not_contacted(live_service):
    body = hook_request(PV, "dx-low-mg", fhir_server="http://127.0.0.1:9/fhir", token="t")
    resp = live_service.post(f"/cds-services/{PV}", body)
    assert resp.status_code == 412
    assert "allowlist" in resp.text


@pytest.mark.parametrize("service_id", [OSIGN, OSEL])
def test_order_hooks_answer_in_both_modes(live_service, fhir_server, service_id):
    drafts = orders_bundle("iv-magnesium-sulfate")
    selections = ["MedicationRequest/draft-iv-mg"] if service_id == OSEL else None
    fetch_body = hook_request(service_id, "dx-low-mg", fhir_server=fhir_server.base_url, token=fhir_server.token,
                              draft_orders=drafts, selections=selections)
    resp = live_service.post(f"/cds-services/{service_id}", fetch_body)
    assert resp.status_code == 200, resp.text
    assert_valid_response(resp.json())
    pre_body = hook_request(service_id, "dx-low-mg", draft_orders=drafts, selections=selections)
    pre_body["prefetch"] = ehr_prefetch(fhir_server, service_id, pre_body["context"])
    resp2 = live_service.post(f"/cds-services/{service_id}", pre_body)
    assert resp2.status_code == 200
    assert topics(resp2.json()) == topics(resp.json())


def test_feedback_round_trip_over_http(live_service, fhir_server):
    body = hook_request(PV, "dx-low-mg", fhir_server=fhir_server.base_url, token=fhir_server.token)
    card = live_service.post(f"/cds-services/{PV}", body).json()["cards"][0]
    fb = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-01-15T12:00:00Z"}]}
    resp = live_service.post(f"/cds-services/{PV}/feedback", fb)
    assert resp.status_code == 200 and resp.json() == {"stored": 1}


def test_log_lines_are_json_and_carry_the_hook_instance(live_service, fhir_server):
    body = hook_request(PV, "dx-low-mg", fhir_server=fhir_server.base_url, token=fhir_server.token,
                        hook_instance="log-check-instance")
    live_service.post(f"/cds-services/{PV}", body)
    lines = [json.loads(line) for line in live_service.log_text().splitlines() if line.startswith("{")]
    hook_lines = [entry for entry in lines if entry.get("hookInstance") == "log-check-instance"]
    assert hook_lines and hook_lines[-1]["status"] == 200 and "electrolyte-review" in hook_lines[-1]["fired"]
    assert fhir_server.token not in live_service.log_text()
