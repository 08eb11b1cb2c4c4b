"""Lab panel: recognise analytes by LOINC, normalise units, honour comparators, pick the latest.

Pure code. Raw FHIR dicts are pre-filtered cheaply (code and status) so that only
the few Observations a rule can use are turned into fhir.resources models.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from itertools import islice
from operator import eq as _eq
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, overload

from . import codes
from .timeutil import format_delta, format_time, parse_fhir_datetime
from .timing import FUTURE_TOLERANCE

log = logging.getLogger(__name__)

COUNTED_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})

Candidate = tuple[datetime, str, dict[str, Any]]  # clinical time, issued (or ""), the raw Observation


@dataclass(frozen=True)
class LabResult:
    analyte: str
    value: float  # in the analyte's canonical unit
    unit: str  # canonical unit
    comparator: str | None
    time: datetime
    loinc: str
    original_value: float
    original_unit: str
    resource_id: str | None = None
    status: str = "final"
    # Half of the lab's last reported digit, in the canonical unit, for converted values (0 when the
    # lab reported in the canonical unit). A threshold closer than this to a converted value is not
    # told apart from it: 1.70 mg/dL is 0.6994 mmol/L by the factor, but the reference equates
    # 1.70 mg/dL with the 0.70 mmol/L target, and the lab's own precision cannot say otherwise.
    resolution: float = 0.0

    # -- comparisons honouring the comparator. True/False, or None when the comparator makes it undecidable.
    def below(self, threshold: float) -> bool | None:
        c, v, r = self.comparator, self.value, self.resolution
        if c is None:
            return v < threshold - r
        if c == "<":  # true value < v
            return True if v <= threshold + r else None
        if c == "<=":  # true value <= v
            return True if v < threshold - r else None
        if c in (">", ">="):  # true value above v
            return False if v >= threshold - r else None
        return None

    def above(self, threshold: float) -> bool | None:
        c, v, r = self.comparator, self.value, self.resolution
        if c is None:
            return v > threshold + r
        if c == ">":
            return True if v >= threshold - r else None
        if c == ">=":
            return True if v > threshold + r else None
        if c in ("<", "<="):
            return False if v <= threshold + r else None
        return None

    def at_or_above(self, threshold: float) -> bool | None:
        below = self.below(threshold)
        return None if below is None else not below

    def at_or_below(self, threshold: float) -> bool | None:
        above = self.above(threshold)
        return None if above is None else not above

    @property
    def preliminary(self) -> bool:
        """Used, but named as preliminary on the card (policy section 2)."""
        return self.status == "preliminary"

    def display(self) -> str:
        """Value and unit as a clinician reads it, e.g. '< 0.50 mmol/L (1.22 mg/dL)'."""
        prefix = f"{self.comparator} " if self.comparator else ""
        if self.analyte in codes.MMOL_TO_MG_DL:
            mg_dl = self.value * codes.MMOL_TO_MG_DL[self.analyte]
            if self.analyte == "k":
                return f"{prefix}{self.value:.1f} mmol/L"
            return f"{prefix}{self.value:.2f} mmol/L ({mg_dl:.2f} mg/dL)"
        if self.analyte == "aluminum":
            return f"{prefix}{self.value:.0f} µg/L"
        if self.analyte == "heart_rate":
            return f"{prefix}{self.value:.0f} /min"
        if self.analyte == "weight":
            return f"{prefix}{self.value:.1f} kg"
        if self.analyte == "albumin":
            return f"{prefix}{self.value / 10:.1f} g/dL"
        return f"{prefix}{self.value:g} {self.unit}"

    def when(self, now: datetime) -> str:
        return f"{format_time(self.time)} ({format_delta(now - self.time)} ago)"


class LabPanel:
    """Usable results per analyte, newest first.

    Built from raw candidates (already grouped and sorted by clinical time) and a converter; a
    candidate is validated and converted only when a rule asks far enough down its analyte's list
    (most rules read only the newest), and at most ``keep`` usable results are kept per analyte.
    A panel can also be built from ready results (``LabPanel({"mg": [...]})``).
    """

    def __init__(self, results: Mapping[str, list[LabResult]] | None = None, skipped: list[str] | None = None):
        self._kept: dict[str, list[LabResult]] = {k: list(v) for k, v in (results or {}).items()}
        self._skipped: list[str] = list(skipped or [])
        self._pending: dict[str, Sequence[Candidate]] = {}  # newest first
        self._next: dict[str, int] = {}  # per analyte, the index of the next pending candidate
        self._keep: dict[str, int] = {}
        self._convert: Callable[[str, datetime, dict[str, Any]], tuple[LabResult | None, str | None]] | None = None

    @classmethod
    def lazy(cls, grouped: Mapping[str, Sequence[Candidate]], keep: Mapping[str, int],
             convert: Callable[[str, datetime, dict[str, Any]], tuple[LabResult | None, str | None]]) -> "LabPanel":
        panel = cls()
        panel._pending = dict(grouped)
        panel._keep = dict(keep)
        panel._convert = convert
        return panel

    def _advance(self, analyte: str) -> bool:
        """Convert the next pending candidate of ``analyte``; False when nothing more can be kept."""
        pending = self._pending.get(analyte, ())
        kept = self._kept.setdefault(analyte, [])
        while self._next.get(analyte, 0) < len(pending) and len(kept) < self._keep.get(analyte, 3):
            index = self._next.get(analyte, 0)
            self._next[analyte] = index + 1
            when, _issued, raw = pending[index]
            assert self._convert is not None  # pending candidates exist only on a lazy panel
            result, why = self._convert(analyte, when, raw)
            if result is None:
                self._skipped.append(why or "")
                continue
            kept.append(result)
            return True
        return False

    def _iter(self, analyte: str) -> Iterator[LabResult]:
        index = 0
        while True:
            kept = self._kept.get(analyte) or []
            if index < len(kept):
                yield kept[index]
                index += 1
            elif not self._advance(analyte):
                return

    def _materialise(self) -> None:
        for analyte in list(self._pending):
            for _ in self._iter(analyte):
                pass

    @property
    def results(self) -> dict[str, list[LabResult]]:
        """Every kept result (converting whatever is still pending)."""
        self._materialise()
        return {k: v for k, v in self._kept.items() if v}

    @property
    def skipped(self) -> list[str]:
        """Why candidates were not used (converting whatever is still pending)."""
        self._materialise()
        return self._skipped

    def latest(self, analyte: str, now: datetime | None = None, within: timedelta | None = None) -> LabResult | None:
        """The newest usable result by clinical time; None when there is none, or it is older than ``within``."""
        first: LabResult | None = None
        for result in self._iter(analyte):
            if now is not None and result.time - now > FUTURE_TOLERANCE:
                continue  # future-dated: a data error, never "latest"
            first = result
            break
        if first is None:
            return None
        if within is not None and now is not None and now - first.time > within:
            return None
        return first

    def within(self, analyte: str, now: datetime, window: timedelta) -> list[LabResult]:
        """Kept results of ``analyte`` taken in (now - window, now], newest first."""
        out = []
        for result in self._iter(analyte):
            age = now - result.time
            if age > window:
                break  # newest first: everything after this is older still
            if age >= timedelta(0):
                out.append(result)
        return out

    def since(self, analyte: str, start: datetime) -> LabResult | None:
        first = self.latest(analyte)
        return first if first is not None and first.time >= start else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabPanel) and self.results == other.results

    def __repr__(self) -> str:
        return f"LabPanel({ {k: len(v) for k, v in self._kept.items()} } kept, " \
               f"{sum(len(v) - self._next.get(k, 0) for k, v in self._pending.items())} pending)"


# ----------------------------------------------------------------- raw pre-filter

_LOINC_TO_ANALYTE = codes.LOINC_TO_ANALYTE
_LOINC_SYSTEMS = (None, "", codes.LOINC)


def raw_analyte(raw: dict[str, Any]) -> tuple[str, str] | None:
    """(analyte, loinc) for a raw Observation dict, or None when it is none of ours."""
    code = raw.get("code")
    if not isinstance(code, dict):
        return None
    for coding in code.get("coding") or ():
        if isinstance(coding, dict):
            c = coding.get("code")
            if c in _LOINC_TO_ANALYTE and coding.get("system") in _LOINC_SYSTEMS:
                return _LOINC_TO_ANALYTE[c], c
    return None


def raw_clinical_time(raw: dict[str, Any]) -> datetime | None:
    """Clinical time: effectiveDateTime, else effectivePeriod.end/.start, else issued (effectiveInstant too)."""
    period: dict[str, Any] = raw["effectivePeriod"] if isinstance(raw.get("effectivePeriod"), dict) else {}
    for value in (raw.get("effectiveDateTime"), raw.get("effectiveInstant"), period.get("end"), period.get("start"),
                  raw.get("issued")):
        if isinstance(value, str):
            parsed = parse_fhir_datetime(value)
            if parsed is not None:
                return parsed
    return None


# Specimens that are not the patient's serum, plasma or blood (policy section 2): never used, whatever the code.
_EXCLUDED_SPECIMEN = re.compile(r"urine|dialys|effluent|circuit|ultrafiltrate|peritoneal|ascit|drain|csf"
                                r"|cerebrospinal|pleural|sweat|saliva", re.I)
# SNOMED specimen types that are not blood: urine, dialysate, peritoneal fluid (verified reference, section 1:
# the LOINC systems for urine and dialysis fluid are excluded by code; these catch a serum code on such a sample).
_EXCLUDED_SPECIMEN_CODES = frozenset({"122575003"})  # Urine specimen


def specimen_excluded(raw: dict[str, Any]) -> bool:
    """True when the Observation names a specimen that is not serum, plasma or blood.

    Looks at ``specimen.display`` and, for a contained Specimen (``#id``), its ``type`` text, displays and
    SNOMED codes. A specimen that cannot be read says nothing: the LOINC code's system (serum/plasma/blood)
    stands.
    """
    spec = raw.get("specimen")
    if not isinstance(spec, dict):
        return False
    texts = [spec.get("display")]
    ref = spec.get("reference")
    if isinstance(ref, str) and ref.startswith("#"):
        for res in raw.get("contained") or []:
            if isinstance(res, dict) and res.get("resourceType") == "Specimen" and res.get("id") == ref[1:]:
                stype = res.get("type")
                if isinstance(stype, dict):
                    texts.append(stype.get("text"))
                    for c in stype.get("coding") or []:
                        if isinstance(c, dict):
                            texts.append(c.get("display"))
                            if str(c.get("code")) in _EXCLUDED_SPECIMEN_CODES:
                                return True
    return any(isinstance(t, str) and _EXCLUDED_SPECIMEN.search(t) for t in texts)


def candidates(raw_observations: Iterable[Any], now: datetime | None = None,
               dropped: list[str] | None = None) -> dict[str, "Candidates"]:
    """Group raw Observations by analyte, keeping counted statuses, newest clinical time first.

    Server order is never trusted: the sort uses the clinical time of each result, then ``issued``, then
    the id (all descending). With ``now``, a result taken more than 5 min after it is a data error:
    logged (and noted in ``dropped``), never used. Results on a specimen other than serum, plasma or
    blood are never used either. A status that is not a string is never a counted status.

    This walks every Observation of a long chart (10,000 and more), so the common case is written
    for speed: the cheap rejections first, one look-up per element, the usual ``...Z`` time read in
    one C call, each distinct time string parsed once, and a sort on the time alone unless two
    results of one analyte share a time (then the full key decides). No tuple is made per result (see
    ``Candidates``). ``tests/support/labs_reference`` keeps the plain version, and a test holds the two
    to the same output.
    """
    grouped: dict[str, list[Any]] = {}  # per analyte: time, issued, raw, time, issued, raw, ...
    limit = _future_limit(now)
    parsed: dict[str, datetime] = {}  # the results of one draw share their time string
    for raw in raw_observations:
        # The usual shape, read with plain subscripts; anything else (a missing element, another type, a
        # second coding, a time in another form) is left to _read, which decides every case.
        try:
            if raw.__class__ is not dict:
                raise _Unusual
            if raw["resourceType"] != "Observation" or raw["status"] not in COUNTED_STATUSES:
                continue
            codings = raw["code"]["coding"]
            coding = codings[0]
            hit = coding["code"]
            if hit not in _LOINC_TO_ANALYTE or coding.get("system") not in _LOINC_SYSTEMS:
                if len(codings) == 1:
                    continue
                raise _Unusual
            analyte = _LOINC_TO_ANALYTE[hit]
            value = raw["effectiveDateTime"]
            when = parsed.get(value)
            if when is None:
                if value.__class__ is not str:
                    raise _Unusual
                when = parse_fhir_datetime(value)  # its own fast path reads the usual ...Z form in one C call
                if when is None:
                    raise _Unusual
                parsed[value] = when
        except (_Unusual, KeyError, IndexError, TypeError, ValueError):
            found = _read(raw, parsed)
            if found is None:
                continue
            analyte, when = found
        if limit is not None and when > limit:
            why = f"Observation/{raw.get('id')}: {analyte} dated in the future ({when.isoformat()}); not used"
            log.info("lab value not used: %s", why)
            if dropped is not None:
                dropped.append(why)
            continue
        if raw.get("specimen") is not None and specimen_excluded(raw):
            if dropped is not None:
                dropped.append(f"Observation/{raw.get('id')}: {analyte} on a specimen other than serum, plasma or "
                               f"blood; not used")
            continue
        issued = raw.get("issued")
        if issued.__class__ is not str:
            issued = str(issued or "")
        flat = grouped.get(analyte)
        if flat is None:
            flat = grouped[analyte] = []
        flat += when, issued, raw  # the tuple is freed at once: nothing per result for the collector to track
    return {analyte: Candidates(flat) for analyte, flat in grouped.items()}


class _Unusual(Exception):
    """An Observation that is not of the usual shape: candidates() reads it with _read."""


def _read(raw: Any, parsed: dict[str, datetime]) -> tuple[str, datetime] | None:
    """(analyte, clinical time) of a raw Observation with a counted status and one of our codes, else None."""
    if not isinstance(raw, dict) or raw.get("resourceType") != "Observation":
        return None
    try:
        if raw.get("status") not in COUNTED_STATUSES:
            return None
    except TypeError:  # an unhashable status (a list, an object) is no counted status either
        return None
    hit = raw_analyte(raw)
    if hit is None:
        return None
    value = raw.get("effectiveDateTime")
    when = parsed.get(value) if value.__class__ is str else None
    if when is None:
        when = parse_fhir_datetime(value) if isinstance(value, str) else None
        if when is None:  # effectiveDateTime cannot be read: the fallbacks may still give a time
            when = raw_clinical_time(raw)
            if when is None:
                return None
        elif value.__class__ is str:
            parsed[value] = when
    return hit[0], when


class Candidates(Sequence[Candidate]):
    """One analyte's candidates, newest first: (clinical time, issued, raw Observation) tuples.

    Held as one flat list and a sorted list of offsets into it, and each tuple is made when read: a
    long chart has thousands of candidates, and a tuple holding a dict per candidate, alive for the
    whole call, would be tracked by the garbage collector and promoted through its generations,
    making full collections (which traverse the whole request) more frequent. Sorted by (time,
    issued, id), newest first, equal keys in input order; while the times are all distinct the time
    alone gives that order (a C-level key and compare), and when two share a time the full key is used.
    """

    __slots__ = ("_flat", "_order")

    def __init__(self, flat: list[Any]):
        self._flat = flat
        order = list(range(0, len(flat), 3))
        order.sort(key=flat.__getitem__, reverse=True)
        times = list(map(flat.__getitem__, order))
        if any(map(_eq, times, islice(times, 1, None))):
            order.sort(key=self._full_key, reverse=True)
        self._order = order

    def _full_key(self, offset: int) -> tuple[datetime, str, str]:
        flat = self._flat
        return flat[offset], flat[offset + 1], str(flat[offset + 2].get("id") or "")

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, index: int) -> Candidate: ...

    @overload
    def __getitem__(self, index: slice) -> list[Candidate]: ...

    def __getitem__(self, index: int | slice) -> Candidate | list[Candidate]:
        flat = self._flat
        if isinstance(index, slice):
            return [(flat[o], flat[o + 1], flat[o + 2]) for o in self._order[index]]
        o = self._order[index]
        return flat[o], flat[o + 1], flat[o + 2]

    def __iter__(self) -> Iterator[Candidate]:
        flat = self._flat
        return ((flat[o], flat[o + 1], flat[o + 2]) for o in self._order)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Candidates, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Candidates({list(self)!r})"


def _future_limit(now: datetime | None) -> datetime | None:
    """The latest clinical time still usable: ``when > limit`` exactly when ``when - now > FUTURE_TOLERANCE``."""
    if now is None:
        return None
    try:
        return now + FUTURE_TOLERANCE
    except OverflowError:  # now is within 5 min of the last representable instant: no time can be after it
        return None


# ----------------------------------------------------------------- model -> LabResult

def result_from_model(obs: Any, analyte: str, loinc: str, when: datetime) -> tuple[LabResult | None, str | None]:
    """Turn a validated fhir.resources Observation into a LabResult, or explain why it is unusable."""
    qty = getattr(obs, "valueQuantity", None)
    if qty is None or qty.value is None:
        return None, f"Observation/{obs.id}: {analyte} has no numeric value"
    unit_text = qty.code if (qty.code and (qty.system in (None, codes.UCUM))) else None
    unit_key = codes.normalise_unit_key(unit_text) if unit_text else None
    if unit_key is None:
        unit_key = codes.normalise_unit_key(qty.unit)
    factor = codes.conversion_factor(analyte, unit_key)
    if factor is None:
        return None, f"Observation/{obs.id}: unknown unit {qty.code or qty.unit!r} for {analyte}; value not used"
    value = float(qty.value) * factor
    comparator = qty.comparator if qty.comparator in ("<", "<=", ">", ">=") else None
    resolution = 0.0 if factor == 1.0 else 0.5 * (10.0 ** _decimals_exponent(qty.value)) * factor
    return LabResult(
        analyte=analyte,
        value=value,
        unit=codes.CANONICAL_UNIT[analyte],
        comparator=comparator,
        time=when,
        loinc=loinc,
        original_value=float(qty.value),
        original_unit=str(qty.code or qty.unit),
        resource_id=obs.id,
        status=str(obs.status),
        resolution=resolution,
    ), None


def _decimals_exponent(value: Any) -> int:
    """Exponent of the last reported digit: -2 for 1.70 or 1.72, -1 for 1.7 or 3.0, capped at -1.

    A JSON number loses trailing zeros once parsed (1.70 -> 1.7); that makes the tolerance a
    little wider for such values, never narrower than the digits the lab actually sent. Integers
    are taken as one decimal, so that the tolerance stays far below any clinical difference.
    """
    try:
        text = repr(float(value)) if not isinstance(value, Decimal) else str(value)
        exponent = Decimal(text).as_tuple().exponent
    except (InvalidOperation, ValueError, TypeError):
        return -1
    return min(-1, int(exponent)) if isinstance(exponent, int) else -1


# Heart rate is asked about over a window ("> 100/min in the last 24 h"), so more of it is kept.
KEEP_PER_ANALYTE: dict[str, int] = {"heart_rate": 50, "weight": 40}


def build_panel(
    raw_observations: Iterable[Any],
    parse: Callable[[dict[str, Any]], Any],
    keep_per_analyte: int | Mapping[str, int] = 3,
    now: datetime | None = None,
) -> LabPanel:
    """Build the panel. ``parse`` turns a raw dict into a validated Observation model (or None); it is
    called only for the candidates a rule reads (newest first), not for the whole history.

    ``keep_per_analyte``: how many usable results to keep per analyte (an int for all, or a
    mapping with per-analyte numbers; analytes not in it keep 3, heart rate keeps 50).
    """
    dropped: list[str] = []
    grouped = candidates(raw_observations, now, dropped)
    keep = {}
    for analyte in grouped:
        if isinstance(keep_per_analyte, int):
            keep[analyte] = max(keep_per_analyte, KEEP_PER_ANALYTE.get(analyte, 0))
        else:
            keep[analyte] = keep_per_analyte.get(analyte, KEEP_PER_ANALYTE.get(analyte, 3))

    def convert(analyte: str, when: datetime, raw: dict[str, Any]) -> tuple[LabResult | None, str | None]:
        model = parse(raw)
        if model is None:
            return None, f"Observation/{raw.get('id')}: not a valid Observation"
        found = raw_analyte(raw)
        assert found is not None  # candidates() kept only Observations of an analyte
        loinc = found[1]
        result, why = result_from_model(model, analyte, loinc, when)
        if result is None:
            # the reason without its "Observation/<id>: " prefix: logs carry no resource ids
            log.info("lab value not used: %s", (why or "").partition(": ")[2] or "unusable")
        return result, why

    panel = LabPanel.lazy(grouped, keep, convert)
    panel._skipped.extend(dropped)
    return panel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
