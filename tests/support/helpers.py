"""Helpers shared by the tests (constants, request builders, response checks)."""
from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from cds_service import fixtures
from cds_service.hooks.validation import response_problems

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
# Every fixture's Bundle.timestamp is its scenario's "now"; in-process tests pin the clock there.
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)

PV = "dialysis-electrolytes-patient-view"
OSEL = "dialysis-electrolytes-order-select"
OSIGN = "dialysis-electrolytes-order-sign"


def synthea_files() -> list[Path]:
    """The Synthea R4 patient Bundles in the folder ``CDS_SYNTHEA_DIR`` names (none when it is not set)."""
    folder = os.environ.get("CDS_SYNTHEA_DIR")
    if not folder:
        return []
    return sorted(p for p in Path(folder).iterdir() if p.name.endswith((".json", ".json.gz")))


def fixture_bundle(name: str) -> dict:
    folder = fixtures.FIXTURES_DIR / "patients"
    path = folder / f"{name}.json"
    if not path.exists():
        path = folder / f"{name}.json.gz"
    return fixtures.load_json(path)


def orders_bundle(name: str) -> dict:
    return fixtures.load_json(fixtures.FIXTURES_DIR / "orders" / f"{name}.json")


def hook_request(service_id: str, patient_id: str, *, prefetch: dict | None = None, fhir_server: str | None = None,
                 token: str | None = None, draft_orders: dict | None = None, selections: list[str] | None = None,
                 hook_instance: str | None = None) -> dict:
    hook = {PV: "patient-view", OSEL: "order-select", OSIGN: "order-sign"}[service_id]
    context: dict = {"userId": "Practitioner/test-user", "patientId": patient_id}
    if hook != "patient-view":
        context["draftOrders"] = draft_orders or {"resourceType": "Bundle", "type": "collection", "entry": []}
    if hook == "order-select":
        context["selections"] = selections or []
    body: dict = {"hook": hook, "hookInstance": hook_instance or str(uuid.uuid4()), "context": context}
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server:
        body["fhirServer"] = fhir_server
        if token:
            body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                         "scope": "patient/*.read", "subject": "cds-service"}
    return body


def prefetch_from_fixture(service_id: str, patient_id: str, bundle: dict, now: datetime = NOW,
                          draft_orders: dict | None = None, selections: list[str] | None = None) -> dict:
    """A complete prefetch, as an EHR honouring the service's templates would send it."""
    from cds_service.services import SERVICES

    body = hook_request(service_id, patient_id, draft_orders=draft_orders, selections=selections)
    return fixtures.prefetch_for(SERVICES[service_id], body["context"], fixtures.at(bundle, now))


def assert_valid_response(body: dict) -> None:
    problems = response_problems(body)
    assert problems == [], problems


def rule_of(card: dict) -> str:
    """The rule behind a card, read back from its source.topic.code (the rule id in Epic's form)."""
    from cds_service.clinical.rules import load_all
    from cds_service.hooks.topics import rule_for_code

    code = card["source"]["topic"]["code"]
    rule_id = rule_for_code(code, load_all())
    assert rule_id is not None, f"topic code {code!r} names no known rule"
    return rule_id


def topics(body: dict) -> list[str]:
    """The rule ids of a response's cards, in order."""
    return [rule_of(card) for card in body["cards"]]



def save_artifact(name: str, data) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if isinstance(data, (bytes, bytearray)):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path
