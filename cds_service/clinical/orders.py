"""Draft medication orders: read leniently from context.draftOrders, then classified, routed and dosed.

Pure code. ``read_draft_orders`` walks the Bundle entry by entry: an entry that cannot
be read is skipped with a note and never sinks the others. For each MedicationRequest
it finds the medication (``medicationCodeableConcept``, or ``medicationReference`` to a
contained Medication or to a Medication elsewhere in the Bundle), classifies it with
``clinical.drugs``, and reads the route and dose from ``dosageInstruction``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import drugs
from .drugs import Product

log = logging.getLogger(__name__)

SNOMED = "http://snomed.info/sct"
EDQM_SYSTEMS = frozenset({"http://standardterms.edqm.eu", "urn:oid:0.4.0.127.0.16.1.1.2.1"})
# Route codes from the project's verified code reference.
ROUTE_CODES: dict[tuple[str, str], str] = {
    (SNOMED, "47625008"): "intravenous",
    (SNOMED, "26643006"): "oral",
    (SNOMED, "34206005"): "subcutaneous",
    (SNOMED, "78421000"): "intramuscular",
}
EDQM_ROUTES = {"20045000": "intravenous"}
_ROUTE_TEXT = (
    (re.compile(r"intrathecal", re.I), "intrathecal"),
    (re.compile(r"intravenous|^\s*i\.?v\.?\s*$|\bivpb\b|\biv (push|bolus|infusion)\b", re.I), "intravenous"),
    (re.compile(r"\boral\b|^\s*p\.?o\.?\s*$|by mouth", re.I), "oral"),
    (re.compile(r"intramuscular|^\s*i\.?m\.?\s*$", re.I), "intramuscular"),
    (re.compile(r"subcutaneous|^\s*s\.?c\.?\s*$", re.I), "subcutaneous"),
    (re.compile(r"intraperitoneal", re.I), "intraperitoneal"),
)
# Statuses of orders that are not going to be given.
_DEAD_STATUSES = frozenset({"entered-in-error", "cancelled", "stopped", "completed"})

Parse = Callable[[dict[str, Any], str], Any]


# ---------------------------------------------------------------- dose

@dataclass(frozen=True)
class Dose:
    """Dose of one order. ``None`` means not stated or not convertible: never guessed."""
    single: float | None = None  # the largest single administration
    daily: float | None = None  # total per day
    unit: str | None = None  # "mg" or "mEq" (both amounts use it)
    per_day: float | None = None  # administrations per day
    upper_bound: bool = False  # a range or "up to" frequency: the figures are the maximum

    def describe(self) -> str:
        if self.single is None:
            return "dose not stated in a form the service can read"
        up = "up to " if self.upper_bound else ""
        text = f"{up}{_num(self.single)} {self.unit} per dose"
        if self.daily is not None:
            text += f", {up}{_num(self.daily)} {self.unit}/day"
        else:
            text += " (frequency not stated)"
        return text


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


_MASS_UNITS = {"mg": 1.0, "milligram": 1.0, "milligrams": 1.0, "g": 1000.0, "gm": 1000.0, "gram": 1000.0,
               "grams": 1000.0, "ug": 0.001, "mcg": 0.001, "µg": 0.001, "μg": 0.001, "microgram": 0.001,
               "micrograms": 0.001}
_MEQ_UNITS = {"meq", "m[eq]", "milliequivalent", "milliequivalents"}
_EACH_UNITS = {"{tbl}", "tbl", "tab", "tabs", "tablet", "tablets", "{tablet}", "{tablets}", "cap", "caps",
               "capsule", "capsules", "{capsule}", "{capsules}", "{cap}", "each", "{each}", "ea", "1", "{unit}",
               "{packet}", "packet"}
_ML_UNITS = {"ml", "milliliter", "millilitre", "milliliters", "millilitres", "cm3"}
_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0}  # mo and a: not exact
_GTS_PER_DAY = {"QD": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0, "AM": 1.0, "PM": 1.0, "QOD": 0.5,
                "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0, "Q24H": 1.0}


def _quantity_amount(qty: Any, product: Product | None) -> tuple[float, str] | None:
    """(amount, "mg"|"mEq") of one dose quantity, or None when its unit cannot be converted."""
    if qty is None or qty.value is None:
        return None
    value = float(qty.value)
    if value < 0:
        return None
    units = [u for u in (getattr(qty, "code", None), getattr(qty, "unit", None)) if u]
    for raw_unit in units:
        unit = str(raw_unit).strip().lower()
        if unit in _MASS_UNITS:
            return value * _MASS_UNITS[unit], "mg"
        if unit in _MEQ_UNITS:
            return value, "mEq"
        strength = product.strength if product is not None and not product.multi else None
        if strength is not None and unit in _EACH_UNITS and strength.per == "each":
            return value * strength.amount, strength.unit
        if strength is not None and unit in _ML_UNITS and strength.per == "mL":
            return value * strength.amount, strength.unit
    return None


def _per_day(timing: Any) -> tuple[float | None, bool]:
    """(administrations per day, upper bound?) from Timing.repeat or Timing.code; None when not stated."""
    if timing is None:
        return None, False
    repeat = getattr(timing, "repeat", None)
    if repeat is not None:
        period, unit = repeat.period, repeat.periodUnit
        frequency = repeat.frequencyMax or repeat.frequency
        upper = repeat.frequencyMax is not None and repeat.frequencyMax != repeat.frequency
        if period is not None and unit in _PERIOD_DAYS and float(period) > 0:
            # FHIR Timing: without a frequency the event occurs once per period.
            return float(frequency or 1) / (float(period) * _PERIOD_DAYS[unit]), upper
        if period is None and repeat.timeOfDay:
            return float(len(repeat.timeOfDay)), False
        if period is not None or frequency is not None:
            return None, False
    code = getattr(timing, "code", None)
    for coding in getattr(code, "coding", None) or []:
        if coding.code and coding.code.upper() in _GTS_PER_DAY:
            return _GTS_PER_DAY[coding.code.upper()], False
    return None, False


def _one_dosage(dosage: Any, product: Product | None) -> tuple[tuple[float, str] | None, float | None, bool]:
    """(single amount, per day, upper bound) of one Dosage."""
    amount = None
    upper = False
    for dr in getattr(dosage, "doseAndRate", None) or []:
        if dr.doseQuantity is not None:
            amount = _quantity_amount(dr.doseQuantity, product)
        elif dr.doseRange is not None and dr.doseRange.high is not None:
            amount = _quantity_amount(dr.doseRange.high, product)
            upper = amount is not None
        if amount is not None:
            break
    per_day, per_day_upper = _per_day(getattr(dosage, "timing", None))
    return amount, per_day, upper or per_day_upper


def read_dose(dosages: Iterable[Any], product: Product | None) -> Dose:
    """Single and daily dose over all dosage instructions.

    Instructions sharing a ``sequence`` (or all without one) are taken together (their daily doses add
    up); different sequences follow one another, so the daily dose is the largest sequence's. Any part
    that cannot be read makes the daily dose unknown.
    """
    dosages = list(dosages or [])
    if not dosages:
        return Dose()
    groups: dict[Any, list[tuple[tuple[float, str] | None, float | None, bool]]] = {}
    for dosage in dosages:
        groups.setdefault(getattr(dosage, "sequence", None), []).append(_one_dosage(dosage, product))
    parts = [p for g in groups.values() for p in g]
    units = {p[0][1] for p in parts if p[0] is not None}
    if len(units) != 1:
        return Dose()  # nothing readable, or mg mixed with mEq
    unit = units.pop()
    singles = [p[0][0] for p in parts if p[0] is not None]
    upper = any(p[2] for p in parts)
    daily: float | None = None
    per_day: float | None = None
    if all(p[0] is not None and p[1] is not None for p in parts):
        totals = [sum(amount[0] * count for amount, count, _upper in g if amount is not None and count is not None)
                  for g in groups.values()]
        daily = max(totals)
        if len(parts) == 1:
            per_day = parts[0][1]
    elif len(parts) == 1:
        per_day = parts[0][1]
    return Dose(single=max(singles), daily=daily, unit=unit, per_day=per_day, upper_bound=upper)


# ---------------------------------------------------------------- route

def route_of(dosages: Iterable[Any]) -> tuple[str | None, str]:
    """(route kind, as written) from dosageInstruction.route; kind None when no route is given or known."""
    kinds: list[str] = []
    written: list[str] = []
    for dosage in dosages or []:
        route = getattr(dosage, "route", None)
        if route is None:
            continue
        kind = None
        for coding in route.coding or []:
            system, code = str(coding.system or ""), str(coding.code or "")
            kind = ROUTE_CODES.get((system, code)) or (EDQM_ROUTES.get(code) if system in EDQM_SYSTEMS else None)
            if coding.display:
                written.append(coding.display)
            if kind:
                break
        if route.text:
            written.insert(0, route.text)
        if kind is None:
            for text in [route.text] + [c.display for c in route.coding or []]:
                if text:
                    kind = next((k for pattern, k in _ROUTE_TEXT if pattern.search(text)), None)
                    if kind:
                        break
        if kind:
            kinds.append(kind)
    kind = "intravenous" if "intravenous" in kinds else (kinds[0] if kinds else None)
    return kind, (written[0] if written else "")


# ---------------------------------------------------------------- the order

@dataclass
class DraftOrder:
    id: str
    reference: str  # "MedicationRequest/<id>"
    request: Any  # fhir.resources MedicationRequest
    medication: Any = None  # fhir.resources Medication when medicationReference resolved
    text: str = ""
    notes: list[str] = field(default_factory=list)
    product: Product | None = None  # what drug this is (None: not recognised)
    route: str | None = None  # "intravenous", "oral", "intrathecal", ... or None when not given
    route_text: str = ""
    dose: Dose = field(default_factory=Dose)
    has_id: bool = True  # False when the MedicationRequest came without an id (no resourceId to act on)
    status: str = ""

    @property
    def intravenous(self) -> bool:
        """Given IV: the route says so, or no route is given and the product can only go IV (a premix)."""
        if self.route is not None:
            return self.route == "intravenous"
        return bool(self.product and self.product.iv_only)

    def ingredient(self) -> str | None:
        return self.product.single if self.product is not None else None

    def label(self, limit: int = 80) -> str:
        """The medication as the clinician wrote it, cleaned for a card (no markup, bounded length)."""
        text = self.text or (self.product.name if self.product else "") or "medication order"
        text = re.sub(r"[\x00-\x1f\x7f`*_<>|\[\]\\#]", " ", text)
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _concept_codings(concept: Any) -> list[tuple[str, str, str]]:
    return [(str(c.system or ""), str(c.code or ""), str(c.display or ""))
            for c in (getattr(concept, "coding", None) or []) if c.code or c.display]


def _concept_text(concept: Any) -> str:
    if concept is None:
        return ""
    return concept.text or next((c.display for c in concept.coding or [] if c.display), "") or ""


def _analyse(order: DraftOrder) -> None:
    model = order.request
    concept = model.medicationCodeableConcept or getattr(order.medication, "code", None)
    order.text = _concept_text(concept)
    ingredient_count = None
    ingredient_texts: tuple[str, ...] = ()
    if order.medication is not None and order.medication.ingredient:
        ingredient_count = len(order.medication.ingredient)
        ingredient_texts = tuple(_concept_text(i.itemCodeableConcept) for i in order.medication.ingredient
                                 if i.itemCodeableConcept is not None)
        if not order.text:
            order.text = " / ".join(t for t in ingredient_texts if t)
    result = drugs.classify(_concept_codings(concept), order.text, ingredient_count, ingredient_texts)
    order.product = result.product
    order.notes.extend(result.notes)
    dosages = list(model.dosageInstruction or [])
    order.route, order.route_text = route_of(dosages)
    order.dose = read_dose(dosages, order.product)


def read_draft_orders(bundle: Any, parse: Parse, notes: list[str] | None = None) -> list[DraftOrder]:
    """Every live MedicationRequest in the draftOrders Bundle, entry by entry; a bad entry is skipped."""
    if not isinstance(bundle, dict):
        return []
    entries: list[Any] = bundle["entry"] if isinstance(bundle.get("entry"), list) else []
    raws: list[tuple[int, dict[str, Any], str]] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            full_url: str = entry["fullUrl"] if isinstance(entry.get("fullUrl"), str) else ""
            raws.append((index, entry["resource"], full_url))
    medications: dict[str, Any] = {}
    for _index, raw, full_url in raws:
        if raw.get("resourceType") != "Medication":
            continue
        med = _safe_parse(parse, raw, "Medication")
        if med is None:
            continue
        if isinstance(raw.get("id"), str) and raw["id"]:
            medications[f"Medication/{raw['id']}"] = med
        if full_url:
            medications[full_url] = med
    orders = []
    for index, raw, full_url in raws:
        if raw.get("resourceType") != "MedicationRequest":
            continue
        model = _safe_parse(parse, raw, "MedicationRequest")
        if model is None:
            _note(notes, f"draftOrders entry {index}: MedicationRequest could not be read; skipped")
            continue
        status = str(model.status or "")
        if status in _DEAD_STATUSES:
            _note(notes, f"draftOrders entry {index}: MedicationRequest status {status}; not checked")
            continue
        has_id = bool(model.id)
        rid = str(model.id or f"draft-{index}")
        try:
            medication = _resolve_medication(model, medications)
            order = DraftOrder(id=rid, reference=f"MedicationRequest/{rid}", request=model,
                               medication=medication, has_id=has_id, status=status)
            _analyse(order)
        except Exception:  # noqa: BLE001 - one odd order must not sink the others
            log.exception("draftOrders entry %s could not be analysed", index)
            _note(notes, f"draftOrders entry {index}: could not be analysed; skipped")
            continue
        orders.append(order)
    return orders


def _resolve_medication(model: Any, medications: dict[str, Any]) -> Any:
    ref = getattr(model, "medicationReference", None)
    if ref is None or not ref.reference:
        return None
    target = ref.reference
    if target.startswith("#"):
        for contained in model.contained or []:
            if getattr(contained, "id", None) == target[1:] and type(contained).__name__ == "Medication":
                return contained
        return None
    if target in medications:
        return medications[target]
    parts = target.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Medication":  # absolute URL or versioned reference
        return medications.get(f"Medication/{parts[-1]}")
    if len(parts) >= 4 and parts[-2] == "_history" and parts[-4] == "Medication":
        return medications.get(f"Medication/{parts[-3]}")
    return None


def _safe_parse(parse: Parse, raw: dict[str, Any], rtype: str) -> Any:
    try:
        return parse(raw, rtype)
    except Exception:  # noqa: BLE001 - the lenient parser should not raise; if it does, skip the entry
        log.exception("parse of %s failed", rtype)
        return None


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)


# ---------------------------------------------------------------- which orders a hook checks

def _ref_key(value: str) -> str:
    parts = [p for p in str(value).split("/") if p]
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return "/".join(parts[-2:])


def orders_to_check(snapshot: Any) -> list[DraftOrder]:
    """order-select: only the selected draft orders; order-sign (and anything else): all of them."""
    orders = list(snapshot.draft_orders or [])
    if snapshot.selections is None:
        return orders
    selected = {_ref_key(s) for s in snapshot.selections}
    return [o for o in orders if o.has_id and _ref_key(o.reference) in selected]
