"""Electrolyte rules: hypomagnesemia, magnesium-first, hypokalemia, hyperkalemia, hypocalcemia."""
from __future__ import annotations

import pytest

from _clinical_builders import (ESRD, ICD10CM, SNOMED, ago, coding, condition, fired, ica, k, mg, normal_panel,
                                obs, on_dialysis, only, patient, po4)

ELECTROLYTE_RULES = {"hypomagnesemia", "magnesium-first", "hypokalemia", "hyperkalemia", "hypocalcemia"}


def base(*labs, session_end_hours: float = 30):
    return [*on_dialysis(session_end_hours), *labs]


def with_normal(*labs, skip=()):
    """A dialysis patient with a normal panel apart from ``labs`` (the analytes in ``skip`` left out)."""
    names = {"mg": 0, "ica": 1, "k": 2, "po4": 3}
    panel = [r for name, r in zip(names, normal_panel(hours=40)) if name not in skip]
    return base(*panel, *labs)


# ---------------------------------------------------------------- hypomagnesemia

def test_low_mg_fires_with_value_unit_and_time():
    [f] = only(with_normal(mg(0.55, hours=3), skip=("mg",)), "hypomagnesemia")
    assert f.values["mg"] == "0.55 mmol/L (1.34 mg/dL)"
    assert "3 h ago" in f.values["mg_time"]
    assert f.indicator is None  # the card's warning


@pytest.mark.parametrize("value,unit,loinc,fires", [
    (0.70, "mmol/L", "2601-3", False),     # exactly the target does not fire
    (0.69, "mmol/L", "2601-3", True),
    (1.70, "mg/dL", "19123-9", False),     # the reference's equivalent in mg/dL
    (1.65, "mg/dL", "19123-9", True),
    (1.40, "meq/L", "19123-9", False),
    (1.30, "meq/L", "19123-9", True),
])
def test_hypomagnesemia_boundaries(value, unit, loinc, fires):
    result = fired(with_normal(mg(value, hours=3, unit=unit, loinc=loinc), skip=("mg",)))
    assert ("hypomagnesemia" in result) is fires


def test_mg_reported_below_a_limit_fires():
    assert "hypomagnesemia" in fired(with_normal(mg(0.5, comparator="<"), skip=("mg",)))


def test_mg_above_a_limit_does_not_fire():
    assert "hypomagnesemia" not in fired(with_normal(mg(0.5, comparator=">"), skip=("mg",)))


def test_urine_mg_decoy():
    urine = obs("2598-1", 0.3, "mmol/L", ago(hours=2))
    assert not set(fired(with_normal(urine))) & ELECTROLYTE_RULES


def test_entered_in_error_decoy():
    resources = with_normal(mg(0.45, hours=2, status="entered-in-error"))
    assert fired(resources) == []


def test_older_low_behind_newer_normal_decoy():
    resources = with_normal(mg(0.55, hours=24 * 5), mg(0.84, hours=24), skip=("mg",))
    assert fired(resources) == []


def test_low_mg_older_than_the_lookback_does_not_fire():
    resources = with_normal(mg(0.50, hours=24 * 46), skip=("mg",))
    assert "hypomagnesemia" not in fired(resources)
    assert "hypomagnesemia" in fired(resources, lookback_days=50)  # the lookback is configurable


def test_non_dialysis_patient_gets_nothing():
    resources = [patient(), condition(coding(ICD10CM, "N18.30"), onset=ago(days=400)), mg(0.4), k(2.9), ica(0.9)]
    assert fired(resources) == []


def test_esrd_without_dialysis_gets_nothing():
    resources = [patient(), condition(ESRD, onset=ago(days=400)), mg(0.4), k(2.9), ica(0.9)]
    assert fired(resources) == []


def test_esrd_with_transplant_gets_nothing():
    resources = [patient(), condition(ESRD, onset=ago(days=900)),
                 condition(coding(SNOMED, "236436003"), onset=ago(days=400)), mg(0.4), k(6.9)]
    assert fired(resources) == []


def test_normal_panel_fires_nothing():
    assert fired(with_normal()) == []


def test_post_dialysis_draw_is_flagged_as_shifting():
    [f] = only(base(mg(0.6, hours=1), session_end_hours=3), "hypomagnesemia")
    assert "still shifting" in f.values["mg_context"]


# ---------------------------------------------------------------- potassium

@pytest.mark.parametrize("value,rule", [(3.4, "hypokalemia"), (5.6, "hyperkalemia"), (6.5, "hyperkalemia")])
def test_potassium_fires(value, rule):
    assert rule in fired(with_normal(k(value, hours=5), skip=("k",)))


@pytest.mark.parametrize("value", [3.5, 4.4, 5.5])
def test_potassium_boundaries_do_not_fire(value):
    result = fired(with_normal(k(value, hours=5), skip=("k",)))
    assert "hypokalemia" not in result and "hyperkalemia" not in result


@pytest.mark.parametrize("value,critical", [(5.6, False), (6.4, False), (6.5, True), (7.8, True)])
def test_hyperkalemia_is_critical_from_6_5(value, critical):
    [f] = only(with_normal(k(value, hours=5), skip=("k",)), "hyperkalemia")
    assert (f.indicator == "critical") is critical
    assert (f.variant == "critical") is critical


def test_pre_and_post_dialysis_potassium_codes_count_and_are_named():
    [f] = only(with_normal(k(6.7, hours=2, loinc="51618-7"), skip=("k",)), "hyperkalemia")
    assert "pre-dialysis" in f.values["k_context"]
    [f] = only(with_normal(k(3.1, hours=2, loinc="29349-8"), skip=("k",)), "hypokalemia")
    assert "post-dialysis" in f.values["k_context"]


def test_red_cell_potassium_is_ignored():
    assert "hyperkalemia" not in fired(with_normal(obs("2824-1", 9.0, "mmol/L", ago(hours=1))))


# ---------------------------------------------------------------- ionized calcium

@pytest.mark.parametrize("value,unit,loinc,fires", [
    (1.11, "mmol/L", "1995-0", True), (1.12, "mmol/L", "1995-0", False),
    (1.05, "mmol/L", "1994-3", True), (4.2, "mg/dL", "17864-0", True), (4.6, "mg/dL", "17864-0", False),
])
def test_hypocalcemia(value, unit, loinc, fires):
    result = fired(with_normal(ica(value, hours=6, unit=unit, loinc=loinc), skip=("ica",)))
    assert ("hypocalcemia" in result) is fires


def test_total_calcium_never_fires_hypocalcemia():
    low_total = obs("17861-6", 6.8, "mg/dL", ago(hours=3))
    low_total_molar = obs("2000-8", 1.6, "mmol/L", ago(hours=3))
    assert fired(with_normal(low_total, low_total_molar, skip=("ica",))) == []


def test_dialysis_fluid_ionized_calcium_decoy():
    assert fired(with_normal(obs("46093-1", 0.8, "mmol/L", ago(hours=3)), skip=("ica",))) == []


# ---------------------------------------------------------------- magnesium-first

def test_low_k_with_low_mg_is_co_management():
    [f] = only(with_normal(k(3.1, hours=4), mg(0.6, hours=4), skip=("k", "mg")), "magnesium-first")
    assert f.variant is None and f.suggestions == []
    assert "potassium 3.1 mmol/L" in f.values["trigger"]
    assert "magnesium is low too: 0.60 mmol/L" in f.values["mg_status"]


def test_low_k_with_no_mg_suggests_ordering_mg():
    [f] = only(with_normal(k(3.1, hours=4), skip=("k", "mg")), "magnesium-first")
    assert f.variant == "mg-missing"
    [s] = f.suggestions
    assert s.kind == "order-lab" and s.params["loinc"] == "19123-9"


def test_low_ica_with_stale_mg_counts_as_missing():
    resources = with_normal(ica(1.0, hours=4), mg(0.9, hours=24 * 50), skip=("ica", "mg"))
    [f] = only(resources, "magnesium-first")
    assert f.variant == "mg-missing"
    assert "ionized calcium 1.00 mmol/L" in f.values["trigger"]


def test_low_k_and_low_ica_are_both_named():
    [f] = only(with_normal(k(3.0), ica(1.0), mg(0.5), skip=("k", "ica", "mg")), "magnesium-first")
    assert f.values["trigger_short"].startswith("K 3.0 mmol/L and iCa 1.00 mmol/L")


def test_low_k_with_normal_mg_is_not_magnesium_first():
    result = fired(with_normal(k(3.1, hours=4), skip=("k",)))
    assert "hypokalemia" in result and "magnesium-first" not in result


def test_k_at_threshold_with_missing_mg_does_not_fire():
    assert "magnesium-first" not in fired(with_normal(k(3.5), skip=("k", "mg")))


def test_low_mg_alone_is_not_magnesium_first():
    result = fired(with_normal(mg(0.5), skip=("mg",)))
    assert result == ["hypomagnesemia"]


def test_phosphate_alone_fires_no_electrolyte_rule():
    assert fired(with_normal(po4(2.4), skip=("po4",))) == []
