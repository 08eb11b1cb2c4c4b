"""Prefetch templates and resolution (CDS Hooks 2.0 #prefetch-template, #prefetch-tokens)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.hooks.errors import HookError
from cds_service.hooks.prefetch import PrefetchKey, render_template, require, resolve, token_values

NOW = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)
KEYS = {
    "patient": PrefetchKey("Patient/{{context.patientId}}"),
    "labs": PrefetchKey("Observation?patient={{context.patientId}}&code=http://loinc.org|2601-3", since_days=30,
                        required=True),
    "visit": PrefetchKey("Encounter/{{context.encounterId}}"),
    "me": PrefetchKey("Practitioner/{{userPractitionerId}}"),
}


def _req(**kw):
    body = {"hook": "patient-view", "hookInstance": "i", "context": {"userId": "Practitioner/doc-1",
                                                                      "patientId": "p 1"}}
    body.update(kw)
    return body


class FakeResult:
    def __init__(self, key, url, data=None, error=None):
        self.key, self.url, self.data, self.error, self.ms = key, url, data, error, 1.0


def test_tokens_include_context_primitives_and_user_ids():
    values = token_values({"userId": "Practitioner/doc-1", "patientId": "p1", "selections": ["x"],
                           "draftOrders": {"a": 1}})
    assert values["context.patientId"] == "p1"
    assert values["userPractitionerId"] == "doc-1"
    assert "context.selections" not in values and "context.draftOrders" not in values  # only primitives


def test_render_url_encodes_and_reports_missing_tokens():
    assert render_template("Patient/{{context.patientId}}", {"context.patientId": "a b/c"}) == "Patient/a%20b%2Fc"
    assert render_template("Encounter/{{context.encounterId}}", {}) is None


def test_present_key_is_used_as_is_and_null_means_no_data():
    patient = {"resourceType": "Patient", "id": "p1"}
    res = resolve(KEYS, _req(prefetch={"patient": patient, "labs": None}), NOW, None, lambda u: True)
    assert res.data["patient"] is patient and res.source["patient"] == "prefetch"
    assert res.data["labs"] is None and res.source["labs"] == "null"
    assert "labs" not in res.unavailable


def test_absent_or_operation_outcome_keys_are_fetched_with_token_and_date_bound():
    calls = {}

    def fetcher(urls, token):
        calls.update(urls)
        calls["token"] = token
        return {k: FakeResult(k, u, data={"resourceType": "Bundle", "entry": []}) for k, u in urls.items()}

    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    body = _req(prefetch={"labs": outcome}, fhirServer="https://fhir.example/r4",
                fhirAuthorization={"access_token": "tok", "token_type": "Bearer", "expires_in": 1, "scope": "s",
                                   "subject": "s"})
    res = resolve(KEYS, body, NOW, fetcher, lambda u: True)
    assert calls["token"] == "tok"
    assert calls["patient"] == "https://fhir.example/r4/Patient/p%201"
    assert calls["labs"].startswith("https://fhir.example/r4/Observation?patient=p%201&code=")
    assert "date=ge2025-12-16T12%3A00%3A00Z" in calls["labs"]
    assert calls["me"] == "https://fhir.example/r4/Practitioner/doc-1"
    assert res.source["labs"] == "fetch"
    assert res.unavailable["visit"] == "unresolved-token"  # no encounterId in this context


def test_no_fhir_server_and_missing_required_key_is_412():
    res = resolve(KEYS, _req(prefetch={"patient": {"resourceType": "Patient"}}), NOW, None, lambda u: True)
    assert res.unavailable["labs"] == "no-fhir-server"
    with pytest.raises(HookError) as err:
        require(KEYS, res)
    assert err.value.status == 412
    assert "labs" in " ".join(err.value.details)


def test_fhir_server_not_allowlisted_is_never_contacted():
    def fetcher(urls, token):  # pragma: no cover - must not be called
        raise AssertionError("contacted a refused server")

    res = resolve(KEYS, _req(fhirServer="http://169.254.169.254/"), NOW, fetcher, lambda u: False)
    assert res.unavailable["labs"] == "refused"


def test_timeouts_are_unavailable_but_not_412():
    from cds_service.fhir.client import FhirError

    def fetcher(urls, token):
        return {k: FakeResult(k, u, error=FhirError("timeout", "read timed out")) for k, u in urls.items()}

    res = resolve(KEYS, _req(fhirServer="https://fhir.example"), NOW, fetcher, lambda u: True)
    assert res.unavailable["labs"] == "timeout"
    require(KEYS, res)  # graceful: answered with what there is, not a 412
