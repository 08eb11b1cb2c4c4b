"""Draft medication orders: read leniently from context.draftOrders, then classified, routed and dosed.

Pure code. ``read_draft_orders`` walks the Bundle entry by entry: an entry that cannot
be read is skipped with a note and never sinks the others. For each MedicationRequest
it finds the medication (``medicationCodeableConcept``, or ``medicationReference`` to a
contained Medication or to a Medication elsewhere in the Bundle), classifies it with
``clinical.drugs``, and reads the route and dose from ``dosageInstruction``: the single and daily
dose, the largest total in any 24 h and 48 h (dose, frequency, count, bounds, infusion rate), the
volume per dose, and which dosage lines are a supplement after each hemodialysis session.

``DraftOrder`` then answers the questions the rules ask in clinical terms (``potassium_salt``,
``parenteral_magnesium``, ``oral_magnesium``, ``aluminum``, ``oral_baclofen``, ...), so a rule never
re-derives what an order is.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import drugs
from .drugs import Product
from .timeutil import parse_fhir_datetime

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
_CIRCUIT_TEXT = re.compile(r"venous (return )?(blood ?)?line|dialysis (circuit|line)|extracorporeal|\bh(a)?emodialysis "
                           r"(circuit|line)|\bhd (circuit|line)\b|blood ?line|into the circuit|via the circuit", re.I)
_PERIPHERAL_TEXT = re.compile(r"peripheral|\bpiv\b|\bperipheral(ly)? inserted\b", re.I)
_ROUTE_TEXT = (
    (re.compile(r"intrathecal", re.I), "intrathecal"),
    (_CIRCUIT_TEXT, "dialysis-circuit"),
    (re.compile(r"intravenous|^\s*i\.?v\.?\s*$|\bivpb\b|\biv\b|peripheral|\bpiv\b|central line|\bpicc\b", re.I),
     "intravenous"),
    (re.compile(r"\boral\b|^\s*p\.?o\.?\s*$|by mouth", re.I), "oral"),
    (re.compile(r"intramuscular|^\s*i\.?m\.?\s*$", re.I), "intramuscular"),
    (re.compile(r"subcutaneous|^\s*s\.?c\.?\s*$", re.I), "subcutaneous"),
    (re.compile(r"intraperitoneal", re.I), "intraperitoneal"),
    (re.compile(r"nasogastric|\bng tube\b|\bpeg\b|g-?tube|feeding tube|enteral", re.I), "enteral"),
    (re.compile(r"topical|cutaneous|transdermal", re.I), "topical"),
    (re.compile(r"rectal|^\s*p\.?r\.?\s*$", re.I), "rectal"),
)
# Routes given into a vein: the dialysis circuit's venous line is one.
INTRAVENOUS_ROUTES = frozenset({"intravenous", "dialysis-circuit"})
PARENTERAL_ROUTES = INTRAVENOUS_ROUTES | {"intramuscular"}
ORAL_ROUTES = frozenset({"oral", "enteral"})
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
_L_UNITS = {"l", "liter", "litre", "liters", "litres"}
# A whole container of a solution: its volume times its concentration.
_CONTAINER_UNITS = {"vial", "{vial}", "vials", "bag", "{bag}", "bags", "syringe", "{syringe}", "syringes", "ampule",
                    "{ampule}", "ampoule", "{ampoule}", "bottle", "{bottle}", "premix", "each", "{each}", "ea", "1"}
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
        volume = product.volume_ml if product is not None else None
        if strength is not None and unit in _CONTAINER_UNITS and strength.per == "mL" and volume is not None:
            return value * volume * strength.amount, strength.unit
    return None


def _quantity_volume_ml(qty: Any, product: Product | None) -> float | None:
    """Volume of one dose quantity in mL: stated in mL (or L), or an amount divided by the concentration."""
    if qty is None or qty.value is None or float(qty.value) < 0:
        return None
    value = float(qty.value)
    for raw_unit in (u for u in (getattr(qty, "code", None), getattr(qty, "unit", None)) if u):
        unit = str(raw_unit).strip().lower()
        if unit in _ML_UNITS:
            return value
        if unit in _L_UNITS:
            return value * 1000.0
        if product is not None and unit in _CONTAINER_UNITS and product.volume_ml is not None:
            return value * product.volume_ml
    amount = _quantity_amount(qty, product)
    strength = product.strength if product is not None else None
    if amount is not None and strength is not None and strength.per == "mL" and strength.unit == amount[1]:
        return amount[0] / strength.amount
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


def _dose_of(dr: Any, product: Product | None) -> tuple[tuple[float, str] | None, bool]:
    """(amount, upper bound?) of one doseAndRate: its doseQuantity, or the high end of its doseRange."""
    if dr.doseQuantity is not None:
        return _quantity_amount(dr.doseQuantity, product), False
    if dr.doseRange is not None and dr.doseRange.high is not None:
        amount = _quantity_amount(dr.doseRange.high, product)
        return amount, amount is not None
    return None, False


def _one_dosage(dosage: Any, product: Product | None) -> tuple[tuple[float, str] | None, float | None, bool]:
    """(single amount, per day, upper bound) of one Dosage."""
    amount = None
    upper = False
    for dr in getattr(dosage, "doseAndRate", None) or []:
        amount, upper = _dose_of(dr, product)
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


def read_volume_ml(dosages: Iterable[Any], product: Product | None) -> float | None:
    """The largest volume per dose in mL over the dosage instructions (None when none can be read)."""
    volumes = []
    for dosage in dosages or []:
        for dr in getattr(dosage, "doseAndRate", None) or []:
            qty = dr.doseQuantity if dr.doseQuantity is not None else (
                dr.doseRange.high if dr.doseRange is not None else None)
            volume = _quantity_volume_ml(qty, product)
            if volume is not None:
                volumes.append(volume)
                break
    return max(volumes) if volumes else None


# ---------------------------------------------------------------- totals over 24 h and 48 h

@dataclass(frozen=True)
class Totals:
    """The largest amount ordered in any 24 h and any 48 h window (None when it cannot be read).

    ``readings`` says what was assumed ("no timing: read as one dose", ...); ``upper_bound`` that a
    range or "up to" frequency made the figures a maximum.
    """
    h24: float | None = None
    h48: float | None = None
    unit: str | None = None
    readings: tuple[str, ...] = ()
    upper_bound: bool = False


_HOURS = {"s": 1 / 3600, "min": 1 / 60, "h": 1.0, "d": 24.0, "wk": 168.0}
_UCUM_DURATION = {"s": "s", "min": "min", "h": "h", "hr": "h", "hour": "h", "hours": "h", "d": "d", "day": "d",
                  "days": "d", "wk": "wk", "week": "wk", "weeks": "wk"}
_HORIZON_H = 96.0  # events far enough ahead for any 48 h window that starts within the first 48 h
_MAX_EVENTS = 5000


def _duration_hours(duration: Any) -> float | None:
    if duration is None or duration.value is None:
        return None
    unit = _UCUM_DURATION.get(str(duration.code or duration.unit or "").strip().lower())
    return float(duration.value) * _HOURS[unit] if unit else None


def _rate_per_hour(dr: Any) -> tuple[float, str] | None:
    """(amount per hour, "mg"|"mEq") of a doseAndRate.rateQuantity such as "1 g/h" or "8 mg/min"."""
    qty = getattr(dr, "rateQuantity", None)
    if qty is None or qty.value is None or float(qty.value) < 0:
        return None
    for raw_unit in (u for u in (qty.code, qty.unit) if u):
        amount_unit, _, per = str(raw_unit).strip().lower().replace("[", "").replace("]", "").partition("/")
        per_unit = _UCUM_DURATION.get(per.strip())
        if per_unit is None:
            continue
        if amount_unit in _MASS_UNITS:
            return float(qty.value) * _MASS_UNITS[amount_unit] / _HOURS[per_unit], "mg"
        if amount_unit in _MEQ_UNITS:
            return float(qty.value) / _HOURS[per_unit], "mEq"
    return None


def read_totals(dosages: Iterable[Any], product: Product | None,
                convert: Callable[[float, str], float | None] | None = None) -> Totals:
    """Largest total in any 24 h and 48 h window, from dose, frequency, count, bounds and infusion rate.

    Dosage lines with the same ``sequence`` (or none) run together from the start; a later sequence starts
    when the one before it ends (its count or bounds), and never when the one before repeats without end.
    A line without timing is one dose; a continuous infusion without an end runs through the window.
    ``convert(amount, unit)`` puts every amount in one unit (default: mg and mEq may not be mixed).
    """
    dosages = list(dosages or [])
    if not dosages:
        return Totals()
    readings: list[str] = []
    upper = False
    events: list[tuple[float, float, str]] = []  # (hour, amount, unit)
    infusions: list[tuple[float, float, float, str]] = []  # (start h, end h, per hour, unit)
    groups: dict[Any, list[Any]] = {}
    for dosage in dosages:
        groups.setdefault(getattr(dosage, "sequence", None), []).append(dosage)
    offset = 0.0
    for key in sorted(groups, key=lambda k: (k is not None, k or 0)):
        group_end = offset
        for dosage in groups[key]:
            amount, rate, line_upper = None, None, False
            for dr in getattr(dosage, "doseAndRate", None) or []:
                if amount is None:
                    amount, line_upper = _dose_of(dr, product)
                rate = rate or _rate_per_hour(dr)
            timing = getattr(dosage, "timing", None)
            repeat = getattr(timing, "repeat", None) if timing is not None else None
            per_day, freq_upper = _per_day(timing)
            bound = None
            count = None
            if repeat is not None:
                bound = _duration_hours(getattr(repeat, "boundsDuration", None))
                period = getattr(repeat, "boundsPeriod", None)
                if bound is None and period is not None:
                    began, ended = parse_fhir_datetime(period.start), parse_fhir_datetime(period.end)
                    if began is not None and ended is not None and ended > began:
                        bound = (ended - began).total_seconds() / 3600.0
                count = repeat.countMax or repeat.count
            upper = upper or line_upper or freq_upper
            event_times: list[Any] = [e for e in (getattr(timing, "event", None) or []) if e] if timing else []
            if amount is None:
                if rate is None:
                    return Totals(readings=tuple(readings) + ("a dose that cannot be read",), upper_bound=upper)
                stop = offset + bound if bound is not None else None  # a continuous infusion
                if stop is None:
                    readings.append("a continuous infusion without a stated end: counted through the window")
                infusions.append((offset, stop if stop is not None else offset + _HORIZON_H, rate[0], rate[1]))
                group_end = max(group_end, stop if stop is not None else float("inf"))
                continue
            value, unit = amount
            if event_times:
                parsed = sorted(m for m in (parse_fhir_datetime(e) for e in event_times) if m is not None)
                if parsed:
                    for moment in parsed:
                        events.append((offset + (moment - parsed[0]).total_seconds() / 3600.0, value, unit))
                    group_end = max(group_end, offset + (parsed[-1] - parsed[0]).total_seconds() / 3600.0)
                    continue
            if per_day is None:
                if timing is None or (repeat is None and not getattr(timing, "code", None)):
                    readings.append("no frequency stated: read as one dose")
                    events.append((offset, value, unit))
                    continue
                if count:
                    readings.append("a count without a frequency: every dose counted in the first window")
                    events.extend((offset, value, unit) for _ in range(int(count)))
                    continue
                if repeat is not None and not any((repeat.frequency, repeat.period, repeat.timeOfDay)):
                    readings.append("no frequency stated: read as one dose")
                    events.append((offset, value, unit))
                    continue
                return Totals(readings=tuple(readings) + ("a frequency that cannot be read",), upper_bound=upper)
            interval = 24.0 / per_day
            n = 0
            hour = offset
            limit = offset + bound if bound is not None else float("inf")
            while hour < offset + _HORIZON_H and hour < limit and (count is None or n < count) and n < _MAX_EVENTS:
                events.append((hour, value, unit))
                n += 1
                hour += interval
            line_end = limit if bound is not None else (offset + n * interval if count else float("inf"))
            group_end = max(group_end, line_end)
        offset = group_end
        if offset == float("inf") or offset >= _HORIZON_H:
            break
    units = {u for _t, _a, u in events} | {u for *_x, u in infusions}
    if convert is None:
        if len(units) > 1:
            return Totals(readings=tuple(readings) + ("mg and mEq mixed",), upper_bound=upper)
        convert = lambda amount, unit: amount  # noqa: E731 - one unit throughout
    else:
        units = {"converted"}
    converted_events = []
    for t, a, u in events:
        c = convert(a, u)
        if c is None:
            return Totals(readings=tuple(readings), upper_bound=upper)
        converted_events.append((t, c))
    converted_infusions = []
    for begin, finish, per_hour, u in infusions:
        c = convert(per_hour, u)
        if c is None:
            return Totals(readings=tuple(readings), upper_bound=upper)
        converted_infusions.append((begin, finish, c))
    starts = sorted({0.0} | {t for t, _a in converted_events if t < 48.0} | {s for s, *_r in converted_infusions})

    def window(start: float, hours: float) -> float:
        total = sum(a for t, a in converted_events if start <= t < start + hours)
        for s0, e0, per_hour in converted_infusions:
            overlap = min(e0, start + hours) - max(s0, start)
            if overlap > 0:
                total += overlap * per_hour
        return total

    h24 = max(window(s0, 24.0) for s0 in starts)
    h48 = max(window(s0, 48.0) for s0 in starts)
    out_unit = next(iter(units)) if len(units) == 1 and units != {"converted"} else None
    return Totals(h24=h24, h48=h48, unit=out_unit, readings=tuple(dict.fromkeys(readings)), upper_bound=upper)


# ---------------------------------------------------------------- dosage lines given after each HD session

_AFTER_DIALYSIS = re.compile(
    r"\b(after|following|post)[- ]?(each |every |the )?(h(a)?emo)?dialysis\b|\bpost[- ]?(hd|dialysis)\b"
    r"|\bafter (each |every |the )?(hd|session|dialysis session|h(a)?emodialysis session)s?\b"
    r"|\bon dialysis days,? after\b|\bsupplement(al)? dose after\b", re.I)


def _dosage_texts(dosage: Any) -> list[str]:
    texts = [getattr(dosage, "text", None), getattr(dosage, "patientInstruction", None)]
    for item in getattr(dosage, "additionalInstruction", None) or []:
        texts.append(item.text)
        texts.extend(c.display for c in item.coding or [])
    timing = getattr(dosage, "timing", None)
    code = getattr(timing, "code", None) if timing is not None else None
    if code is not None:
        texts.append(code.text)
        texts.extend(c.display for c in code.coding or [])
    return [t for t in texts if t]


def after_dialysis(dosage: Any) -> bool:
    """True when a dosage line says it is given after each hemodialysis session (the label's supplement)."""
    return any(_AFTER_DIALYSIS.search(t) for t in _dosage_texts(dosage))


def route_statements(dosages: Iterable[Any]) -> tuple[bool, bool]:
    """(peripheral vein stated, dialysis circuit stated) anywhere in the route or dosage text."""
    texts: list[str] = []
    for dosage in dosages or []:
        texts.extend(_dosage_texts(dosage))
        route = getattr(dosage, "route", None)
        if route is not None:
            texts.append(route.text or "")
            texts.extend(c.display or "" for c in route.coding or [])
    peripheral = any(_PERIPHERAL_TEXT.search(t) for t in texts)
    circuit = any(_CIRCUIT_TEXT.search(t) for t in texts)
    return peripheral, circuit


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
    maintenance: Dose = field(default_factory=Dose)  # the dose without lines given after each HD session
    after_dialysis: Dose = field(default_factory=Dose)  # lines given after each HD session (a supplement)
    volume_ml: float | None = None  # largest volume per dose
    peripheral: bool = False  # a peripheral vein is stated in the route or dosage text
    circuit: bool = False  # the dialysis circuit (venous line) is stated
    has_id: bool = True  # False when the MedicationRequest came without an id (no resourceId to act on)
    status: str = ""

    @property
    def intravenous(self) -> bool:
        """Given IV: the route says so, or no route is given and the product can only go IV (a premix)."""
        if self.route is not None:
            return self.route in INTRAVENOUS_ROUTES
        return bool(self.product and self.product.iv_only)

    # -- what the order is, in the rules' terms (None / False when it is none of these)
    @property
    def parenteral(self) -> bool:
        """Given IV or IM: the route says so, or no route and the product is an injection."""
        if self.route is not None:
            return self.route in PARENTERAL_ROUTES
        return bool(self.product and (self.product.iv_only or self.product.injectable))

    @property
    def given_orally(self) -> bool:
        """By mouth or by an enteral tube: the route says so, or no route and an oral dose form."""
        if self.route is not None:
            return self.route in ORAL_ROUTES
        return bool(self.product and self.product.oral)

    def _principal(self, group: str) -> str | None:
        return self.product.principal(group) if self.product is not None else None

    @property
    def potassium_salt(self) -> str | None:
        """KCl, K citrate, K bicarbonate or K phosphate, oral or IV (never a fluid or a supplement)."""
        salt = self._principal("potassium")
        if salt is None or self.route in ("intraperitoneal", "topical"):
            return None
        return salt

    @property
    def parenteral_magnesium(self) -> str | None:
        """Magnesium sulfate or chloride given IV or IM."""
        salt = self._principal("magnesium")
        if salt in drugs.PARENTERAL_MAGNESIUM and self.parenteral and self.product is not None and not self.product.multi:
            return salt
        return None

    @property
    def oral_magnesium(self) -> str | None:
        """An oral magnesium salt, laxative or antacid (combinations such as aluminum/magnesium hydroxide too)."""
        salt = self._principal("magnesium")
        if salt is None or self.product is None:
            return None
        if self.given_orally:
            return salt
        if self.route is None and not (self.product.injectable or self.product.iv_only) and (
                salt in drugs.ORAL_ONLY_MAGNESIUM or self.product.multi):
            return salt  # no route and no form: laxative and antacid salts exist only by mouth
        return None

    @property
    def calcium_replacement(self) -> str | None:
        """Calcium gluconate or chloride (never a phosphate binder such as calcium carbonate or acetate)."""
        product = self.product
        if product is None or product.decoy_fluid or product.supplement or self.route == "intraperitoneal":
            return None
        return product.single if product.single in drugs.CALCIUM_REPLACEMENT else None

    @property
    def aluminum(self) -> str | None:
        """Aluminum hydroxide (binder or antacid, alone or with magnesium) or sucralfate."""
        drug = self._principal("aluminum")
        return None if drug is None or self.route == "topical" else drug

    @property
    def citrate(self) -> bool:
        return bool(self.product and self.product.ingredients & drugs.CITRATE_SALTS)

    @property
    def quinine_kind(self) -> str | None:
        """"quinine" or "quinidine" (single-ingredient only: dextromethorphan/quinidine is not either)."""
        single = self.product.single if self.product is not None else None
        return single if single in drugs.QUININE_LIKE else None

    @property
    def oral_baclofen(self) -> bool:
        """Baclofen by mouth or tube (intrathecal baclofen is not)."""
        if self.product is None or self.ingredient() != "baclofen" or self.route == "intrathecal":
            return False
        if self.route is None:
            return not self.product.intrathecal
        return self.route in ORAL_ROUTES or (self.route not in PARENTERAL_ROUTES and not self.product.intrathecal)

    @property
    def gabapentin(self) -> bool:
        return self.ingredient() == "gabapentin"

    @property
    def hypertonic_saline(self) -> bool:
        """Sodium chloride 23.4 % (23.4-23.5 %, 234 mg/mL, 4 mEq/mL); never 0.9 %, 3 % or 14.6 %."""
        if self.product is None or self.ingredient() != "sodium chloride":
            return False
        strength = self.product.strength
        if strength is not None and strength.per == "mL" and strength.unit == "mEq":
            return bool(abs(strength.amount - 4.0) < 0.05)
        conc = self.product.concentration_mg_ml
        return conc is not None and 233.0 <= conc <= 236.0

    def magnesium_totals(self) -> Totals:
        """Totals over 24 h and 48 h in mg of magnesium sulfate (heptahydrate) equivalent."""
        salt = self.parenteral_magnesium
        dosages = list(self.request.dosageInstruction or [])
        return read_totals(dosages, self.product, lambda amount, unit: drugs.magnesium_sulfate_mg(amount, unit, salt))

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
    supplement_lines = [d for d in dosages if after_dialysis(d)]
    order.after_dialysis = read_dose(supplement_lines, order.product)
    order.maintenance = (read_dose([d for d in dosages if not after_dialysis(d)], order.product)
                         if supplement_lines else order.dose)
    order.volume_ml = read_volume_ml(dosages, order.product)
    order.peripheral, order.circuit = route_statements(dosages)
    if order.circuit and order.route in (None, "intravenous") and not order.peripheral:
        order.route = "dialysis-circuit"


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
