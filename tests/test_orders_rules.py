"""The order-select / order-sign rules of clinical policy v2 (section 5), through the Flask app in prefetch mode.

Each test builds a patient (modality, sessions, labs at times relative to now) and draft orders, calls the
hook, and checks which cards fire, at which indicator, and with which suggestions. Scenario files in
cards/scenarios/ cover the same tiers in prefetch and fetch mode; these tests add boundaries and decoys.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from support.helpers import NOW as HELPERS_NOW
from support.orders import (IV_ROUTE, ORAL_ROUTE, SELECT, SIGN, all_selected, call, cards_of, draft_bundle,
                            med_request, observation, rx, topic)

NOW = HELPERS_NOW  # the test app's clock (conftest)
SNOMED = "http://snomed.info/sct"
IM_ROUTE = {"coding": [{"system": SNOMED, "code": "78421000", "display": "Intramuscular route"}]}
KCL = rx("198116", "potassium chloride 20 MEQ Extended Release Oral Tablet")
MG_VIAL = rx("1658221", "2 ML magnesium sulfate 500 MG/ML Injection")
MG_PREMIX = rx("1658262", "100 ML magnesium sulfate 40 MG/ML Injection")
CA_IV = rx("1668250", "10 ML calcium gluconate 100 MG/ML Injection")
NACL = rx("1807571", "30 ML sodium chloride 234 MG/ML Injection")


# ---------------------------------------------------------------- patients

def patient(*, modality: str | None = "HD", labs: dict | None = None, session_end_h: float | None = 20,
            session_in_progress: bool = False, pid: str = "pt-1") -> dict:
    """A patient bundle. labs: analyte -> (value, hours ago[, loinc]); times relative to now."""
    resources: list[dict] = [{"resourceType": "Patient", "id": pid}]
    ref = {"reference": f"Patient/{pid}"}

    def cond(cid, system, code):
        resources.append({"resourceType": "Condition", "id": cid, "subject": ref,
                          "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                         "code": "active"}]},
                          "code": {"coding": [{"system": system, "code": code}]}})

    def proc(prid, code, start, end=None, status="completed"):
        period = {"start": _iso(start)}
        if end is not None:
            period["end"] = _iso(end)
        resources.append({"resourceType": "Procedure", "id": prid, "status": status, "subject": ref,
                          "code": {"coding": [{"system": SNOMED, "code": code}]}, "performedPeriod": period})

    if modality is None:
        cond(f"{pid}-ckd", "http://hl7.org/fhir/sid/icd-10-cm", "N18.3")
    else:
        cond(f"{pid}-z992", "http://hl7.org/fhir/sid/icd-10-cm", "Z99.2")
    if modality == "HD":
        if session_end_h is not None:
            for days in (4, 2, 0):
                end = NOW - timedelta(hours=session_end_h, days=days)
                proc(f"{pid}-hd{days}", "302497006", end - timedelta(hours=4), end)
        if session_in_progress:
            proc(f"{pid}-hd-now", "302497006", NOW - timedelta(hours=1, minutes=30), status="in-progress")
    elif modality == "PD":
        proc(f"{pid}-pd", "71192002", NOW - timedelta(days=1, hours=1), NOW - timedelta(days=1))
    elif modality == "CRRT":
        proc(f"{pid}-crrt", "714749008", NOW - timedelta(days=2), status="in-progress")
    loinc = {"k": ("2823-3", "mmol/L"), "mg": ("2601-3", "mmol/L"), "ica": ("1995-0", "mmol/L"),
             "aluminum": ("5574-9", "ug/L")}
    for analyte, spec in (labs or {}).items():
        value, hours = spec[0], spec[1]
        code = spec[2] if len(spec) > 2 else loinc[analyte][0]
        resources.append(observation(pid, f"{pid}-{analyte}", code, value, loinc[analyte][1],
                                     NOW - timedelta(hours=hours)))
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                      for r in resources]}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(client, pt: dict, *orders: dict) -> list[dict]:
    return call(client, SIGN, "pt-1", pt, draft_bundle(orders))


def only(cards: list[dict], rule_id: str) -> dict:
    found = cards_of(cards, rule_id)
    assert len(found) == 1, [topic(c) for c in cards]
    return found[0]


def deletes(card: dict) -> list[tuple[str, bool]]:
    return [(a["resourceId"], bool(s.get("isRecommended"))) for s in card.get("suggestions", [])
            for a in s["actions"] if a["type"] == "delete"]


def lab_orders(card: dict) -> list[str]:
    return [a["resource"]["code"]["coding"][0]["code"] for s in card.get("suggestions", []) for a in s["actions"]
            if a["type"] == "create"]


def kcl(mid: str = "kcl") -> dict:
    return med_request(mid, KCL, route=ORAL_ROUTE, dose=(20, "meq"), frequency=2, period=1)


# ---------------------------------------------------------------- potassium-supplement

@pytest.mark.parametrize("k,indicator,delete", [
    (6.8, "critical", True), (6.0, "critical", True), (5.9, "warning", True), (5.0, "warning", True),
    (4.9, "info", False), (3.5, "info", False),
])
def test_potassium_supplement_tiers_on_current_k(client, k, indicator, delete):
    card = only(sign(client, patient(labs={"k": (k, 4), "mg": (0.85, 4)}), kcl()), "potassium-supplement")
    assert card["indicator"] == indicator
    assert deletes(card) == ([("MedicationRequest/kcl", True)] if delete else [])
    assert f"{k:.1f} mmol/L" in card["detail"]


def test_current_low_k_on_hd_is_no_potassium_card(client):
    cards = sign(client, patient(labs={"k": (3.1, 4), "mg": (0.85, 4)}), kcl())
    assert cards_of(cards, "potassium-supplement") == []


def test_no_k_in_seven_days_warns_and_orders_k(client):
    card = only(sign(client, patient(labs={"k": (4.0, 24 * 8)}), kcl()), "potassium-supplement")
    assert card["indicator"] == "warning" and lab_orders(card) == ["2823-3"]


def test_pre_session_high_k_is_a_recheck_warning_not_critical(client):
    pt = patient(labs={"k": (6.8, 26)}, session_end_h=20)  # drawn before the session that ended 20 h ago
    card = only(sign(client, pt, kcl()), "potassium-supplement")
    assert card["indicator"] == "warning"
    assert deletes(card) == [("MedicationRequest/kcl", True)] and lab_orders(card) == ["2823-3"]
    assert "before the session that ended" in card["detail"]


def test_high_k_older_than_the_acute_look_back_is_a_warning(client):
    pt = patient(modality="PD", labs={"k": (6.5, 80)})
    card = only(sign(client, pt, kcl()), "potassium-supplement")
    assert card["indicator"] == "warning"
    assert deletes(card) == [("MedicationRequest/kcl", True)] and lab_orders(card) == ["2823-3"]
    assert "older than 72 h" in card["summary"] and "dialyzed since" not in card["summary"]


def test_early_post_low_k_is_a_rebound_warning_and_no_co_management(client):
    pt = patient(labs={"k": (3.2, 19.5), "mg": (0.55, 19.5)}, session_end_h=20)  # 30 min after the session
    cards = sign(client, pt, kcl())
    card = only(cards, "potassium-supplement")
    assert card["indicator"] == "warning" and lab_orders(card) == ["2823-3"]
    assert "rebound" in card["summary"] or "rebound" in card["detail"]
    assert cards_of(cards, "magnesium-co-management") == []


def test_early_post_k_below_three_counts_as_low_for_co_management(client):
    pt = patient(labs={"k": (2.8, 19.5), "mg": (0.55, 19.5)}, session_end_h=20)
    cards = sign(client, pt, kcl())
    assert only(cards, "magnesium-co-management")["indicator"] == "warning"
    # a true deficit (policy section 2): no rebound card that would discourage the replacement
    assert cards_of(cards, "potassium-supplement") == []


@pytest.mark.parametrize("k", [3.3, 4.9])
def test_pd_patient_with_k_below_five_gets_no_potassium_card(client, k):
    cards = sign(client, patient(modality="PD", labs={"k": (k, 4), "mg": (0.80, 4)}), kcl())
    assert cards_of(cards, "potassium-supplement") == []


def test_pd_patient_with_high_k_is_warned(client):
    card = only(sign(client, patient(modality="PD", labs={"k": (5.6, 4)}), kcl()), "potassium-supplement")
    assert card["indicator"] == "warning"
    # policy section 1.5: no hemodialysis session wording for a PD patient
    assert "next dialysis" not in card["summary"] and "next session" not in card["detail"]
    assert "PD prescription" in card["detail"]


def test_hd_patient_with_high_k_gets_the_session_wording(client):
    card = only(sign(client, patient(labs={"k": (5.6, 4)}), kcl()), "potassium-supplement")
    assert "next dialysis" in card["summary"] and "timing of the next session" in card["detail"]


def test_crrt_normal_k_no_card(client):
    assert sign(client, patient(modality="CRRT", labs={"k": (4.2, 3), "mg": (0.8, 3)}), kcl()) == []


@pytest.mark.parametrize("medication", [
    rx("214792", "potassium chloride / sodium chloride"),
    {"text": "Dianeal PD-2 2.5% dextrose peritoneal dialysis solution"},
    {"text": "Prismasol BGK 4/2.5 replacement fluid"},
    {"text": "Renal multivitamin with minerals"},
    {"text": "KCl 20 mEq in sodium chloride 0.9% 1000 mL"},
])
def test_fluids_and_supplements_never_match(client, medication):
    pt = patient(labs={"k": (6.8, 4), "mg": (1.7, 4)})
    assert sign(client, pt, med_request("f", medication, route=IV_ROUTE)) == []


@pytest.mark.parametrize("medication", [
    {"text": "Potassium citrate ER 10 mEq tablet"}, {"text": "Potassium bicarbonate 25 mEq effervescent tablet"},
    rx("1928569", "15 ML potassium phosphates (236/224 MG/ML) Injection"),
])
def test_every_potassium_salt_is_checked(client, medication):
    card = only(sign(client, patient(labs={"k": (6.6, 3)}), med_request("k2", medication)), "potassium-supplement")
    assert card["indicator"] == "critical"


# ---------------------------------------------------------------- magnesium-co-management

def test_co_management_warning_when_mg_low_and_info_when_unknown(client):
    low = only(sign(client, patient(labs={"k": (3.1, 4), "mg": (0.55, 4)}), kcl()), "magnesium-co-management")
    assert low["indicator"] == "warning" and "do not hold" in low["summary"].lower()
    unknown = only(sign(client, patient(labs={"k": (3.1, 4)}), kcl()), "magnesium-co-management")
    assert unknown["indicator"] == "info" and lab_orders(unknown) == ["19123-9"]
    for card in (low, unknown):
        assert "first" not in (card["summary"] + card["detail"]).lower()


@pytest.mark.parametrize("mg,fires", [(0.69, True), (0.70, False), (0.95, False)])
def test_co_management_mg_boundary(client, mg, fires):
    cards = sign(client, patient(labs={"k": (3.1, 4), "mg": (mg, 4)}), kcl())
    assert bool(cards_of(cards, "magnesium-co-management")) is fires


def test_co_management_calcium_replacement_with_low_ica(client):
    pt = patient(labs={"ica": (1.05, 4), "mg": (0.55, 4), "k": (4.2, 4)})
    card = only(sign(client, pt, med_request("ca", CA_IV, route=IV_ROUTE, dose=(1, "g"))), "magnesium-co-management")
    assert "calcium" in card["summary"]
    # the rationale is the calcium one (PTH), not the refractory-hypokalemia paper
    assert "parathyroid hormone" in " ".join(card["detail"].split()) and "hypokalemia" not in card["detail"]
    assert "Huang" not in card["source"]["label"] and "Huang" not in card["detail"]
    unknown = only(sign(client, patient(labs={"ica": (1.05, 4), "k": (4.2, 4)}),
                        med_request("ca", CA_IV, route=IV_ROUTE, dose=(1, "g"))), "magnesium-co-management")
    assert unknown["indicator"] == "info" and lab_orders(unknown) == ["19123-9"]
    assert "parathyroid hormone" in " ".join(unknown["detail"].split()) and "potassium" not in unknown["detail"]


def test_co_management_on_potassium_keeps_the_hypokalemia_rationale(client):
    card = only(sign(client, patient(labs={"k": (3.1, 4), "mg": (0.55, 4)}), kcl()), "magnesium-co-management")
    assert "Huang" in card["source"]["label"] and "refractory" in card["detail"]


def test_calcium_for_hyperkalemia_is_not_co_management(client):
    pt = patient(labs={"ica": (1.05, 2), "mg": (0.55, 2), "k": (6.8, 2)})
    assert sign(client, pt, med_request("ca", CA_IV, route=IV_ROUTE, dose=(1, "g"))) == []


@pytest.mark.parametrize("medication", [rx("308892", "calcium carbonate 1000 MG Chewable Tablet"),
                                        rx("214342", "calcium acetate")])
def test_phosphate_binders_are_not_calcium_replacement(client, medication):
    pt = patient(labs={"ica": (1.05, 4), "mg": (0.55, 4)})
    assert sign(client, pt, med_request("b", medication, route=ORAL_ROUTE)) == []


def test_superseded_low_k_is_not_co_management(client):
    pt = patient(labs={"k": (3.1, 26), "mg": (0.55, 26)}, session_end_h=20)
    assert cards_of(sign(client, pt, kcl()), "magnesium-co-management") == []


# ---------------------------------------------------------------- parenteral-magnesium

def mg_order(dose=(2, "g"), route=IV_ROUTE, medication=MG_VIAL, mid="mg", **repeat):
    res = med_request(mid, medication, route=route, dose=dose)
    if repeat:
        res["dosageInstruction"][0]["timing"] = {"repeat": repeat}
    return res


@pytest.mark.parametrize("mg,indicator", [(1.62, "critical"), (1.50, "critical"), (1.49, "warning"), (0.70, "warning"),
                                          (0.69, "info"), (0.35, "info")])
def test_parenteral_magnesium_level_tiers(client, mg, indicator):
    card = only(sign(client, patient(labs={"mg": (mg, 4)}), mg_order()), "parenteral-magnesium")
    assert card["indicator"] == indicator
    assert bool(deletes(card)) is (indicator == "critical")
    assert "never give" not in (card["summary"] + card["detail"]).lower()


def test_parenteral_magnesium_im_counts(client):
    card = only(sign(client, patient(labs={"mg": (1.7, 4)}), mg_order(route=IM_ROUTE)), "parenteral-magnesium")
    assert card["indicator"] == "critical"


def test_parenteral_magnesium_without_mg_warns_and_orders_mg(client):
    card = only(sign(client, patient(labs={"k": (4, 4)}), mg_order()), "parenteral-magnesium")
    assert card["indicator"] == "warning" and "19123-9" in lab_orders(card)


@pytest.mark.parametrize("period_h,indicator,summary_says", [
    (6, "info", "appropriate"),   # 2 g q6h = 8 g/24 h (not more than 8 g), 16 g/48 h
    (4, "critical", "48 h"),      # 2 g q4h = 12 g/24 h and 24 g/48 h: more than 20 g in 48 h
])
def test_parenteral_magnesium_dose_thresholds(client, period_h, indicator, summary_says):
    order = mg_order(frequency=1, period=period_h, periodUnit="h")
    card = only(sign(client, patient(labs={"mg": (0.55, 4)}), order), "parenteral-magnesium")
    assert card["indicator"] == indicator and summary_says in card["summary"]


def test_parenteral_magnesium_also_line_names_the_24h_total(client):
    # 4 g q6h = 16 g/24 h, 32 g/48 h on a high Mg: the critical card names the 24 h total beside the 8 g mark
    order = mg_order(dose=(4, "g"), frequency=1, period=6, periodUnit="h")
    card = only(sign(client, patient(labs={"mg": (1.7, 4)}), order), "parenteral-magnesium")
    detail = " ".join(card["detail"].split())
    assert card["indicator"] == "critical"
    assert "16.0 g in 24 h is more than 8 g: check a level before repeating" in detail
    assert "level-check limit" not in detail


def test_parenteral_magnesium_over_24h_but_within_48h_is_a_warning(client):
    order = mg_order(dose=(3, "g"), frequency=1, period=8, periodUnit="h", count=4)  # 9 g/24 h, 12 g/48 h
    card = only(sign(client, patient(labs={"mg": (0.55, 4)}), order), "parenteral-magnesium")
    assert card["indicator"] == "warning" and "19123-9" in lab_orders(card)


@pytest.mark.parametrize("dose_g,period,critical", [(5, 12, False), (5, 11, True)])
def test_parenteral_magnesium_48h_boundary(client, dose_g, period, critical):
    order = mg_order(dose=(dose_g, "g"), frequency=1, period=period, periodUnit="h")
    card = only(sign(client, patient(labs={"mg": (0.55, 4)}), order), "parenteral-magnesium")
    assert (card["indicator"] == "critical") is critical


def test_crrt_citrate_mg_replacement_gets_no_card(client):
    pt = patient(modality="CRRT", labs={"mg": (0.62, 3)})
    assert sign(client, pt, mg_order(dose=(2, "g"), frequency=1, period=12, periodUnit="h")) == []
    assert sign(client, patient(modality="CRRT", labs={"mg": (1.0, 3)}), mg_order()) == []
    assert sign(client, patient(modality="CRRT"), mg_order()) == []


def test_crrt_only_high_mg_and_over_48h(client):
    high = only(sign(client, patient(modality="CRRT", labs={"mg": (1.6, 3)}), mg_order()), "parenteral-magnesium")
    assert high["indicator"] == "critical"
    infusion = med_request("mg", MG_PREMIX, route=IV_ROUTE)
    infusion["dosageInstruction"] = [{"route": IV_ROUTE,
                                      "doseAndRate": [{"rateQuantity": {"value": 1, "unit": "g/h", "code": "g/h"}}]}]
    over = only(sign(client, patient(modality="CRRT", labs={"mg": (0.62, 3)}), infusion), "parenteral-magnesium")
    assert over["indicator"] == "critical" and "48 h" in over["summary"]


def test_crrt_high_mg_older_than_12h_is_not_critical(client):
    assert sign(client, patient(modality="CRRT", labs={"mg": (1.6, 14)}), mg_order()) == []


# ---------------------------------------------------------------- oral-magnesium

@pytest.mark.parametrize("medication", [
    rx("198741", "magnesium oxide 400 MG Oral Tablet"), {"text": "Milk of Magnesia 30 mL at bedtime"},
    {"text": "Maalox suspension 30 mL"}, {"text": "Magnesium citrate 300 mL oral solution"},
])
def test_oral_magnesium_warning_and_critical(client, medication):
    card = only(sign(client, patient(labs={"mg": (0.9, 4)}), med_request("om", medication, route=ORAL_ROUTE)),
                "oral-magnesium")
    assert card["indicator"] == "warning" and deletes(card) == [("MedicationRequest/om", False)]
    high = only(sign(client, patient(labs={"mg": (1.55, 4)}), med_request("om", medication, route=ORAL_ROUTE)),
                "oral-magnesium")
    assert high["indicator"] == "critical" and deletes(high) == [("MedicationRequest/om", True)]


@pytest.mark.parametrize("medication", [{"text": "Multivitamin with minerals (contains magnesium 50 mg)"},
                                        {"text": "Nephro-Vite Rx"}])
def test_multivitamins_with_mg_are_not_oral_magnesium(client, medication):
    assert sign(client, patient(labs={"mg": (1.6, 4)}), med_request("mv", medication, route=ORAL_ROUTE)) == []


# ---------------------------------------------------------------- aluminum-containing-drug

def test_aluminum_drug_warning_names_citrate_and_orders_al(client):
    al = med_request("al", {"text": "Aluminum hydroxide 640 mg capsule"}, route=ORAL_ROUTE)
    citrate = med_request("cit", {"text": "Potassium citrate ER 10 mEq tablet"}, route=ORAL_ROUTE)
    cards = sign(client, patient(labs={"k": (4.2, 4)}), al, citrate)
    card = only(cards, "aluminum-containing-drug")
    assert card["indicator"] == "warning" and "citrate" in card["detail"] and lab_orders(card) == ["5574-9"]
    with_level = only(sign(client, patient(labs={"aluminum": (12, 24 * 30)}), al), "aluminum-containing-drug")
    assert lab_orders(with_level) == [] and "12 µg/L" in with_level["detail"]


def test_maalox_is_both_magnesium_and_aluminum(client):
    cards = sign(client, patient(labs={"mg": (0.9, 4)}), med_request("mx", {"text": "Maalox suspension 30 mL"},
                                                                       route=ORAL_ROUTE))
    assert sorted(topic(c) for c in cards) == ["aluminum-containing-drug", "oral-magnesium"]


def test_sucralfate_is_an_aluminum_drug(client):
    card = only(sign(client, patient(), med_request("s", {"text": "Sucralfate 1 g tablet"})), "aluminum-containing-drug")
    assert "sucralfate" in card["detail"]
    assert "binder" not in card["detail"]  # sucralfate is no phosphate binder
    hydroxide = only(sign(client, patient(), med_request("a", {"text": "Aluminum hydroxide 640 mg capsule"})),
                     "aluminum-containing-drug")
    assert "phosphate binders" in hydroxide["detail"]


# ---------------------------------------------------------------- quinine-for-cramps

def test_quinine_critical_quinidine_warning_without_the_boxed_warning(client):
    q = only(sign(client, patient(), med_request("q", rx("997010", "quinine sulfate 324 MG Oral Capsule"))),
             "quinine-for-cramps")
    assert q["indicator"] == "critical" and deletes(q) == [("MedicationRequest/q", True)]
    assert "HUS/TTP" in q["detail"]
    d = only(sign(client, patient(), med_request("d", rx("852877", "quinidine sulfate 200 MG Oral Tablet"))),
             "quinine-for-cramps")
    assert d["indicator"] == "warning"
    assert "boxed" not in d["detail"].lower() and "HUS" not in d["detail"] and "TTP" not in d["summary"]
    # each card cites its own drug: never the quinine label on the quinidine card
    assert "Qualaquin" in q["source"]["label"]
    assert "quinine" not in d["source"]["label"].lower() and "1f66fba7" not in d["source"]["url"]
    assert d["source"]["url"] == "https://doi.org/10.1161/CIRCULATIONAHA.109.192704"


def test_dextromethorphan_quinidine_is_not_flagged(client):
    order = med_request("n", rx("1040054", "dextromethorphan hydrobromide 20 MG / quinidine sulfate 10 MG Oral Capsule"))
    assert sign(client, patient(), order) == []


# ---------------------------------------------------------------- baclofen-dialysis

@pytest.mark.parametrize("dose,freq,indicator", [
    ((5, "mg"), 1, "warning"), ((2.5, "mg"), 2, "warning"), ((5, "mg"), 2, "critical"),
    ((10, "mg"), 3, "critical"), ((10, "mg"), None, "critical"),  # a single 10 mg dose
    ((1, "{tbl}"), 3, "critical"),
])
def test_baclofen_tiers(client, dose, freq, indicator):
    order = med_request("b", rx("197391", "baclofen 10 MG Oral Tablet") if dose[1] == "{tbl}" else rx("1292", "baclofen"),
                        route=ORAL_ROUTE, dose=dose, frequency=freq, period=1 if freq else None)
    card = only(sign(client, patient(), order), "baclofen-dialysis")
    assert card["indicator"] == indicator
    assert deletes(card) == [("MedicationRequest/b", indicator == "critical")]


def test_intrathecal_baclofen_no_card(client):
    order = med_request("it", rx("1666622", "5 ML baclofen 2 MG/ML Injection"), route={"text": "Intrathecal"},
                        dose=(100, "ug"), frequency=1, period=1)
    assert sign(client, patient(), order) == []


# ---------------------------------------------------------------- gabapentin-dialysis-dose

@pytest.mark.parametrize("dose,freq,indicator", [
    (300, 1, None), (100, 3, None), (400, 1, "warning"), (300, 2, "warning"), (300, 3, "critical"), (600, 2, "critical"),
])
def test_gabapentin_tiers(client, dose, freq, indicator):
    order = med_request("g", rx("310431", "gabapentin 300 MG Oral Capsule"), route=ORAL_ROUTE, dose=(dose, "mg"),
                        frequency=freq, period=1)
    cards = cards_of(sign(client, patient(), order), "gabapentin-dialysis-dose")
    assert [c["indicator"] for c in cards] == ([indicator] if indicator else [])


@pytest.mark.parametrize("modality,hd_supplement", [("HD", True), ("PD", False), ("CRRT", False)])
def test_gabapentin_post_session_supplement_only_for_hd(client, modality, hd_supplement):
    order = med_request("g", rx("310431", "gabapentin 300 MG Oral Capsule"), route=ORAL_ROUTE, dose=(600, "mg"),
                        frequency=2, period=1)
    card = only(sign(client, patient(modality=modality), order), "gabapentin-dialysis-dose")
    assert card["indicator"] == "critical"
    assert ("supplemental dose after each hemodialysis session" in card["detail"]) is hd_supplement
    unreadable = only(sign(client, patient(modality=modality), med_request("g", rx("25480", "gabapentin"),
                                                                           route=ORAL_ROUTE)), "gabapentin-dialysis-dose")
    assert ("dose after each HD session" in unreadable["summary"]) is hd_supplement


def test_gabapentin_unreadable_dose_is_info(client):
    order = med_request("g", rx("25480", "gabapentin"), route=ORAL_ROUTE)
    card = only(sign(client, patient(modality="PD"), order), "gabapentin-dialysis-dose")
    assert card["indicator"] == "info" and "after" in card["detail"]


def test_gabapentin_post_hd_supplement_is_not_maintenance(client):
    order = med_request("g", rx("310431", "gabapentin 300 MG Oral Capsule"), route=ORAL_ROUTE)
    order["dosageInstruction"] = [
        {"doseAndRate": [{"doseQuantity": {"value": 300, "unit": "mg"}}],
         "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}},
        {"text": "350 mg after each hemodialysis session", "doseAndRate": [{"doseQuantity": {"value": 350, "unit": "mg"}}],
         "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "wk"}}}]
    assert sign(client, patient(), order) == []


# ---------------------------------------------------------------- hypertonic-saline

def nacl(volume=16, route=IV_ROUTE, text="bolus into the venous line for cramps"):
    res = med_request("n", NACL, route=route, dose=(volume, "mL"))
    if text:
        res["dosageInstruction"][0]["text"] = text
    return res


def test_hypertonic_saline_during_a_session_is_info(client):
    card = only(sign(client, patient(session_in_progress=True), nacl()), "hypertonic-saline")
    assert card["indicator"] == "info" and deletes(card) == []


@pytest.mark.parametrize("kw,in_session,why", [
    ({}, False, "no HD session running"),                                          # no session in progress
    ({"route": {"text": "peripheral IV"}, "text": None}, True, "peripheral vein"),  # peripheral
    ({"volume": 21}, True, "21 mL, over 20 mL"),                                         # more than 20 mL
])
def test_hypertonic_saline_critical(client, kw, in_session, why):
    card = only(sign(client, patient(session_in_progress=in_session), nacl(**kw)), "hypertonic-saline")
    assert card["indicator"] == "critical" and deletes(card) == [("MedicationRequest/n", True)]
    # the summary names the actual problem: a running session with 21 mL is not "outside a running circuit"
    assert why in card["summary"] and len(card["summary"]) < 140
    if in_session:
        assert "outside" not in card["summary"] and "no HD session" not in card["summary"]


def test_hypertonic_saline_20ml_boundary_is_info(client):
    card = only(sign(client, patient(session_in_progress=True), nacl(volume=20)), "hypertonic-saline")
    assert card["indicator"] == "info"


# ---------------------------------------------------------------- every rule: not on dialysis, order-select

def every_risky_order() -> list[dict]:
    return [kcl(), mg_order(), med_request("q", rx("997010", "quinine sulfate 324 MG Oral Capsule")),
            med_request("b", rx("197391", "baclofen 10 MG Oral Tablet"), route=ORAL_ROUTE, dose=(10, "mg"),
                        frequency=3, period=1),
            med_request("g", rx("310433", "gabapentin 600 MG Oral Tablet"), route=ORAL_ROUTE, dose=(600, "mg"),
                        frequency=2, period=1),
            nacl(route={"text": "peripheral IV"}, text=None),
            med_request("om", {"text": "Maalox suspension 30 mL"}, route=ORAL_ROUTE)]


def test_not_on_dialysis_no_order_card(client):
    pt = patient(modality=None, labs={"k": (6.8, 2), "mg": (1.8, 2)})
    assert sign(client, pt, *every_risky_order()) == []


def test_order_select_only_the_selected_order(client):
    pt = patient(labs={"k": (6.8, 2), "mg": (1.8, 2)})
    orders = every_risky_order()
    draft = draft_bundle(orders)
    assert call(client, SELECT, "pt-1", pt, draft, ["MedicationRequest/g"]) and all(
        "MedicationRequest/g`" in c["detail"] for c in call(client, SELECT, "pt-1", pt, draft, ["MedicationRequest/g"]))
    assert call(client, SELECT, "pt-1", pt, draft, []) == []
    everything = call(client, SELECT, "pt-1", pt, draft, all_selected(draft))
    assert sorted(topic(c) for c in everything) == sorted(topic(c) for c in sign(client, pt, *orders))


def test_one_card_per_order_per_rule(client):
    pt = patient(labs={"k": (6.8, 2), "mg": (1.8, 2)})
    cards = sign(client, pt, *every_risky_order())
    keys = [(topic(c), c["detail"].split("`")[1]) for c in cards]
    assert len(keys) == len(set(keys))
