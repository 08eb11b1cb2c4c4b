"""Shared helpers for the order-hook tests: patients, draft orders, calling the service."""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from cds_service import fixtures
from cds_service.hooks.validation import response_problems
from cds_service.services import SERVICES
from support.helpers import rule_of

SELECT = "dialysis-electrolytes-order-select"
SIGN = "dialysis-electrolytes-order-sign"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
IV_ROUTE = {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route (qualifier value)"}]}
EDQM_IV_ROUTE = {"coding": [{"system": "http://standardterms.edqm.eu", "code": "20045000", "display": "Intravenous use"}]}
ORAL_ROUTE = {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route (qualifier value)"}]}


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def observation(pid: str, oid: str, loinc: str, value: float, unit: str, when: datetime,
                comparator: str | None = None, status: str = "final") -> dict:
    qty: dict[str, Any] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if comparator:
        qty["comparator"] = comparator
    return {"resourceType": "Observation", "id": oid, "status": status,
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": iso(when), "valueQuantity": qty}


def patient_bundle(pid: str = "pt-1", *, dialysis: bool = True, now: datetime | None = None,
                   mg: float | None = None, mg_unit: str = "mmol/L", mg_hours_ago: float = 6,
                   mg_comparator: str | None = None,
                   k: float | None = None, k_loinc: str = "2823-3", k_hours_ago: float = 6) -> dict:
    """A minimal transaction Bundle: Patient, a dialysis (Z99.2) or CKD 3 Condition, optional Mg and K."""
    now = now or datetime.now(timezone.utc)
    resources: list[dict] = [{"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1955-05-05"}]
    code = ("Z99.2", "Dependence on renal dialysis") if dialysis else ("N18.3", "Chronic kidney disease, stage 3")
    resources.append({
        "resourceType": "Condition", "id": f"{pid}-cond",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": ICD10, "code": code[0], "display": code[1]}]},
        "subject": {"reference": f"Patient/{pid}"}})
    if mg is not None:
        resources.append(observation(pid, f"{pid}-mg", "2601-3" if mg_unit == "mmol/L" else "19123-9", mg, mg_unit,
                                     now - timedelta(hours=mg_hours_ago), mg_comparator))
    if k is not None:
        resources.append(observation(pid, f"{pid}-k", k_loinc, k, "mmol/L", now - timedelta(hours=k_hours_ago)))
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                      for r in resources]}


def rx(code: str, display: str, text: str | None = None) -> dict:
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": text or display}


def med_request(mid: str | None, medication: dict | None = None, *, route: dict | None = None,
                dose: tuple[float, str] | None = None, frequency: int | None = None, period: float | None = None,
                period_unit: str | None = None, sandbox: bool = False, **extra: Any) -> dict:
    """A draft MedicationRequest; sandbox=True drops intent and sends category as an object."""
    res: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "draft",
                           "subject": {"reference": "Patient/pt-1"}}
    if mid is not None:
        res["id"] = mid
    category = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                            "code": "inpatient"}]}
    if sandbox:
        res["category"] = category
    else:
        res["intent"] = "order"
        res["category"] = [category]
    if medication is not None:
        res["medicationCodeableConcept"] = medication
    dosage: dict[str, Any] = {}
    if route is not None:
        dosage["route"] = route
    if dose is not None:
        value, unit = dose
        dosage["doseAndRate"] = [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}]
    if frequency is not None or period is not None:
        repeat: dict[str, Any] = {}
        if frequency is not None:
            repeat["frequency"] = frequency
        if period is not None:
            repeat["period"] = period
            repeat["periodUnit"] = period_unit or "d"
        dosage["timing"] = {"repeat": repeat}
    if dosage:
        res["dosageInstruction"] = [dosage]
    res.update(extra)
    return res


def draft_bundle(resources: Iterable[dict], sandbox: bool = False) -> dict:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    if not sandbox:
        bundle["type"] = "collection"
    return bundle


def order_fixture(name: str) -> dict:
    return fixtures.load_json(fixtures.FIXTURES_DIR / "orders" / f"{name}.json")


def patient_fixture(name: str, now: datetime | None = None) -> dict:
    bundle = fixtures.load_json(fixtures.FIXTURES_DIR / "patients" / f"{name}.json")
    return fixtures.at(bundle, now or datetime.now(timezone.utc))


def with_subject(draft: dict, pid: str) -> dict:
    draft = copy.deepcopy(draft)
    for entry in draft.get("entry") or []:
        res = entry.get("resource") or {}
        if res.get("resourceType") == "MedicationRequest":
            res["subject"] = {"reference": f"Patient/{pid}"}
    return draft


def request_body(service_id: str, pid: str, patient: dict, draft: dict, selections: list[str] | None = None,
                 hook_instance: str = "test-hook-instance") -> dict:
    service = SERVICES[service_id]
    context: dict[str, Any] = {"userId": "Practitioner/prac-1", "patientId": pid, "draftOrders": with_subject(draft, pid)}
    if service.hook == "order-select":
        context["selections"] = list(selections if selections is not None else [])
    return {"hook": service.hook, "hookInstance": hook_instance, "context": context,
            "prefetch": fixtures.prefetch_for(service, context, patient)}


def call(client, service_id: str, pid: str, patient: dict, draft: dict, selections: list[str] | None = None) -> list[dict]:
    """POST the hook; assert a valid 200 response; return its cards."""
    body = request_body(service_id, pid, patient, draft, selections)
    resp = client.post(f"/cds-services/{service_id}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    assert response_problems(out) == []
    return out["cards"]


def topic(card: dict) -> str:
    return rule_of(card)


def cards_of(cards: list[dict], rule_id: str) -> list[dict]:
    return [c for c in cards if topic(c) == rule_id]


def all_selected(draft: dict) -> list[str]:
    return [f"MedicationRequest/{e['resource']['id']}" for e in draft["entry"]
            if e["resource"].get("resourceType") == "MedicationRequest" and e["resource"].get("id")]


# What order-sign must answer for each draft-order file and patient: sorted (rule id, order id) pairs
# (clinical policy v2, section 5; the scenario files in cards/scenarios/order-*.yaml show the indicators).
EXPECTED = {
    ('baclofen-10-tid', 'ord-hd-normal'): [('baclofen-dialysis', 'baclofen-10-tid')],
    ('baclofen-20-tid', 'ord-hd-normal'): [('baclofen-dialysis', 'baclofen-20-tid')],
    ('baclofen-intrathecal', 'ord-hd-normal'): [],
    ('calcium-carbonate', 'ord-hd-low-mg'): [],
    ('calcium-gluconate-iv', 'ord-hd-low-mg'): [('magnesium-co-management', 'ca-gluconate-iv')],
    ('calcium-gluconate-iv', 'ord-hd-normal'): [],
    ('gabapentin-300-daily', 'ord-hd-normal'): [],
    ('gabapentin-300-per-session', 'ord-hd-normal'): [],
    ('gabapentin-600-bid', 'ord-hd-normal'): [('gabapentin-dialysis-dose', 'gabapentin-600-bid')],
    ('hypertonic-saline', 'ord-hd-normal'): [('hypertonic-saline', 'nacl-23')],
    ('iv-magnesium-contained-edqm', 'ord-hd-no-labs'): [('parenteral-magnesium', 'mg-iv-contained')],
    ('iv-magnesium-premix', 'ord-hd-normal'): [('parenteral-magnesium', 'mg-iv-premix')],
    ('iv-magnesium-premix', 'ord-no-dialysis'): [],
    ('iv-magnesium-route', 'ord-hd-low-mg'): [('parenteral-magnesium', 'mg-iv-push')],
    ('iv-magnesium-sulfate', 'dx-low-mg'): [('parenteral-magnesium', 'draft-iv-mg')],
    ('iv-magnesium-sulfate', 'dx-normal'): [('parenteral-magnesium', 'draft-iv-mg')],
    ('iv-magnesium-sulfate', 'no-dialysis'): [],
    ('magnesium-oxide-oral', 'ord-hd-low-mg'): [('oral-magnesium', 'mg-oxide-oral')],
    ('maintenance-fluid', 'ord-hd-no-labs'): [],
    ('nuedexta', 'ord-hd-normal'): [],
    ('peritoneal-dialysis-solution', 'ord-hd-low-mg'): [],
    ('potassium-chloride-iv-bundle-medication', 'ord-hd-no-labs'): [('potassium-supplement', 'kcl-iv')],
    ('potassium-chloride-oral', 'ord-hd-low-mg'): [('magnesium-co-management', 'kcl-oral')],
    ('potassium-chloride-oral', 'ord-hd-normal'): [('potassium-supplement', 'kcl-oral')],
    ('quinidine-text', 'ord-hd-normal'): [('quinine-for-cramps', 'quinidine-text')],
    ('quinine', 'ord-hd-normal'): [('quinine-for-cramps', 'quinine-hs')],
    ('sandbox-mixed', 'ord-hd-low-mg'): [('baclofen-dialysis', 'sb-baclofen'), ('magnesium-co-management', 'sb-kcl'), ('oral-magnesium', 'sb-mg-oxide'), ('parenteral-magnesium', 'sb-mg-iv')],
}


def card_pairs(cards: list[dict], draft: dict) -> list[tuple[str, str]]:
    """Sorted (rule id, order id) per card; each card must name exactly one order of the draft."""
    ids = [e["resource"]["id"] for e in draft["entry"] if e["resource"].get("resourceType") == "MedicationRequest"]
    out = []
    for card in cards:
        named = [i for i in ids if f"MedicationRequest/{i}`" in card["detail"]]
        assert len(named) == 1, card["detail"]
        out.append((topic(card), named[0]))
    return sorted(out)
