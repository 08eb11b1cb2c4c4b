"""End to end with the committed fixtures: patients under fhir_fixtures/patients/ord-*, draft orders under
fhir_fixtures/orders/, through the Flask test client in prefetch mode. Every response is schema-checked."""
from __future__ import annotations

import pytest

from cds_service import fixtures
from cds_service.app import create_app
from support.orders import (EXPECTED, SELECT, SIGN, all_selected, call, card_pairs, cards_of, order_fixture,
                            patient_fixture)

ORDER_FILES = sorted(p.stem for p in (fixtures.FIXTURES_DIR / "orders").glob("*.json"))
PATIENTS = ["ord-hd-low-mg", "ord-hd-normal", "ord-hd-no-labs", "ord-no-dialysis"]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = tmp_path_factory.mktemp("fb") / "fb.db"
    return create_app({"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(db)}).test_client()


def test_every_order_file_and_patient_is_covered():
    assert {pid for _, pid in EXPECTED} >= set(PATIENTS)
    assert {name for name, _ in EXPECTED} == set(ORDER_FILES)


def test_main_patient_fixtures_with_order_files(client):
    """The shared dx-* fixtures: KCl with K 6.8 is one critical card; nothing for the non-dialysis patient."""
    draft = order_fixture("potassium-chloride-oral")
    cards = call(client, SIGN, "dx-hyperkalemia-critical", patient_fixture("dx-hyperkalemia-critical"), draft)
    assert card_pairs(cards, draft) == [("potassium-supplement", "kcl-oral")] and cards[0]["indicator"] == "critical"
    assert call(client, SIGN, "no-dialysis", patient_fixture("no-dialysis"), order_fixture("quinine")) == []


@pytest.mark.parametrize("name,pid", sorted(EXPECTED))
def test_order_sign_with_fixtures(client, name, pid):
    draft = order_fixture(name)
    cards = call(client, SIGN, pid, patient_fixture(pid), draft)
    assert card_pairs(cards, draft) == EXPECTED[(name, pid)]


@pytest.mark.parametrize("name,pid", sorted(EXPECTED))
def test_order_select_with_everything_selected_matches_order_sign(client, name, pid):
    draft = order_fixture(name)
    cards = call(client, SELECT, pid, patient_fixture(pid), draft, all_selected(draft))
    assert card_pairs(cards, draft) == EXPECTED[(name, pid)]


def test_order_select_cards_only_for_selected_orders(client):
    draft = order_fixture("sandbox-mixed")
    patient = patient_fixture("ord-hd-low-mg")
    cards = call(client, SELECT, "ord-hd-low-mg", patient, draft, ["MedicationRequest/sb-kcl"])
    assert card_pairs(cards, draft) == [("magnesium-co-management", "sb-kcl")]
    assert card_pairs(call(client, SELECT, "ord-hd-low-mg", patient, draft, ["MedicationRequest/sb-baclofen"]),
                      draft) == [("baclofen-dialysis", "sb-baclofen")]
    # the unselected oral magnesium is caught on order-sign
    signed = call(client, SIGN, "ord-hd-low-mg", patient, draft)
    assert [c["suggestions"][0]["actions"][0]["resourceId"] for c in cards_of(signed, "oral-magnesium")] == [
        "MedicationRequest/sb-mg-oxide"]


@pytest.mark.parametrize("name", ORDER_FILES)
def test_non_dialysis_patient_gets_nothing_for_any_order_file(client, name):
    draft = order_fixture(name)
    assert call(client, SIGN, "ord-no-dialysis", patient_fixture("ord-no-dialysis"), draft) == []


def test_all_orders_at_once_for_the_low_mg_patient(client):
    entries = [e for name in ORDER_FILES for e in order_fixture(name)["entry"]]
    draft = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    cards = call(client, SIGN, "ord-hd-low-mg", patient_fixture("ord-hd-low-mg"), draft)
    expected = sorted(p for (name, pid), pairs in EXPECTED.items() if pid == "ord-hd-low-mg" for p in pairs)
    got = card_pairs(cards, draft)
    assert set(expected) <= set(got)
    decoys = {"pd-solution", "kcl-nacl-maintenance", "ca-carbonate", "nuedexta", "baclofen-it",
              "gabapentin-300-qd", "gabapentin-300-hd"}
    assert not decoys & {order for _rule, order in got}


def test_discovery_lists_the_order_services(client):
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    assert services[SELECT]["hook"] == "order-select" and services[SIGN]["hook"] == "order-sign"
