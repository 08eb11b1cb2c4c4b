"""Write the demo and test patients in fhir_fixtures/patients/ (FHIR R4 transaction Bundles).

Every Bundle's ``timestamp`` is its scenario's "now" (2026-01-15T12:00:00Z); every clinical time is
written relative to it, and cds_service.fixtures.at() moves them all to the real "now" when loaded.
Resources have stable ids (``Patient/dx-low-mg``, ``Observation/dx-low-mg-mg-1``) and are PUT.

    python scripts/build_fixtures.py                      # the hand-written scenarios
    python scripts/build_fixtures.py --synthea FILE.json.gz   # also the Synthea-based patient

Codes come from the project's verified code reference (LOINC, SNOMED CT, ICD-10-CM, CPT).
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fhir_fixtures" / "patients"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# LOINC code -> (display, UCUM code, unit string)
LABS = {
    "2601-3": ("Magnesium [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L"),
    "19123-9": ("Magnesium [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"),
    "2598-1": ("Magnesium [Moles/volume] in Urine", "mmol/L", "mmol/L"),
    "1995-0": ("Calcium.ionized [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L"),
    "17861-6": ("Calcium [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"),
    "46093-1": ("Calcium.ionized [Moles/volume] in Dialysis fluid", "mmol/L", "mmol/L"),
    "2823-3": ("Potassium [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L"),
    "51618-7": ("Potassium [Moles/volume] in Serum or Plasma --pre dialysis", "mmol/L", "mmol/L"),
    "29349-8": ("Potassium [Moles/volume] in Serum or Plasma --post dialysis", "mmol/L", "mmol/L"),
    "14879-1": ("Phosphate [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L"),
    "2777-1": ("Phosphate [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"),
    "5574-9": ("Aluminum [Mass/volume] in Serum or Plasma", "ug/L", "µg/L"),
    "8867-4": ("Heart rate", "/min", "beats/minute"),
    "29463-7": ("Body weight", "kg", "kg"),
    "8347-7": ("Body weight Measured --pre dialysis", "kg", "kg"),
    "8344-4": ("Body weight Measured --post dialysis", "kg", "kg"),
    "1994-3": ("Calcium.ionized [Moles/volume] in Blood", "mmol/L", "mmol/L"),
}


def ts(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def concept(*codings: tuple[str, str, str], text: str | None = None) -> dict:
    out = {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]}
    if text:
        out["text"] = text
    return out


class Scenario:
    def __init__(self, pid: str, family: str, given: str, gender: str, birth: str, description: str):
        self.pid = pid
        self.description = description
        self.entries: list[dict] = []
        self.counters: dict[str, int] = {}
        self.add({"resourceType": "Patient", "id": pid, "active": True,
                  "identifier": [{"system": "https://fixtures.dialysis-cramps.example/mrn", "value": pid}],
                  "name": [{"use": "official", "family": family, "given": [given]}],
                  "gender": gender, "birthDate": birth})

    @property
    def ref(self) -> dict:
        return {"reference": f"Patient/{self.pid}"}

    def next_id(self, kind: str) -> str:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return f"{self.pid}-{kind}-{self.counters[kind]}"

    def add(self, resource: dict) -> dict:
        self.entries.append(resource)
        return resource

    # ------------------------------------------------------------------ building blocks
    def condition(self, kind: str, code: dict, onset: datetime, clinical: str = "active",
                  verification: str = "confirmed", category: str = "problem-list-item") -> dict:
        return self.add({
            "resourceType": "Condition", "id": self.next_id(kind),
            "clinicalStatus": concept((COND_CLINICAL, clinical, clinical.capitalize())),
            "verificationStatus": concept((COND_VER, verification, verification.capitalize())),
            "category": [concept((COND_CAT, category, "Problem List Item" if category == "problem-list-item"
                                  else "Encounter Diagnosis"))],
            "code": code, "subject": self.ref,
            "onsetDateTime": ts(onset), "recordedDate": ts(onset),
        })

    def on_dialysis(self, since: datetime | None = None) -> None:
        since = since or ago(days=400)
        self.condition("esrd", concept((SNOMED, "236435004", "End stage renal failure on dialysis"),
                                       (ICD10CM, "N18.6", "End stage renal disease")), since)
        self.condition("dialysis-dependence", concept((SNOMED, "105502003", "Dependence on renal dialysis"),
                                                      (ICD10CM, "Z99.2", "Dependence on renal dialysis")), since)

    def session(self, end: datetime | None, hours: float = 4.0, status: str = "completed",
                start: datetime | None = None) -> dict:
        start = start or (end - timedelta(hours=hours))
        period = {"start": ts(start)}
        if end is not None:
            period["end"] = ts(end)
        return self.add({
            "resourceType": "Procedure", "id": self.next_id("hd"), "status": status,
            "category": concept((SNOMED, "277132007", "Therapeutic procedure")),
            "code": concept((SNOMED, "302497006", "Hemodialysis"),
                            (CPT, "90935", "Hemodialysis procedure with single evaluation")),
            "subject": self.ref, "performedPeriod": period,
        })

    def procedure(self, kind: str, code: dict, start: datetime, end: datetime | None, status: str) -> dict:
        period = {"start": ts(start), **({"end": ts(end)} if end else {})}
        return self.add({"resourceType": "Procedure", "id": self.next_id(kind), "status": status,
                         "code": code, "subject": self.ref, "performedPeriod": period})

    def medication(self, kind: str, text: str, status: str = "active", route: str | None = None,
                   authored: datetime | None = None) -> dict:
        res = {"resourceType": "MedicationRequest", "id": self.next_id(kind), "status": status, "intent": "order",
               "subject": self.ref, "medicationCodeableConcept": {"text": text},
               "authoredOn": ts(authored or ago(days=20))}
        if route:
            res["dosageInstruction"] = [{"text": text, "route": {"text": route}}]
        return self.add(res)

    def usual_sessions(self, last_end: datetime) -> None:
        """Three sessions a week: the last one ending at ``last_end``, two earlier ones."""
        for days in (4, 2, 0):
            self.session(last_end - timedelta(days=days))

    def lab(self, kind: str, loinc: str, value: float, when: datetime, status: str = "final",
            comparator: str | None = None, ucum: str | None = None, unit: str | None = None) -> dict:
        display, default_code, default_unit = LABS[loinc]
        qty = {"value": value, "unit": unit or default_unit, "system": UCUM, "code": ucum or default_code}
        if comparator:
            qty = {"value": value, "comparator": comparator, **{k: v for k, v in qty.items() if k != "value"}}
        category = "vital-signs" if loinc in ("8867-4", "29463-7", "8347-7", "8344-4") else "laboratory"
        return self.add({
            "resourceType": "Observation", "id": self.next_id(kind), "status": status,
            "category": [concept((OBS_CAT, category, "Vital Signs" if category == "vital-signs" else "Laboratory"))],
            "code": concept((LOINC, loinc, display), text=display),
            "subject": self.ref, "effectiveDateTime": ts(when), "issued": ts(min(when + timedelta(minutes=40), NOW)),
            "valueQuantity": qty,
        })

    def normal_panel(self, when: datetime, skip: tuple[str, ...] = ()) -> None:
        values = {"mg": ("2601-3", 0.85), "ica": ("1995-0", 1.20), "k": ("2823-3", 4.5), "po4": ("14879-1", 1.30)}
        for kind, (loinc, value) in values.items():
            if kind not in skip:
                self.lab(kind, loinc, value, when)

    def symptom(self, kind: str, code: dict, when: datetime) -> dict:
        return self.add({
            "resourceType": "Observation", "id": self.next_id(kind), "status": "final",
            "category": [concept((OBS_CAT, "exam", "Exam"))],
            "code": code, "subject": self.ref, "effectiveDateTime": ts(when),
            "valueCodeableConcept": concept((SNOMED, "52101004", "Present")),
        })

    def bundle(self) -> dict:
        entries = []
        for res in self.entries:
            path = f"{res['resourceType']}/{res['id']}"
            entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'fixture:' + path)}",
                            "resource": res, "request": {"method": "PUT", "url": path}})
        return {"resourceType": "Bundle", "id": f"fixture-{self.pid}", "type": "transaction",
                "timestamp": ts(NOW), "entry": entries}


CRAMP = concept((SNOMED, "55300003", "Cramp"), (ICD10CM, "R25.2", "Cramp and spasm"), text="Muscle cramp")
SPASM = concept((SNOMED, "45352006", "Spasm"), text="Muscle spasm")


HEART_FAILURE = concept((SNOMED, "88805009", "Chronic congestive heart failure"),
                        (ICD10CM, "I50.9", "Heart failure, unspecified"))
PD = concept((SNOMED, "71192002", "Peritoneal dialysis"))
CRRT = concept((SNOMED, "714749008", "Continuous renal replacement therapy"))


def scenarios() -> list[Scenario]:
    """dx-low-mg, dx-normal and no-dialysis are hand-written files and are not generated here.

    Policy version 2: each scenario's expected cards are in cards/scenarios/<patient id>.yaml.
    """
    out = []

    s = Scenario("esrd-transplant", "Haddad", "Omar", "male", "1970-11-30",
                 "Kidney transplant; an old dialysis-dependence code still active, last HD 200 days ago; "
                 "low Mg and K (no card: not on dialysis)")
    s.condition("esrd", concept((SNOMED, "46177005", "End-stage renal disease"),
                                (ICD10CM, "N18.6", "End stage renal disease")), ago(days=2000))
    s.condition("dialysis-dependence", concept((ICD10CM, "Z99.2", "Dependence on renal dialysis")), ago(days=1500))
    s.condition("transplant", concept((SNOMED, "236436003", "End stage renal failure with renal transplant"),
                                      (ICD10CM, "Z94.0", "Kidney transplant status")), ago(days=700))
    s.session(ago(days=200))
    s.lab("mg", "2601-3", 0.55, ago(days=2)); s.lab("k", "2823-3", 3.2, ago(days=2))
    out.append(s)

    s = Scenario("esrd-no-dialysis", "Nakamura", "Kenji", "male", "1949-01-08",
                 "ESRD coded (N18.6) but no dialysis condition, procedure or encounter; low Mg (no card)")
    s.condition("esrd", concept((SNOMED, "46177005", "End-stage renal disease"),
                                (ICD10CM, "N18.6", "End stage renal disease")), ago(days=300))
    s.lab("mg", "2601-3", 0.52, ago(days=1))
    out.append(s)

    s = Scenario("dx-low-k-mg-missing", "Petrov", "Ivan", "male", "1962-07-19",
                 "Hemodialysis, K 3.1 mmol/L and no magnesium result in 45 days")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=3))
    s.lab("mg", "2601-3", 0.80, ago(days=50))  # outside the 45-day look-back: not usable
    s.normal_panel(ago(hours=22), skip=("mg", "k")); s.lab("k", "2823-3", 3.1, ago(hours=22))
    out.append(s)

    s = Scenario("dx-hyperkalemia-critical", "Silva", "Marta", "female", "1955-12-03",
                 "Hemodialysis, K 6.8 mmol/L drawn 2 h ago, after the last session (critical)")
    s.on_dialysis(); s.usual_sessions(ago(days=2, hours=20))
    s.normal_panel(ago(days=3), skip=("k",)); s.lab("k", "2823-3", 5.1, ago(days=3))
    s.lab("k", "51618-7", 6.8, ago(hours=2))
    out.append(s)

    s = Scenario("dx-hyperkalemia-superseded", "Moreau", "Claire", "female", "1958-03-17",
                 "Hemodialysis, pre-dialysis K 6.8 mmol/L drawn 6 h ago, before the session that ended 1 h ago "
                 "(warning: recheck)")
    s.on_dialysis(); s.usual_sessions(ago(hours=1))
    s.normal_panel(ago(hours=6), skip=("k",)); s.lab("k", "51618-7", 6.8, ago(hours=6))
    out.append(s)

    s = Scenario("dx-severe-deficits", "Lindqvist", "Erik", "male", "1951-06-02",
                 "Hemodialysis, K 2.3, ionized Ca 0.75 and Mg 0.30 mmol/L drawn 3 h ago (three critical cards)")
    s.on_dialysis(); s.usual_sessions(ago(days=1))
    s.lab("k", "2823-3", 2.3, ago(hours=3)); s.lab("ica", "1995-0", 0.75, ago(hours=3))
    s.lab("mg", "2601-3", 0.30, ago(hours=3)); s.lab("po4", "14879-1", 1.1, ago(hours=3))
    out.append(s)

    s = Scenario("dx-low-ica", "Adeyemi", "Tunde", "male", "1960-02-27",
                 "Hemodialysis, ionized Ca 1.02 mmol/L with normal Mg (total Ca also on file)")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=5))
    s.normal_panel(ago(hours=26), skip=("ica",)); s.lab("ica", "1995-0", 1.02, ago(hours=26))
    s.lab("total-ca", "17861-6", 8.9, ago(hours=26))
    out.append(s)

    s = Scenario("dx-cramp-post-session", "Kowalski", "Anna", "female", "1957-04-11",
                 "Session ended 3 h ago; leg cramps documented; post-dialysis Mg 0.62 and K 3.3; iCa and "
                 "phosphate only from before the session (one consolidated card)")
    s.on_dialysis(); s.usual_sessions(ago(hours=3))
    s.lab("ica", "1995-0", 1.16, ago(days=2, hours=8)); s.lab("po4", "14879-1", 1.6, ago(days=2, hours=8))
    s.lab("mg", "2601-3", 0.62, ago(hours=1)); s.lab("k", "29349-8", 3.3, ago(hours=1))
    s.condition("cramp", CRAMP, ago(hours=2), category="encounter-diagnosis")
    out.append(s)

    s = Scenario("dx-spasm-normal-labs", "Brennan", "Liam", "male", "1968-08-16",
                 "Spasm observed yesterday; every electrolyte in range since the last session (info review)")
    s.on_dialysis(); s.usual_sessions(ago(hours=20))
    s.normal_panel(ago(hours=18)); s.symptom("spasm", SPASM, ago(hours=17))
    out.append(s)

    s = Scenario("dx-aluminum-high", "Duarte", "Rosa", "female", "1948-10-05",
                 "Hemodialysis, serum aluminum 85 µg/L and myoclonus, on aluminum hydroxide")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=1)); s.normal_panel(ago(days=1))
    s.lab("aluminum", "5574-9", 85, ago(days=20))
    s.condition("myoclonus", concept((SNOMED, "17450006", "Myoclonus"), (ICD10CM, "G25.3", "Myoclonus")),
                ago(days=10))
    s.medication("al", "aluminum hydroxide 320 mg/5 mL oral suspension", route="oral")
    out.append(s)

    s = Scenario("dx-aluminum-sources", "Whitfield", "George", "male", "1953-06-22",
                 "Hemodialysis, serum aluminum 35 µg/L (find and remove sources), on sucralfate")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=4)); s.normal_panel(ago(days=1))
    s.lab("aluminum", "5574-9", 35, ago(days=40))
    s.medication("sucralfate", "sucralfate 1 g oral tablet", route="oral")
    out.append(s)

    s = Scenario("dx-neuro-no-aluminum", "Oyelaran", "Funmi", "female", "1959-01-17",
                 "Hemodialysis, speech disturbance with onset 6 days ago, no aluminum level in 12 months")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=4)); s.normal_panel(ago(days=1))
    s.lab("aluminum", "5574-9", 12, ago(days=400))
    s.condition("speech", concept((SNOMED, "29164008", "Disturbance in speech"),
                                  (ICD10CM, "R47.9", "Unspecified speech disturbances")), ago(days=6))
    out.append(s)

    s = Scenario("dx-tachycardia", "Jensen", "Mette", "female", "1964-03-09",
                 "Hemodialysis, K 3.2 mmol/L, cramps yesterday and heart rate 118/min 3 h ago")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=6))
    s.normal_panel(ago(hours=10), skip=("k",)); s.lab("k", "2823-3", 3.2, ago(hours=10))
    s.lab("hr", "8867-4", 84, ago(hours=30)); s.lab("hr", "8867-4", 118, ago(hours=3)); s.lab("hr", "8867-4", 96, ago(hours=1))
    s.condition("cramp", CRAMP, ago(hours=20), category="encounter-diagnosis")
    out.append(s)

    s = Scenario("dx-heart-failure-mild-mg", "Okafor", "Chidi", "male", "1950-09-21",
                 "Hemodialysis and heart failure, mildly low Mg 0.62 mmol/L, no cramps (no dysrhythmia card)")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=2))
    s.normal_panel(ago(hours=20), skip=("mg",)); s.lab("mg", "2601-3", 0.62, ago(hours=20))
    s.condition("hf", HEART_FAILURE, ago(days=900))
    out.append(s)

    s = Scenario("dx-hypermagnesemia", "Schultz", "Hanna", "female", "1946-12-08",
                 "Hemodialysis, Mg 2.4 mmol/L on magnesium hydroxide (milk of magnesia) for constipation")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=3))
    s.normal_panel(ago(hours=22), skip=("mg",)); s.lab("mg", "2601-3", 2.4, ago(hours=22))
    s.medication("mom", "magnesium hydroxide 400 mg/5 mL (Milk of Magnesia) 30 mL at night", route="oral")
    out.append(s)

    s = Scenario("dx-high-ufr", "Romero", "Diego", "male", "1966-04-25",
                 "Hemodialysis, 4.2 kg removed in a 3.5 h session (pre 78.2 kg, post 74.0 kg): UFR 16.2 mL/kg/h")
    s.on_dialysis(); s.usual_sessions(ago(days=2, hours=20))
    end = ago(hours=20)
    s.session(end, hours=3.5)
    s.lab("weight", "8347-7", 78.2, end - timedelta(hours=3, minutes=45))
    s.lab("weight", "8344-4", 74.0, end + timedelta(minutes=10))
    s.normal_panel(ago(hours=19))
    out.append(s)

    s = Scenario("dx-pd-low-k", "Tanaka", "Yumi", "female", "1972-01-30",
                 "Peritoneal dialysis (no HD sessions), K 3.2 mmol/L: oral KCl advice, no HD session wording")
    s.condition("esrd", concept((SNOMED, "46177005", "End-stage renal disease"),
                                (ICD10CM, "N18.6", "End stage renal disease")), ago(days=700))
    s.condition("pd", PD, ago(days=600))
    s.medication("pd-fluid", "Dianeal PD-2 with 1.5% dextrose, peritoneal dialysis solution 2 L",
                 route="intraperitoneal")
    s.normal_panel(ago(days=2), skip=("k",)); s.lab("k", "2823-3", 3.2, ago(days=2))
    out.append(s)

    s = Scenario("dx-crrt-low-mg", "Petrova", "Elena", "female", "1963-08-14",
                 "Intensive care, CRRT running for 2 days; Mg 0.35 mmol/L drawn 4 h ago (critical, CRRT wording)")
    s.condition("dialysis-dependence", concept((ICD10CM, "Z99.2", "Dependence on renal dialysis")), ago(days=3))
    s.procedure("crrt", CRRT, ago(days=2), None, "in-progress")
    s.lab("mg", "2601-3", 0.35, ago(hours=4)); s.lab("k", "2823-3", 4.1, ago(hours=4))
    s.lab("ica", "1994-3", 1.15, ago(hours=4))
    out.append(s)

    # ------------------------------------------------------------------ decoys: no card may fire
    s = Scenario("decoy-urine-mg", "Alvarez", "Lucia", "female", "1961-09-28",
                 "Decoy: low urine Mg and a dialysis-fluid ionized Ca; serum values normal")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=2)); s.normal_panel(ago(days=1))
    s.lab("urine-mg", "2598-1", 0.3, ago(hours=6))
    s.lab("dialysate-ica", "46093-1", 0.9, ago(days=1, hours=3))
    out.append(s)

    s = Scenario("decoy-total-ca-only", "Novak", "Tomas", "male", "1956-02-14",
                 "Decoy: low total calcium 7.2 mg/dL, no ionized Ca result")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=2))
    s.normal_panel(ago(days=1), skip=("ica",)); s.lab("total-ca", "17861-6", 7.2, ago(days=1))
    out.append(s)

    s = Scenario("decoy-entered-in-error", "Fischer", "Greta", "female", "1950-12-12",
                 "Decoy: newest Mg 0.45 mmol/L entered in error; the valid Mg is 0.82")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=2))
    s.normal_panel(ago(days=2), skip=("mg",)); s.lab("mg", "2601-3", 0.82, ago(days=2))
    s.lab("mg", "2601-3", 0.45, ago(hours=5), status="entered-in-error")
    out.append(s)

    s = Scenario("decoy-old-low-new-normal", "Costa", "Paulo", "male", "1963-05-30",
                 "Decoy: Mg 0.55 five days ago, then 0.84 yesterday")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=2))
    s.lab("mg", "2601-3", 0.55, ago(days=5))
    s.normal_panel(ago(days=1), skip=("mg",)); s.lab("mg", "2601-3", 0.84, ago(days=1))
    out.append(s)

    s = Scenario("decoy-mg-at-target", "Ibrahim", "Yusuf", "male", "1967-10-10",
                 "Boundary: Mg exactly 0.70 mmol/L and K exactly 3.5 mmol/L (no card)")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=2))
    s.normal_panel(ago(days=1), skip=("mg", "k"))
    s.lab("mg", "2601-3", 0.70, ago(days=1)); s.lab("k", "2823-3", 3.5, ago(days=1))
    out.append(s)

    s = Scenario("decoy-future-result", "Berg", "Ingrid", "female", "1965-07-07",
                 "Decoy: a K of 7.2 mmol/L dated tomorrow (data error); the current panel is normal")
    s.on_dialysis(); s.usual_sessions(ago(days=1, hours=2)); s.normal_panel(ago(hours=20))
    s.lab("k", "2823-3", 7.2, NOW + timedelta(days=1))
    out.append(s)

    s = Scenario("decoy-early-post-k", "Walsh", "Declan", "male", "1959-11-19",
                 "Decoy: K 3.1 mmol/L drawn 30 min after a session that ended 1 h ago (rebounds: no card)")
    s.on_dialysis(); s.usual_sessions(ago(hours=1))
    s.normal_panel(ago(minutes=30), skip=("k",)); s.lab("k", "2823-3", 3.1, ago(minutes=30))
    out.append(s)

    s = Scenario("decoy-normal-after-session", "Haas", "Lena", "female", "1970-05-05",
                 "Decoy: a normal panel drawn 20 min after a session that ended 40 min ago, no cramps (no card)")
    s.on_dialysis(); s.usual_sessions(ago(minutes=40)); s.normal_panel(ago(minutes=20))
    out.append(s)
    out.append(trend_scenario())
    return out


# ---------------------------------------------------------------------- order-hook patients (ord-*)
# The patients the draft-order files in fhir_fixtures/orders/ are paired with (tests/orders_support.py,
# the demo's order requests and /preview). Scenario files with other data carry it inline.

def order_scenarios() -> list[Scenario]:
    out = []

    s = Scenario("ord-hd-low-mg", "Moreau", "Claire", "female", "1958-03-14",
                 "Order-hook patient: hemodialysis, session ended 20 h ago; current K 3.1, Mg 0.55 and "
                 "ionized Ca 1.05 mmol/L drawn 4 h ago (after an earlier Mg 0.81)")
    s.on_dialysis(); s.usual_sessions(ago(hours=20))
    s.lab("mg", "2601-3", 0.81, ago(days=7, hours=2))
    s.lab("mg", "2601-3", 0.55, ago(hours=4)); s.lab("k", "2823-3", 3.1, ago(hours=4))
    s.lab("ica", "1995-0", 1.05, ago(hours=4)); s.lab("po4", "14879-1", 1.4, ago(hours=4))
    out.append(s)

    s = Scenario("ord-hd-normal", "Lindqvist", "Per", "male", "1961-09-30",
                 "Order-hook patient: hemodialysis, session ended 2 h ago; Mg 0.95 and ionized Ca 1.18 mmol/L "
                 "before it; K 3.2 mmol/L drawn 15 min after it (early post-dialysis: rebounds)")
    s.on_dialysis(); s.usual_sessions(ago(hours=2))
    s.lab("mg", "2601-3", 0.95, ago(hours=6, minutes=30)); s.lab("ica", "1995-0", 1.18, ago(hours=6, minutes=30))
    s.lab("po4", "14879-1", 1.3, ago(hours=6, minutes=30))
    s.lab("k", "29349-8", 3.2, ago(hours=1, minutes=45))
    out.append(s)

    s = Scenario("ord-hd-no-labs", "Okafor", "Chidi", "male", "1966-05-02",
                 "Order-hook patient: hemodialysis, no Mg or Ca result; last K 4.1 mmol/L 9 days ago")
    s.on_dialysis(); s.usual_sessions(ago(hours=26))
    s.lab("k", "2823-3", 4.1, ago(days=9))
    out.append(s)

    s = Scenario("ord-no-dialysis", "Brandt", "Helga", "female", "1952-11-21",
                 "Order-hook patient: CKD stage 3, not on dialysis, low Mg 0.52 and K 4.9 mmol/L (no card)")
    s.condition("ckd3", concept((ICD10CM, "N18.3", "Chronic kidney disease, stage 3 (moderate)")), ago(days=900))
    s.lab("mg", "2601-3", 0.52, ago(hours=6)); s.lab("k", "2823-3", 4.9, ago(hours=6))
    out.append(s)
    return out


def trend_scenario() -> Scenario:
    """A year of haemodialysis with magnesium drifting down: the electrolyte trend app's demo patient.

    Sessions Mon/Wed/Fri 05:00-09:00 (the last one ended 3 h before "now"); a weekly pre-session panel
    drawn 30 min before the start; some post-session K and an intradialytic iCa; pre- and post-session
    weights (one session three weeks ago with a UFR over 13 mL/kg/h); oral Mg, gabapentin and a stopped
    quinine order; two documented cramps. The latest Mg (0.52 mmol/L) was drawn before the last session.
    """
    s = Scenario("dx-low-mg-trend", "Lindqvist", "Astrid", "female", "1956-09-21",
                 "A year of HD with Mg drifting down to 0.52 mmol/L; trend app demo patient")
    s.on_dialysis(since=ago(days=900))
    last_end = NOW.replace(hour=9, minute=0)
    sessions = []
    day, gaps = last_end, (2, 2, 3)  # three sessions a week
    while day > NOW - timedelta(days=372):
        sessions.append(day)
        day -= timedelta(days=gaps[len(sessions) % 3])
    sessions.reverse()  # oldest first
    for i, end in enumerate(sessions):
        start = end - timedelta(hours=4)
        s.session(end)
        pre = 71.0 + 0.8 * ((i * 7) % 5) / 4
        removed = 3.9 if end.date() == (last_end - timedelta(days=21)).date() else 1.9 + 0.3 * ((i * 3) % 4)
        for kg, when in ((pre, start - timedelta(minutes=20)), (pre - removed, end + timedelta(minutes=15))):
            s.add({"resourceType": "Observation", "id": s.next_id("weight"), "status": "final",
                   "category": [concept((OBS_CAT, "vital-signs", "Vital Signs"))],
                   "code": concept((LOINC, "29463-7", "Body weight"), text="Body weight"),
                   "subject": s.ref, "effectiveDateTime": ts(when),
                   "valueQuantity": {"value": round(kg, 1), "unit": "kg", "system": UCUM, "code": "kg"}})
    weekly = sessions[::-3][::-1]  # every third session, ending with the last one
    n = len(weekly)
    for i, end in enumerate(weekly):
        drawn = end - timedelta(hours=4, minutes=30)
        frac = i / max(1, n - 1)
        mg = round(0.86 - 0.34 * frac * frac + 0.03 * ((i * 5) % 3 - 1), 2)
        s.lab("mg", "19123-9" if i % 2 else "2601-3", round(mg * 2.4305, 2) if i % 2 else mg, drawn)
        s.lab("k", "51618-7", round(4.6 + 0.4 * ((i * 7) % 5 - 2) / 2, 1), drawn)
        s.lab("ica", "1995-0", round(1.19 - 0.04 * frac + 0.02 * ((i * 5) % 3 - 1), 2), drawn)
        s.lab("po4", "2777-1", round(5.2 + 0.6 * ((i * 11) % 5 - 2) / 2, 1), drawn)
        if i % 4 == 1:
            s.lab("k", "29349-8", round(3.4 + 0.1 * (i % 3), 1), end + timedelta(minutes=40))
        if i % 6 == 3:
            s.lab("ica", "1995-0", 1.21, end - timedelta(hours=2))
    rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
    for code, text, start, end, status in (
            ("198741", "magnesium oxide 400 MG Oral Tablet", ago(days=20), None, "active"),
            ("310430", "gabapentin 100 MG Oral Capsule", ago(days=300), None, "active"),
            ("997010", "quinine sulfate 324 MG Oral Capsule", ago(days=80), ago(days=52), "stopped")):
        period = {"start": ts(start)}
        if end is not None:
            period["end"] = ts(end)
        s.add({"resourceType": "MedicationRequest", "id": s.next_id("med"), "status": status, "intent": "order",
               "medicationCodeableConcept": concept((rx, code, text), text=text), "subject": s.ref,
               "authoredOn": ts(start), "dispenseRequest": {"validityPeriod": period}})
    s.symptom("cramp", CRAMP, ago(days=38, hours=3))
    s.symptom("cramp", CRAMP, ago(days=10, hours=2))
    return s


# ---------------------------------------------------------------------- Synthea patient

SYNTHEA_ID = "synthea-fletcher-dialysis"


def synthea_bundle(source: Path) -> dict:
    """Fletcher Hyatt's Synthea record as PUT entries with stable ids, plus dialysis and a low Mg.

    Synthea ids (UUIDs) are kept; the Patient becomes Patient/synthea-fletcher-dialysis;
    urn:uuid references are rewritten to Type/id. The record ends in 1997, so the scenario's "now"
    is set a few days after its last entry; deceasedDateTime is removed (the demo needs a living
    patient). Everything else is Synthea's data unchanged.
    """
    raw = json.loads(gzip.decompress(source.read_bytes()))
    ids: dict[str, str] = {}
    for entry in raw["entry"]:
        res = entry["resource"]
        rid = SYNTHEA_ID if res["resourceType"] == "Patient" else res["id"]
        ids[entry["fullUrl"]] = f"{res['resourceType']}/{rid}"
        res["id"] = rid
    text = json.dumps(raw)
    text = re.sub(r'"urn:uuid:[0-9a-f-]+"', lambda m: json.dumps(ids.get(m.group(0).strip('"'), m.group(0).strip('"'))),
                  text)
    raw = json.loads(text)
    patient = next(e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "Patient")
    patient.pop("deceasedDateTime", None)
    times = sorted(re.findall(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^"]*)"', text))
    last = datetime.fromisoformat(times[-1].replace("Z", "+00:00")).astimezone(timezone.utc)
    anchor = (last + timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)

    # Dialysis on top of the record, relative to the anchor.
    global NOW
    saved, NOW = NOW, anchor
    try:
        extra = Scenario(SYNTHEA_ID, "Hyatt", "Fletcher", "male", patient.get("birthDate", "1915-07-03"), "")
        extra.entries.clear()
        extra.on_dialysis(since=anchor - timedelta(days=150))
        extra.usual_sessions(anchor - timedelta(days=1, hours=2))
        extra.lab("mg", "2601-3", 0.58, anchor - timedelta(hours=20))
        extra.lab("k", "2823-3", 4.6, anchor - timedelta(hours=20))
        extra.lab("ica", "1995-0", 1.17, anchor - timedelta(hours=20))
        added = extra.entries
    finally:
        NOW = saved

    entries = []
    for entry in raw["entry"]:
        res = entry["resource"]
        path = f"{res['resourceType']}/{res['id']}"
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'fixture:' + path)}",
                        "resource": res, "request": {"method": "PUT", "url": path}})
    for res in added:
        path = f"{res['resourceType']}/{res['id']}"
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'fixture:' + path)}",
                        "resource": res, "request": {"method": "PUT", "url": path}})
    return {"resourceType": "Bundle", "id": f"fixture-{SYNTHEA_ID}", "type": "transaction",
            "timestamp": ts(anchor), "entry": entries}


def write(path: Path, bundle: dict) -> None:
    data = json.dumps(bundle, indent=1, ensure_ascii=False) + "\n"
    if len(data.encode()) > 2 * 1024 * 1024:
        path = path.with_suffix(".json.gz")
        path.write_bytes(gzip.compress(data.encode(), mtime=0))
    else:
        path.write_text(data, encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({len(bundle['entry'])} entries)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthea", type=Path, help="Synthea transaction bundle (.json.gz) for Fletcher Hyatt")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for s in scenarios() + order_scenarios():
        write(OUT / f"{s.pid}.json", s.bundle())
    if args.synthea:
        write(OUT / f"{SYNTHEA_ID}.json", synthea_bundle(args.synthea))


if __name__ == "__main__":
    main()
