"""Odd FHIR data in prefetch: never a 500. Found by hand-fuzzing the snapshot builder.

Values of the wrong JSON type where FHIR wants a code, dates at the edges of the calendar
(that overflow when moved to UTC), garbage entries: the hook answers 200 with a valid
response, and the low-Mg card of the patient still comes when the odd data is elsewhere.
"""
from __future__ import annotations

import copy

import pytest

from support.helpers import PV, assert_valid_response, fixture_bundle, hook_request, prefetch_from_fixture, topics

SNOMED_HD = {"system": "http://snomed.info/sct", "code": "302497006"}
MG = {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]}


def _bundle(*resources):
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


EDGE_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z",
              "0001-01-01T00:00:00Z", "9999", "0001-01"]

ODD = {
    "observation-status-list": ("labs", {"resourceType": "Observation", "status": [1], "code": MG}),
    "observation-status-object": ("aluminum", {"resourceType": "Observation", "status": {"a": 1}, "code": MG}),
    "procedure-status-object": ("procedures", {"resourceType": "Procedure", "status": {"a": 1},
                                               "code": {"coding": [SNOMED_HD]}}),
    "encounter-status-list": ("encounters", {"resourceType": "Encounter", "status": [],
                                             "type": [{"coding": [SNOMED_HD]}]}),
    "coding-values-of-wrong-type": ("conditions", {"resourceType": "Condition",
                                                   "code": {"coding": [{"system": [], "code": {"x": 1}}]}}),
    "coding-not-a-list": ("symptoms", {"resourceType": "Observation", "status": "final", "code": {"coding": "x"}}),
    "period-is-a-list": ("procedures", {"resourceType": "Procedure", "status": "completed",
                                        "code": {"coding": [SNOMED_HD]}, "performedPeriod": [1]}),
    "type-not-a-list": ("encounters", {"resourceType": "Encounter", "status": "finished",
                                       "type": {"coding": [SNOMED_HD]}, "period": {"start": 5}}),
}
for i, when in enumerate(EDGE_TIMES):
    ODD[f"lab-time-{when}"] = ("labs", {"resourceType": "Observation", "status": "final", "code": MG,
                                        "effectiveDateTime": when, "valueQuantity": {"value": 1.0, "unit": "mg/dL"}})
    ODD[f"session-time-{when}"] = ("procedures", {"resourceType": "Procedure", "status": "completed",
                                                  "code": {"coding": [SNOMED_HD]},
                                                  "performedPeriod": {"start": when, "end": when}})
    ODD[f"encounter-time-{when}"] = ("encounters", {"resourceType": "Encounter", "status": "in-progress",
                                                    "type": [{"coding": [SNOMED_HD]}],
                                                    "class": {"code": "AMB"}, "period": {"start": when}})
    ODD[f"symptom-time-{when}"] = ("symptoms", {"resourceType": "Observation", "status": "final",
                                                "code": {"coding": [{"system": "http://snomed.info/sct",
                                                                     "code": "55300003"}]},
                                                "effectiveDateTime": when})
    ODD[f"condition-time-{when}"] = ("conditions", {"resourceType": "Condition", "subject": {"reference": "P/1"},
                                                    "code": {"coding": [{"system": "http://snomed.info/sct",
                                                                         "code": "84114007"}]},
                                                    "onsetDateTime": when, "recordedDate": when,
                                                    "abatementDateTime": when})


@pytest.fixture(scope="module")
def base_prefetch():
    return prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_resource_beside_real_data_never_gives_a_500(client, base_prefetch, case):
    key, resource = ODD[case]
    prefetch = copy.deepcopy(base_prefetch)
    existing = prefetch.get(key) or _bundle()
    existing.setdefault("entry", []).append({"resource": resource})
    prefetch[key] = existing
    resp = client.post(f"/cds-services/{PV}", json=hook_request(PV, "dx-low-mg", prefetch=prefetch))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert_valid_response(body)
    assert "electrolyte-review" in topics(body)


def test_an_unforeseen_failure_while_reading_the_data_is_a_422_not_a_500(client, base_prefetch, monkeypatch):
    from cds_service.hooks import context

    def broken(*args, **kwargs):
        raise ArithmeticError("a shape nobody foresaw")

    monkeypatch.setattr(context, "build_snapshot", broken)
    resp = client.post(f"/cds-services/{PV}", json=hook_request(PV, "dx-low-mg", prefetch=base_prefetch))
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome" and "no checks ran" in body["issue"][0]["diagnostics"]
