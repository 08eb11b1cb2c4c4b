"""Typed projection of the FHIR elements the rules read, decoded with msgspec.

``project(raw, resource_type, notes)`` is the one seam the snapshot builder uses. For the resource
types the hot path reads in bulk (Observation, Condition, Procedure, Encounter, Patient) it converts
the raw dict into a small msgspec Struct that declares only the elements the clinical code reads,
with the same attribute names as the fhir.resources models, so rules read typed attributes
unchanged. Every declared element is checked as strictly as fhir.resources checks it (its FHIR
primitive pattern, its JSON type, valid dates, required elements, one value per choice element);
everything else is ignored, as the trimmed full path already ignores it.

Whatever the projection refuses (a wrong type, a blank code, a single object where a list belongs, a
missing required element, two variants of one choice element, a leap second, an invalid date) is
handed unchanged to ``parse.lenient``, the fhir.resources repair path, whose answer is returned as is:
sandbox and Epic shapes are repaired exactly as before, with the same notes. Other resource types
(MedicationRequest, Medication: a handful per call, read deeply by the order rules) go to
``lenient`` directly.

msgspec, not orjson plus hand-written classes: it validates types and patterns in C while building
the objects (one pass, no Python per element), ignores undeclared fields, and is a maintained,
widely used library with typed Structs that behave like read-only dataclasses.

A top-level element nobody declared here is not silently None: reading it builds the full
fhir.resources model of that resource (once) and answers from it, and is counted in
``UNDECLARED_READS``, which the equivalence test requires to stay empty. A nested element nobody
declared raises ``UndeclaredElement``, so a rule that starts reading one fails loudly in the tests.
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from typing import Annotated, Any, Callable

import msgspec

from .parse import lenient, model_class

# FHIR primitive patterns as fhir.resources (fhir_core.types) applies them. pydantic searches
# unanchored with Rust's regex, where ``$`` is the end of the text; ``\Z`` is the Python equivalent.
# The patterns are not given to msgspec as constraints: msgspec runs a pattern through Python's ``re`` for
# every value (about 1.2 us each, most of the cost of a projection). Each projected class checks its own
# patterned elements in ``__post_init__`` instead, and a value that matched once is remembered (codes,
# statuses and dates repeat across the resources of one call and between calls), so the regular expression
# runs once per distinct string. A value that does not match raises ValueError, which msgspec reports as a
# ValidationError: the resource goes to the full path, as it did when msgspec applied the pattern.
# The aliases carry a description only (no constraint msgspec would check), so that code reading the Structs
# can tell a date from a code.
Code = Annotated[str, msgspec.Meta(description="FHIR code")]
String = Annotated[str, msgspec.Meta(min_length=1)]  # "[ \r\n\t\S]+" unanchored: any non-empty text
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Uri = str  # "\S*" unanchored matches any text, the empty one included
Decimal = int | float  # bool is refused (msgspec keeps bool and int apart); NaN never gets past the JSON parser
DateTime = Annotated[str, msgspec.Meta(description="FHIR dateTime")]
Instant = Annotated[str, msgspec.Meta(description="FHIR instant")]
Date = Annotated[str, msgspec.Meta(description="FHIR date")]
# The shapes accepted here are a subset of FHIR's dateTime and instant: no leap second (60), at most six
# fractional digits (the full path truncates more); anything else goes to the full path.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+\-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
PATTERNS: dict[str, re.Pattern[str]] = {
    "code": re.compile(r"^[^\s]+(\s[^\s]+)*\Z"),
    "dateTime": re.compile(rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])({_TIME})?)?)?\Z"),
    "instant": re.compile(rf"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1]){_TIME}\Z"),
    "date": re.compile(rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?\Z"),
}
_DATED = frozenset({"dateTime", "instant", "date"})
# Strings known to match, per pattern. Bounded: a set that fills up is emptied and refilled, so a worker
# that runs for weeks never holds more than a few MB of them.
_MATCHED: dict[str, set[str]] = {name: set() for name in PATTERNS}
MATCHED_MAX = 20_000
# FHIR id: [A-Za-z0-9\-\.]{1,64} as fhir.resources applies it (length up to 255 is checked by msgspec).
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."

_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")

UNDECLARED_READS: Counter[tuple[str, str]] = Counter()


class UndeclaredElement(LookupError):
    """A nested FHIR element the projection does not declare was read (add it to the Struct)."""


def _valid_date(value: str | None) -> None:
    """Dates must exist (2026-02-30 matches the pattern); the full path drops such a value."""
    if value is None or not _FULL_DATE.match(value):
        return
    if "T" in value:
        datetime.fromisoformat(value.replace("Z", "+00:00"))  # ValueError: the full path drops it
    else:
        date.fromisoformat(value[:10])


def _check(value: str | None, kind: str) -> None:
    """ValueError unless ``value`` (when present) is a valid FHIR ``kind`` as the full models check it."""
    if value is None:
        return
    seen = _MATCHED[kind]
    if value in seen:
        return
    if PATTERNS[kind].search(value) is None:
        raise ValueError(f"{value!r} is not a FHIR {kind}")
    if kind in _DATED:
        _valid_date(value)
    if len(seen) >= MATCHED_MAX:
        seen.clear()
    seen.add(value)


def _check_id(value: str | None) -> None:
    # the id pattern is one character class: strip every allowed character and nothing may be left
    if value is not None and value.strip(_ID_CHARS):
        raise ValueError(f"{value!r} is not a FHIR id")


class _Element(msgspec.Struct, kw_only=True):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise UndeclaredElement(f"{type(self).__name__}.{name} is not declared in cds_service/fhir/project.py")


class Coding(_Element, kw_only=True):
    system: Uri | None = None
    code: Code | None = None
    display: String | None = None

    def __post_init__(self) -> None:
        _check(self.code, "code")


class CodeableConcept(_Element, kw_only=True):
    coding: list[Coding] | None = None
    text: String | None = None


class Quantity(_Element, kw_only=True):
    value: Decimal | None = None
    comparator: Code | None = None
    unit: String | None = None
    system: Uri | None = None
    code: Code | None = None

    def __post_init__(self) -> None:
        _check(self.comparator, "code")
        _check(self.code, "code")


class Period(_Element, kw_only=True):
    start: DateTime | None = None
    end: DateTime | None = None

    def __post_init__(self) -> None:
        _check(self.start, "dateTime")
        _check(self.end, "dateTime")


class Reference(_Element, kw_only=True):
    reference: String | None = None
    display: String | None = None


class _Resource(_Element, dict=True, kw_only=True):
    """A projected resource. Reading an element not declared answers from the full model (and is counted)."""

    resourceType: str
    id: Id | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        UNDECLARED_READS[(self.resourceType, name)] += 1
        full = self.__dict__.get("_full", False)
        if full is False:
            raw, repair = self.__dict__["_raw"], self.__dict__.get("_repair")
            full = lenient(raw if repair is None else repair(raw), self.resourceType)
            self.__dict__["_full"] = full
        return getattr(full, name)


class Observation(_Resource, kw_only=True):
    status: Code
    code: CodeableConcept
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: Instant | None = None
    issued: Instant | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueBoolean: bool | None = None

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check(self.status, "code")
        _check(self.effectiveDateTime, "dateTime")
        _check(self.effectiveInstant, "instant")
        _check(self.issued, "instant")


class Condition(_Resource, kw_only=True):
    subject: Reference
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    onsetDateTime: DateTime | None = None
    onsetPeriod: Period | None = None
    abatementDateTime: DateTime | None = None
    abatementPeriod: Period | None = None
    recordedDate: DateTime | None = None

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check(self.onsetDateTime, "dateTime")
        _check(self.abatementDateTime, "dateTime")
        _check(self.recordedDate, "dateTime")


class Procedure(_Resource, kw_only=True):
    status: Code
    subject: Reference
    code: CodeableConcept | None = None
    performedDateTime: DateTime | None = None
    performedPeriod: Period | None = None

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check(self.status, "code")
        _check(self.performedDateTime, "dateTime")


class Encounter(_Resource, kw_only=True):
    status: Code
    class_: Coding = msgspec.field(name="class")
    type: list[CodeableConcept] | None = None
    period: Period | None = None
    subject: Reference | None = None

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check(self.status, "code")


class Patient(_Resource, kw_only=True):
    gender: Code | None = None
    birthDate: Date | None = None

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check(self.gender, "code")
        _check(self.birthDate, "date")


PROJECTED: dict[str, type[_Resource]] = {cls.__name__: cls for cls in (Observation, Condition, Procedure,
                                                                        Encounter, Patient)}


def _choice_groups(resource_type: str) -> dict[str, str]:
    """Each variant of each top-level choice element (``valueQuantity`` -> ``value``), from the full model."""
    cls = model_class(resource_type)
    groups = cls.get_one_of_many_fields(cls.model_construct())
    return {variant: group for group, variants in groups.items() for variant in variants}


_CHOICES: dict[str, dict[str, str]] = {rtype: _choice_groups(rtype) for rtype in PROJECTED}


def _one_per_choice(raw: dict, choices: dict[str, str]) -> bool:
    seen: set[str] = set()
    for key in raw:
        group = choices.get(key)
        if group is not None:
            if group in seen:
                return False
            seen.add(group)
    return True


def project(raw: Any, resource_type: str | None = None, notes: list[str] | None = None,
            repair: Callable[[dict], dict] | None = None) -> Any:
    """The resource as a typed projection, or (when the projection refuses it) as ``lenient`` returns it.

    ``repair``: what the full path is given instead of ``raw`` (the snapshot builder trims a resource to the
    elements it reads). The projection reads only declared elements, so it needs no trimming as long as the
    trim keeps every declared element and every choice variant; it is applied only when the full path runs.
    """
    if not isinstance(raw, dict):
        return None
    rtype = resource_type or raw.get("resourceType")
    cls = PROJECTED.get(rtype) if isinstance(rtype, str) else None
    if cls is None or raw.get("resourceType") != rtype or not _one_per_choice(raw, _CHOICES[cls.__name__]):
        return lenient(raw if repair is None else repair(raw), resource_type, notes)
    try:
        obj = msgspec.convert(raw, cls)
    except msgspec.ValidationError:
        return lenient(raw if repair is None else repair(raw), resource_type, notes)
    obj.__dict__["_raw"] = raw
    if repair is not None:
        obj.__dict__["_repair"] = repair
    return obj
