"""spasm-workup, post-dialysis-monitoring, aluminum-toxicity and dysrhythmia-risk."""
from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.hooks.cards import render_card

from _clinical_builders import (CRAMP, ESRD, ICD10CM, NOW, SNOMED, ago, aluminium, cards, coding, condition, fired,
                                findings, heart_rate, hd_session, ica, k, mg, normal_panel, on_dialysis, only,
                                patient, po4, symptom_obs)

SPASM_OBS = coding(SNOMED, "45352006", "Spasm")
R25_2 = coding(ICD10CM, "R25.2", "Cramp and spasm")
MYOCLONUS = coding(SNOMED, "17450006", "Myoclonus")
SPEECH = coding(SNOMED, "29164008", "Disturbance in speech")
HEART_FAILURE = coding(SNOMED, "84114007", "Heart failure")


# ---------------------------------------------------------------- spasm-workup

@pytest.mark.parametrize("documentation", [
    lambda: condition(CRAMP, onset=ago(days=2)),
    lambda: condition(R25_2, onset=ago(days=6, hours=23)),
    lambda: condition(CRAMP, onset=ago(days=1), clinical="resolved"),  # an episode that has passed still counts
    lambda: symptom_obs(SPASM_OBS, when=ago(hours=5)),
    lambda: symptom_obs(R25_2, when=ago(days=3)),
])
def test_spasm_workup_fires_on_documented_cramp(documentation):
    assert "spasm-workup" in fired([*on_dialysis(), *normal_panel(), documentation()])


@pytest.mark.parametrize("documentation", [
    lambda: condition(CRAMP, onset=ago(days=8)),                                    # outside 7 days
    lambda: condition(CRAMP, onset=ago(days=1), verification="refuted"),
    lambda: condition(CRAMP, onset=ago(days=1), verification="entered-in-error"),
    lambda: symptom_obs(SPASM_OBS, when=ago(days=1), status="entered-in-error"),
    lambda: symptom_obs(SPASM_OBS, when=ago(days=1), value={"valueCodeableConcept": {"coding": [
        coding(SNOMED, "2667000", "Absent")]}}),
    lambda: symptom_obs(SPASM_OBS, when=ago(days=1), value={"valueBoolean": False}),
    lambda: condition(coding(SNOMED, "21522001", "Abdominal pain"), onset=ago(days=1)),
])
def test_spasm_workup_decoys(documentation):
    assert "spasm-workup" not in fired([*on_dialysis(), *normal_panel(), documentation()])


def test_spasm_workup_not_for_non_dialysis_patient():
    assert fired([patient(), condition(ESRD, onset=ago(days=100)), condition(CRAMP, onset=ago(days=1)),
                  mg(0.4)]) == []


def test_spasm_workup_info_when_every_electrolyte_is_normal_and_fresh():
    resources = [*on_dialysis(session_end_hours=30), *normal_panel(hours=20), condition(CRAMP, onset=ago(days=1))]
    [f] = only(resources, "spasm-workup")
    assert f.variant == "info"
    assert f.suggestions == []
    assert f.values["abnormal"] == "no abnormal electrolyte"


def test_spasm_workup_warning_and_panel_when_abnormal():
    resources = [*on_dialysis(session_end_hours=3), mg(0.6, hours=1), k(3.3, hours=1),
                 ica(1.16, hours=50), po4(1.6, hours=50), condition(CRAMP, onset=ago(hours=2))]
    [f] = only(resources, "spasm-workup")
    assert f.variant is None  # the card's warning
    panel = f.values["panel"]
    lines = panel.splitlines()
    # Mg first, then ionized Ca, K, phosphate: value, unit, time relative to the session, flag.
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["Magnesium", "Ionized calcium", "Potassium",
                                                                  "Phosphate"]
    assert "0.60 mmol/L" in lines[2] and "2 h after the last session ended" in lines[2] and "**LOW**" in lines[2]
    assert "47 h before the last session ended" in lines[3] and "normal" in lines[3]
    assert "**HIGH**" in lines[5]
    # Suggestions: every analyte without a result since the session ended.
    assert [s.params["loinc"] for s in f.suggestions] == ["1995-0", "2777-1"]


def test_spasm_workup_suggests_every_missing_analyte_with_selection_any():
    resources = [*on_dialysis(session_end_hours=2), condition(CRAMP, onset=ago(hours=1))]
    [f] = only(resources, "spasm-workup")
    assert [s.params["loinc"] for s in f.suggestions] == ["19123-9", "1995-0", "2823-3", "2777-1"]
    card = render_card(f, cards().files["spasm-workup"], "p1")
    assert card["selectionBehavior"] == "any"
    for suggestion in card["suggestions"]:
        [action] = suggestion["actions"]
        assert action["type"] == "create"
        resource = action["resource"]
        assert resource["resourceType"] == "ServiceRequest"
        assert (resource["status"], resource["intent"]) == ("draft", "proposal")
        assert resource["subject"] == {"reference": "Patient/p1"}
        assert resource["code"]["coding"][0]["system"] == "http://loinc.org"


# ---------------------------------------------------------------- post-dialysis-monitoring

def _post(session_end: timedelta, *extra):
    end = NOW - session_end
    return [patient(), condition(coding(ICD10CM, "Z99.2"), onset=ago(days=300)),
            hd_session(end - timedelta(days=2)), hd_session(end), *extra]


@pytest.mark.parametrize("since,fires", [
    (timedelta(hours=1), True), (timedelta(hours=5), True),
    (timedelta(hours=5, minutes=1), False), (timedelta(hours=26), False),
])
def test_post_dialysis_window(since, fires):
    resources = _post(since, mg(0.55, hours=0.5))
    assert ("post-dialysis-monitoring" in fired(resources)) is fires


def test_post_dialysis_fires_on_a_cramp_with_normal_labs():
    resources = _post(timedelta(hours=2), *normal_panel(hours=1), condition(CRAMP, onset=ago(hours=1)))
    [f] = only(resources, "post-dialysis-monitoring")
    assert "cramp or spasm documented" in f.values["reasons"]
    assert f.values["since_end"] == "2 h"


def test_post_dialysis_names_the_electrolyte_findings():
    [f] = only(_post(timedelta(hours=2), k(3.1, hours=1), mg(0.6, hours=1)), "post-dialysis-monitoring")
    assert f.values["reasons"] == "low magnesium, low potassium"


def test_post_dialysis_needs_a_reason():
    assert "post-dialysis-monitoring" not in fired(_post(timedelta(hours=2), *normal_panel(hours=1)))


def test_post_dialysis_not_while_a_session_is_running():
    resources = _post(timedelta(hours=3), hd_session(None, start=ago(minutes=30), status="in-progress"),
                      mg(0.5, hours=0.2))
    assert "post-dialysis-monitoring" not in fired(resources)


# ---------------------------------------------------------------- aluminum-toxicity

@pytest.mark.parametrize("value,variant", [
    (61, None), (150, None), (250, None), (60, "sources"), (20, "sources"), (35, "sources"),
])
def test_aluminium_levels(value, variant):
    [f] = only([*on_dialysis(), *normal_panel(), aluminium(value, days=10)], "aluminum-toxicity")
    assert f.variant == variant


def test_aluminium_below_20_does_not_fire():
    assert fired([*on_dialysis(), *normal_panel(), aluminium(19.9, days=10)]) == []


def test_aluminium_action_text_follows_kdoqi_bands():
    [f] = only([*on_dialysis(), aluminium(120)], "aluminum-toxicity")
    assert "deferoxamine (DFO) test" in f.values["action"] and "**not**" not in f.values["action"]
    [f] = only([*on_dialysis(), aluminium(240)], "aluminum-toxicity")
    assert "**not**" in f.values["action"]


def test_aluminium_result_older_than_90_days_is_not_used():
    assert fired([*on_dialysis(), *normal_panel(), aluminium(150, days=91)]) == []


@pytest.mark.parametrize("sign", [
    lambda: condition(MYOCLONUS, onset=ago(days=200)),            # active problem: any date
    lambda: condition(coding(ICD10CM, "R47.9"), onset=ago(days=3)),
    lambda: condition(coding(SNOMED, "9345005", "Dialysis dementia"), onset=ago(days=30)),
    lambda: condition(coding(SNOMED, "102943000", "Personality change"), onset=ago(days=30)),
    lambda: symptom_obs(SPEECH, when=ago(days=2)),
])
def test_neuro_signs_without_aluminium_result_suggest_a_level(sign):
    [f] = only([*on_dialysis(), *normal_panel(), sign()], "aluminum-toxicity")
    assert f.variant == "check-level"
    [s] = f.suggestions
    assert s.params["loinc"] == "5574-9"


def test_neuro_signs_with_a_recent_normal_aluminium_do_not_fire():
    assert fired([*on_dialysis(), *normal_panel(), condition(MYOCLONUS, onset=ago(days=5)), aluminium(8, days=30)]) == []


def test_neuro_signs_with_only_an_old_aluminium_suggest_a_new_level():
    [f] = only([*on_dialysis(), condition(MYOCLONUS, onset=ago(days=5)), aluminium(8, days=120)], "aluminum-toxicity")
    assert f.variant == "check-level"


def test_resolved_neuro_sign_does_not_fire():
    assert fired([*on_dialysis(), *normal_panel(), condition(MYOCLONUS, onset=ago(days=5), clinical="resolved")]) == []


def test_high_aluminium_lists_neuro_signs():
    [f] = only([*on_dialysis(), aluminium(90), condition(MYOCLONUS, onset=ago(days=5))], "aluminum-toxicity")
    assert "Myoclonus" in f.values["signs"]


# ---------------------------------------------------------------- dysrhythmia-risk

def test_tachycardia_with_hypokalemia():
    resources = [*on_dialysis(), mg(0.85), ica(1.2), k(3.2, hours=3), heart_rate(118, hours=3)]
    [f] = only(resources, "dysrhythmia-risk")
    assert f.values["electrolytes"] == "low potassium"
    assert "118 /min" in f.values["cardiac"]


@pytest.mark.parametrize("hr,hours,fires", [(101, 2, True), (100, 2, False), (130, 23.9, True), (130, 24.5, False)])
def test_heart_rate_threshold_and_window(hr, hours, fires):
    resources = [*on_dialysis(), k(3.2, hours=3), heart_rate(hr, hours=hours), heart_rate(80, hours=1)]
    assert ("dysrhythmia-risk" in fired(resources)) is fires


@pytest.mark.parametrize("heart", [
    coding(SNOMED, "84114007"), coding(SNOMED, "85898001"), coding(SNOMED, "53741008"),
    coding(ICD10CM, "I50.22"), coding(ICD10CM, "I42.0"), coding(ICD10CM, "I25.10"),
])
def test_heart_disease_with_electrolyte_disturbance(heart):
    resources = [*on_dialysis(), mg(0.5), condition(heart, onset=ago(days=800))]
    assert "dysrhythmia-risk" in fired(resources)


def test_resolved_heart_disease_does_not_count():
    resources = [*on_dialysis(), mg(0.5), condition(HEART_FAILURE, onset=ago(days=800), clinical="resolved")]
    assert "dysrhythmia-risk" not in fired(resources)


def test_heart_disease_without_electrolyte_disturbance_does_not_fire():
    resources = [*on_dialysis(), *normal_panel(), condition(HEART_FAILURE, onset=ago(days=800)),
                 heart_rate(130, hours=1)]
    assert fired(resources) == []


def test_magnesium_first_alone_does_not_trigger_dysrhythmia_risk():
    # only the four disturbance rules count; magnesium-first always comes with hypokalemia/hypocalcemia anyway
    resources = [*on_dialysis(), k(3.2), condition(HEART_FAILURE, onset=ago(days=800))]
    result = fired(resources)
    assert "dysrhythmia-risk" in result and "hypokalemia" in result


def test_rules_run_in_order_so_dependent_rules_see_earlier_findings():
    resources = [*on_dialysis(session_end_hours=2), mg(0.5, hours=1), k(3.0, hours=1),
                 condition(HEART_FAILURE, onset=ago(days=800)), condition(CRAMP, onset=ago(hours=1))]
    # dysrhythmia-risk runs after every "electrolyte" rule, post-dialysis-monitoring after those and
    # magnesium-first; otherwise rules keep source order (module name, then line)
    assert [f.rule_id for f in findings(resources)] == [
        "hypomagnesemia", "hypokalemia", "magnesium-first", "dysrhythmia-risk", "spasm-workup",
        "post-dialysis-monitoring"]
