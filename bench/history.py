"""Synthetic, deterministic patient histories for the benchmarks.

A dialysis patient (ESRD on dialysis, three sessions a week) with ``n_obs`` laboratory
Observations spread back in time from ``now``: the serum panel the service reads
(Mg, ionized Ca, K, phosphate, total Ca, albumin) plus the decoys a long chart holds
(urine Mg, dialysate Mg, entered-in-error results) and unrelated labs. The history
length of conditions, procedures and encounters grows with ``n_obs`` the way a real
chart does. The prefetch is complete: every key of the service's templates is present,
as an EHR honouring the templates but not ``_count`` would send it.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"

# (loinc, unit, low, high) -- values drawn uniformly in [low, high]
PANEL = [
    ("19123-9", "mg/dL", 1.2, 2.6),   # Mg mass
    ("2601-3", "mmol/L", 0.5, 1.1),   # Mg molar
    ("1995-0", "mmol/L", 0.95, 1.35), # ionized Ca
    ("2823-3", "mmol/L", 3.2, 6.1),   # K
    ("2777-1", "mg/dL", 2.5, 7.5),    # phosphate
    ("17861-6", "mg/dL", 7.8, 10.5),  # total Ca
    ("1751-7", "g/dL", 3.0, 4.5),     # albumin
]
DECOYS = [
    ("2598-1", "mg/dL", 1.0, 9.0),    # urine Mg: never a serum Mg
    ("718-7", "g/dL", 8.0, 13.0),     # hemoglobin (not ours)
    ("2160-0", "mg/dL", 4.0, 11.0),   # creatinine (not ours)
]
CHRONIC = [
    (SNOMED, "236435004", "End stage renal failure on dialysis"),
    (ICD10, "Z99.2", "Dependence on renal dialysis"),
    (SNOMED, "44054006", "Diabetes mellitus type 2"),
    (SNOMED, "38341003", "Hypertensive disorder"),
    (SNOMED, "84114007", "Heart failure"),
]
EPISODIC = [
    (SNOMED, "444814009", "Viral sinusitis"), (SNOMED, "195662009", "Acute viral pharyngitis"),
    (SNOMED, "10509002", "Acute bronchitis"), (SNOMED, "68496003", "Polyp of colon"),
    (SNOMED, "55822004", "Hyperlipidemia"), (SNOMED, "271737000", "Anemia"),
]
HD = (SNOMED, "302497006", "Hemodialysis (procedure)")


def _ts(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _searchset(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r,
                       "search": {"mode": "match"}} for r in resources]}


def _obs(pid: str, oid: str, loinc: str, unit: str, value: float, when: datetime, status: str = "final") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": status,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": _ts(when), "issued": _ts(when),
            "valueQuantity": {"value": round(value, 2), "unit": unit, "system": "http://unitsofmeasure.org",
                              "code": unit}}


def patient_history(n_obs: int, now: datetime, pid: str = "bench-1", seed: int = 7, low_mg: bool = True) -> dict:
    """A complete prefetch (key -> Bundle/resource) for a dialysis patient with ``n_obs`` lab Observations."""
    rng = random.Random(seed)
    # Labs: one draw every 6 h for a short history, packed closer for long ones (10,000 over about 2 years).
    step = timedelta(hours=6) if n_obs <= 200 else timedelta(minutes=100)
    labs = []
    for i in range(n_obs):
        when = now - timedelta(hours=2) - step * i
        pick = rng.random()
        if pick < 0.82:
            loinc, unit, lo, hi = PANEL[i % len(PANEL)]
        else:
            loinc, unit, lo, hi = DECOYS[i % len(DECOYS)]
        status = "entered-in-error" if rng.random() < 0.02 else "final"
        labs.append(_obs(pid, f"lab-{i}", loinc, unit, rng.uniform(lo, hi), when, status))
    if low_mg:  # the newest Mg is low: the hypomagnesemia rule fires and renders a card
        labs.insert(0, _obs(pid, "lab-mg-low", "19123-9", "mg/dL", 1.1, now - timedelta(hours=1)))
    span_days = max(30, int((step * n_obs).total_seconds() // 86400))
    sessions = max(4, span_days * 3 // 7)
    procedures, encounters = [], []
    for i in range(sessions):
        start = now - timedelta(hours=6) - timedelta(days=7 * i / 3)
        period = {"start": _ts(start), "end": _ts(start + timedelta(hours=4))}
        procedures.append({"resourceType": "Procedure", "id": f"hd-{i}", "status": "completed",
                           "code": {"coding": [{"system": HD[0], "code": HD[1], "display": HD[2]}]},
                           "subject": {"reference": f"Patient/{pid}"}, "performedPeriod": period})
        encounters.append({"resourceType": "Encounter", "id": f"enc-{i}", "status": "finished",
                           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                           "type": [{"coding": [{"system": HD[0], "code": HD[1], "display": HD[2]}]}],
                           "subject": {"reference": f"Patient/{pid}"}, "period": period})
    conditions = []
    n_episodic = max(5, n_obs // 50)
    for i, (system, code, display) in enumerate(CHRONIC):
        conditions.append(_condition(pid, f"c-{i}", system, code, display, now - timedelta(days=400), "active"))
    for i in range(n_episodic):
        system, code, display = EPISODIC[i % len(EPISODIC)]
        onset = now - timedelta(days=3 + 5 * i)
        conditions.append(_condition(pid, f"e-{i}", system, code, display, onset,
                                     "resolved" if i % 4 else "active"))
    symptoms = [{"resourceType": "Observation", "id": f"cramp-{i}", "status": "final",
                 "code": {"coding": [{"system": SNOMED, "code": "55300003", "display": "Cramp"}]},
                 "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": _ts(now - timedelta(days=i))}
                for i in range(3)]
    patient = {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1956-04-02",
               "name": [{"family": "Bench", "given": ["Pat"]}]}
    return {
        "patient": patient,
        "conditions": _searchset(conditions),
        "procedures": _searchset(procedures),
        "encounters": _searchset(encounters),
        "labs": _searchset(labs),
        "aluminum": _searchset([]),
        "heartRate": _searchset([_obs(pid, "hr-1", "8867-4", "/min", 72, now - timedelta(hours=3))]),
        "symptoms": _searchset(symptoms),
        "weights": _searchset([]),  # no session weights recorded, no active medications: both known to be empty
        "medications": _searchset([]),
    }


def _condition(pid, cid, system, code, display, onset, clinical):
    cond = {"resourceType": "Condition", "id": cid,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": clinical}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                               "code": "confirmed"}]},
            "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{pid}"}, "onsetDateTime": _ts(onset), "recordedDate": _ts(onset)}
    if clinical == "resolved":
        cond["abatementDateTime"] = _ts(onset + timedelta(days=10))
    return cond


def hook_request(service_id: str, hook: str, prefetch: dict, pid: str = "bench-1", instance: str = "bench") -> dict:
    context = {"userId": "Practitioner/bench", "patientId": pid}
    if hook != "patient-view":
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    if hook == "order-select":
        context["selections"] = []
    return {"hook": hook, "hookInstance": instance, "context": context, "prefetch": prefetch}
