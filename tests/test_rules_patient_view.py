"""Policy v2 patient-view rules, rule by rule, through the real snapshot path (positive, boundary, decoy).

The scenario files (cards/scenarios/) cover every tier end to end; these tests add the details a
scenario cannot state: the values and wording a finding carries, units, comparators and windows.
"""
from __future__ import annotations


import pytest

from support.clinical import (CRAMP, DIALYSIS_CONDITION, ESRD, ICD10CM, SNOMED, ago,
                                aluminium, coding, condition, fired, hd_session, heart_rate, ica, k, mg,
                                normal_panel, obs, on_dialysis, only, patient, po4, symptom_obs)

SPASM = coding(SNOMED, "45352006", "Spasm")
R25_2 = coding(ICD10CM, "R25.2", "Cramp and spasm")
TETANY = coding(ICD10CM, "R29.0", "Tetany")
HEART_FAILURE = coding(SNOMED, "84114007", "Heart failure")
VALVE = coding(SNOMED, "368009", "Heart valve disorder")
SPEECH = coding(SNOMED, "29164008", "Disturbance in speech")
SEIZURE = coding(SNOMED, "91175000", "Seizure")
PD = coding(SNOMED, "71192002", "Peritoneal dialysis")


def with_normal(*extra, skip=(), hours=20, session_end_hours=30):
    panel = [r for r in normal_panel(hours) if not any(code in str(r["code"]) for code in skip)]
    return [*on_dialysis(session_end_hours), *panel, *extra]


SKIP = {"mg": "2601-3", "ica": "1995-0", "k": "2823-3", "po4": "14879-1"}


def without(*analytes):
    return tuple(SKIP[a] for a in analytes)


# ---------------------------------------------------------------- electrolyte-review

@pytest.mark.parametrize("value,unit,loinc,fires", [
    (0.69, "mmol/L", "2601-3", True), (0.70, "mmol/L", "2601-3", False),
    (1.65, "mg/dL", "19123-9", True), (1.70, "mg/dL", "19123-9", False),   # 1.70 mg/dL is the 0.70 target
    (1.3, "meq/L", "19123-9", True), (1.4, "meq/L", "19123-9", False),
])
def test_low_mg_boundaries_in_every_unit(value, unit, loinc, fires):
    resources = with_normal(obs(loinc, value, unit, ago(hours=20)), skip=without("mg"))
    assert ("electrolyte-review" in fired(resources)) is fires


def test_low_mg_card_values_have_units_and_draw_time_relative_to_the_session():
    [f] = only(with_normal(mg(1.3, hours=20, unit="mg/dL", loinc="19123-9"), skip=without("mg")),
               "electrolyte-review")
    assert f.indicator == "warning"
    assert "0.53 mmol/L (1.3 mg/dL)" in f.values["table"]
    assert "drawn 20 h ago, 10 h after the session that ended 30 h ago" in f.values["table"]
    assert f.values["problems"] == "Low Mg 0.53 mmol/L"


def test_mg_reported_below_a_limit_counts_as_its_value():
    [f] = only(with_normal(mg(0.5, hours=5, comparator="<"), skip=without("mg")), "electrolyte-review")
    assert "< 0.50 mmol/L" in f.values["table"]


@pytest.mark.parametrize("k_value,fires", [(3.4, True), (3.5, False)])
def test_current_low_k_boundary(k_value, fires):
    assert ("electrolyte-review" in fired(with_normal(k(k_value), skip=without("k")))) is fires


def test_low_k_with_low_mg_is_co_management_never_hold():
    [f] = only(with_normal(k(3.2), mg(0.6), skip=without("k", "mg")), "electrolyte-review")
    assert "correct Mg alongside the K replacement" in f.values["advice"]
    assert "Do not hold the K" in f.values["advice"]
    assert "first" not in f.values["advice"].lower()


def test_low_k_with_no_mg_asks_to_measure_mg_with_an_order():
    [f] = only(with_normal(k(3.2), skip=without("k", "mg")), "electrolyte-review")
    assert "measure Mg and correct it if low" in f.values["advice"]
    assert "weaker in anuric patients" in f.values["advice"]
    assert [s.params["loinc"] for s in f.suggestions] == ["19123-9"]


def test_low_ica_with_low_mg_names_ca_replacement():
    [f] = only(with_normal(ica(1.05), mg(0.6), skip=without("ica", "mg")), "electrolyte-review")
    assert "correct Mg alongside the Ca replacement" in f.values["advice"]


def test_early_post_low_k_does_not_count_as_low():
    resources = [*on_dialysis(session_end_hours=1), *[r for r in normal_panel(0.5) if "2823-3" not in str(r)],
                 k(3.1, hours=0.5)]
    assert fired(resources) == []


def test_superseded_low_k_does_not_count_without_cramps():
    resources = [*on_dialysis(session_end_hours=2), *[r for r in normal_panel(1) if "2823-3" not in str(r)],
                 k(3.1, hours=7)]
    assert fired(resources) == []


def test_normal_panel_after_a_session_without_cramps_gives_nothing():
    assert fired([*on_dialysis(session_end_hours=1), *normal_panel(0.5)]) == []


@pytest.mark.parametrize("documentation", [
    lambda: condition(CRAMP, onset=ago(days=2)),
    lambda: condition(R25_2, onset=ago(days=6, hours=23)),
    lambda: condition(CRAMP, onset=ago(days=1), clinical="resolved"),  # an episode that has passed still counts
    lambda: symptom_obs(SPASM, when=ago(hours=5)),
    lambda: symptom_obs(R25_2, when=ago(days=3)),
])
def test_cramps_give_an_info_review_with_a_normal_current_panel(documentation):
    [f] = only(with_normal(documentation()), "electrolyte-review")
    assert f.indicator == "info" and f.suggestions == []


@pytest.mark.parametrize("documentation", [
    lambda: condition(CRAMP, onset=ago(days=8)),                                    # outside 7 days
    lambda: condition(CRAMP, onset=ago(days=1), verification="refuted"),
    lambda: condition(CRAMP, onset=ago(days=1), verification="entered-in-error"),
    lambda: symptom_obs(SPASM, when=ago(days=1), status="entered-in-error"),
    lambda: symptom_obs(SPASM, when=ago(days=1), value={"valueCodeableConcept": {"coding": [
        coding(SNOMED, "2667000", "Absent")]}}),
    lambda: symptom_obs(SPASM, when=ago(days=1), value={"valueBoolean": False}),
    lambda: condition(coding(SNOMED, "21522001", "Abdominal pain"), onset=ago(days=1)),
])
def test_cramp_decoys(documentation):
    assert fired(with_normal(documentation())) == []


def test_cramps_with_missing_and_superseded_tests_order_each_one():
    resources = [*on_dialysis(session_end_hours=3), mg(0.9, hours=40), ica(1.2, hours=40),
                 condition(CRAMP, onset=ago(hours=2))]  # drawn before the session 3 h ago; no K, no PO4
    [f] = only(resources, "electrolyte-review")
    assert [s.params["loinc"] for s in f.suggestions] == ["19123-9", "1995-0", "2823-3", "2777-1"]
    assert "values keep shifting for about 5 h" in f.values["advice"]


def test_total_calcium_is_never_ionized_calcium():
    total = obs("17861-6", 6.5, "mg/dL", ago(hours=5))
    assert fired(with_normal(total, skip=without("ica"))) == []
    [f] = only(with_normal(total, condition(CRAMP, onset=ago(days=1)), skip=without("ica")), "electrolyte-review")
    assert "Total calcium is on file but is not used" in f.values["advice"]
    assert [s.params["loinc"] for s in f.suggestions] == ["1995-0"]


def test_dialysate_mg_advice_needs_two_low_pre_dialysis_values():
    two = with_normal(mg(0.62, hours=24 * 20), mg(0.60, hours=20), skip=without("mg"))
    [f] = only(two, "electrolyte-review")
    assert "from 0.5 to 0.75 mmol/L" in f.values["advice"]
    [f] = only(with_normal(mg(0.60, hours=20), skip=without("mg")), "electrolyte-review")
    assert "dialysate Mg" not in f.values["advice"]


def test_pd_low_k_gets_oral_kcl_advice_and_no_session_wording():
    resources = [patient(), condition(PD, onset=ago(days=300)), k(3.2, hours=30), mg(0.85, hours=30),
                 ica(1.2, hours=30), po4(1.2, hours=30)]
    [f] = only(resources, "electrolyte-review")
    assert "oral potassium chloride titrated to K 4–5 mmol/L" in f.values["advice"]
    assert "session" not in f.values["table"]


def test_severe_card_analytes_are_left_out_of_the_review():
    resources = with_normal(k(2.6, hours=8), mg(0.6, hours=8), condition(CRAMP, onset=ago(days=1)),
                            skip=without("k", "mg"))
    found = fired(resources)
    assert found == ["hypokalemia-severe", "electrolyte-review"]
    [f] = only(resources, "electrolyte-review")
    assert "see the separate potassium card" in f.values["table"]
    assert f.values["problems"] == "Low Mg 0.60 mmol/L"


# ---------------------------------------------------------------- hyperkalemia

@pytest.mark.parametrize("value,indicator", [(5.9, None), (6.0, "warning"), (6.4, "warning"), (6.5, "critical"),
                                             (7.8, "critical")])
def test_hyperkalemia_tiers(value, indicator):
    got = only(with_normal(k(value, hours=10), skip=without("k")), "hyperkalemia")
    assert (got[0].indicator or "warning" if got else None) == indicator


def test_superseded_k_is_never_critical_whatever_its_value():
    for value in (6.0, 6.8, 8.5):
        [f] = only([*on_dialysis(session_end_hours=1), k(value, hours=6)], "hyperkalemia")
        assert f.indicator is None and f.variant == "recheck" and f.values["reason"] == "dialyzed since"
        assert [s.params["loinc"] for s in f.suggestions] == ["2823-3"]


def test_pre_dialysis_k_before_a_short_session_stays_critical():
    resources = [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400)),
                 hd_session(ago(hours=1), start=ago(hours=2, minutes=30)), k(6.8, hours=3, loinc="51618-7")]
    [f] = only(resources, "hyperkalemia")
    assert f.indicator == "critical"


def test_current_k_older_than_72_h_is_a_recheck():
    resources = [patient(), condition(PD, onset=ago(days=300)), k(6.7, hours=73)]
    [f] = only(resources, "hyperkalemia")
    assert f.variant == "recheck" and f.values["reason"] == "older than 72 h"


def test_hyperkalemia_names_potassium_on_the_medication_list():
    order = {"resourceType": "MedicationRequest", "id": "kcl", "status": "active", "intent": "order",
             "subject": {"reference": "Patient/p1"},
             "medicationCodeableConcept": {"text": "potassium chloride 20 mEq extended-release tablet"}}
    [f] = only(with_normal(k(6.6, hours=5), order, skip=without("k")), "hyperkalemia")
    assert "potassium chloride 20 mEq extended-release tablet" in f.values["k_sources"]


# ---------------------------------------------------------------- hypokalemia-severe

@pytest.mark.parametrize("value,iv", [(2.4, True), (2.5, False), (2.9, False)])
def test_severe_hypokalemia_tiers(value, iv):
    [f] = only(with_normal(k(value, hours=8), skip=without("k")), "hypokalemia-severe")
    assert f.indicator == "critical"
    assert ("intravenously per the potassium chloride label" in f.values["tier"]) is iv


def test_k_3_0_is_not_severe():
    assert "hypokalemia-severe" not in fired(with_normal(k(3.0, hours=8), skip=without("k")))


def test_early_post_k_below_3_is_a_warning_recheck():
    resources = [*on_dialysis(session_end_hours=1), k(2.7, hours=0.5), mg(0.85, hours=0.5)]
    [f] = only(resources, "hypokalemia-severe")
    assert f.variant == "early-post" and f.indicator is None


def test_severe_hypokalemia_never_discourages_treatment():
    [f] = only(with_normal(k(2.3, hours=8), mg(0.3, hours=8), skip=without("k", "mg")), "hypokalemia-severe")
    text = " ".join(f.values.values()).lower()
    assert "hold" not in text and "before replacing" not in text and "first" not in text


# ---------------------------------------------------------------- hypocalcemia-severe

@pytest.mark.parametrize("value,symptom,fires", [
    (0.89, None, True), (0.90, None, False), (0.95, CRAMP, True), (0.95, TETANY, True), (1.00, CRAMP, False),
])
def test_severe_hypocalcemia(value, symptom, fires):
    extra = [condition(symptom, onset=ago(days=1))] if symptom else []
    found = only(with_normal(ica(value, hours=8), *extra, skip=without("ica")), "hypocalcemia-severe")
    assert bool(found) is fires
    if found:
        assert found[0].indicator == "critical"


def test_severe_hypocalcemia_in_mg_dl_and_blood_codes():
    [f] = only(with_normal(ica(3.4, hours=8, unit="mg/dL", loinc="17864-0"), skip=without("ica")),
               "hypocalcemia-severe")
    assert f.values["ica"].startswith("0.85 mmol/L (3.4 mg/dL)")


# ---------------------------------------------------------------- magnesium cards

@pytest.mark.parametrize("value,rule,indicator", [
    (0.39, "hypomagnesemia-severe", "critical"), (0.40, None, None),
    (1.99, None, None), (2.0, "hypermagnesemia", None), (2.99, "hypermagnesemia", None),
    (3.0, "hypermagnesemia", "critical"),
])
def test_magnesium_tiers(value, rule, indicator):
    found = [f for f in only(with_normal(mg(value, hours=8), skip=without("mg")), "hypomagnesemia-severe")
             + only(with_normal(mg(value, hours=8), skip=without("mg")), "hypermagnesemia")]
    if rule is None:
        assert found == []
    else:
        [f] = found
        assert f.rule_id == rule and f.indicator == indicator


def test_hypermagnesemia_names_mg_products():
    order = {"resourceType": "MedicationRequest", "id": "mom", "status": "active", "intent": "order",
             "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": "Milk of Magnesia 30 mL"}}
    [f] = only(with_normal(mg(2.3, hours=8), order, skip=without("mg")), "hypermagnesemia")
    assert "Milk of Magnesia 30 mL" in f.values["mg_sources"]


def test_severe_hypomagnesemia_says_iv_mg_is_appropriate_on_crrt_too():
    resources = [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=3)),
                 hd_session(None, start=ago(days=1), status="in-progress", code="714749008"), mg(0.3, hours=2)]
    [f] = only(resources, "hypomagnesemia-severe")
    assert f.indicator == "critical" and "CRRT" in f.values["modality_line"]


# ---------------------------------------------------------------- aluminum-toxicity

@pytest.mark.parametrize("value,variant,indicator", [
    (19, None, None), (20, "sources", None), (59, "sources", None), (60, None, None), (200, None, None),
    (201, "critical", "critical"),
])
def test_aluminum_kdoqi_bands(value, variant, indicator):
    found = only(with_normal(aluminium(value, days=30)), "aluminum-toxicity")
    if value < 20:
        assert found == []
        return
    [f] = found
    assert (f.variant, f.indicator) == (variant, indicator)


def test_aluminum_result_counts_for_12_months():
    assert only(with_normal(aluminium(90, days=360)), "aluminum-toxicity")
    assert not only(with_normal(aluminium(90, days=370)), "aluminum-toxicity")


@pytest.mark.parametrize("sign", [SPEECH, SEIZURE, coding(SNOMED, "52448006", "Dementia")])
def test_new_neuro_signs_without_an_aluminum_result_ask_for_one(sign):
    [f] = only(with_normal(condition(sign, onset=ago(days=10))), "aluminum-toxicity")
    assert f.variant == "check-level" and [s.params["loinc"] for s in f.suggestions] == ["5574-9"]


def test_old_neuro_signs_do_not_ask_for_aluminum():
    assert not only(with_normal(condition(SPEECH, onset=ago(days=200))), "aluminum-toxicity")


# ---------------------------------------------------------------- dysrhythmia-risk

def test_heart_failure_with_marked_low_mg_gets_a_12_lead_ecg_not_continuous_monitoring():
    [f] = only(with_normal(mg(0.45, hours=8), condition(HEART_FAILURE, onset=ago(days=400)), skip=without("mg")),
               "dysrhythmia-risk")
    from cds_service.hooks.cards import render_card
    from support.clinical import cards
    detail = render_card(f, cards().files["dysrhythmia-risk"], "pat-1")["detail"]
    assert "Continuous monitoring is not needed" in detail and "Continuous ECG monitoring:" not in detail


def test_heart_failure_with_mild_low_mg_and_no_cramps_gets_no_dysrhythmia_card():
    assert not only(with_normal(mg(0.62, hours=8), condition(HEART_FAILURE, onset=ago(days=400)),
                                skip=without("mg")), "dysrhythmia-risk")


def test_mild_derangement_with_cramps_and_valve_disease_counts():
    [f] = only(with_normal(k(3.3, hours=8), condition(VALVE, onset=ago(days=400)), condition(CRAMP, onset=ago(days=1)),
                           skip=without("k")), "dysrhythmia-risk")
    assert "cramp" in f.values["trigger"].lower()


@pytest.mark.parametrize("hr,hours,fires", [(101, 2, True), (100, 2, False), (49, 2, True), (50, 2, False),
                                            (130, 23.9, True), (130, 24.5, False)])
def test_heart_rate_window_and_limits(hr, hours, fires):
    resources = with_normal(mg(0.45, hours=8), heart_rate(hr, hours=hours), skip=without("mg"))
    assert bool(only(resources, "dysrhythmia-risk")) is fires


def test_severe_k_card_carries_the_ecg_so_no_dysrhythmia_card_repeats_it():
    """Policy principle 1: one card per problem; hypokalemia-severe already asks for ECG monitoring."""
    assert fired(with_normal(k(2.7, hours=8), heart_rate(44, hours=1), skip=without("k"))) == ["hypokalemia-severe"]


def test_dysrhythmia_card_narrows_to_what_no_severe_card_covers_and_names_the_marked_value():
    resources = with_normal(k(2.7, hours=8), mg(0.45, hours=8), heart_rate(44, hours=1), skip=without("k", "mg"))
    [f] = only(resources, "dysrhythmia-risk")
    assert f.values["short"] == "Mg 0.45 mmol/L"
    assert f.values["trigger"] == ("a marked derangement: K 2.7 mmol/L (see the separate potassium card), "
                                   "Mg 0.45 mmol/L")


# ---------------------------------------------------------------- not on dialysis: silence from every rule

def test_not_on_dialysis_gets_nothing_even_with_severe_values():
    assert fired([patient(), condition(ESRD, onset=ago(days=100)), condition(CRAMP, onset=ago(days=1)),
                  k(2.2), mg(0.3), ica(0.7)]) == []


def test_pd_patient_below_2_5_gets_iv_first_then_oral():
    """KCl label: below 2.5 mmol/L use IV instead of oral; the PD oral-KCl target applies once K is above it."""
    [f] = only([patient(), condition(PD, onset=ago(days=300)), k(2.3, hours=6), mg(0.8, hours=6)],
               "hypokalemia-severe")
    assert "intravenously" in f.values["tier"] and "once K is 2.5 mmol/L or more" in f.values["modality_line"]
    [f] = only([patient(), condition(PD, onset=ago(days=300)), k(2.8, hours=6), mg(0.8, hours=6)],
               "hypokalemia-severe")
    assert f.values["modality_line"].startswith("On peritoneal dialysis: oral potassium chloride")


# ---------------------------------------------------------------- clinical review fixes (US spelling, wording)

def test_aluminum_lab_order_label_uses_us_spelling():
    from cds_service.clinical.codes import ANALYTE_LABEL
    assert ANALYTE_LABEL["aluminum"] == "Aluminum"


@pytest.mark.parametrize("resources,expected", [
    (lambda: with_normal(ica(0.95, hours=8), skip=without("ica")), "Low iCa: check Mg and phosphate"),
    (lambda: with_normal(mg(0.45, hours=8), skip=without("mg")), "Low Mg: replace it at a reduced dose"),
    (lambda: with_normal(k(3.2, hours=8), mg(0.85, hours=8), skip=without("k", "mg")), "Low K: replace it cautiously"),
])
def test_every_low_value_in_the_review_says_what_to_do(resources, expected):
    [f] = only(resources(), "electrolyte-review")
    assert expected in f.values["advice"]
    assert "No electrolyte action needed" not in f.values["advice"]
    assert "review the table" not in f.values["action"]


def test_dialysate_mg_line_says_pre_dialysis_only_for_pre_session_draws():
    between = with_normal(mg(0.62, hours=24 * 20), mg(0.60, hours=20), skip=without("mg"))
    [f] = only(between, "electrolyte-review")
    assert "Low Mg on two occasions" in f.values["advice"] and "pre-dialysis" not in f.values["advice"]


def _k_before_a_session_that_ended_1_h_ago(value, drawn_hours, session_hours):
    """The hyperkalemia finding for K drawn before a session of ``session_hours`` that ended 1 h ago."""
    resources = [*on_dialysis(50), hd_session(ago(hours=1), start=ago(hours=1 + session_hours)),
                 k(value, hours=drawn_hours)]
    [f] = only(resources, "hyperkalemia")
    return f


def test_critical_k_on_a_pre_session_value_says_why_it_still_counts():
    f = _k_before_a_session_that_ended_1_h_ago(6.8, 3, 1.5)
    assert f.indicator == "critical"
    assert f.values["k_when"].endswith("; still counted: the session was cut short at 1 h 30 min")


def _on_crrt(*labs):
    return [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=300)),
            hd_session(None, start=ago(hours=30), status="in-progress", code="714749008"), *labs]


def test_critical_k_on_crrt_adjusts_crrt_rather_than_urgent_dialysis():
    [f] = only(_on_crrt(k(6.8, hours=2)), "hyperkalemia")
    assert f.indicator == "critical"
    assert "increase the CRRT dose" in f.values["removal"] and "dialysis" not in f.values["remove_short"]


def test_hyperkalemia_recheck_timing_follows_the_actual_session_end():
    # K 6.2 drawn before a 4 h session that ended 1 h ago: superseded, recheck once the rebound is over
    f = _k_before_a_session_that_ended_1_h_ago(6.2, 6, 4)
    assert f.variant == "recheck"
    assert f.values["recheck_timing"].startswith("once 2 h have passed since the session that ended 1 h ago (in 1 h)")
    [f] = only(_on_crrt(k(6.2, hours=13)), "hyperkalemia")
    assert f.values["recheck_timing"] == "now (CRRT changes K continuously)"


def test_hyperkalemia_warning_names_the_dialysate_and_next_session_once():
    from cds_service.hooks.cards import render_card
    from support.clinical import cards
    [f] = only(with_normal(k(6.2, hours=8), skip=without("k")), "hyperkalemia")
    detail = render_card(f, cards().files["hyperkalemia"], "pat-1")["detail"]
    assert detail.count("dialysate") == 1 and detail.count("next session") == 1


def test_severe_low_mg_hd_timing_advice_only_on_hd():
    from cds_service.hooks.cards import render_card
    from support.clinical import cards
    [f] = only(_on_crrt(mg(0.30, hours=2)), "hypomagnesemia-severe")
    assert "HD" not in render_card(f, cards().files["hypomagnesemia-severe"], "pat-1")["detail"]
    [f] = only(with_normal(mg(0.30, hours=8), skip=without("mg")), "hypomagnesemia-severe")
    assert "Given during HD, part of it is removed" in f.values["modality_line"]


def test_severe_low_k_on_pd_has_no_next_session_wording():
    from cds_service.hooks.cards import render_card
    from support.clinical import cards
    [f] = only([patient(), condition(PD, onset=ago(days=300)), k(2.8, hours=6), mg(0.8, hours=6)],
               "hypokalemia-severe")
    assert "session" not in render_card(f, cards().files["hypokalemia-severe"], "pat-1")["detail"]


def test_ufr_count_is_singular_for_one_session():
    from datetime import timedelta

    end = ago(hours=20)
    start = end - timedelta(hours=4)
    resources = [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400)), hd_session(end, start=start),
                 obs("29463-7", 80.0, "kg", start - timedelta(minutes=10)),
                 obs("8344-4", 75.0, "kg", end + timedelta(minutes=10))]
    [f] = only(resources, "ultrafiltration-rate")
    assert f.values["count"] == "1 of 1 session with weights in the last 7 days was at 13 mL/kg/h or more."
