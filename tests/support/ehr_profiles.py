"""EHR profiles for the tests: requests shaped as Epic, Oracle Health and the CDS Hooks sandbox send them,
and what each one needs of a card.

Request envelopes are fhir_fixtures/ehr/*.json (written from each vendor's documented fields); {{name}}
placeholders are filled here. The FHIR data comes from the real FHIR server and is reshaped the way each
EHR sends it: Epic with absolute references and fullUrls, ``search.mode``, an OperationOutcome entry for an
empty search, long ids, ``category`` as a single object and its own route codes beside SNOMED; the
sandbox with Bundles that have no ``type``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from typing import Any

from cds_service import fixtures
from cds_service.hooks.readability import detail_problems, summary_problems
from cds_service.hooks.topics import TOPIC_CODE

EHR_DIR = fixtures.FIXTURES_DIR / "ehr"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_RELATIVE_REF = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
EPIC_ROUTE_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.4.798268.7025"  # Epic's route list, sent beside SNOMED
EPIC_NO_RESULTS = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "warning", "code": "processing",
               "details": {"text": "Resource request returns no results."},
               "diagnostics": "Resource request returns no results."}],
}


def load(name: str, **values: Any) -> dict:
    """fhir_fixtures/ehr/<name>.json with its {{placeholders}} filled ("{{x}}" alone may become any JSON value)."""
    data = json.loads((EHR_DIR / f"{name}.json").read_text(encoding="utf-8"))
    data.pop("_comment", None)
    values.setdefault("hookInstance", str(uuid.uuid4()))

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        if isinstance(node, str):
            whole = _PLACEHOLDER.fullmatch(node)
            if whole:
                return copy.deepcopy(values[whole.group(1)])
            return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
        return node

    return fill(data)


def _absolute_references(node: Any, base: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and _RELATIVE_REF.match(value):
                node[key] = f"{base}/{value}"
            else:
                _absolute_references(value, base)
    elif isinstance(node, list):
        for value in node:
            _absolute_references(value, base)


def epic_bundle(bundle: Any, base: str) -> Any:
    """A search result as Epic sends it: absolute references and fullUrls, search.mode, and an
    OperationOutcome entry (search.mode outcome) when nothing matched."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return bundle
    out = copy.deepcopy(bundle)
    out.pop("link", None)
    entries = []
    for entry in out.get("entry") or []:
        res = entry.get("resource") or {}
        _absolute_references(res, base)
        entries.append({"link": [{"relation": "self", "url": f"{base}/{res.get('resourceType')}/{res.get('id')}"}],
                        "fullUrl": f"{base}/{res.get('resourceType')}/{res.get('id')}", "resource": res,
                        "search": {"mode": "match"}})
    if not entries:
        entries = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": copy.deepcopy(EPIC_NO_RESULTS),
                    "search": {"mode": "outcome"}}]
    out.update({"type": "searchset", "total": sum(1 for e in entries if e["search"]["mode"] == "match"),
                "entry": entries})
    return out


def epic_prefetch(prefetch: dict, base: str) -> dict:
    return {key: epic_bundle(value, base) for key, value in prefetch.items()}


def epic_id(canonical_id: str) -> str:
    """An id as long and dotted as Epic's draft-order ids (about 190 characters, more than FHIR's 64)."""
    digest = hashlib.sha256(canonical_id.encode()).hexdigest()
    return f"e{digest[:40]}.{canonical_id}-{digest[40:]}.{digest}{digest}"[:190]


def epic_draft_orders(draft: dict, base: str) -> tuple[dict, dict[str, str]]:
    """draftOrders as Epic sends them, and the map Epic id -> canonical id."""
    out = copy.deepcopy(draft)
    out["type"] = "collection"
    ids: dict[str, str] = {}
    for entry in out.get("entry") or []:
        res = entry.get("resource") or {}
        if res.get("resourceType") != "MedicationRequest":
            continue
        if res.get("id"):
            long_id = epic_id(res["id"])
            ids[long_id] = res["id"]
            res["id"] = long_id
            entry["fullUrl"] = f"{base}/MedicationRequest/{long_id}"
        if isinstance(res.get("category"), list) and res["category"]:
            res["category"] = res["category"][0]  # Epic sends the category as one object
        for dosage in res.get("dosageInstruction") or []:
            route = dosage.get("route")
            if isinstance(route, dict) and route.get("coding"):
                display = route["coding"][0].get("display") or "Route"
                route["coding"].insert(0, {"system": EPIC_ROUTE_SYSTEM, "code": "99", "display": display})
        _absolute_references(res, base)
    return out, ids


def sandbox_bundle(bundle: Any) -> Any:
    """The sandbox's Bundles carry no ``type``."""
    if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle":
        bundle = {k: v for k, v in bundle.items() if k != "type"}
    return bundle


# ------------------------------------------------------------------ what each EHR needs of a card

def epic_card_problems(card: dict) -> list[str]:
    """Epic's card rules (its CDS Hooks documentation, "Card Attributes")."""
    out = []
    code = card["source"].get("topic", {}).get("code", "")
    if not TOPIC_CODE.match(code):
        out.append(f"source.topic.code {code!r} is not 1-100 letters and digits")
    if not card["source"]["topic"].get("display"):
        out.append("source.topic.display missing")
    if "uuid" not in card:
        out.append("no card uuid: Epic sends no feedback without it")
    suggestions = card.get("suggestions") or []
    if suggestions and card.get("selectionBehavior") != "any":
        out.append(f"selectionBehavior {card.get('selectionBehavior')!r}: Epic supports only 'any'")
    for s in suggestions:
        if len(s.get("actions") or []) != 1:
            out.append(f"suggestion {s.get('label')!r} has {len(s.get('actions') or [])} actions: Epic takes one")
        if "uuid" not in s:
            out.append(f"suggestion {s.get('label')!r} has no uuid")
    out += [f"detail: {p}" for p in detail_problems(card.get("detail", ""))]
    return out


def oracle_card_problems(card: dict) -> list[str]:
    """Oracle Health's: a narrow pop-out panel; SMART links launch without appContext (Oracle Health drops it),
    so appContext may appear only on the trend-app link, which opens on magnesium without it
    (test_smart_app.py::test_without_app_context_the_app_opens_on_magnesium)."""
    out = [f"summary: {p}" for p in summary_problems(card["summary"])]
    for link in card.get("links") or []:
        if "appContext" in link and link.get("type") != "smart":
            out.append(f"link {link.get('label')!r} has appContext outside a SMART link")
        if link.get("type") not in ("absolute", "smart"):
            out.append(f"link {link.get('label')!r} has type {link.get('type')!r}")
    return out


_DELTA = re.compile(r"\b\d+ (d|h|min)( \d+ (h|min))?\b")


def strip_uuids(node: Any) -> Any:
    """A copy of ``node`` without its ``uuid`` members (they differ on every call)."""
    if isinstance(node, dict):
        return {k: strip_uuids(v) for k, v in node.items() if k != "uuid"}
    if isinstance(node, list):
        return [strip_uuids(v) for v in node]
    return node


def comparable(cards: list[dict], ids: dict[str, str] | None = None) -> str:
    """Cards as JSON with their uuids (and the trend link's hookInstance) removed, Epic's long order ids put back to the canonical ones, and
    "3 h 20 min ago"-style durations blanked (two calls a moment apart may straddle a minute)."""
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") == "smart" and isinstance(node.get("appContext"), str):
                # the trend-app link names the call's own hookInstance: the same card, another call
                context = {k: v for k, v in json.loads(node["appContext"]).items() if k != "hookInstance"}
                node = dict(node, appContext=context)
            return {k: strip(v) for k, v in node.items() if k != "uuid"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    text = json.dumps(strip(cards), sort_keys=True)
    for long_id, canonical in (ids or {}).items():
        text = text.replace(long_id, canonical)
    return _DELTA.sub("<duration>", text)
