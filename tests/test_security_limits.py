"""Request limits: oversize bodies get 413, deeply nested JSON gets 400, both as OperationOutcome."""
from __future__ import annotations

import json

import pytest

from support.security import (FEEDBACK_URL, SERVICE, SERVICE_URL, Keys, auth, hook_request, make_app, mint,
                          write_jwks)

LIMIT = 20_000


@pytest.fixture(scope="module")
def keys():
    return Keys()


@pytest.fixture()
def client(tmp_path, keys):
    path = write_jwks(tmp_path, keys)
    return make_app(tmp_path, str(path), CDS_MAX_BODY_BYTES=str(LIMIT), CDS_MAX_JSON_DEPTH="32").test_client()


def post(client, keys, path: str, raw: bytes, aud: str, authenticated: bool = True):
    headers = {"Content-Type": "application/json"}
    if authenticated:
        headers.update(auth(mint(keys, jku=None, aud=aud)))
    return client.post(path, data=raw, headers=headers)


def padded_request(size: int) -> bytes:
    body = hook_request(with_fhir=False)
    body["extension"] = {"padding": ""}
    raw = json.dumps(body).encode()
    body["extension"]["padding"] = "x" * (size - len(raw))
    out = json.dumps(body).encode()
    assert len(out) == size
    return out


def test_body_just_under_the_limit_is_served(client, keys):
    resp = post(client, keys, f"/cds-services/{SERVICE}", padded_request(LIMIT), SERVICE_URL)
    assert resp.status_code == 200


@pytest.mark.parametrize("endpoint", ["invoke", "feedback"])
def test_body_over_the_limit_gets_413(client, keys, endpoint):
    path = f"/cds-services/{SERVICE}" + ("/feedback" if endpoint == "feedback" else "")
    aud = SERVICE_URL if endpoint == "invoke" else FEEDBACK_URL
    resp = post(client, keys, path, padded_request(LIMIT + 1), aud)
    assert resp.status_code == 413
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "too-costly"


def test_oversize_body_from_an_unauthenticated_caller_is_refused_before_reading(client, keys):
    resp = post(client, keys, f"/cds-services/{SERVICE}", padded_request(LIMIT * 3), SERVICE_URL,
                authenticated=False)
    assert resp.status_code == 401


@pytest.mark.parametrize("endpoint", ["invoke", "feedback"])
def test_deep_nesting_gets_400(client, keys, endpoint):
    path = f"/cds-services/{SERVICE}" + ("/feedback" if endpoint == "feedback" else "")
    aud = SERVICE_URL if endpoint == "invoke" else FEEDBACK_URL
    raw = b'{"hook": "patient-view", "extension": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    resp = post(client, keys, path, raw, aud)
    assert resp.status_code == 400
    assert "nested deeper than 32" in resp.get_json()["issue"][0]["diagnostics"]


def test_brackets_inside_strings_do_not_count_as_nesting(client, keys):
    body = hook_request(with_fhir=False)
    body["extension"] = {"note": "[" * 500 + "{" * 500 + '\\"[['}
    resp = post(client, keys, f"/cds-services/{SERVICE}", json.dumps(body).encode(), SERVICE_URL)
    assert resp.status_code == 200


def test_nesting_at_the_limit_is_parsed(client, keys):
    body = hook_request(with_fhir=False)
    inner: object = 1
    for _ in range(30):  # 30 levels inside extension, +2 for the request and extension objects = 32
        inner = [inner]
    body["extension"] = {"deep": inner}
    resp = post(client, keys, f"/cds-services/{SERVICE}", json.dumps(body).encode(), SERVICE_URL)
    assert resp.status_code == 200
