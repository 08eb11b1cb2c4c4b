"""The compiled accept check (jsonschema-rs) never accepts what jsonschema refuses, so validation answers as
jsonschema alone does; and it accepts the real requests, so they take the fast path.

Inputs: every scenario and fixture request (and its context) and the bench body; generated variants of them
with one schema-relevant field deleted or replaced by an awkward value (wrong types, 1.0 and big integers,
strings one past a length limit, a trailing newline after a pattern's ``$``, Unicode digits, lone surrogates,
FHIR server URLs with spaces); and generated feedback bodies.
"""
from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.hooks import validation
from cds_service.hooks.validation import CONTEXT_SCHEMAS, fast_accepts, schema_messages, validator
from support.corpus import real_requests

REAL = real_requests()
REQUEST = "request.schema.json"


def _agrees(name: str, instance) -> None:
    """The fast check is sound, and what validation reports is exactly jsonschema's report."""
    slow_ok = validator(name).is_valid(instance)
    if fast_accepts(name)(instance):
        assert slow_ok, (name, instance)
    assert validation._messages(name, instance) == schema_messages(name, instance)
    assert (schema_messages(name, instance) == []) == slow_ok


@pytest.mark.parametrize("name,body", REAL, ids=[name for name, _ in REAL])
def test_real_requests_take_the_fast_path(name, body):
    assert fast_accepts(REQUEST)(body) and validator(REQUEST).is_valid(body)
    context_schema = CONTEXT_SCHEMAS[body["hook"]]
    assert fast_accepts(context_schema)(body["context"]) and validator(context_schema).is_valid(body["context"])


_TEXT = st.one_of(
    st.text(max_size=5),
    st.sampled_from(["", "Bearer", "bearer", "Bearer\n", "Bearer ", "Practitioner/abc", "Practitioner/abc\n",
                     "Patient/a.b-c", "Device/x", "x" * 64, "x" * 65, "x" * 200, "x" * 201, "a/" + "b" * 256,
                     "Practitioner/" + "1" * 64, "Practitioner/" + "1" * 65, "Practitioner/\u0661\u0662",
                     "MedicationRequest/1", "\ud800", "http://fhir.example/r4", "https://a b/", "HTTPS://x",
                     "ftp://x", "http://x\n", "http://ex.com/%zz", "2026-01-05T10:00:00Z", "2026-01-05T10:00Z",
                     "\u0662\u0660\u0662\u0666-01-05T10:00:00Z", "2026-01-05T10:00:00Z\n", "accepted",
                     "overridden", "Bundle"]),
)
_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-2, max_value=2), st.just(10 ** 30),
              st.sampled_from([1.0, -1.0, 0.5, 300.0, -0.0]), _TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["resourceType", "id", "entry", "code", "reason", "userComment", "x"]),
                        inner, max_size=3)),
    max_leaves=6)

# Places the schemas constrain, as paths into a request.
_PLACES = [("hook",), ("hookInstance",), ("fhirServer",), ("fhirAuthorization",), ("context",), ("prefetch",),
           ("extension",), ("x-other",)]
_PLACES += [("fhirAuthorization", k) for k in ("access_token", "token_type", "expires_in", "scope", "subject",
                                                "patient")]
_PLACES += [("context", k) for k in ("userId", "patientId", "encounterId", "selections", "draftOrders")]
_PLACES += [("context", "draftOrders", "resourceType"), ("context", "draftOrders", "entry"),
            ("context", "selections", 0), ("prefetch", "patient"), ("prefetch", "labs"),
            ("prefetch", "patient", "resourceType")]

_AUTH = {"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
         "subject": "cds-service"}


def _mutate(body: dict, path: tuple, value, delete: bool) -> dict:
    out = copy.deepcopy(body)
    node = out
    for step in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(step, {})
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return out
    last = path[-1]
    if isinstance(node, dict):
        if delete:
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int):
        if last < len(node):
            node[last] = value
        elif not delete:
            node.append(value)
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL), st.booleans(), st.lists(st.tuples(st.sampled_from(_PLACES), _VALUE, st.booleans()),
                                                      min_size=1, max_size=3))
def test_generated_variants_answer_as_jsonschema(real, with_auth, changes):
    _, body = real
    if with_auth:
        body = {**body, "fhirServer": "https://fhir.example/r4", "fhirAuthorization": dict(_AUTH)}
    for path, value, delete in changes:
        body = _mutate(body, path, value, delete)
    _agrees(REQUEST, body)
    for name in CONTEXT_SCHEMAS.values():
        _agrees(name, body.get("context"))


_ITEM = st.fixed_dictionaries(
    {"card": _TEXT, "outcome": _VALUE | st.sampled_from(["accepted", "overridden"]), "outcomeTimestamp": _TEXT},
    optional={"acceptedSuggestions": st.lists(st.one_of(_VALUE, st.fixed_dictionaries({"id": _TEXT})), max_size=2),
              "overrideReason": _VALUE | st.fixed_dictionaries({}, optional={"reason": _VALUE, "userComment": _TEXT}),
              "overrideReasons": st.lists(_VALUE | st.fixed_dictionaries(
                  {}, optional={"code": _TEXT, "system": _VALUE, "reason": _VALUE, "userComment": _TEXT}),
                  max_size=3)})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_VALUE, st.fixed_dictionaries({"feedback": st.one_of(_VALUE, st.lists(_ITEM, max_size=3))})))
def test_generated_feedback_answers_as_jsonschema(body):
    _agrees("feedback.schema.json", body)


def test_refusals_still_read_as_jsonschema_words_them():
    body = {"hook": "patient-view", "hookInstance": "", "context": {"userId": "Device/1", "patientId": "p"}}
    assert validation._messages(REQUEST, body) == ["hookInstance: '' should be non-empty"]
    assert validation._messages(CONTEXT_SCHEMAS["patient-view"], body["context"], "context") == [
        "context/userId: 'Device/1' does not match "
        "'^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\\\\-\\\\.]{1,64}$'"]
