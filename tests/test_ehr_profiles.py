"""EHR profiles end to end: Epic-, Oracle Health- and sandbox-shaped requests against the real FHIR server.

The service runs under gunicorn (tests/conftest.py live_service) and reads the real FHIR server loaded with
the fixture patients. Each EHR-shaped request is compared with the canonical CDS Hooks request for the same
patient, made at the same moment: the cards must be the same (uuids aside), and so must the feedback stored.
The expected cards are never written down here, so the comparison holds whatever the clinical rules say.
"""
from __future__ import annotations

import gzip
import json
import time

import pytest
import requests

from cds_service.hooks.feedback import FeedbackStore
from support.ehr_profiles import (comparable, epic_card_problems, epic_draft_orders, epic_prefetch, load, oracle_card_problems,
                          sandbox_bundle)
from support.helpers import OSEL, OSIGN, PV, assert_valid_response, hook_request
from support.live import ehr_prefetch
from support.orders import all_selected, order_fixture, with_subject

pytestmark = pytest.mark.fhir_server

# A spread of patients: several cards, critical, single card, none (decoys, not on dialysis), a long history.
PATIENTS = ["dx-cramp-post-session", "dx-low-mg", "dx-hyperkalemia-critical", "dx-tachycardia", "dx-aluminum-sources",
            "dx-neuro-no-aluminum", "dx-low-k-mg-missing", "dx-normal", "decoy-entered-in-error", "no-dialysis",
            "synthea-fletcher-dialysis"]
ORDER_CASES = [("iv-magnesium-premix", "ord-hd-normal"), ("potassium-chloride-oral", "ord-hd-low-mg"),
               ("potassium-chloride-iv-bundle-medication", "ord-hd-no-labs"), ("quinine", "ord-hd-normal"),
               ("baclofen-20-tid", "ord-hd-normal"), ("sandbox-mixed", "ord-hd-low-mg"),
               ("calcium-carbonate", "ord-hd-low-mg")]


def _cards(live_service, service_id: str, body: dict, **kwargs) -> list[dict]:
    resp = live_service.post(f"/cds-services/{service_id}", body, **kwargs)
    assert resp.status_code == 200, resp.text[:500]
    data = resp.json()
    assert_valid_response(data)
    return data["cards"]


def _canonical(live_service, fhir_server, service_id: str, pid: str, **kw) -> list[dict]:
    body = hook_request(service_id, pid, fhir_server=fhir_server.base_url, token=fhir_server.token, **kw)
    return _cards(live_service, service_id, body)


def _epic_pv(fhir_server, pid: str, trigger: str = "60", server: str | None = None) -> dict:
    return load("epic-patient-view", fhirServer=server or fhir_server.base_url, accessToken=fhir_server.token,
                patientId=pid, triggerAction=trigger)


def _log_line(live_service, hook_instance: str) -> dict:
    for _ in range(50):
        for line in live_service.log_text().splitlines():
            if hook_instance in line and line.startswith("{"):
                entry = json.loads(line)
                if entry.get("event") == "hook" and entry.get("hookInstance") == hook_instance:
                    return entry
        time.sleep(0.1)
    raise AssertionError(f"no log line for {hook_instance}")


# ------------------------------------------------------------------ Epic

@pytest.mark.parametrize("pid", PATIENTS)
def test_epic_patient_view_gives_the_canonical_cards(live_service, fhir_server, pid):
    """Fetch mode: Epic's envelope (PractitionerRole user, Epic scope strings, 300 s token, extensions)."""
    epic = _cards(live_service, PV, _epic_pv(fhir_server, pid))
    assert comparable(epic) == comparable(_canonical(live_service, fhir_server, PV, pid))
    for card in epic:
        assert epic_card_problems(card) == [], (card["summary"], epic_card_problems(card))


@pytest.mark.parametrize("pid", PATIENTS)
def test_epic_shaped_prefetch_gives_the_canonical_cards(live_service, fhir_server, pid):
    """Prefetch as Epic sends it: absolute references and fullUrls, search.mode, and an OperationOutcome entry
    (search.mode outcome) for every search that found nothing."""
    body = _epic_pv(fhir_server, pid)
    canonical_prefetch = ehr_prefetch(fhir_server, PV, body["context"])
    body["prefetch"] = epic_prefetch(canonical_prefetch, fhir_server.base_url)
    del body["fhirServer"], body["fhirAuthorization"]  # everything prefetched: the service needs no FHIR access
    assert any(e["search"]["mode"] == "outcome" for b in body["prefetch"].values() for e in b.get("entry", []))
    epic = _cards(live_service, PV, body)
    assert comparable(epic) == comparable(_canonical(live_service, fhir_server, PV, pid))


def test_the_comparison_sees_a_different_patient(live_service, fhir_server):
    """The comparison above can fail: two patients with cards do not compare equal."""
    assert comparable(_cards(live_service, PV, _epic_pv(fhir_server, "dx-low-mg"))) != \
        comparable(_canonical(live_service, fhir_server, PV, "dx-cramp-post-session"))
    assert _canonical(live_service, fhir_server, PV, "dx-low-mg")


@pytest.mark.parametrize("trigger", ["18", "23", "60", "999"])
def test_epic_trigger_action_is_logged_and_never_changes_the_cards(live_service, fhir_server, trigger):
    """Epic reuses patient-view for other triggers (18 enter order, 23 sign, 60 open chart)."""
    body = _epic_pv(fhir_server, "dx-cramp-post-session", trigger)
    cards = _cards(live_service, PV, body)
    assert comparable(cards) == comparable(_canonical(live_service, fhir_server, PV, "dx-cramp-post-session"))
    entry = _log_line(live_service, body["hookInstance"])
    assert entry["epicTriggerAction"] == trigger
    assert entry["epicTrigger"] == {"18": "enter order", "23": "sign order", "60": "open chart"}.get(trigger, "other")
    assert entry["epicCriteriaId"] == "71104"
    assert "com.epic.cdshooks.request.epic-version" in entry["extensions"]
    assert "11.1" not in json.dumps(entry)  # other extension values are not logged


@pytest.mark.parametrize("service_id", [OSEL, OSIGN])
@pytest.mark.parametrize("name,pid", ORDER_CASES)
def test_epic_order_hooks_give_the_canonical_cards(live_service, fhir_server, service_id, name, pid):
    """Epic's draft orders: ids of about 190 characters, category as one object, Epic's route code beside
    SNOMED, absolute references (also to a Medication elsewhere in the Bundle)."""
    draft = with_subject(order_fixture(name), pid)
    epic_draft, ids = epic_draft_orders(draft, fhir_server.base_url)
    values = {"fhirServer": fhir_server.base_url, "accessToken": fhir_server.token, "patientId": pid,
              "draftOrders": epic_draft, "selections": all_selected(epic_draft)}
    epic = _cards(live_service, service_id, load("epic-order-select" if service_id == OSEL else "epic-order-sign",
                                                 **values))
    canonical = _canonical(live_service, fhir_server, service_id, pid, draft_orders=draft,
                           selections=all_selected(draft) if service_id == OSEL else None)
    assert comparable(epic, ids) == comparable(canonical)
    for card in epic:
        assert epic_card_problems(card) == [], (card["summary"], epic_card_problems(card))
    if name != "calcium-carbonate":
        assert canonical, "this case is meant to give cards"


def test_epic_feedback_is_stored_as_the_canonical_feedback(live_service, fhir_server):
    """overrideReasons (Epic's list) gives the same stored feedback as overrideReason, and keeps every reason."""
    cards = _cards(live_service, PV, _epic_pv(fhir_server, "dx-tachycardia"))
    epic_card, canonical_card = cards[0]["uuid"], cards[1]["uuid"]
    reason = cards[0]["overrideReasons"][0] if cards[0].get("overrideReasons") else \
        {"system": "https://ehr.example.org/acknowledgment-reason", "code": "1", "display": "Not relevant"}
    values = {"reasonSystem": reason["system"], "reasonCode": reason["code"], "reasonDisplay": reason["display"]}
    for name, card in (("epic-feedback", epic_card), ("canonical-feedback", canonical_card)):
        resp = live_service.post(f"/cds-services/{PV}/feedback", load(name, card=card, **values))
        assert resp.status_code == 200 and resp.json() == {"stored": 1}, resp.text

    store = FeedbackStore(str(live_service.feedback_db))
    rows = {r["card_uuid"]: r for r in store.all_feedback() if r["card_uuid"] in (epic_card, canonical_card)}
    ignore = ("id", "card_uuid", "received_at")
    assert {k: v for k, v in rows[epic_card].items() if k not in ignore} == \
        {k: v for k, v in rows[canonical_card].items() if k not in ignore}
    assert (rows[epic_card]["override_code"], rows[epic_card]["user_comment"]) == \
        (reason["code"], "Reviewed with the renal team")
    reasons = {}
    for r in store.all_override_reasons():
        reasons.setdefault(r["feedback_id"], []).append((r["system"], r["code"], r["display"], r["user_comment"]))
    first = (reason["system"], reason["code"], reason["display"], "Reviewed with the renal team")
    assert reasons[rows[canonical_card]["id"]] == [first]
    assert reasons[rows[epic_card]["id"]] == [
        first, ("https://ehr.example.org/acknowledgment-reason", "3", "Patient declined", None)]


def test_epic_request_as_a_client_sends_it_over_http(live_service, fhir_server):
    """gzip body, trailing-slash URL and an upper-case scheme in fhirServer, all at once, over real HTTP."""
    pid = "dx-low-mg"
    server = fhir_server.base_url.replace("http://", "HTTP://")
    body = _epic_pv(fhir_server, pid, server=server)
    resp = requests.post(f"{live_service.base_url}/cds-services/{PV}/", data=gzip.compress(json.dumps(body).encode()),
                         headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=15)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.json()["cards"]
    assert comparable(resp.json()["cards"]) == comparable(_canonical(live_service, fhir_server, PV, pid))
    logged = _log_line(live_service, body["hookInstance"])
    assert "fetch" in logged["sources"].values() and not logged["unavailable"]  # the HTTP:// server was read
    assert live_service.get("/cds-services/").json() == live_service.get("/cds-services").json()


# ------------------------------------------------------------------ Oracle Health

@pytest.mark.parametrize("pid", PATIENTS)
def test_oracle_patient_view_gives_the_canonical_cards_fit_for_its_panel(live_service, fhir_server, pid):
    body = load("oracle-patient-view", fhirServer=fhir_server.base_url, accessToken=fhir_server.token, patientId=pid)
    oracle = _cards(live_service, PV, body)
    assert comparable(oracle) == comparable(_canonical(live_service, fhir_server, PV, pid))
    for card in oracle:
        assert oracle_card_problems(card) == [], (card["summary"], oracle_card_problems(card))


# ------------------------------------------------------------------ CDS Hooks sandbox

@pytest.mark.parametrize("pid", PATIENTS)
def test_sandbox_prefetch_without_bundle_type_gives_the_canonical_cards(live_service, fhir_server, pid):
    context = {"userId": "Practitioner/COREPRACTITIONER1", "patientId": pid}
    prefetch = {k: sandbox_bundle(v) for k, v in ehr_prefetch(fhir_server, PV, context).items()}
    assert all("type" not in v for v in prefetch.values() if v.get("resourceType") == "Bundle")
    body = load("sandbox-patient-view", fhirServer=fhir_server.base_url, accessToken=fhir_server.token,
                patientId=pid, prefetch=prefetch)
    assert comparable(_cards(live_service, PV, body)) == comparable(_canonical(live_service, fhir_server, PV, pid))
