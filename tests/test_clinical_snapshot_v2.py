"""Snapshot v2: usable results (future, status, specimen, preliminary), timing through the snapshot, ECG
changes, body weights and the ultrafiltration rate, and the v2 wording helpers."""
from __future__ import annotations

from datetime import timedelta

import pytest

from _clinical_builders import (DIALYSIS_CONDITION, LOINC, NOW, SNOMED, UCUM, ago, coding, condition, hd_session,
                                k, mg, obs, on_dialysis, patient, snapshot, symptom_obs, ts)
from cds_service.clinical import wording
from cds_service.clinical.timing import ResultClass as RC
from cds_service.clinical.weights import ufr


def snap(resources):
    return snapshot(resources)


# ---------------------------------------------------------------- usable results

def test_future_dated_result_is_never_latest():
    s = snap([*on_dialysis(), k(4.2, hours=10), obs("2823-3", 6.9, "mmol/L", NOW + timedelta(hours=3))])
    assert s.latest("k").value == pytest.approx(4.2)
    assert any("future" in why for why in s.labs.skipped)


def test_result_five_minutes_ahead_is_clock_skew_and_used():
    s = snap([*on_dialysis(), k(4.2, hours=10), obs("2823-3", 5.1, "mmol/L", NOW + timedelta(minutes=5))])
    assert s.latest("k").value == pytest.approx(5.1)


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered"])
def test_results_that_do_not_count_are_skipped(status):
    s = snap([*on_dialysis(), mg(0.82, hours=30), mg(0.30, hours=2, status=status)])
    assert s.latest("mg").value == pytest.approx(0.82)


def test_preliminary_is_used_and_flagged():
    s = snap([*on_dialysis(), mg(0.45, hours=2, status="preliminary")])
    r = s.latest("mg")
    assert r.preliminary and wording.value_text(r).endswith("(preliminary)")


@pytest.mark.parametrize("specimen", [
    {"display": "Urine specimen"}, {"display": "Dialysate (spent)"}, {"display": "CRRT effluent"},
    {"display": "Blood from CRRT circuit"}, {"display": "Peritoneal dialysis fluid"},
])
def test_serum_code_on_another_specimen_is_not_used(specimen):
    bad = mg(0.30, hours=2, extra={"specimen": specimen})
    s = snap([*on_dialysis(), mg(0.85, hours=20), bad])
    assert s.latest("mg").value == pytest.approx(0.85)


def test_contained_urine_specimen_by_snomed_code_is_not_used():
    bad = mg(0.30, hours=2, extra={"specimen": {"reference": "#sp"}, "contained": [
        {"resourceType": "Specimen", "id": "sp", "type": {"coding": [coding(SNOMED, "122575003")]}}]})
    assert snap([*on_dialysis(), bad]).latest("mg") is None


def test_serum_specimen_is_used():
    good = mg(0.50, hours=2, extra={"specimen": {"display": "Serum"}})
    assert snap([*on_dialysis(), good]).latest("mg").value == pytest.approx(0.50)


@pytest.mark.parametrize("loinc", ["2598-1", "46093-1", "83064-6", "2597-3"])
def test_urine_dialysate_circuit_and_red_cell_codes_are_not_serum(loinc):
    assert snap([*on_dialysis(), obs(loinc, 0.3, "mmol/L", ago(hours=2))]).latest("mg") is None
    assert snap([*on_dialysis(), obs(loinc, 0.3, "mmol/L", ago(hours=2))]).latest("ica") is None


def test_comparator_counts_as_its_value_on_the_low_side():
    r = snap([*on_dialysis(), mg(0.5, hours=2, comparator="<")]).latest("mg")
    assert r.below(0.70) is True       # < 0.5 is low
    assert r.below(0.40) is not True   # but not known to be below 0.40
    assert wording.value_text(r) == "< 0.50 mmol/L"


def test_latest_within_narrows_the_window():
    s = snap([*on_dialysis(), k(6.8, hours=80)])
    assert s.latest("k") is not None
    assert s.latest("k", within=timedelta(hours=72)) is None
    assert s.latest("k", within=timedelta(hours=81)) is not None


def test_default_lookback_is_45_days():
    s = snap([*on_dialysis(), mg(0.5, hours=24 * 44)])
    assert s.lookback == timedelta(days=45) and s.latest("mg") is not None
    assert snap([*on_dialysis(), mg(0.5, hours=24 * 46)]).latest("mg") is None


# ---------------------------------------------------------------- timing through the snapshot

def test_pre_session_k_is_superseded():
    s = snap([*on_dialysis(session_end_hours=1), k(6.8, hours=6)])
    t = s.timing(s.latest("k"))
    assert t.cls is RC.PRE_SESSION and t.superseded
    assert s.when_text(s.latest("k")) == "drawn 6 h ago, before the session that ended 1 h ago"


def test_coded_pre_dialysis_k_at_the_session_start_is_pre_session():
    end = ago(hours=1)
    resources = [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400)), hd_session(end),
                 k(6.8, hours=5, loinc="51618-7")]  # timed exactly at the start of the 4 h session
    s = snap(resources)
    assert s.classify(s.latest("k")) is RC.PRE_SESSION


def test_coded_post_dialysis_k_at_the_session_end_is_early_post():
    s = snap([*on_dialysis(session_end_hours=1), k(3.1, hours=1.05, loinc="29349-8")])
    assert s.classify(s.latest("k")) is RC.EARLY_POST


def test_ecg_change_condition_after_the_session_revives_a_pre_session_value():
    ecg = condition(coding(SNOMED, "102594003", "Electrocardiogram abnormal"), onset=ago(minutes=30))
    s = snap([*on_dialysis(session_end_hours=1), k(6.8, hours=6), ecg])
    t = s.timing(s.latest("k"))
    assert t.exception == "ecg-change" and t.usable_acute


def test_ecg_change_observation_with_coded_value_counts():
    ecg = symptom_obs(coding(LOINC, "8601-7", "EKG impression"), when=ago(minutes=20),
                      value={"valueCodeableConcept": {"coding": [coding(SNOMED, "55930002")]}})
    s = snap([*on_dialysis(session_end_hours=1), k(6.8, hours=6), ecg])
    assert s.ecg_change_times == (ago(minutes=20),)


def test_ecg_change_observation_coded_as_the_finding_counts_and_refuted_condition_does_not():
    finding = symptom_obs(coding(SNOMED, "102594003"), when=ago(minutes=20))
    refuted = condition(coding(SNOMED, "102594003"), onset=ago(minutes=10), verification="refuted")
    s = snap([*on_dialysis(session_end_hours=1), finding, refuted])
    assert s.ecg_change_times == (ago(minutes=20),)


def test_unknown_modality_gets_no_session_timing_text():
    s = snap([patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400)), k(6.8, hours=6)])
    assert s.modality == "unknown" and s.when_text(s.latest("k")) == "drawn 6 h ago"


# ---------------------------------------------------------------- weights and UFR

def weight(kg, when, loinc="29463-7", unit="kg"):
    return obs(loinc, kg, unit, when)


def one_session(end_hours=20, hours=4.0):
    end = ago(hours=end_hours)
    return [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400)),
            hd_session(end, start=end - timedelta(hours=hours))], end - timedelta(hours=hours), end


def test_ufr_formula():
    assert ufr(73.0, 70.0, 4.0) == pytest.approx(3000 / 280)
    with pytest.raises(ValueError):
        ufr(73.0, 0.0, 4.0)


def test_ufr_from_generic_weights_around_the_session():
    res, start, end = one_session()
    s = snap([*res, weight(74.0, start - timedelta(minutes=30)), weight(70.0, end + timedelta(minutes=20))])
    [u] = s.ufr_sessions()
    assert u.removed_kg == pytest.approx(4.0) and u.hours == pytest.approx(4.0)
    assert u.ufr == pytest.approx(4000 / (70 * 4))


def test_ufr_from_dedicated_pre_and_post_dialysis_codes_in_pounds():
    res, start, end = one_session(hours=3.5)
    s = snap([*res, weight(160.0, start + timedelta(minutes=5), loinc="8347-7", unit="[lb_av]"),
              weight(154.0, end - timedelta(minutes=5), loinc="8344-4", unit="[lb_av]")])
    [u] = s.ufr_sessions()
    assert u.pre.value == pytest.approx(72.57, abs=0.01) and u.ufr == pytest.approx(
        (160 - 154) * 0.45359237 * 1000 / (154 * 0.45359237 * 3.5))


@pytest.mark.parametrize("pre_offset,post_offset,found", [
    (timedelta(hours=2), timedelta(hours=2), True),                       # boundary: exactly 2 h either side
    (timedelta(hours=2, minutes=1), timedelta(minutes=10), False),         # pre weight too early
    (timedelta(minutes=10), timedelta(hours=2, minutes=1), False),         # post weight too late
])
def test_weights_must_be_within_2_h_of_the_session(pre_offset, post_offset, found):
    res, start, end = one_session()
    s = snap([*res, weight(74.0, start - pre_offset), weight(70.0, end + post_offset)])
    assert bool(s.ufr_sessions()) is found


def test_session_older_than_7_days_gives_no_ufr():
    res, start, end = one_session(end_hours=24 * 7 + 1)
    s = snap([*res, weight(74.0, start - timedelta(minutes=30)), weight(70.0, end + timedelta(minutes=20))])
    assert s.ufr_sessions() == []


def test_session_without_a_known_length_gives_no_ufr():
    res = [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400)), hd_session(None, performed=ago(hours=20))]
    s = snap([*res, weight(74.0, ago(hours=21)), weight(70.0, ago(hours=19))])
    assert s.ufr_sessions() == []


# ---------------------------------------------------------------- wording

def test_value_text_shows_mmol_first_and_the_lab_unit_beside_it():
    s = snap([*on_dialysis(), mg(1.3, hours=5, unit="mg/dL", loinc="19123-9"), k(4.0, hours=5)])
    assert wording.value_text(s.latest("mg")) == "0.53 mmol/L (1.3 mg/dL)"
    assert wording.value_text(s.latest("k")) == "4.0 mmol/L"


def test_value_text_for_meq():
    r = snap([*on_dialysis(), obs("2823-3", 5.9, "meq/L", ago(hours=3), code="meq/L")]).latest("k")
    assert wording.value_text(r) == "5.9 mmol/L (5.9 mEq/L)"


@pytest.mark.parametrize("draw_hours,end_hours,text", [
    (6, 1, "drawn 6 h ago, before the session that ended 1 h ago"),
    (3, 1, "drawn 3 h ago, during the session that ended 1 h ago"),
    (0.5, 1.5, "drawn 30 min ago, 1 h after the session that ended 1 h 30 min ago"),
    (30, 50, "drawn 30 h ago, 20 h after the session that ended 2 d 2 h ago"),
])
def test_when_text_relative_to_the_last_session(draw_hours, end_hours, text):
    s = snap([*on_dialysis(session_end_hours=end_hours)[:2], hd_session(ago(hours=end_hours)),
              k(4.0, hours=draw_hours)])
    assert s.when_text(s.latest("k")) == text


def test_when_text_counts_sessions_since():
    end = ago(hours=1)
    res = [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400))]
    res += [hd_session(end - timedelta(days=d)) for d in (0, 2, 4, 7)]
    s = snap([*res, k(6.8, hours=24 * 10)])
    assert s.when_text(s.latest("k")) == "drawn 10 d ago, before 4 sessions since (the last ended 1 h ago)"
    assert s.result_text(s.latest("k")).startswith("K 6.8 mmol/L, drawn 10 d ago")


def test_when_text_during_a_session_in_progress():
    res = [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=400)),
           hd_session(None, start=ago(hours=2), status="in-progress")]
    s = snap([*res, k(5.0, hours=1)])
    assert s.when_text(s.latest("k")) == "drawn 1 h ago, during the session in progress"


def test_class_text():
    s = snap([*on_dialysis(session_end_hours=1), k(6.8, hours=6)])
    assert wording.class_text(s.timing(s.latest("k"))) == "before a session since completed: superseded"


# ---------------------------------------------------------------- readings (acute vs chronic)

from cds_service.clinical.electrolytes import acute_window, reading  # noqa: E402


def test_reading_current_within_72_h_is_acute():
    s = snap([*on_dialysis(session_end_hours=30), k(6.7, hours=20)])
    r = reading(s, "k", acute=acute_window(s))
    assert r.current and r.acute(s.now) and r.at_or_above(6.5)


@pytest.mark.parametrize("hours,acute", [(71.9, True), (72.1, False)])
def test_acute_window_boundary_for_pd(hours, acute):
    res = [patient(), condition(coding(SNOMED, "71192002"), onset=ago(days=200)), k(6.7, hours=hours)]
    s = snap(res)
    r = reading(s, "k", acute=acute_window(s))
    assert s.modality == "PD" and r.current and r.acute(s.now) is acute


def test_acute_window_is_12_h_for_crrt():
    res = [patient(), condition(DIALYSIS_CONDITION, onset=ago(days=3)),
           hd_session(None, start=ago(days=1), status="in-progress", code="714749008"), k(6.7, hours=13)]
    s = snap(res)
    r = reading(s, "k", acute=acute_window(s))
    assert s.modality == "CRRT" and acute_window(s) == timedelta(hours=12) and not r.acute(s.now)


def test_reading_pre_session_is_superseded_not_acute():
    s = snap([*on_dialysis(session_end_hours=1), k(6.8, hours=6)])
    r = reading(s, "k")
    assert r.superseded and not r.current and not r.acute(s.now)


def test_reading_early_post_is_current_and_flagged():
    s = snap([*on_dialysis(session_end_hours=1), k(3.2, hours=0.5)])
    r = reading(s, "k")
    assert r.early_post and r.current


def test_reading_missing_and_chronic_window():
    s = snap([*on_dialysis(), mg(0.5, hours=24 * 20)])
    assert reading(s, "ica").missing
    assert not reading(s, "mg").missing
    assert reading(s, "mg", chronic=timedelta(days=10)).missing
