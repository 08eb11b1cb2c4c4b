"""Builders for clinical rule tests: raw FHIR resources -> prefetch -> snapshot -> findings.

The snapshot is built the way the service builds it (prefetch evaluated from the resources by
cds_service.fixtures, then hooks.context.build_snapshot), so rule tests exercise the real lab
panel, dialysis assessment and parsing. Rules run in registry order with the thresholds from the
card files; unlike the service, a rule that raises makes the test fail instead of being skipped.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from cds_service import fixtures
from cds_service.clinical.rules import rules_for, RuleContext
from cds_service.hooks.cards import CardLibrary
from cds_service.hooks.context import build_snapshot
from cds_service.hooks.prefetch import Resolved
from cds_service.services.patient_view import SERVICE

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
PID = "p1"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"

_counter = {"n": 0}


def _id(prefix: str) -> str:
    _counter["n"] += 1
    return f"{prefix}-{_counter['n']}"


def ts(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(now: datetime = NOW, **delta) -> datetime:
    return now - timedelta(**delta)


def coding(system: str, code: str, display: str = "") -> dict:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def patient(pid: str = PID) -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1960-01-01"}


def obs(loinc: str, value: float | None, unit: str | None, when: datetime | None = None, *, status: str = "final",
        comparator: str | None = None, code: str | None = "same", system: str | None = UCUM, pid: str = PID,
        extra: dict | None = None) -> dict:
    """A lab Observation. ``code="same"`` puts ``unit`` in the UCUM code too; ``code=None`` omits it."""
    res: dict = {"resourceType": "Observation", "id": _id("obs"), "status": status,
                 "code": {"coding": [coding(LOINC, loinc)]}, "subject": {"reference": f"Patient/{pid}"}}
    if when is not None:
        res["effectiveDateTime"] = ts(when)
    if value is not None:
        qty: dict = {"value": value}
        if unit is not None:
            qty["unit"] = unit
        if code is not None:
            qty["code"] = unit if code == "same" else code
            if system:
                qty["system"] = system
        if comparator:
            qty["comparator"] = comparator
        res["valueQuantity"] = qty
    res.update(extra or {})
    return res


def mg(value: float, hours: float = 24, unit: str = "mmol/L", loinc: str = "2601-3", **kw) -> dict:
    return obs(loinc, value, unit, ago(hours=hours), **kw)


def k(value: float, hours: float = 24, loinc: str = "2823-3", **kw) -> dict:
    return obs(loinc, value, "mmol/L", ago(hours=hours), **kw)


def ica(value: float, hours: float = 24, loinc: str = "1995-0", unit: str = "mmol/L", **kw) -> dict:
    return obs(loinc, value, unit, ago(hours=hours), **kw)


def po4(value: float, hours: float = 24, **kw) -> dict:
    return obs("14879-1", value, "mmol/L", ago(hours=hours), **kw)


def aluminium(value: float, days: float = 10, **kw) -> dict:
    return obs("5574-9", value, "ug/L", ago(days=days), **kw)


def heart_rate(value: float, hours: float = 2, **kw) -> dict:
    return obs("8867-4", value, "/min", ago(hours=hours), **kw)


def condition(*codings: dict, onset: datetime | None = None, clinical: str | None = "active",
              verification: str | None = None, pid: str = PID) -> dict:
    res: dict = {"resourceType": "Condition", "id": _id("cond"), "code": {"coding": list(codings)},
                 "subject": {"reference": f"Patient/{pid}"}}
    if clinical:
        res["clinicalStatus"] = {"coding": [coding("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                   clinical)]}
    if verification:
        res["verificationStatus"] = {"coding": [coding(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification)]}
    if onset is not None:
        res["onsetDateTime"] = ts(onset)
    return res


def symptom_obs(*codings: dict, when: datetime, status: str = "final", value: dict | None = None,
                pid: str = PID) -> dict:
    res = {"resourceType": "Observation", "id": _id("sym"), "status": status, "code": {"coding": list(codings)},
           "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": ts(when)}
    res.update(value or {})
    return res


def hd_session(end: datetime | None, start: datetime | None = None, status: str = "completed",
               system: str = SNOMED, code: str = "302497006", performed: datetime | None = None,
               pid: str = PID) -> dict:
    res: dict = {"resourceType": "Procedure", "id": _id("hd"), "status": status,
                 "code": {"coding": [coding(system, code)]}, "subject": {"reference": f"Patient/{pid}"}}
    if performed is not None:
        res["performedDateTime"] = ts(performed)
    else:
        start = start or (end - timedelta(hours=4))
        res["performedPeriod"] = {"start": ts(start), **({"end": ts(end)} if end else {})}
    return res


def dialysis_encounter(start: datetime, end: datetime | None, status: str = "finished", pid: str = PID) -> dict:
    res = {"resourceType": "Encounter", "id": _id("enc"), "status": status,
           "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
           "type": [{"coding": [coding(SNOMED, "302497006", "Hemodialysis")]}],
           "subject": {"reference": f"Patient/{pid}"}, "period": {"start": ts(start)}}
    if end is not None:
        res["period"]["end"] = ts(end)
    return res


DIALYSIS_CONDITION = coding(ICD10CM, "Z99.2", "Dependence on renal dialysis")
ESRD = coding(SNOMED, "46177005", "End-stage renal disease")
CRAMP = coding(SNOMED, "55300003", "Cramp")


def on_dialysis(session_end_hours: float = 30) -> list[dict]:
    """A patient on haemodialysis (Z99.2 and sessions), last session ending ``session_end_hours`` ago."""
    last = ago(hours=session_end_hours)
    return [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400)),
            hd_session(last - timedelta(days=2)), hd_session(last)]


def normal_panel(hours: float = 20) -> list[dict]:
    return [mg(0.85, hours), ica(1.20, hours), k(4.5, hours), po4(1.2, hours)]


# ---------------------------------------------------------------------- running

@lru_cache(maxsize=1)
def cards() -> CardLibrary:
    return CardLibrary(ROOT / "cards")


def bundle_of(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": r} for r in resources]}


def snapshot(resources: list[dict], now: datetime = NOW, lookback_days: int = 45, pid: str = PID):
    context = {"patientId": pid, "userId": "Practitioner/u1"}
    prefetch = fixtures.prefetch_for(SERVICE, context, bundle_of(resources))
    resolved = Resolved(data=prefetch, source={k: "prefetch" for k in prefetch})
    request = {"hook": "patient-view", "context": context, "prefetch": prefetch}
    return build_snapshot("patient-view", request, resolved, now, timedelta(days=lookback_days))


def findings(resources: list[dict], now: datetime = NOW, lookback_days: int = 45, hook: str = "patient-view",
             params: dict | None = None):
    """Run the hook's rules like run_rules does, but let a failing rule fail the test."""
    snap = snapshot(resources, now, lookback_days)
    thresholds = cards().thresholds()
    for rule_id, override in (params or {}).items():
        thresholds[rule_id] = {**thresholds.get(rule_id, {}), **override}
    out, fired = [], set()
    for r in rules_for(hook):
        if not snap.dialysis.on_dialysis and not r.always:
            continue
        if any(snap.data_missing(key) for key in r.needs):
            continue
        produced = r.fn(RuleContext(snap, thresholds.get(r.id, {}), fired, out)) or []
        if produced:
            fired.add(r.id)
            out.extend(produced)
    return out


def fired(resources: list[dict], **kw) -> list[str]:
    return [f.rule_id for f in findings(resources, **kw)]


def only(resources: list[dict], rule_id: str, **kw):
    """The findings of one rule (a list, usually of 0 or 1)."""
    return [f for f in findings(resources, **kw) if f.rule_id == rule_id]
