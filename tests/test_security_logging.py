"""Secrets and PHI stay out of logs, error bodies and metrics.

A full hook call carries a JWT, a FHIR access token and a named patient; some data is
fetched with the token (one fetch fails with an OperationOutcome that echoes the token and
the name back). Everything logged, through pytest's caplog and through the service's own
JSON log handler, must contain neither secret nor the patient's name or identifiers, and
nothing may even have needed scrubbing.
"""
from __future__ import annotations

import io
import json
import logging
import re

import pytest
import responses

from cds_service import logs
from support.security import (FHIR, PATIENT_ID, PATIENT_NAME_FAMILY, PATIENT_NAME_GIVEN, SERVICE, SERVICE_URL, Keys,
                          auth, hook_request, make_app, mint, write_jwks)
from support.helpers import rule_of

ACCESS_TOKEN = "fhir-access-7f3a9c21d4e8b6a0"
MRN = "MRN-55501234"


@pytest.fixture()
def json_log():
    """The service's JSON handler writing into a buffer (the installed one if present, else an equivalent)."""
    buffer = io.StringIO()
    root = logging.getLogger()
    installed = [h for h in root.handlers
                 if isinstance(h, logging.StreamHandler) and isinstance(h.formatter, logs.JsonFormatter)]
    if installed:
        old_streams = [h.setStream(buffer) for h in installed]
        yield buffer
        for h, stream in zip(installed, old_streams):
            h.setStream(stream)
        return
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ScrubFilter())
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)


def _outcome_echoing_secrets():
    return {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "security",
        "diagnostics": f"token {ACCESS_TOKEN} not valid for {PATIENT_NAME_GIVEN} {PATIENT_NAME_FAMILY}"}]}


def test_full_request_leaves_no_token_or_name_in_logs_bodies_or_metrics(tmp_path, caplog, json_log):
    keys = Keys()
    path = write_jwks(tmp_path, keys)
    app = make_app(tmp_path, str(path), CDS_LOG_LEVEL="DEBUG")
    logs.configure("DEBUG", "json")
    client = app.test_client()
    jwt_ok = mint(keys, jku=None, aud=SERVICE_URL)
    jwt_replayed = jwt_ok
    jwt_bad = mint(Keys("-x"), jku=None, aud=SERVICE_URL)  # unknown kid: refused, and must not be logged
    bodies = []
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(re.compile(re.escape(FHIR) + r"/Observation\?.*5574-9.*"),
                 json={"resourceType": "Bundle", "type": "searchset", "entry": []})
        rsps.get(re.compile(re.escape(FHIR) + r"/Observation\?.*8867-4.*"), json=_outcome_echoing_secrets())
        rsps.get(re.compile(re.escape(FHIR) + r"/Observation\?.*"), status=500)
        rsps.get(re.compile(re.escape(FHIR) + r"/(Condition|Procedure|Encounter)\?.*"), status=403,
                 json=_outcome_echoing_secrets())

        # 1. full call: required data prefetched, the rest fetched with the access token
        body = hook_request(access_token=ACCESS_TOKEN,
                            prefetch_keys=("patient", "conditions", "procedures", "encounters", "labs"))
        resp = client.post(f"/cds-services/{SERVICE}", json=body, headers=auth(jwt_ok))
        assert resp.status_code == 200
        assert {rule_of(c) for c in resp.get_json()["cards"]} == {"electrolyte-review",
                                                                                   "data-unavailable"}
        bodies.append(resp.get_data(as_text=True))
        fetched = [c.request for c in rsps.calls]
        assert fetched and all(r.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}" for r in fetched)

        # 2. required data missing and the FHIR server refuses access: 412
        body = hook_request(access_token=ACCESS_TOKEN, prefetch_keys=("patient", "labs"))
        resp = client.post(f"/cds-services/{SERVICE}", json=body,
                           headers=auth(mint(keys, jku=None, aud=SERVICE_URL)))
        assert resp.status_code == 412
        bodies.append(resp.get_data(as_text=True))

        # 3. refused JWTs: a replay and an unknown key
        for token in (jwt_replayed, jwt_bad):
            resp = client.post(f"/cds-services/{SERVICE}", json=hook_request(access_token=ACCESS_TOKEN),
                               headers=auth(token))
            assert resp.status_code == 401
            bodies.append(resp.get_data(as_text=True))

        # 4. invalid request carrying the token: the 400 names the problem, not the token
        body = hook_request(access_token=ACCESS_TOKEN)
        body["fhirAuthorization"]["expires_in"] = "soon"
        resp = client.post(f"/cds-services/{SERVICE}", json=body,
                           headers=auth(mint(keys, jku=None, aud=SERVICE_URL)))
        assert resp.status_code == 400
        bodies.append(resp.get_data(as_text=True))

    metrics = client.get("/metrics").get_data(as_text=True)
    assert "cds_hook_calls" in metrics

    logged_caplog = "\n".join(
        f"{r.getMessage()} {json.dumps({k: v for k, v in r.__dict__.items() if k in logs._EXTRA_FIELDS}, default=str)}"
        f" {r.exc_text or ''}" for r in caplog.records)
    logged_json = json_log.getvalue()
    assert "hook answered" in logged_caplog and "hook answered" in logged_json  # both captures saw the calls
    assert "JWT refused" in logged_json

    secrets = {
        "JWT": jwt_ok, "JWT signature": jwt_ok.split(".")[2], "refused JWT": jwt_bad,
        "refused JWT signature": jwt_bad.split(".")[2], "access token": ACCESS_TOKEN,
    }
    phi = {"given name": PATIENT_NAME_GIVEN, "family name": PATIENT_NAME_FAMILY, "MRN": MRN,
           "patient id": PATIENT_ID}
    for where, text in {"caplog": logged_caplog, "JSON log": logged_json}.items():
        for what, value in {**secrets, **phi}.items():
            assert value not in text, f"{what} found in the {where}"
        assert "[redacted]" not in text, f"something secret-looking reached the {where} and had to be scrubbed"
    for text in bodies + [metrics]:
        for what, value in secrets.items():
            assert value not in text, f"{what} found in a response body or the metrics"
    assert PATIENT_NAME_FAMILY not in metrics and PATIENT_ID not in metrics


def test_operation_outcome_echoing_the_access_token_is_redacted():
    """A FHIR server's diagnostics can travel on (412 details); they must not carry our token back."""
    from cds_service.fhir.client import ClientSettings, FhirClient, FhirError
    from cds_service.fhir.urls import Allowlist
    from cds_service.timing import Deadline

    client = FhirClient(Allowlist([FHIR]), ClientSettings(retries_5xx=0))
    with responses.RequestsMock() as rsps:
        rsps.get(f"{FHIR}/Patient/{PATIENT_ID}", json=_outcome_echoing_secrets(), status=400)
        with pytest.raises(FhirError) as err:
            client.get_json(f"{FHIR}/Patient/{PATIENT_ID}", ACCESS_TOKEN, Deadline(2000))
    assert err.value.kind == "operation-outcome"
    assert ACCESS_TOKEN not in err.value.detail and "[redacted]" in err.value.detail
    client.close()


# ------------------------------------------------------------------ the scrubber itself (defence in depth)

JWT_LIKE = "eyJhbGciOiJFUzM4NCIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2VociJ9.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Bearer abc.def-123", "abc.def-123"),
    ('headers={"Authorization": "Bearer q1w2e3r4", "Accept": "x"}', "q1w2e3r4"),
    ("{'Authorization': 'Bearer zzz999'}", "zzz999"),
    ("sent Bearer tok_55aa to the server", "tok_55aa"),
    (f"token was {JWT_LIKE} (rejected)", JWT_LIKE.split(".")[2]),
    ('{"access_token": "opaque-777", "token_type": "Bearer"}', "opaque-777"),
    ("{'access_token': 'opaque-888'}", "opaque-888"),
    ('"{\\"access_token\\": \\"opaque-999\\"}"', "opaque-999"),
    ("refresh_token=rt-1234&x=1", "rt-1234"),
])
def test_scrub_removes_secrets(text, secret):
    cleaned = logs.scrub(text)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


@pytest.mark.parametrize("text", ["the basic metabolic panel was normal", "fhir.example.org answered 200",
                                  "missing Authorization header", "Observation/obs-mg-1 not used"])
def test_scrub_leaves_ordinary_text_alone(text):
    assert logs.scrub(text) == text


def test_json_formatter_scrubs_message_extras_and_traceback():
    handler_out = io.StringIO()
    handler = logging.StreamHandler(handler_out)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ScrubFilter())
    logger = logging.getLogger("test.scrub")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("upstream said {'access_token': 'leak-1'} and Bearer leak-2")
        except ValueError:
            logger.exception("call failed with %s", f"Authorization: Bearer {JWT_LIKE}",
                             extra={"path": "/x?access_token=leak-3", "sources": {"k": "Bearer leak-4"}})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    line = handler_out.getvalue()
    record = json.loads(line)
    assert set(record) >= {"msg", "exc", "path", "sources"}
    for leak in ("leak-1", "leak-2", "leak-3", "leak-4", JWT_LIKE.split(".")[2]):
        assert leak not in line


# ------------------------------------------------------------------ resource ids stay out of INFO logs

def test_info_logs_name_the_hook_instance_but_no_resource_id(tmp_path, caplog, json_log):
    """Unusable and oddly formed resources are logged by type and reason only (docs/security.md)."""
    import copy

    app = make_app(tmp_path, str(write_jwks(tmp_path, Keys())), CDS_REQUIRE_JWT="false")
    logs.configure("INFO", "json")
    body = hook_request(with_fhir=False)
    labs = body["prefetch"]["labs"]
    mg = labs["entry"][0]["resource"]
    odd_unit = copy.deepcopy(mg) | {"id": "obs-odd-unit-4471"}
    odd_unit["valueQuantity"] = {"value": 2.0, "unit": "furlongs", "code": "furlongs"}
    broken = copy.deepcopy(mg) | {"id": "obs-broken-4472", "status": 17}
    lenient = copy.deepcopy(mg) | {"id": "obs-lenient-4473", "effectiveDateTime": "yesterday-ish"}
    for resource in (odd_unit, broken, lenient):
        labs["entry"].append({"fullUrl": f"{FHIR}/Observation/{resource['id']}", "resource": resource})
    body["prefetch"]["conditions"]["entry"][0]["resource"]["onsetDateTime"] = "not a date"
    caplog.set_level(logging.INFO)
    resp = app.test_client().post(f"/cds-services/{SERVICE}", json=body)
    assert resp.status_code == 200
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    text = "\n".join(f"{r.getMessage()} {json.dumps({k: v for k, v in r.__dict__.items() if k in logs._EXTRA_FIELDS}, default=str)}"
                     for r in info) + json_log.getvalue()
    assert body["hookInstance"] in text  # the call is identified ...
    assert "lab value not used" in text or "lenient parse" in text  # ... and the odd resources were logged
    for resource_id in ("obs-mg-1", "obs-odd-unit-4471", "obs-broken-4472", "obs-lenient-4473", "cond-1",
                        PATIENT_ID, "prac-1"):
        assert resource_id not in text, f"{resource_id} logged at INFO or above"
