"""What the trend app shows, built from the patient's raw FHIR resources (no I/O here).

Lab values are recognised, converted and classified by the same clinical code as the cards
(codes.ANALYTE_LOINC, labs.result_from_model, the unit factors in codes); sessions are read by
clinical.dialysis; cramps by clinical.symptoms; medications by clinical.drugs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Iterable

from ..clinical import codes, drugs
from ..clinical.labs import LabResult, candidates, raw_analyte, result_from_model
from ..clinical.symptoms import documented
from ..clinical.timeutil import parse_fhir_datetime
from ..clinical.timing import FUTURE_TOLERANCE, Session
from ..fhir.parse import parse_all
from . import domain

ANALYTES = ("mg", "ica", "k", "po4")
RANGES = (7, 30, 90, 365)
DEFAULT_RANGE = 90
UNITS = ("mmol/L", "mg/dL", "mEq/L")

# Target / reference band per analyte, in mmol/L (typical adult reference ranges; the Mg lower
# bound is the cards' 0.70 mmol/L target). Labs' own ranges vary; the band is a guide.
BANDS = {"mg": (0.70, 1.10), "ica": (1.12, 1.32), "k": (3.5, 5.3), "po4": (0.8, 1.4)}
BAND_LABEL = {"mg": "target ≥ 0.70, reference to 1.10", "ica": "reference 1.12–1.32", "k": "reference 3.5–5.3",
              "po4": "reference 0.8–1.4"}
SHORT = {"mg": "Mg", "ica": "iCa", "k": "K", "po4": "PO4"}

# Medication groups the timeline shows, by canonical ingredient (clinical.drugs names).
MED_GROUPS: list[tuple[str, frozenset[str]]] = [
    ("Magnesium", drugs.MAGNESIUM_SALTS),
    ("Potassium", drugs.POTASSIUM_REPLACEMENT),
    ("Calcium", drugs.CALCIUM_REPLACEMENT | drugs.PHOSPHATE_BINDERS),
    ("Quinine", drugs.QUININE_LIKE),
    ("Baclofen", frozenset({"baclofen"})),
    ("Gabapentin", frozenset({"gabapentin"})),
]
HYPERTONIC_SALINE_MG_ML = 200.0  # 23.4 % NaCl is 234 mg/mL; 14.6 % (146 mg/mL) is not this product


def display_factor(analyte: str, unit: str) -> float | None:
    """Multiply a canonical (mmol/L) value by this to show it in ``unit``; None when undefined (PO4 in mEq/L)."""
    factor = codes.conversion_factor(analyte, codes.normalise_unit_key(unit))
    return None if not factor else 1.0 / factor


def shown_unit(analyte: str, unit: str) -> str:
    return unit if display_factor(analyte, unit) is not None else "mmol/L"


def format_value(analyte: str, value_mmol: float, unit: str) -> str:
    factor = display_factor(analyte, unit) or 1.0
    value = value_mmol * factor
    digits = 1 if (analyte == "k" or unit == "mg/dL") else 2
    return f"{value:.{digits}f}"


@dataclass(frozen=True)
class Point:
    result: LabResult
    cls: domain.ResultClass


@dataclass
class MedSpan:
    group: str
    label: str
    start: datetime
    end: datetime | None  # None: a single order date (no known duration)
    status: str


@dataclass
class TrendView:
    patient_id: str
    now: datetime
    days: int
    start: datetime
    series: dict[str, list[Point]] = field(default_factory=dict)  # oldest first
    sessions: list[Session] = field(default_factory=list)  # oldest first
    session_rows: list[domain.SessionRow] = field(default_factory=list)  # completed sessions, oldest first
    meds: list[MedSpan] = field(default_factory=list)
    cramps: list[Any] = field(default_factory=list)  # clinical.symptoms.Documented
    skipped: int = 0  # results not usable (no value, unknown unit)

    @property
    def lab_count(self) -> int:
        return sum(len(v) for v in self.series.values())


_QUANTITY_FIELDS = ("code", "system", "unit", "comparator")


def _quantity(raw: dict) -> Any:
    """valueQuantity as the attribute object result_from_model reads (non-string fields read as absent)."""
    q = raw.get("valueQuantity")
    if not isinstance(q, dict):
        return None
    value = q.get("value")
    if value.__class__ not in (int, float):  # bool is not a number here
        return None
    fields = {k: (v if isinstance(v := q.get(k), str) else None) for k in _QUANTITY_FIELDS}
    return SimpleNamespace(value=value, **fields)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def lab_results(raw_observations: Iterable[dict], start: datetime, now: datetime,
                analytes: tuple[str, ...] = ANALYTES) -> tuple[dict[str, list[LabResult]], int]:
    """Usable results (Mg, iCa, K, PO4 by default) in [start, now + 5 min], oldest first, and how many were not.

    The same pre-filter (LOINC value sets, counted statuses, clinical time) and the same conversion
    (unit factors, comparators, resolution) as the cards; only the validating model parse is left
    out, so that a year of results is read in milliseconds.
    """
    out: dict[str, list[LabResult]] = {a: [] for a in analytes}
    skipped = 0
    for analyte, items in candidates(raw_observations).items():
        if analyte not in out:
            continue
        for when, _issued, raw in reversed(items):  # oldest first
            if when < start or when > now + FUTURE_TOLERANCE:
                continue
            quantity = _quantity(raw)
            result = None
            if quantity is not None:
                obs = SimpleNamespace(valueQuantity=quantity, id=_str(raw.get("id")), status=raw.get("status"))
                pair = raw_analyte(raw)
                if pair is not None:
                    result, _why = result_from_model(obs, analyte, pair[1], when)
            if result is None:
                skipped += 1
                continue
            out[analyte].append(result)
    return out, skipped



def medication_spans(raw_requests: Iterable[dict], start: datetime, now: datetime) -> list[MedSpan]:
    spans = []
    for raw in raw_requests:
        if not isinstance(raw, dict) or raw.get("status") in ("entered-in-error", "draft", "cancelled"):
            continue
        concept = raw.get("medicationCodeableConcept")
        if not isinstance(concept, dict):
            continue
        codings = [(str(c.get("system") or ""), str(c.get("code") or ""), str(c.get("display") or ""))
                   for c in concept.get("coding") or [] if isinstance(c, dict)]
        product = drugs.classify(codings, _str(concept.get("text"))).product
        if product is None or product.decoy_fluid or product.multi:
            continue
        group = _group(product)
        if group is None:
            continue
        began = parse_fhir_datetime(raw.get("authoredOn"))
        validity = (raw.get("dispenseRequest") or {}).get("validityPeriod") if isinstance(
            raw.get("dispenseRequest"), dict) else None
        if isinstance(validity, dict):
            began = parse_fhir_datetime(validity.get("start")) or began
        if began is None:
            continue
        ended = parse_fhir_datetime(validity.get("end")) if isinstance(validity, dict) else None
        status = str(raw.get("status") or "unknown")
        if ended is None and status in ("active", "on-hold"):
            ended = now
        if (ended or began) < start or began > now:
            continue
        label = _str(concept.get("text")) or next((d for _s, _c, d in codings if d), product.name)
        spans.append(MedSpan(group, label, began, ended, status))
    order = [g for g, _ in MED_GROUPS] + ["NaCl 23.4 %"]
    return sorted(spans, key=lambda m: (order.index(m.group), m.start))


def _group(product: drugs.Product) -> str | None:
    ingredient = product.single
    if ingredient == "sodium chloride":
        concentration = product.concentration_mg_ml
        return "NaCl 23.4 %" if concentration and concentration >= HYPERTONIC_SALINE_MG_ML else None
    for name, members in MED_GROUPS:
        if ingredient in members:
            return name
    return None


def build(patient_id: str, raw: dict[str, list[dict]], now: datetime, days: int) -> TrendView:
    """``raw``: resources by kind: labs, weights, symptoms (Observations), procedures, conditions, meds."""
    start = now - timedelta(days=days)
    view = TrendView(patient_id=patient_id, now=now, days=days, start=start)
    status = domain.dialysis_status(parse_all(raw.get("procedures") or [], "Procedure"), now, days)
    view.sessions = [*status.hd_sessions, *([status.session_in_progress] if status.session_in_progress else [])]
    results, view.skipped = lab_results(raw.get("labs") or [], start, now)
    classify = domain.classifier(status, now)
    for analyte in ANALYTES:
        view.series[analyte] = [Point(r, classify(r)) for r in results[analyte]]
    weights, _ = lab_results(raw.get("weights") or [], start - timedelta(days=1), now, analytes=("weight",))
    view.session_rows = domain.session_rows(status.hd_sessions, weights["weight"])
    view.meds = medication_spans(raw.get("meds") or [], start, now)
    conditions = parse_all(raw.get("conditions") or [], "Condition")
    observations = parse_all(raw.get("symptoms") or [], "Observation")
    view.cramps = [d for d in documented(conditions, observations, codes.CRAMP_CODES, now, timedelta(days=days),
                                         episodes=True) if d.time is not None]
    return view
