"""Lenient parsing of FHIR R4 JSON with fhir.resources (R4B models).

Real EHR data is messy: the CDS Hooks sandbox sends MedicationRequests without
``intent`` and Bundles without ``type``. A resource is validated; on failure the
offending elements are dropped (or a known-safe default filled) and validation is
retried a few times. One bad element never sinks the resource, and one bad resource
never sinks the rest.
"""
from __future__ import annotations

import copy
import importlib
import logging
from functools import lru_cache
from typing import Any, Iterable

from pydantic import ValidationError

log = logging.getLogger(__name__)

# Required elements that clients are known to omit, with a neutral value to fill in.
_DEFAULTS = {
    ("MedicationRequest", "intent"): "order",
    ("MedicationRequest", "status"): "draft",
    ("ServiceRequest", "intent"): "order",
    ("ServiceRequest", "status"): "draft",
    ("Bundle", "type"): "collection",
    ("Condition", "subject"): {"display": "unknown"},
    ("Procedure", "subject"): {"display": "unknown"},
    ("Encounter", "class"): {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
}
_MAX_REPAIRS = 8


@lru_cache(maxsize=None)
def model_class(resource_type: str):
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def _drop(data: Any, loc: tuple) -> bool:
    """Remove the element at ``loc`` (a pydantic error location). True when something was removed."""
    node = data
    path = [p for p in loc if p != "__root__"]
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, dict) and isinstance(key, str) and key in node:
            if last:
                del node[key]
                return True
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            if last:
                node.pop(key)
                return True
            node = node[key]
        else:
            # The location goes deeper than the data (e.g. a union branch name): drop the parent element.
            return _drop(data, tuple(path[:i])) if i > 0 else False
    return False


def _wrap(data: Any, loc: tuple) -> bool:
    """Turn a single object at ``loc`` into a one-item list (the sandbox sends ``category: {...}``)."""
    path = [p for p in loc if p != "__root__"]
    if not path:
        return False
    node = data
    for key in path[:-1]:
        if isinstance(node, dict) and isinstance(key, str) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return False
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str) and isinstance(node.get(last), dict):
        node[last] = [node[last]]
        return True
    return False


def lenient(raw: Any, resource_type: str | None = None, notes: list[str] | None = None):
    """Validate ``raw`` into a fhir.resources model, repairing what can be repaired. None if hopeless."""
    if not isinstance(raw, dict):
        return None
    rtype = resource_type or raw.get("resourceType")
    if not isinstance(rtype, str) or not rtype.isalpha():
        return None
    try:
        cls = model_class(rtype)
    except (ImportError, AttributeError):
        return None
    data = raw
    copied = False
    for _attempt in range(_MAX_REPAIRS):
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            if not copied:
                data = copy.deepcopy(raw)
                copied = True
            changed = False
            for err in exc.errors():
                loc = tuple(err.get("loc") or ())
                if len(loc) == 1 and (rtype, str(loc[0])) in _DEFAULTS and loc[0] not in data:
                    data[loc[0]] = copy.deepcopy(_DEFAULTS[(rtype, str(loc[0]))])
                    changed = True
                    _note(notes, f"{rtype}/{raw.get('id')}: filled missing {loc[0]}")
                elif loc and err.get("type") == "list_type" and _wrap(data, loc):
                    changed = True
                    _note(notes, f"{rtype}/{raw.get('id')}: wrapped single {'.'.join(map(str, loc))} in a list")
                elif loc and _drop(data, loc):
                    changed = True
                    _note(notes, f"{rtype}/{raw.get('id')}: dropped invalid {'.'.join(map(str, loc))}")
            if not changed:
                break
        except (TypeError, ValueError) as exc:  # defensive: odd inputs inside validators
            _note(notes, f"{rtype}/{raw.get('id')}: {exc}")
            return None
    _note(notes, f"{rtype}/{raw.get('id')}: could not be parsed; ignored")
    return None


def _note(notes: list[str] | None, text: str) -> None:
    log.debug("lenient parse: %s", text)  # routine with real EHR data; the hook log line counts them
    if notes is not None:
        notes.append(text)


def bundle_resources(bundle: Any, resource_type: str | None = None) -> list[dict]:
    """Raw resources from a Bundle dict (searchset or otherwise), optionally of one type.

    A bare resource (e.g. a read of Patient/x) is returned as a one-item list.
    OperationOutcome entries (search warnings) are skipped.
    """
    if not isinstance(bundle, dict):
        return []
    if bundle.get("resourceType") != "Bundle":
        if resource_type is None or bundle.get("resourceType") == resource_type:
            return [bundle] if bundle.get("resourceType") not in (None, "OperationOutcome") else []
        return []
    entries = bundle.get("entry") or []
    if resource_type is None:
        return [res for entry in entries if isinstance(entry, dict) and isinstance(res := entry.get("resource"), dict)
                and res.get("resourceType") != "OperationOutcome"]
    if resource_type == "OperationOutcome":
        return []  # never returned, even when asked for
    return [res for entry in entries if isinstance(entry, dict) and isinstance(res := entry.get("resource"), dict)
            and res.get("resourceType") == resource_type]


def parse_all(raws: Iterable[dict], resource_type: str, notes: list[str] | None = None) -> list:
    out = []
    for raw in raws:
        model = lenient(raw, resource_type, notes)
        if model is not None:
            out.append(model)
    return out


_WARM = {
    "Patient": {"resourceType": "Patient", "id": "w"},
    "Observation": {"resourceType": "Observation", "id": "w", "status": "final", "code": {"text": "w"},
                    "effectiveDateTime": "2026-01-01T00:00:00Z", "valueQuantity": {"value": 1, "unit": "mmol/L"}},
    "Condition": {"resourceType": "Condition", "id": "w", "subject": {"reference": "Patient/w"}, "code": {"text": "w"}},
    "Procedure": {"resourceType": "Procedure", "id": "w", "status": "completed", "subject": {"reference": "Patient/w"},
                  "performedPeriod": {"start": "2026-01-01T00:00:00Z"}},
    "Encounter": {"resourceType": "Encounter", "id": "w", "status": "finished", "class": {"code": "AMB"}},
    "MedicationRequest": {"resourceType": "MedicationRequest", "id": "w", "status": "draft", "intent": "order",
                          "subject": {"reference": "Patient/w"}, "medicationCodeableConcept": {"text": "w"}},
    "Medication": {"resourceType": "Medication", "id": "w", "code": {"text": "w"}},
}


def warm_up_models() -> None:
    """Import and exercise the models once at start-up, so the first hook call does not pay for it."""
    for rtype, example in _WARM.items():
        lenient(example, rtype)
