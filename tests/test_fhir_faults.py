"""Fetch mode against a misbehaving FHIR server (mocked with `responses`): graceful answers, never a 500."""
from __future__ import annotations

import re

import pytest
import requests
import responses

from support.helpers import PV, assert_valid_response, fixture_bundle, hook_request, prefetch_from_fixture, topics

FHIR = "https://fhir.example.org/r4"
ALL = re.compile(re.escape(FHIR) + r"/.*")


@pytest.fixture
def fetch_client(make_app):
    return make_app(CDS_ALLOWED_FHIR_SERVERS=FHIR, CDS_DEADLINE_MS="3000", CDS_FHIR_TIMEOUT_MS="1000").test_client()


def _body(prefetch=None):
    return hook_request(PV, "dx-low-mg", prefetch=prefetch, fhir_server=FHIR, token="secret-token")


def _dialysis_prefetch_without_labs():
    prefetch = prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))
    del prefetch["labs"]
    return prefetch


@responses.activate
def test_401_from_fhir_server_with_nothing_prefetched_is_412(fetch_client):
    responses.add(responses.GET, ALL, status=401, json={"resourceType": "OperationOutcome", "issue": []})
    resp = fetch_client.post(f"/cds-services/{PV}", json=_body())
    assert resp.status_code == 412
    text = str(resp.get_json())
    assert "secret-token" not in text
    # 401 is not retried: one call per fetched key (the Patient is never fetched: no rule reads it)
    assert len(responses.calls) == 9  # conditions, procedures, encounters, labs, aluminum, weights, medications,
    assert not any("/Patient/" in c.request.url for c in responses.calls)  # heart rate, symptoms


@responses.activate
def test_token_is_sent_as_bearer(fetch_client):
    responses.add(responses.GET, ALL, status=200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    fetch_client.post(f"/cds-services/{PV}", json=_body())
    assert responses.calls and all(c.request.headers["Authorization"] == "Bearer secret-token"
                                   for c in responses.calls)


@responses.activate
def test_timeout_on_labs_gives_200_with_data_unavailable_card(fetch_client):
    responses.add(responses.GET, ALL, body=requests.exceptions.ReadTimeout("slow"))
    resp = fetch_client.post(f"/cds-services/{PV}", json=_body(_dialysis_prefetch_without_labs()))
    assert resp.status_code == 200
    body = resp.get_json()
    assert_valid_response(body)
    assert topics(body) == ["data-unavailable"]
    assert "did not answer in time" in body["cards"][0]["detail"]


@responses.activate
def test_500_is_retried_once_then_reported(fetch_client):
    responses.add(responses.GET, ALL, status=500, body="boom")
    resp = fetch_client.post(f"/cds-services/{PV}", json=_body(_dialysis_prefetch_without_labs()))
    assert resp.status_code == 200
    assert topics(resp.get_json()) == ["data-unavailable"]
    assert len(responses.calls) == 2  # the one missing key (labs), tried twice


@responses.activate
def test_invalid_json_from_fhir_server(fetch_client):
    responses.add(responses.GET, ALL, status=200, body="<html>not fhir</html>", content_type="text/html")
    resp = fetch_client.post(f"/cds-services/{PV}", json=_body(_dialysis_prefetch_without_labs()))
    assert resp.status_code == 200
    assert "not FHIR JSON" in resp.get_json()["cards"][0]["detail"]


@responses.activate
def test_operation_outcome_in_prefetch_is_fetched_instead(fetch_client):
    prefetch = prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))
    labs = prefetch["labs"]
    prefetch["labs"] = {"resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "EHR gave up"}]}
    responses.add(responses.GET, ALL, status=200, json=labs)
    resp = fetch_client.post(f"/cds-services/{PV}", json=_body(prefetch))
    assert resp.status_code == 200
    assert "electrolyte-review" in topics(resp.get_json())
    assert len(responses.calls) == 1 and "/Observation?" in responses.calls[0].request.url


@responses.activate
def test_paging_follows_next_links_with_a_cap_and_detects_loops(make_app):
    from cds_service.fhir.client import ClientSettings, FhirClient
    from cds_service.fhir.urls import Allowlist
    from cds_service.timing import Deadline

    def page(n, nxt):
        return {"resourceType": "Bundle", "type": "searchset",
                "link": ([{"relation": "next", "url": nxt}] if nxt else []),
                "entry": [{"resource": {"resourceType": "Observation", "id": f"o{n}"}}]}

    responses.add(responses.GET, f"{FHIR}/Observation?p=1", json=page(1, f"{FHIR}/Observation?p=2"))
    responses.add(responses.GET, f"{FHIR}/Observation?p=2", json=page(2, f"{FHIR}/Observation?p=3"))
    responses.add(responses.GET, f"{FHIR}/Observation?p=3", json=page(3, f"{FHIR}/Observation?p=1"))
    client = FhirClient(Allowlist([FHIR]), ClientSettings(max_pages=2))
    capped = client.fetch("labs", f"{FHIR}/Observation?p=1", None, Deadline(5000))
    assert capped.error is None and capped.truncated and len(capped.data["entry"]) == 2
    looping = FhirClient(Allowlist([FHIR]), ClientSettings(max_pages=10)).fetch(
        "labs", f"{FHIR}/Observation?p=1", None, Deadline(5000))
    assert looping.error is not None and looping.error.kind == "paging-loop"


@responses.activate
def test_next_link_to_another_host_is_not_followed():
    from cds_service.fhir.client import ClientSettings, FhirClient
    from cds_service.fhir.urls import Allowlist
    from cds_service.timing import Deadline

    responses.add(responses.GET, f"{FHIR}/Observation?p=1", json={
        "resourceType": "Bundle", "type": "searchset", "entry": [],
        "link": [{"relation": "next", "url": "https://evil.example/steal"}]})
    result = FhirClient(Allowlist([FHIR]), ClientSettings()).fetch("labs", f"{FHIR}/Observation?p=1", None,
                                                                   Deadline(5000))
    assert result.error is not None and result.error.kind == "refused"
    assert len(responses.calls) == 1


@responses.activate
def test_redirect_is_not_followed():
    from cds_service.fhir.client import ClientSettings, FhirClient
    from cds_service.fhir.urls import Allowlist
    from cds_service.timing import Deadline

    responses.add(responses.GET, f"{FHIR}/Patient/1", status=302, headers={"Location": "https://evil.example/"})
    result = FhirClient(Allowlist([FHIR]), ClientSettings()).fetch("patient", f"{FHIR}/Patient/1", None,
                                                                   Deadline(5000))
    assert result.error.kind == "refused"
    assert len(responses.calls) == 1
