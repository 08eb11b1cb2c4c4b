"""Order hooks over real HTTP against the real FHIR server loaded with the fixtures, in both modes.

fetch mode: the request names the FHIR server and the service queries it itself.
prefetch mode: the test plays the EHR, running the service's own prefetch templates against the same server.
Both must give the same cards, and the same cards as the in-process prefetch tests (support.orders.EXPECTED).
"""
from __future__ import annotations

import pytest

from support.live import ehr_prefetch
from support.helpers import assert_valid_response, hook_request, rule_of
from support.orders import EXPECTED, SELECT, SIGN, all_selected, card_pairs, order_fixture, with_subject

pytestmark = pytest.mark.fhir_server

# A spread of scenarios: every rule, decoys, the sandbox shapes, each ord-* patient and a shared dx-* one.
CASES = [
    ("iv-magnesium-premix", "ord-hd-normal"),
    ("iv-magnesium-contained-edqm", "ord-hd-no-labs"),
    ("iv-magnesium-sulfate", "dx-low-mg"),
    ("peritoneal-dialysis-solution", "ord-hd-low-mg"),
    ("potassium-chloride-oral", "ord-hd-low-mg"),
    ("potassium-chloride-oral", "ord-hd-normal"),
    ("potassium-chloride-iv-bundle-medication", "ord-hd-no-labs"),
    ("calcium-carbonate", "ord-hd-low-mg"),
    ("quinine", "ord-hd-normal"),
    ("nuedexta", "ord-hd-normal"),
    ("baclofen-20-tid", "ord-hd-normal"),
    ("gabapentin-300-daily", "ord-hd-normal"),
    ("gabapentin-600-bid", "ord-hd-normal"),
    ("hypertonic-saline", "ord-hd-normal"),
    ("sandbox-mixed", "ord-hd-low-mg"),
    ("iv-magnesium-premix", "ord-no-dialysis"),
]



def _post(live_service, service_id: str, body: dict) -> list[dict]:
    resp = live_service.post(f"/cds-services/{service_id}", body)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert_valid_response(data)
    return data["cards"]


@pytest.mark.parametrize("service_id", [SIGN, SELECT])
@pytest.mark.parametrize("name,pid", CASES)
def test_order_hooks_fetch_and_prefetch_mode(live_service, fhir_server, service_id, name, pid):
    draft = with_subject(order_fixture(name), pid)
    selections = all_selected(draft) if service_id == SELECT else None
    fetch_body = hook_request(service_id, pid, fhir_server=fhir_server.base_url, token=fhir_server.token,
                              draft_orders=draft, selections=selections)
    fetched = card_pairs(_post(live_service, service_id, fetch_body), draft)
    assert fetched == EXPECTED[(name, pid)]
    pre_body = hook_request(service_id, pid, draft_orders=draft, selections=selections)
    pre_body["prefetch"] = ehr_prefetch(fhir_server, service_id, pre_body["context"])
    assert card_pairs(_post(live_service, service_id, pre_body), draft) == fetched


def test_fetch_mode_order_select_only_the_selected_order(live_service, fhir_server):
    draft = with_subject(order_fixture("sandbox-mixed"), "ord-hd-low-mg")
    body = hook_request(SELECT, "ord-hd-low-mg", fhir_server=fhir_server.base_url, token=fhir_server.token,
                        draft_orders=draft, selections=["MedicationRequest/sb-baclofen"])
    assert card_pairs(_post(live_service, SELECT, body), draft) == [("baclofen-dialysis", "sb-baclofen")]
    body["context"]["selections"] = []
    assert _post(live_service, SELECT, body) == []


def test_fetch_mode_latest_labs_reach_the_order_cards(live_service, fhir_server):
    """The Mg and K values on the cards are the fixture's, read from the FHIR server by the service."""
    draft = with_subject(order_fixture("sandbox-mixed"), "ord-hd-low-mg")
    body = hook_request(SIGN, "ord-hd-low-mg", fhir_server=fhir_server.base_url, token=fhir_server.token,
                        draft_orders=draft)
    cards = {rule_of(c): c for c in _post(live_service, SIGN, body)}
    assert "0.55 mmol/L" in cards["parenteral-magnesium"]["detail"]
    assert "3.1 mmol/L" in cards["magnesium-co-management"]["detail"]
    # drawn 4 h ago, after the session that ended 20 h ago (minutes more when the server was loaded earlier)
    assert "16 h after the session that ended 20 h" in cards["magnesium-co-management"]["detail"]
