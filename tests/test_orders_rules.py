"""Each order rule end to end through the Flask app (prefetch mode): positives, boundaries and decoys."""
from __future__ import annotations

import pytest

from cds_service.app import create_app
from orders_support import (IV_ROUTE, ORAL_ROUTE, SELECT, SIGN, all_selected, call, cards_of, draft_bundle,
                            med_request, patient_bundle, rx, topic)

PID = "pt-1"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = tmp_path_factory.mktemp("fb") / "fb.db"
    return create_app({"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(db)}).test_client()


def sign(client, orders, **patient):
    return call(client, SIGN, PID, patient_bundle(PID, **patient), draft_bundle(orders))


def select(client, orders, selections=None, **patient):
    draft = draft_bundle(orders)
    return call(client, SELECT, PID, patient_bundle(PID, **patient), draft,
                all_selected(draft) if selections is None else selections)


MG_PREMIX = rx("1658262", "100 ML magnesium sulfate 40 MG/ML Injection")
MG_VIAL = rx("1658221", "2 ML magnesium sulfate 500 MG/ML Injection")
MG_OXIDE = rx("198741", "magnesium oxide 400 MG Oral Tablet")
KCL_ORAL = rx("198116", "potassium chloride 20 MEQ Extended Release Oral Tablet")
KCL_IV = rx("1860139", "20 ML potassium chloride 2 MEQ/ML Injection")
CA_GLUC = rx("1668250", "10 ML calcium gluconate 100 MG/ML Injection")
CA_CHLORIDE = rx("828525", "10 ML calcium chloride 100 MG/ML Injection")
CA_CARB = rx("308892", "calcium carbonate 1000 MG Chewable Tablet")
CA_ACETATE = rx("214342", "calcium acetate")
PD_FLUID = {"text": "calcium chloride / dextrose / magnesium chloride / sodium chloride / sodium lactate "
                    "Intraperitoneal Solution"}
MAINTENANCE = rx("214792", "potassium chloride / sodium chloride")
NUEDEXTA = rx("1040054", "dextromethorphan hydrobromide 20 MG / quinidine sulfate 10 MG Oral Capsule", "Nuedexta")


# ================================================================ iv-magnesium-dialysis

def test_iv_magnesium_premix_without_route_is_critical_with_recommended_removal(client):
    cards = sign(client, [med_request("mg1", MG_PREMIX, dose=(4, "g"))], mg=0.95)
    [card] = cards_of(cards, "iv-magnesium-dialysis")
    assert card["indicator"] == "critical"
    [suggestion] = card["suggestions"]
    assert suggestion["isRecommended"] is True
    assert suggestion["actions"] == [{"type": "delete", "resourceId": "MedicationRequest/mg1",
                                      "description": suggestion["actions"][0]["description"]}]
    detail = card["detail"]
    assert "dialysate magnesium instead" in detail
    assert "0.95 mmol/L" in detail  # the latest Mg, with units
    assert "20 g in 48 hours" in detail and "renal" in detail
    assert "MedicationRequest/mg1" in detail and "100 ML magnesium sulfate 40 MG/ML Injection" in detail
    assert card["overrideReasons"] and all(r["code"] and r["display"] for r in card["overrideReasons"])


@pytest.mark.parametrize("medication,route", [
    (MG_VIAL, IV_ROUTE),
    (rx("6585", "magnesium sulfate"), {"coding": [{"system": "http://standardterms.edqm.eu", "code": "20045000"}]}),
    ({"text": "Magnesium sulphate 2 g"}, {"text": "IV"}),
    (rx("6579", "magnesium chloride"), IV_ROUTE),
])
def test_iv_magnesium_by_route(client, medication, route):
    cards = sign(client, [med_request("mg2", medication, route=route)], mg=1.0)
    assert [topic(c) for c in cards] == ["iv-magnesium-dialysis"]


def test_iv_magnesium_without_a_mg_result_says_so(client):
    [card] = sign(client, [med_request("mg3", MG_PREMIX)])
    assert "no serum Mg result in the last 45 days" in card["detail"]


@pytest.mark.parametrize("medication,route", [
    (MG_OXIDE, ORAL_ROUTE),          # oral magnesium oxide
    (MG_OXIDE, None),
    (MG_VIAL, {"text": "Intramuscular"}),
    (MG_VIAL, None),                 # 50% is labelled IM and IV: without a route it is not taken as IV
    (PD_FLUID, {"text": "Intraperitoneal"}),
    (PD_FLUID, IV_ROUTE),
])
def test_iv_magnesium_decoys(client, medication, route):
    cards = sign(client, [med_request("mgx", medication, route=route)], mg=0.5, k=3.0)
    assert cards_of(cards, "iv-magnesium-dialysis") == []


def test_iv_magnesium_not_selected_on_order_select_fires_on_order_sign(client):
    orders = [med_request("mg-iv", MG_PREMIX), med_request("mg-oral", MG_OXIDE, route=ORAL_ROUTE)]
    assert select(client, orders, ["MedicationRequest/mg-oral"], mg=0.9) == []
    on_sign = sign(client, orders, mg=0.9)
    assert [c["suggestions"][0]["actions"][0]["resourceId"] for c in on_sign] == ["MedicationRequest/mg-iv"]
    on_select = select(client, orders, ["MedicationRequest/mg-iv"], mg=0.9)
    assert [topic(c) for c in on_select] == ["iv-magnesium-dialysis"]


def test_one_card_per_order(client):
    cards = sign(client, [med_request("a1", MG_PREMIX), med_request("a2", MG_VIAL, route=IV_ROUTE)], mg=0.9)
    ids = sorted(c["suggestions"][0]["actions"][0]["resourceId"] for c in cards_of(cards, "iv-magnesium-dialysis"))
    assert ids == ["MedicationRequest/a1", "MedicationRequest/a2"]


def test_order_without_id_gets_a_card_but_no_delete_action(client):
    [card] = sign(client, [med_request(None, MG_PREMIX)], mg=0.9)
    assert "suggestions" not in card
    assert "without an id" in card["detail"]


# ================================================================ replacement-before-magnesium

@pytest.mark.parametrize("medication", [KCL_ORAL, KCL_IV, rx("1928567", "5 ML potassium phosphates Injection"),
                                        rx("54993", "potassium citrate"), CA_GLUC, CA_CHLORIDE,
                                        {"text": "KCl 20 mEq oral"}])
def test_replacement_while_mg_low_fires(client, medication):
    cards = sign(client, [med_request("r1", medication)], mg=0.55, k=3.0)
    [card] = cards_of(cards, "replacement-before-magnesium")
    assert card["indicator"] == "warning"
    assert "alongside" in card["detail"] and "do not withhold" in card["detail"]
    assert "0.55 mmol/L" in card["detail"] and "MedicationRequest/r1" in card["detail"]
    assert "suggestions" not in card  # Mg is known: nothing to order


@pytest.mark.parametrize("mg,unit,comparator,fires", [
    (0.69, "mmol/L", None, True),
    (0.70, "mmol/L", None, False),   # at target: no card
    (1.6, "mg/dL", None, True),
    (1.8, "mg/dL", None, False),
    (0.7, "mmol/L", "<", True),      # "< 0.7" is below 0.70 for certain
    (0.8, "mmol/L", "<", False),     # "< 0.8" cannot be placed against 0.70: no card rather than a guess
])
def test_replacement_mg_boundaries(client, mg, unit, comparator, fires):
    cards = sign(client, [med_request("r2", KCL_ORAL)], mg=mg, mg_unit=unit, mg_comparator=comparator, k=3.0)
    assert bool(cards_of(cards, "replacement-before-magnesium")) is fires


def test_replacement_without_mg_suggests_ordering_mg(client):
    cards = sign(client, [med_request("r3", CA_GLUC)], k=3.0)
    [card] = cards_of(cards, "replacement-before-magnesium")
    assert "No recent Mg result" in card["summary"]
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "create"
    assert action["resource"]["resourceType"] == "ServiceRequest"
    assert action["resource"]["code"]["coding"][0]["code"] == "19123-9"
    assert action["resource"]["subject"] == {"reference": f"Patient/{PID}"}


def test_replacement_with_mg_older_than_the_lookback_counts_as_missing(client):
    cards = sign(client, [med_request("r4", KCL_ORAL)], mg=0.5, mg_hours_ago=24 * 50, k=3.0)
    [card] = cards_of(cards, "replacement-before-magnesium")
    assert card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"] == "19123-9"


@pytest.mark.parametrize("medication", [CA_CARB, CA_ACETATE, PD_FLUID, MAINTENANCE, MG_OXIDE,
                                        {"text": "KCl 20 mEq in sodium chloride 0.9% 1000 mL"},
                                        {"text": "calcium 500 mg"}])
def test_replacement_decoys(client, medication):
    cards = sign(client, [med_request("r5", medication)], mg=0.4, k=3.0)
    assert cards_of(cards, "replacement-before-magnesium") == []
    assert cards_of(cards, "potassium-in-dialysis") == []


# ================================================================ potassium-in-dialysis

@pytest.mark.parametrize("k,fires", [(3.5, True), (3.4, False), (5.2, True)])
def test_potassium_thresholds(client, k, fires):
    cards = sign(client, [med_request("k1", KCL_ORAL)], mg=0.9, k=k)
    found = cards_of(cards, "potassium-in-dialysis")
    assert bool(found) is fires
    if fires:
        assert f"{k:.1f} mmol/L" in found[0]["detail"] and "hyperkalaemia" in found[0]["detail"]
        assert "ago)" in found[0]["detail"]  # the time of the K result


def test_potassium_without_recent_k_fires_and_suggests_a_k(client):
    cards = sign(client, [med_request("k2", KCL_IV)], mg=0.9, k=4.0, k_hours_ago=80)
    [card] = cards_of(cards, "potassium-in-dialysis")
    assert "no K result in 72 h" in card["summary"]
    assert "older: 4.0 mmol/L" in card["detail"]
    assert card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"] == "2823-3"
    assert cards_of(sign(client, [med_request("k2", KCL_IV)], mg=0.9), "potassium-in-dialysis")


def test_potassium_within_72h_is_current(client):
    cards = sign(client, [med_request("k3", KCL_ORAL)], mg=0.9, k=4.0, k_hours_ago=70)
    [card] = cards_of(cards, "potassium-in-dialysis")
    assert "suggestions" not in card


def test_post_dialysis_potassium_is_named(client):
    cards = sign(client, [med_request("k4", KCL_ORAL)], mg=0.9, k=3.9, k_loinc="29349-8")
    [card] = cards_of(cards, "potassium-in-dialysis")
    assert "post-dialysis" in card["detail"]


def test_calcium_replacement_is_not_a_potassium_order(client):
    assert cards_of(sign(client, [med_request("k5", CA_GLUC)], mg=0.9, k=5.0), "potassium-in-dialysis") == []


# ================================================================ quinine-for-cramps

@pytest.mark.parametrize("medication,drug", [
    (rx("997010", "quinine sulfate 324 MG Oral Capsule"), "quinine"),
    (rx("9071", "quinine"), "quinine"),
    (rx("852877", "quinidine sulfate 200 MG Oral Tablet"), "quinidine"),
    (rx("9068", "quinidine"), "quinidine"),
    ({"text": "Quinidine gluconate 324 mg ER tablet"}, "quinidine"),
])
def test_quinine_and_quinidine_fire(client, medication, drug):
    [card] = sign(client, [med_request("q1", medication, route=ORAL_ROUTE)], mg=0.9, k=4.0)
    assert topic(card) == "quinine-for-cramps" and card["indicator"] == "warning"
    assert drug in card["summary"]
    detail = card["detail"]
    assert "boxed warning" in detail and "thrombocytopenia" in detail and "HUS/TTP" in detail
    assert "not approved for nocturnal leg cramps" in detail and "one third" in detail


@pytest.mark.parametrize("medication", [NUEDEXTA, {"text": "Nuedexta (dextromethorphan/quinidine) 20-10 mg"}])
def test_nuedexta_is_not_a_cramp_drug(client, medication):
    assert sign(client, [med_request("q2", medication, route=ORAL_ROUTE)], mg=0.9, k=4.0) == []


# ================================================================ baclofen-dialysis

@pytest.mark.parametrize("medication,dose,freq,indicator", [
    (rx("430902", "baclofen 5 MG Oral Tablet"), (5, "mg"), 1, "warning"),
    (rx("197391", "baclofen 10 MG Oral Tablet"), (1, "{tbl}"), 3, "warning"),   # 30 mg/day: not above 30
    (rx("197391", "baclofen 10 MG Oral Tablet"), (1, "{tbl}"), 4, "critical"),  # 40 mg/day
    (rx("197392", "baclofen 20 MG Oral Tablet"), (20, "mg"), 3, "critical"),
    (rx("1292", "baclofen"), None, None, "warning"),                             # no dose: still avoid
])
def test_baclofen(client, medication, dose, freq, indicator):
    cards = sign(client, [med_request("b1", medication, dose=dose, frequency=freq, period=1 if freq else None)],
                 mg=0.9, k=4.0)
    [card] = cards_of(cards, "baclofen-dialysis")
    assert card["indicator"] == indicator
    detail = card["detail"]
    assert "Beers" in detail and "encephalopathy" in detail and "5 mg/day" in detail
    assert "taper" in detail and "unless toxicity" in detail and "gabapentin" in detail
    if indicator == "critical":
        assert "mg/day" in card["summary"]


@pytest.mark.parametrize("medication,route", [
    (rx("1666622", "5 ML baclofen 2 MG/ML Injection"), None),
    (rx("1292", "baclofen"), {"text": "Intrathecal"}),
    ({"text": "baclofen intrathecal 50 mcg"}, None),
])
def test_intrathecal_baclofen_is_not_systemic(client, medication, route):
    assert sign(client, [med_request("b2", medication, route=route)], mg=0.9, k=4.0) == []


# ================================================================ gabapentin-dialysis-dose

@pytest.mark.parametrize("medication,dose,freq,period,unit,fires", [
    (rx("310431", "gabapentin 300 MG Oral Capsule"), (300, "mg"), 1, 1, "d", False),   # 300 mg once daily
    (rx("310431", "gabapentin 300 MG Oral Capsule"), (1, "{capsule}"), 1, 1, "d", False),
    (rx("310431", "gabapentin 300 MG Oral Capsule"), (300, "mg"), 3, 1, "wk", False),  # before each session
    (rx("310430", "gabapentin 100 MG Oral Capsule"), (100, "mg"), 3, 1, "d", False),   # 300/day: not above
    (rx("310432", "gabapentin 400 MG Oral Capsule"), (400, "mg"), 1, 1, "d", True),    # single dose 400
    (rx("310430", "gabapentin 100 MG Oral Capsule"), (200, "mg"), 2, 1, "d", True),    # 400 mg/day
    (rx("310433", "gabapentin 600 MG Oral Tablet"), (600, "mg"), 2, 1, "d", True),
    (rx("310433", "gabapentin 600 MG Oral Tablet"), (600, "mg"), None, None, None, True),  # single dose alone
    (rx("25480", "gabapentin"), (1, "{capsule}"), 3, 1, "d", False),  # strength unknown: no guess
])
def test_gabapentin(client, medication, dose, freq, period, unit, fires):
    order = med_request("g1", medication, dose=dose, frequency=freq, period=period, period_unit=unit)
    cards = cards_of(sign(client, [order], mg=0.9, k=4.0), "gabapentin-dialysis-dose")
    assert bool(cards) is fires
    if fires:
        detail = cards[0]["detail"]
        assert "300 mg before each dialysis session" in detail and "200–300 mg after each" in detail
        assert "MedicationRequest/g1" in detail


# ================================================================ hypertonic-saline

@pytest.mark.parametrize("medication,fires", [
    (rx("1807571", "30 ML sodium chloride 234 MG/ML Injection"), True),
    (rx("313016", "sodium chloride 234 MG/ML Injectable Solution"), True),
    ({"text": "Sodium chloride 23.4% 10 mL"}, True),
    (rx("1807578", "20 ML sodium chloride 146 MG/ML Injection"), False),
    ({"text": "Sodium chloride 0.9% 1000 mL"}, False),
    (rx("9863", "sodium chloride"), False),  # concentration unknown
])
def test_hypertonic_saline(client, medication, fires):
    cards = sign(client, [med_request("n1", medication, route=IV_ROUTE)], mg=0.9, k=4.0)
    assert bool(cards_of(cards, "hypertonic-saline")) is fires
    if fires:
        [card] = cards
        assert card["indicator"] == "info"
        assert "high-alert" in card["detail"] and "intradialytic cramps" in card["detail"]


# ================================================================ patients not on dialysis

def test_non_dialysis_patient_gets_no_order_cards(client):
    orders = [med_request("x1", MG_PREMIX), med_request("x2", KCL_ORAL), med_request("x3", CA_GLUC),
              med_request("x4", rx("997010", "quinine sulfate 324 MG Oral Capsule")),
              med_request("x5", rx("197392", "baclofen 20 MG Oral Tablet"), dose=(20, "mg"), frequency=3, period=1),
              med_request("x6", rx("310433", "gabapentin 600 MG Oral Tablet"), dose=(600, "mg")),
              med_request("x7", rx("1807571", "30 ML sodium chloride 234 MG/ML Injection"))]
    assert sign(client, orders, dialysis=False, mg=0.4, k=5.5) == []
    assert select(client, orders, dialysis=False, mg=0.4, k=5.5) == []
    # the same orders for a dialysis patient: every rule fires
    fired = {topic(c) for c in sign(client, orders, mg=0.4, k=5.5)}
    assert fired == {"iv-magnesium-dialysis", "replacement-before-magnesium", "potassium-in-dialysis",
                     "quinine-for-cramps", "baclofen-dialysis", "gabapentin-dialysis-dose", "hypertonic-saline"}


def test_every_order_card_names_its_order(client):
    orders = [med_request("n-a", KCL_ORAL), med_request("n-b", CA_GLUC),
              med_request("n-c", rx("197392", "baclofen 20 MG Oral Tablet"))]
    cards = sign(client, orders, mg=0.5, k=4.5)
    pairs = []
    for card in cards:
        named = [o for o in ("n-a", "n-b", "n-c") if f"MedicationRequest/{o}" in card["detail"]]
        assert len(named) == 1
        pairs.append((topic(card), named[0]))
    assert sorted(pairs) == [("baclofen-dialysis", "n-c"), ("potassium-in-dialysis", "n-a"),
                             ("replacement-before-magnesium", "n-a"), ("replacement-before-magnesium", "n-b")]
