"""Compare what the rules can read from a snapshot, whichever parser built it (typed projection or fhir.resources).

``view(obj)`` reads every element the projection declares (``cds_service.fhir.project``), from a projected
Struct or from a full fhir.resources model alike, with numbers as floats and dates as UTC datetimes.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

import msgspec

from cds_service.clinical.timeutil import parse_fhir_datetime
from cds_service.fhir import project as projection
from cds_service.fhir.parse import lenient
from cds_service.hooks import context as ctx_mod

_DATE_TYPES = (projection.DateTime, projection.Instant, projection.Date)


def _struct_of(tp: Any) -> tuple[type | None, bool, bool]:
    """(Struct class inside ``tp``, whether it is a list, whether it is a date) for a field annotation."""
    if tp in _DATE_TYPES:
        return None, False, True
    for arg in typing.get_args(tp) or ():
        if arg in _DATE_TYPES:
            return None, False, True
        if typing.get_origin(arg) is list:
            inner = typing.get_args(arg)[0]
            if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                return inner, True, False
        if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
            return arg, False, False
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp, False, False
    return None, False, False


def _leaf(value: Any, is_date: bool) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if is_date:
        return parse_fhir_datetime(value) or str(value)
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        return float(value)
    return str(value)


def _view(obj: Any, cls: type) -> Any:
    if obj is None:
        return None
    out = {}
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in msgspec.structs.fields(cls):
        if f.name == "resourceType":
            continue
        value = getattr(obj, f.name, None)
        inner, is_list, is_date = _struct_of(hints[f.name])
        if inner is not None and is_list:
            out[f.name] = None if value is None else [_view(v, inner) for v in value]
        elif inner is not None:
            out[f.name] = _view(value, inner)
        else:
            out[f.name] = _leaf(value, is_date)
    return out


def view(obj: Any) -> Any:
    """Every declared element of a projected resource type; a model of another type is dumped whole."""
    if obj is None:
        return None
    rtype = getattr(obj, "resourceType", None) or obj.get_resource_type()
    cls = projection.PROJECTED.get(rtype)
    if cls is None:
        return obj.model_dump(mode="json") if hasattr(obj, "model_dump") else obj
    return _view(obj, cls)


def snapshot_view(snap: Any) -> dict:
    """What the rules read from a Snapshot: every field, resources through ``view``."""
    out = {}
    for f in dataclasses.fields(snap):
        if f.name.startswith("_"):
            continue  # caches
        value = getattr(snap, f.name)
        if f.name == "labs":
            value = (value.results, value.skipped)
        elif f.name in ("conditions", "symptom_observations"):
            value = [view(v) for v in value]
        elif f.name == "patient":
            value = view(value)
        elif f.name == "draft_orders":
            value = [_draft_view(d) for d in value]
        out[f.name] = value
    return out


def _draft_view(draft: Any) -> Any:
    if dataclasses.is_dataclass(draft):
        return {f.name: view(getattr(draft, f.name)) if hasattr(getattr(draft, f.name), "model_dump") or
                isinstance(getattr(draft, f.name), projection._Resource) else getattr(draft, f.name)
                for f in dataclasses.fields(draft)}
    return draft


def full_path(monkeypatch: Any) -> None:
    """Make the snapshot builder use fhir.resources for every resource (the path before the projection)."""
    def full(raw: Any, resource_type: str | None = None, notes: list[str] | None = None,
             repair: Any = None) -> Any:
        return lenient(raw if repair is None else repair(raw), resource_type, notes)

    monkeypatch.setattr(ctx_mod, "project", full)
