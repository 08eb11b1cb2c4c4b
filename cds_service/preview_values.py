"""What the card preview shows beside a scenario's cards: the patient's values, read from the request.

A compact, clinician-readable list of what the request carries (prefetched Observations, Conditions,
dialysis Procedures and Encounters, and the draft orders), newest first, with times relative to the
scenario's "now". Read straight from the JSON, so that it shows what was sent, including what the
rules refuse (an entered-in-error result is listed, struck through).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from .clinical.timeutil import parse_fhir_datetime

MAX_ROWS_PER_KIND = 12


@dataclass
class ValueRow:
    kind: str          # "Lab", "Observation", "Condition", "Dialysis", "Encounter", "Draft order"
    name: str
    value: str
    when: str          # "2 h ago", "in 30 min", "" when undated
    status: str = ""   # a non-final status worth showing ("entered-in-error", "preliminary", ...)
    sort_key: str = ""


@dataclass
class ValueGroup:
    kind: str
    rows: list[ValueRow]
    more: int = 0      # rows left out beyond MAX_ROWS_PER_KIND


def _concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _quantity(q: Any) -> str:
    if not isinstance(q, dict) or "value" not in q:
        return ""
    unit = q.get("unit") or q.get("code") or ""
    comparator = q.get("comparator") or ""
    return f"{comparator}{_number(q['value'])} {unit}".strip()


def _observation_value(res: dict) -> str:
    for key in ("valueQuantity",):
        if key in res:
            return _quantity(res[key])
    if "valueCodeableConcept" in res:
        return _concept_text(res["valueCodeableConcept"])
    for key in ("valueString", "valueBoolean", "valueInteger"):
        if key in res:
            return _number(res[key])
    parts = []
    for component in res.get("component") or []:
        if isinstance(component, dict):
            text = _quantity(component.get("valueQuantity")) or _concept_text(component.get("valueCodeableConcept"))
            if text:
                parts.append(f"{_concept_text(component.get('code'))} {text}".strip())
    if parts:
        return "; ".join(parts)
    if res.get("dataAbsentReason"):
        return f"(no value: {_concept_text(res['dataAbsentReason'])})"
    return ""


def _moment(res: dict, keys: Iterable[str], periods: Iterable[str]) -> str:
    for key in keys:
        value = res.get(key)
        if isinstance(value, str):
            return value
    for key in periods:
        period = res.get(key)
        if isinstance(period, dict) and (period.get("end") or period.get("start")):
            return str(period.get("end") or period.get("start"))
    return ""


def relative(moment: str, now: datetime) -> str:
    parsed = parse_fhir_datetime(moment) if moment else None
    if parsed is None:
        return moment or ""
    seconds = (now - parsed).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 90:
        text = "just now" if not future else "in a minute"
        return text
    minutes = seconds / 60
    if minutes < 90:
        amount = f"{minutes:.0f} min"
    elif minutes < 48 * 60:
        amount = f"{minutes / 60:.0f} h"
    else:
        amount = f"{minutes / 1440:.0f} d"
    return f"in {amount}" if future else f"{amount} ago"


def _resources(node: Any) -> Iterable[dict]:
    if isinstance(node, dict):
        if node.get("resourceType") == "Bundle":
            for entry in node.get("entry") or []:
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    yield entry["resource"]
        elif node.get("resourceType"):
            yield node


def _row(res: dict, now: datetime, draft: bool) -> ValueRow | None:
    rtype = res.get("resourceType")
    status = str(res.get("status") or "")
    if draft:
        med = _concept_text(res.get("medicationCodeableConcept")) or _concept_text(res.get("code"))
        if not med and isinstance(res.get("medicationReference"), dict):
            med = str(res["medicationReference"].get("display") or res["medicationReference"].get("reference") or "")
        dose = "; ".join(str(d.get("text")) for d in res.get("dosageInstruction") or []
                         if isinstance(d, dict) and d.get("text"))
        return ValueRow("Draft order", med or rtype or "order", dose, "", "" if status in ("draft", "") else status)
    if rtype == "Observation":
        when = _moment(res, ("effectiveDateTime", "effectiveInstant", "issued"), ("effectivePeriod",))
        kind = "Lab" if any(isinstance(c, dict) and any(x.get("code") == "laboratory" for x in c.get("coding") or [])
                            for c in res.get("category") or []) else "Observation"
        return ValueRow(kind, _concept_text(res.get("code")), _observation_value(res), relative(when, now),
                        "" if status in ("final", "amended", "corrected", "") else status, when)
    if rtype == "Condition":
        clinical = _concept_text(res.get("clinicalStatus"))
        when = _moment(res, ("onsetDateTime", "recordedDate"), ("onsetPeriod",))
        return ValueRow("Condition", _concept_text(res.get("code")), "", relative(when, now),
                        "" if clinical in ("active", "") else clinical, when)
    if rtype == "Procedure":
        when = _moment(res, ("performedDateTime",), ("performedPeriod",))
        return ValueRow("Dialysis", _concept_text(res.get("code")), "ended" if "performedPeriod" in res else "",
                        relative(when, now), "" if status in ("completed", "") else status, when)
    if rtype == "Encounter":
        when = _moment(res, (), ("period",))
        names = [_concept_text(t) for t in res.get("type") or []]
        return ValueRow("Encounter", ", ".join(n for n in names if n) or "Encounter", "", relative(when, now),
                        "" if status in ("finished", "") else status, when)
    return None


KIND_ORDER = ("Draft order", "Lab", "Observation", "Dialysis", "Encounter", "Condition")


def patient_values(request: dict, now: datetime) -> list[ValueGroup]:
    """The request's data, grouped by kind (draft orders first), newest first, each kind capped."""
    rows: list[ValueRow] = []
    seen: set[tuple[str, str]] = set()
    prefetch = request.get("prefetch")
    if not isinstance(prefetch, dict):
        prefetch = {}
    for value in prefetch.values():
        for res in _resources(value):
            key = (str(res.get("resourceType")), str(res.get("id")))
            if res.get("id") and key in seen:
                continue
            seen.add(key)
            row = _row(res, now, draft=False)
            if row:
                rows.append(row)
    context = request.get("context")
    if not isinstance(context, dict):
        context = {}
    for res in _resources(context.get("draftOrders")):
        row = _row(res, now, draft=True)
        if row:
            rows.append(row)
    groups = []
    for kind in KIND_ORDER:
        mine = [r for r in rows if r.kind == kind]
        if not mine:
            continue
        mine.sort(key=lambda r: r.sort_key, reverse=True)
        groups.append(ValueGroup(kind, mine[:MAX_ROWS_PER_KIND], max(0, len(mine) - MAX_ROWS_PER_KIND)))
    return groups
