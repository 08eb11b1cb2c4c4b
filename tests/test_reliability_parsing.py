"""The cheap snapshot build gives the same Snapshot as validating every resource, on long and odd histories.

The reference below is the plain build: every Condition, Procedure, Encounter and symptom
Observation validated with fhir.resources, every lab Observation validated whole. The
optimised build (hooks/context.py) filters raw dicts first, validates trimmed copies and
parses lazily; these tests hold it to exactly the same outcome.
"""
from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cds_service.clinical import codes, dialysis, labs
from cds_service.clinical.dialysis import pairs
from cds_service.fhir.parse import bundle_resources, lenient, parse_all
from cds_service.hooks import context as ctx_mod
from cds_service.hooks.prefetch import Resolved

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from history import patient_history  # noqa: E402



NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def reference(prefetch: dict):
    conditions = parse_all(bundle_resources(prefetch.get("conditions"), "Condition"), "Condition")
    procedures = parse_all(bundle_resources(prefetch.get("procedures"), "Procedure"), "Procedure")
    encounters = parse_all(bundle_resources(prefetch.get("encounters"), "Encounter"), "Encounter")
    symptoms = parse_all(bundle_resources(prefetch.get("symptoms"), "Observation"), "Observation")
    raw_obs = []
    for key in ctx_mod.OBSERVATION_KEYS:
        raw_obs.extend(bundle_resources(prefetch.get(key), "Observation"))
    panel = labs.build_panel(raw_obs, lambda raw: lenient(raw, "Observation"), now=NOW)
    return conditions, symptoms, dialysis.assess(conditions, procedures, encounters, NOW), panel


def optimised(prefetch: dict):
    request = {"hook": "patient-view", "context": {"patientId": "p1", "userId": "Practitioner/x"}}
    snap = ctx_mod.build_snapshot("patient-view", request, Resolved(data=prefetch), NOW, timedelta(days=30))
    return snap


def assert_same(prefetch: dict):
    conditions, symptoms, status, panel = reference(prefetch)
    snap = optimised(prefetch)
    assert snap.dialysis == status
    assert snap.labs.results == panel.results
    # the snapshot keeps only the Conditions some rule can read; every other one is ignored by every rule
    assert list(snap.conditions) == [c for c in conditions if codes.condition_read_by_rules(pairs(c.code))]
    assert list(snap.symptom_observations) == symptoms


# ---------------------------------------------------------------------- random odd histories

def _when(rng: random.Random) -> str:
    moment = NOW - timedelta(hours=rng.uniform(-48, 24 * 400))
    style = rng.random()
    if style < 0.05:
        return "2025-13-45T99:00:00Z"  # unparseable
    if style < 0.10:
        return moment.strftime("%Y-%m")  # partial date
    if style < 0.2:
        return moment.astimezone(timezone(timedelta(hours=5))).isoformat(timespec="seconds")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _coding(rng: random.Random, dialysis_codes, other_codes):
    system, code = rng.choice(dialysis_codes if rng.random() < 0.6 else other_codes)
    return {"coding": [{"system": system, "code": code}], "text": "x"}


def random_history(seed: int) -> dict:
    rng = random.Random(seed)
    proc_codes = [(SNOMED, "302497006"), (CPT, "90935"), (SNOMED, "714749008")]
    other = [(SNOMED, "73761001"), (SNOMED, "80146002"), ("", "302497006")]
    procedures, encounters, conditions, observations = [], [], [], []
    for i in range(rng.randint(0, 60)):
        proc = {"resourceType": "Procedure", "id": f"p{i}", "subject": {"reference": "Patient/p1"},
                "status": rng.choice(["completed", "in-progress", "entered-in-error", "not-done", "stopped",
                                      "unknown", "preparation"]),
                "code": _coding(rng, proc_codes, other),
                "performer": [{"actor": {"display": "nurse"}}], "note": [{"text": "routine"}]}
        shape = rng.random()
        if shape < 0.5:
            period = {"start": _when(rng)}
            if rng.random() < 0.8:
                period["end"] = _when(rng)
            proc["performedPeriod"] = period
        elif shape < 0.85:
            proc["performedDateTime"] = _when(rng)
        if rng.random() < 0.05:
            proc["category"] = "not-a-codeable-concept"  # invalid element outside what assess reads
        procedures.append(proc)
    for i in range(rng.randint(0, 60)):
        enc = {"resourceType": "Encounter", "id": f"e{i}", "subject": {"reference": "Patient/p1"},
               "status": rng.choice(["finished", "in-progress", "arrived", "cancelled", "planned",
                                     "entered-in-error", "onleave"]),
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "type": [_coding(rng, proc_codes, other)]}
        if rng.random() < 0.9:
            enc["period"] = {"start": _when(rng)}
            if rng.random() < 0.7:
                enc["period"]["end"] = _when(rng)
        encounters.append(enc)
    cond_codes = [(SNOMED, "236435004"), (ICD, "Z99.2"), (SNOMED, "46177005"), (SNOMED, "236436003")]
    cond_other = [(SNOMED, "84114007"), (ICD, "I50.9"), (SNOMED, "38341003")]
    for i in range(rng.randint(0, 40)):
        cond = {"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": "Patient/p1"},
                "code": _coding(rng, cond_codes, cond_other)}
        if rng.random() < 0.8:
            cond["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                  "code": rng.choice(["active", "resolved", "inactive",
                                                                      "recurrence"])}]}
        if rng.random() < 0.2:
            cond["verificationStatus"] = {"coding": [{"code": rng.choice(["refuted", "entered-in-error",
                                                                          "confirmed"])}]}
        if rng.random() < 0.1:
            cond["abatementDateTime"] = _when(rng)
        conditions.append(cond)
    loincs = ["19123-9", "2601-3", "1995-0", "2823-3", "2777-1", "2598-1", "17861-6", "1751-7"]
    for i in range(rng.randint(0, 80)):
        obs = {"resourceType": "Observation", "id": f"o{i}",
               "status": rng.choice(["final", "amended", "preliminary", "entered-in-error", "cancelled"]),
               "code": {"coding": [{"system": "http://loinc.org", "code": rng.choice(loincs)}]},
               "subject": {"reference": "Patient/p1"}, "effectiveDateTime": _when(rng),
               "valueQuantity": {"value": round(rng.uniform(0.2, 9), 2),
                                 "unit": rng.choice(["mg/dL", "mmol/L", "mEq/L", "furlongs"])}}
        if rng.random() < 0.1:
            obs["valueQuantity"]["comparator"] = rng.choice(["<", ">", "<=", "~"])
        if rng.random() < 0.05:
            obs["valueQuantity"]["value"] = "abc"  # invalid value
        if rng.random() < 0.05:
            obs["interpretation"] = 5  # invalid element outside the lab result
        observations.append(obs)

    def bundle(items):
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in items]}

    symptoms = [{"resourceType": "Observation", "id": f"s{i}", "status": "final",
                 "code": {"coding": [{"system": SNOMED, "code": "55300003"}]}, "effectiveDateTime": _when(rng)}
                for i in range(rng.randint(0, 4))]
    return {"conditions": bundle(conditions), "procedures": bundle(procedures), "encounters": bundle(encounters),
            "labs": bundle(observations), "symptoms": bundle(symptoms)}


@pytest.mark.parametrize("seed", range(60))
def test_same_snapshot_on_random_odd_histories(seed):
    assert_same(random_history(seed))


@pytest.mark.parametrize("n_obs", [50, 2000])
def test_same_snapshot_on_long_benchmark_histories(n_obs):
    assert_same(patient_history(n_obs, NOW))


def test_only_old_sessions_still_give_the_last_session_end():
    """No session in the window: older ones are read newest first until nothing older can be later."""
    history = patient_history(50, NOW - timedelta(days=90))  # the whole chart 90 days old
    assert_same(history)
    snap = optimised(history)
    assert snap.dialysis.last_session_end is not None and not snap.dialysis.events and not snap.sessions


def test_long_history_validates_few_resources():
    prefetch = patient_history(5000, NOW)
    snap = optimised(prefetch)
    n_conditions = len(prefetch["conditions"]["entry"])
    relevant = [e for e in prefetch["conditions"]["entry"]
                if codes.condition_read_by_rules(ctx_mod._raw_pairs(e["resource"].get("code")))]
    assert snap.conditions.parsed_count < max(1, n_conditions // 10)  # only dialysis/ESRD/transplant codes so far
    list(snap.conditions)  # a rule reading conditions gets every one a rule can use, and no others
    assert snap.conditions.parsed_count == len(relevant) < n_conditions
    # and the lab panel validates only what is read: the newest result of each analyte
    snap.latest("mg")
    assert snap.labs._kept.get("mg") and len(snap.labs._kept["mg"]) == 1
