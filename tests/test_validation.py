"""Request validation and error answers: 415, 400, 404, 413, never 500; errors are OperationOutcomes."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.helpers import PV, OSEL, hook_request


def _outcome(resp):
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(i["severity"] == "error" for i in body["issue"])
    return " | ".join(i["diagnostics"] for i in body["issue"])


def test_non_json_body_is_415(client):
    resp = client.post(f"/cds-services/{PV}", data="hook=patient-view", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415
    assert "JSON" in _outcome(resp)


def test_malformed_json_is_400(client):
    resp = client.post(f"/cds-services/{PV}", data='{"hook": "patient-view",', content_type="application/json")
    assert resp.status_code == 400
    assert "not valid JSON" in _outcome(resp)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("path", [f"/cds-services/{PV}", f"/cds-services/{PV}/feedback"])
def test_nan_and_infinity_are_400_naming_the_literal(client, literal, path):
    """Python's json reads these as floats; they are not JSON (RFC 8259 section 6)."""
    body = json.dumps(hook_request(PV, "dx-low-mg"))
    body = body.replace('"hookInstance":', f'"x-value": {literal}, "hookInstance":', 1)
    resp = client.post(path, data=body, content_type="application/json")
    assert resp.status_code == 400
    assert f"{literal} is not a JSON number" in _outcome(resp)


@pytest.mark.parametrize("path", [f"/cds-services/{PV}", f"/cds-services/{PV}/feedback"])
def test_duplicate_keys_are_400_naming_the_key(client, path):
    body = json.dumps(hook_request(PV, "dx-low-mg"))
    # the second "hook" would silently win with a plain json.loads
    body = body.replace('"hookInstance":', '"hook": "order-sign", "hookInstance":', 1)
    resp = client.post(path, data=body, content_type="application/json")
    assert resp.status_code == 400
    assert "duplicate key 'hook'" in _outcome(resp)
    nested = '{"feedback": [{"card": "a", "card": "b", "outcome": "accepted", "outcomeTimestamp": "2026-01-05T10:00:00Z"}]}'
    resp = client.post(f"/cds-services/{PV}/feedback", data=nested, content_type="application/json")
    assert resp.status_code == 400 and "duplicate key 'card'" in _outcome(resp)


def test_equal_keys_in_different_objects_are_fine(client):
    body = hook_request(PV, "dx-low-mg")
    body["extension"] = {"hook": "same name, other object", "nested": {"hook": 1}}
    assert client.post(f"/cds-services/{PV}", json=body).status_code == 412  # parsed, valid; no data prefetched


def test_empty_body_is_400(client):
    resp = client.post(f"/cds-services/{PV}", data="", content_type="application/json")
    assert resp.status_code == 400


def test_missing_fields_are_named(client):
    resp = client.post(f"/cds-services/{PV}", json={"hook": "patient-view"})
    assert resp.status_code == 400
    text = _outcome(resp)
    assert "hookInstance" in text and "context" in text


def test_hook_not_matching_service_is_400(client):
    body = hook_request(PV, "dx-low-mg", prefetch={})
    body["hook"] = "order-sign"
    resp = client.post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 400
    assert "patient-view" in _outcome(resp)


def test_invalid_context_is_400_and_names_the_field(client):
    body = hook_request(PV, "dx-low-mg")
    body["context"]["patientId"] = "../../etc/passwd"
    resp = client.post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 400
    assert "context/patientId" in _outcome(resp)


def test_order_select_requires_selections_and_draft_orders(client):
    body = hook_request(OSEL, "dx-low-mg")
    del body["context"]["selections"]
    resp = client.post(f"/cds-services/{OSEL}", json=body)
    assert resp.status_code == 400
    assert "selections" in _outcome(resp)


def test_fhir_authorization_without_fhir_server_is_400(client):
    body = hook_request(PV, "dx-low-mg")
    body["fhirAuthorization"] = {"access_token": "x", "token_type": "Bearer", "expires_in": 10, "scope": "s",
                                 "subject": "s"}
    resp = client.post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 400
    assert "fhirServer" in _outcome(resp)


def test_unknown_service_is_404(client):
    resp = client.post("/cds-services/no-such-service", json=hook_request(PV, "x"))
    assert resp.status_code == 404
    assert "no-such-service" in _outcome(resp)


def test_body_over_limit_is_413(make_app):
    client = make_app(CDS_MAX_BODY_BYTES="2000").test_client()
    body = hook_request(PV, "dx-low-mg", prefetch={"patient": {"resourceType": "Patient", "text": "x" * 5000}})
    resp = client.post(f"/cds-services/{PV}", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 413
    _outcome(resp)


def test_deep_nesting_is_400_not_a_crash(client):
    for deep in ("[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000, "[" * 100000):
        resp = client.post(f"/cds-services/{PV}", data=deep, content_type="application/json")
        assert resp.status_code == 400
        assert "nested deeper than 64 levels" in _outcome(resp)


def test_nesting_at_the_limit_is_parsed(make_app):
    client = make_app(CDS_MAX_JSON_DEPTH="6").test_client()
    body = hook_request(PV, "dx-low-mg")
    body["extension"] = {"x": [[[[1]]]]}  # request object, extension, x, then 4 arrays: 6 levels
    assert client.post(f"/cds-services/{PV}", json=body).status_code == 412  # parsed, valid; no data prefetched
    body["extension"] = {"x": [[[[[1]]]]]}
    resp = client.post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 400 and "nested deeper than 6 levels" in _outcome(resp)


def test_wrong_method_is_405_outcome(client):
    resp = client.get(f"/cds-services/{PV}")
    assert resp.status_code == 405
    _outcome(resp)


@pytest.mark.parametrize("payload", [
    [], "just a string", 42, None, {"hook": 1, "hookInstance": [], "context": "x"},
    {"hook": "patient-view", "hookInstance": "a", "context": {"userId": 5, "patientId": None}},
    {"hook": "patient-view", "hookInstance": "a", "context": {"userId": "Practitioner/1", "patientId": "p"},
     "prefetch": {"labs": "not a bundle"}},
    {"hook": "patient-view", "hookInstance": "a", "context": {"userId": "Practitioner/1", "patientId": "p"},
     "prefetch": {"labs": {"resourceType": "Bundle", "entry": "oops"}, "conditions": {"resourceType": "Bundle",
                  "entry": [None, 1, {"resource": {"resourceType": "Condition", "code": 7}}]},
                  "procedures": None, "encounters": None}},
])
def test_odd_payloads_never_give_500(client, payload):
    resp = client.post(f"/cds-services/{PV}", data=json.dumps(payload), content_type="application/json")
    assert resp.status_code < 500, resp.get_data(as_text=True)
    if resp.status_code >= 400:
        _outcome(resp)


def test_cors_preflight_and_headers(client):
    for path in ("/cds-services", f"/cds-services/{PV}", f"/cds-services/{PV}/feedback"):
        pre = client.options(path, headers={"Origin": "https://ehr.example", "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "authorization,content-type"})
        assert pre.status_code == 200, path
        assert pre.headers.get("Access-Control-Allow-Origin") in ("*", "https://ehr.example")
        allowed = pre.headers.get("Access-Control-Allow-Headers", "").lower()
        assert "authorization" in allowed and "content-type" in allowed
    resp = client.get("/cds-services", headers={"Origin": "https://ehr.example"})
    assert resp.headers.get("Access-Control-Allow-Origin") in ("*", "https://ehr.example")


def test_brackets_inside_strings_neither_hide_nor_fake_depth(make_app):
    from cds_service.hooks.strict_json import deeper_than

    assert not deeper_than(b'{"a": "[[[[[[[[[["}', 1)
    assert deeper_than(b'["]", ["]", ["]", [1]]]]', 3)  # closers in strings cannot hide real depth
    assert not deeper_than(b'["]", ["]", ["]", [1]]]]', 4)
    assert deeper_than(b'{"a": "\\\\", "b": [[1]]}', 2)  # an escaped backslash ends the string
    assert not deeper_than(b'{"a": "\\\\", "b": [[1]]}', 3)
    client = make_app(CDS_MAX_JSON_DEPTH="5").test_client()
    hidden = '{"hook": "patient-view", "x": ' + '["]", ' * 10 + "1" + "]" * 10 + "}"
    resp = client.post(f"/cds-services/{PV}", data=hidden, content_type="application/json")
    assert resp.status_code == 400 and "nested" in _outcome(resp)


def _reference_depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    return 0


_tricky_text = st.text(alphabet='[]{}"\\ab\n/', max_size=8)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_tricky_text, children, max_size=4),
    max_leaves=25)


@given(_json_values, st.sampled_from([None, 1, 2]))
@settings(max_examples=300, deadline=None)
def test_nesting_depth_matches_the_parsed_structure(value, indent):
    """Brackets, quotes and backslashes inside strings never change the measured depth."""
    from cds_service.hooks.strict_json import deeper_than

    raw = json.dumps(value, indent=indent).encode()
    depth = _reference_depth(value)
    for limit in {0, 1, max(0, depth - 1), depth, depth + 1}:
        assert deeper_than(raw, limit) == (depth > limit), (limit, depth)


@given(_json_values, st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=40))
@settings(max_examples=300, deadline=None)
def test_truncated_or_unbalanced_json_is_deep_only_when_it_is(value, limit, cut):
    """A body cut short (unclosed brackets) is called deep only when its open brackets do nest deeper."""
    from cds_service.hooks.strict_json import _brackets, deeper_than

    raw = json.dumps(value).encode()
    raw = raw[: max(0, len(raw) - cut)]
    level = deepest = 0
    for b in _brackets(raw):
        if b == ord('"'):
            break  # an unterminated string: the parser stops there
        level += 1 if b == ord("[") else -1
        if level < 0:
            break  # a stray closer: the parser stops there
        deepest = max(deepest, level)
    assert deeper_than(raw, limit) == (deepest > limit)


def test_answers_are_never_cached(client):
    """Cards and error details carry patient values: Cache-Control: no-store on every answer."""
    from support.helpers import fixture_bundle, prefetch_from_fixture, topics

    body = hook_request(PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg")))
    cards = client.post(f"/cds-services/{PV}", json=body)
    assert cards.status_code == 200 and "electrolyte-review" in topics(cards.get_json())
    answers = [cards, client.post(f"/cds-services/{PV}", json=hook_request(PV, "dx-low-mg")),  # 412
               client.post(f"/cds-services/{PV}", data="{", content_type="application/json"),  # 400
               client.post(f"/cds-services/{PV}/feedback", json={"feedback": []}),
               client.get("/cds-services"), client.get("/health")]
    for resp in answers:
        assert resp.headers.get("Cache-Control") == "no-store", (resp.status_code, resp.headers)
