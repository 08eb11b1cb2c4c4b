"""Who is on dialysis, and when the last session ended (clinical.dialysis via the real snapshot path)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from support.clinical import (CRAMP, DIALYSIS_CONDITION, ESRD, ICD10CM, NOW, SNOMED, ago, coding, condition,
                                dialysis_encounter, hd_session, patient, snapshot)


def status(resources):
    return snapshot([patient(), *resources]).dialysis


@pytest.mark.parametrize("code", [
    coding(SNOMED, "236435004"), coding(SNOMED, "714152005"), coding(SNOMED, "105502003"), coding(ICD10CM, "Z99.2"),
])
def test_dialysis_conditions(code):
    s = status([condition(code, onset=ago(days=300))])
    assert s.on_dialysis
    assert s.last_session_end is None


@pytest.mark.parametrize("codes", [
    [ESRD], [coding(ICD10CM, "N18.6")],
    [ESRD, coding(SNOMED, "236436003")],                      # ESRD with renal transplant
    [coding(ICD10CM, "N18.6"), coding(ICD10CM, "Z94.0")],     # ESRD + kidney transplant status
])
def test_esrd_alone_or_with_transplant_is_not_dialysis(codes):
    s = status([condition(c, onset=ago(days=300)) for c in codes])
    assert not s.on_dialysis
    assert s.esrd_without_dialysis


@pytest.mark.parametrize("clinical,verification", [
    ("resolved", None), ("inactive", None), ("active", "refuted"), ("active", "entered-in-error"),
])
def test_inactive_or_refuted_dialysis_condition_does_not_count(clinical, verification):
    assert not status([condition(DIALYSIS_CONDITION, clinical=clinical, verification=verification)]).on_dialysis


@pytest.mark.parametrize("system,code", [
    (SNOMED, "302497006"), (SNOMED, "265764009"), (SNOMED, "108241001"), (SNOMED, "233575001"),
    (SNOMED, "34897002"), (SNOMED, "67970008"), (SNOMED, "71192002"), (SNOMED, "714749008"),
    ("http://www.ama-assn.org/go/cpt", "90935"), ("http://www.ama-assn.org/go/cpt", "90937"),
    ("http://www.ama-assn.org/go/cpt", "90945"), ("http://www.ama-assn.org/go/cpt", "90947"),
])
def test_recent_dialysis_procedure_means_on_dialysis(system, code):
    s = status([hd_session(ago(days=3), system=system, code=code)])
    assert s.on_dialysis
    assert s.last_session_end == ago(days=3)


def test_procedure_older_than_30_days_alone_is_not_enough():
    s = status([hd_session(ago(days=31))])
    assert not s.on_dialysis
    assert s.last_session_end == ago(days=31)  # still the last known session


def test_other_procedure_codes_do_not_count():
    assert not status([hd_session(ago(days=1), code="80146002")]).on_dialysis  # appendectomy


@pytest.mark.parametrize("proc_status", ["entered-in-error", "not-done", "preparation"])
def test_procedures_that_did_not_happen_do_not_count(proc_status):
    assert not status([hd_session(ago(days=1), status=proc_status)]).on_dialysis


def test_dialysis_encounter_means_on_dialysis_and_gives_session_end():
    s = status([dialysis_encounter(ago(hours=7), ago(hours=3))])
    assert s.on_dialysis
    assert s.last_session_end == ago(hours=3)
    assert not s.in_progress


def test_cancelled_encounter_does_not_count():
    assert not status([dialysis_encounter(ago(hours=7), ago(hours=3), status="cancelled")]).on_dialysis


def test_last_session_end_is_the_latest_end_whatever_the_order():
    resources = [hd_session(ago(hours=50)), hd_session(ago(hours=2)), hd_session(ago(hours=98))]
    for order in (resources, list(reversed(resources))):
        assert status(order).last_session_end == ago(hours=2)


def test_performed_datetime_is_taken_as_the_session_end():
    s = status([hd_session(None, performed=ago(hours=6))])
    assert s.on_dialysis and s.last_session_end == ago(hours=6)


def test_session_in_progress_from_open_period():
    s = status([hd_session(ago(days=2)), hd_session(None, start=ago(hours=2), status="in-progress")])
    assert s.on_dialysis
    assert s.in_progress
    assert s.last_session_end == ago(days=2)


def test_session_in_progress_from_encounter_status():
    assert status([dialysis_encounter(ago(hours=1), None, status="in-progress")]).in_progress


def test_period_ending_in_the_future_is_in_progress():
    s = status([hd_session(NOW + timedelta(hours=2), start=ago(hours=2))])
    assert s.in_progress and s.last_session_end is None


def test_stale_open_session_is_not_in_progress():
    s = status([hd_session(None, start=ago(days=3), status="in-progress")])
    assert s.on_dialysis  # a session three days ago still shows dialysis
    assert not s.in_progress


def test_cramp_condition_is_not_a_dialysis_code():
    assert not status([condition(CRAMP, onset=ago(hours=1))]).on_dialysis


def test_hours_since_session():
    s = status([hd_session(ago(hours=4, minutes=30))])
    assert s.hours_since_session(NOW) == pytest.approx(4.5)
