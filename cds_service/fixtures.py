"""Demo and test fixtures: FHIR R4 transaction Bundles whose clinical times follow the clock.

Each fixture Bundle carries ``timestamp``: the moment its scenario is "now". When a
fixture is loaded, every dateTime/instant in it is moved by (now - timestamp), so
that a "session ended 2 h ago" fixture still says so whenever it is loaded. Dates
without a time (birthDate) are left alone. The files themselves stay valid FHIR.
"""
from __future__ import annotations

import copy
import gzip
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from .clinical.timeutil import parse_fhir_datetime

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fhir_fixtures"
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_SKIP_KEYS = {"lastUpdated", "timestamp"}


def load_json(path: str | Path) -> Any:
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def anchor(bundle: dict) -> datetime | None:
    return parse_fhir_datetime(bundle.get("timestamp"))


def _fmt(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shift(node: Any, delta: timedelta) -> Any:
    """A copy of ``node`` with every full dateTime string moved by ``delta``."""
    if isinstance(node, dict):
        return {k: (v if k in _SKIP_KEYS else shift(v, delta)) for k, v in node.items()}
    if isinstance(node, list):
        return [shift(v, delta) for v in node]
    if isinstance(node, str) and _DATETIME.match(node):
        parsed = parse_fhir_datetime(node)
        return _fmt(parsed + delta) if parsed else node
    return node


def at(bundle: dict, now: datetime) -> dict:
    """The bundle as of ``now`` (unchanged when it has no timestamp)."""
    base = anchor(bundle)
    if base is None:
        return copy.deepcopy(bundle)
    moved = shift(bundle, now - base)
    moved["timestamp"] = _fmt(now)
    return moved


def patient_bundles(folder: str | Path | None = None) -> Iterator[tuple[Path, dict]]:
    folder = Path(folder) if folder else FIXTURES_DIR / "patients"
    for path in sorted([*folder.glob("*.json"), *folder.glob("*.json.gz")]):
        yield path, load_json(path)


def fixture_id(path: str | Path) -> str:
    """'dx-low-mg' for fhir_fixtures/patients/dx-low-mg.json (or .json.gz)."""
    name = Path(path).name
    for suffix in (".json.gz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def as_prefetch(bundle: dict) -> dict[str, list[dict]]:
    """Resources of a transaction bundle grouped by type (handy for building prefetch in tests)."""
    out: dict[str, list[dict]] = {}
    for entry in bundle.get("entry") or []:
        res = entry.get("resource") or {}
        out.setdefault(res.get("resourceType"), []).append(res)
    return out


def searchset(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"{r['resourceType']}/{r.get('id')}", "resource": r, "search": {"mode": "match"}}
                      for r in resources]}


# ---------------------------------------------------------------- an in-memory "EHR" for prefetch mode

def _tokens(value: str) -> set[tuple[str, str]]:
    out = set()
    for part in value.split(","):
        system, _, code = part.rpartition("|")
        out.add((system, code))
    return out


def _codes_of(resource: dict, element: str) -> set[tuple[str, str]]:
    value = resource.get(element)
    concepts = value if isinstance(value, list) else [value]
    out = set()
    for concept in concepts:
        for coding in (concept or {}).get("coding") or []:
            out.add((coding.get("system") or "", coding.get("code") or ""))
    return out


def _sort_time(resource: dict) -> str:
    for key in ("effectiveDateTime", "performedDateTime", "issued", "recordedDate", "onsetDateTime"):
        if isinstance(resource.get(key), str):
            return resource[key]
    for key in ("effectivePeriod", "performedPeriod", "period"):
        period = resource.get(key) or {}
        if period.get("end") or period.get("start"):
            return period.get("end") or period.get("start")
    return ""


def evaluate(template: str, context: dict, resources: list[dict]) -> dict | None:
    """Answer a prefetch template from in-memory resources (the subset of FHIR search the templates use)."""
    from urllib.parse import parse_qsl

    from .hooks.prefetch import render_template, token_values

    rendered = render_template(template, token_values(context))
    if rendered is None:
        return None
    from urllib.parse import unquote
    path, _, query = rendered.partition("?")
    rtype, _, rid = path.partition("/")
    if rid:
        rid = unquote(rid)
        found = [r for r in resources if r.get("resourceType") == rtype and r.get("id") == rid]
        return found[0] if found else None
    params = dict(parse_qsl(query))
    hits = [r for r in resources if r.get("resourceType") == rtype]
    patient = params.get("patient")
    if patient:
        hits = [r for r in hits if ((r.get("subject") or r.get("patient") or {}).get("reference") or "")
                .split("/")[-1] == patient]
    if "status" in params:
        hits = [r for r in hits if r.get("status") in params["status"].split(",")]
    for element, param in (("code", "code"), ("type", "type")):
        if param in params:
            wanted = _tokens(params[param])
            hits = [r for r in hits if _codes_of(r, element) & wanted]
    if params.get("_sort") == "-date":
        hits.sort(key=_sort_time, reverse=True)
    if "_count" in params:
        hits = hits[: int(params["_count"])]
    return searchset(hits)


def prefetch_for(service, context: dict, bundle: dict) -> dict:
    """The prefetch an EHR would send for ``service`` given the patient's resources in ``bundle``."""
    resources = [e.get("resource") for e in bundle.get("entry") or [] if e.get("resource")]
    return {name: evaluate(key.template, context, resources) for name, key in service.prefetch.items()}
