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
from typing import Annotated, Any

import msgspec

from .parse import lenient, model_class

# FHIR primitive patterns as fhir.resources (fhir_core.types) applies them. pydantic searches
# unanchored with Rust's regex, where ``$`` is the end of the text; ``\Z`` is the Python equivalent.
Code = Annotated[str, msgspec.Meta(pattern=r"^[^\s]+(\s[^\s]+)*\Z")]
String = Annotated[str, msgspec.Meta(min_length=1)]  # "[ \r\n\t\S]+" unanchored: any non-empty text
Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9\-.]+\Z", max_length=255)]
Uri = str  # "\S*" unanchored matches any text, the empty one included
Decimal = int | float  # bool is refused (msgspec keeps bool and int apart); NaN never gets past the JSON parser
# The shapes accepted here are a subset of FHIR's dateTime and instant: no leap second (60), at most six
# fractional digits (the full path truncates more); anything else goes to the full path.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+\-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
DateTime = Annotated[str, msgspec.Meta(
    pattern=rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])({_TIME})?)?)?\Z")]
Instant = Annotated[str, msgspec.Meta(pattern=rf"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1]){_TIME}\Z")]
Date = Annotated[str, msgspec.Meta(pattern=rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?\Z")]

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


class _Element(msgspec.Struct, kw_only=True):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise UndeclaredElement(f"{type(self).__name__}.{name} is not declared in cds_service/fhir/project.py")


class Coding(_Element, kw_only=True):
    system: Uri | None = None
    code: Code | None = None
    display: String | None = None


class CodeableConcept(_Element, kw_only=True):
    coding: list[Coding] | None = None
    text: String | None = None


class Quantity(_Element, kw_only=True):
    value: Decimal | None = None
    comparator: Code | None = None
    unit: String | None = None
    system: Uri | None = None
    code: Code | None = None


class Period(_Element, kw_only=True):
    start: DateTime | None = None
    end: DateTime | None = None

    def __post_init__(self) -> None:
        _valid_date(self.start)
        _valid_date(self.end)


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
            full = lenient(self.__dict__["_raw"], self.resourceType)
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
        _valid_date(self.effectiveDateTime)
        _valid_date(self.effectiveInstant)
        _valid_date(self.issued)


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
        _valid_date(self.onsetDateTime)
        _valid_date(self.abatementDateTime)
        _valid_date(self.recordedDate)


class Procedure(_Resource, kw_only=True):
    status: Code
    subject: Reference
    code: CodeableConcept | None = None
    performedDateTime: DateTime | None = None
    performedPeriod: Period | None = None

    def __post_init__(self) -> None:
        _valid_date(self.performedDateTime)


class Encounter(_Resource, kw_only=True):
    status: Code
    class_: Coding = msgspec.field(name="class")
    type: list[CodeableConcept] | None = None
    period: Period | None = None
    subject: Reference | None = None


class Patient(_Resource, kw_only=True):
    gender: Code | None = None
    birthDate: Date | None = None

    def __post_init__(self) -> None:
        _valid_date(self.birthDate)


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


def project(raw: Any, resource_type: str | None = None, notes: list[str] | None = None) -> Any:
    """The resource as a typed projection, or (when the projection refuses it) as ``lenient`` returns it."""
    if not isinstance(raw, dict):
        return None
    rtype = resource_type or raw.get("resourceType")
    cls = PROJECTED.get(rtype) if isinstance(rtype, str) else None
    if cls is None or raw.get("resourceType") != rtype or not _one_per_choice(raw, _CHOICES[cls.__name__]):
        return lenient(raw, resource_type, notes)
    try:
        obj = msgspec.convert(raw, cls)
    except msgspec.ValidationError:
        return lenient(raw, resource_type, notes)
    obj.__dict__["_raw"] = raw
    return obj
