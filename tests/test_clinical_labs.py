"""Lab panel: analyte value sets, units, comparators, statuses, latest result, lookback."""
from __future__ import annotations

import logging
import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.clinical import codes, labs
from cds_service.fhir.parse import lenient

from support.clinical import NOW, ago, obs, ts


def panel(*raws, **kw) -> labs.LabPanel:
    return labs.build_panel(list(raws), lambda raw: lenient(raw, "Observation"), **kw)


def one(raw) -> labs.LabResult | None:
    p = panel(raw)
    values = [r for results in p.results.values() for r in results]
    assert len(values) <= 1
    return values[0] if values else None


# ---------------------------------------------------------------- analytes

@pytest.mark.parametrize("loinc,analyte", [
    ("19123-9", "mg"), ("2601-3", "mg"), ("2593-2", "mg"), ("21377-7", "mg"),
    ("1994-3", "ica"), ("1995-0", "ica"), ("17864-0", "ica"),
    ("2823-3", "k"), ("6298-4", "k"), ("51618-7", "k"), ("29349-8", "k"),
    ("2777-1", "po4"), ("14879-1", "po4"),
    ("17861-6", "total_ca"), ("2000-8", "total_ca"),
    ("1751-7", "albumin"), ("5574-9", "aluminum"), ("8867-4", "heart_rate"),
])
def test_value_sets_recognise_serum_codes(loinc, analyte):
    assert codes.LOINC_TO_ANALYTE[loinc] == analyte


@pytest.mark.parametrize("loinc,why", [
    ("2598-1", "urine magnesium"), ("2597-3", "red-cell magnesium"), ("2824-1", "red-cell potassium"),
    ("73573-8", "ionized magnesium: lower reference range than total Mg"),
    ("46093-1", "ionized calcium in dialysis fluid"), ("83064-6", "ionized calcium from the CRRT circuit"),
    ("5763-8", "zinc, not aluminium"),
])
def test_non_serum_and_lookalike_codes_are_never_used(loinc, why):
    assert loinc not in codes.LOINC_TO_ANALYTE, why
    assert one(obs(loinc, 0.3, "mmol/L", ago(hours=1))) is None


def test_total_calcium_is_never_ionized_calcium():
    p = panel(obs("17861-6", 7.0, "mg/dL", ago(hours=1)))
    assert p.latest("ica") is None
    assert p.latest("total_ca").value == pytest.approx(7.0 * 0.2495)


def test_code_with_another_system_is_not_loinc():
    raw = obs("2601-3", 0.5, "mmol/L", ago(hours=1))
    raw["code"]["coding"][0]["system"] = "http://example.org/local-codes"
    assert one(raw) is None


# ---------------------------------------------------------------- units

@pytest.mark.parametrize("loinc,value,unit,expected", [
    ("2601-3", 0.55, "mmol/L", 0.55),
    ("19123-9", 1.5, "mg/dL", 1.5 * 0.4114),
    ("19123-9", 1.2, "meq/L", 0.6),          # Mg: mEq/L = 2 x mmol/L
    ("19123-9", 15, "mg/L", 15 * 0.04114),
    ("17864-0", 4.2, "mg/dL", 4.2 * 0.2495),
    ("1995-0", 2.2, "meq/L", 1.1),           # Ca: mEq/L = 2 x mmol/L
    ("2823-3", 3.2, "meq/L", 3.2),           # K: mEq/L = mmol/L
    ("22760-3", 13.0, "mg/dL", 13.0 * 0.2558),
    ("2777-1", 4.5, "mg/dL", 4.5 * 0.3229),
    ("5574-9", 75, "ug/L", 75.0),
    ("5574-9", 75, "ng/mL", 75.0),           # ng/mL = µg/L
    ("5574-9", 2.0, "umol/L", 2.0 * 26.98),
    ("8867-4", 110, "/min", 110.0),
])
def test_units_normalised_to_canonical(loinc, value, unit, expected):
    result = one(obs(loinc, value, unit, ago(hours=1)))
    assert result is not None
    assert result.value == pytest.approx(expected)
    assert result.unit == codes.CANONICAL_UNIT[codes.LOINC_TO_ANALYTE[loinc]]


def test_unit_string_used_when_there_is_no_ucum_code():
    result = one(obs("19123-9", 1.5, "mg/dl", ago(hours=1), code=None))
    assert result.value == pytest.approx(1.5 * 0.4114)


def test_micro_sign_spelling_of_aluminium_unit():
    assert one(obs("5574-9", 40, "µg/L", ago(hours=1), code=None)).value == 40


def test_ucum_code_wins_over_the_unit_string():
    # The display string says mmol/L but the coded unit is mg/dL: the code is what the lab system sent.
    result = one(obs("19123-9", 1.5, "mmol/L", ago(hours=1), code="mg/dL"))
    assert result.value == pytest.approx(1.5 * 0.4114)


def test_unknown_unit_is_not_used_and_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="cds_service.clinical.labs")
    p = panel(obs("2601-3", 0.5, "mg/hL", ago(hours=1)))
    assert p.latest("mg") is None
    assert any("unknown unit" in why for why in p.skipped)
    assert "unknown unit" in caplog.text


def test_phosphate_in_meq_is_not_guessed():
    # Phosphate's mEq conversion depends on pH (reference, section 2): never guessed.
    assert one(obs("2777-1", 2.0, "meq/L", ago(hours=1))) is None


def test_unknown_unit_on_the_newest_result_falls_back_to_an_older_usable_one():
    p = panel(obs("2601-3", 0.5, "widgets", ago(hours=1)), obs("2601-3", 0.8, "mmol/L", ago(hours=5)))
    assert p.latest("mg").value == 0.8


def test_missing_value_is_skipped():
    p = panel(obs("2601-3", None, None, ago(hours=1), extra={
        "dataAbsentReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                         "code": "error"}]}}))
    assert p.latest("mg") is None


# ---------------------------------------------------------------- thresholds at the conversion boundary

def test_exactly_the_target_in_mg_dl_is_not_low():
    # The reference equates 1.70 mg/dL with the 0.70 mmol/L target, although 1.70 x 0.4114 = 0.6994.
    assert one(obs("19123-9", 1.70, "mg/dL", ago(hours=1))).below(0.70) is False
    assert one(obs("19123-9", 1.7, "mg/dL", ago(hours=1))).below(0.70) is False
    assert one(obs("19123-9", 1.40, "meq/L", ago(hours=1))).below(0.70) is False


def test_whole_numbers_do_not_widen_the_tolerance():
    result = one(obs("19123-9", 3.0, "mg/dL", ago(hours=1)))
    assert result.resolution == pytest.approx(0.5 * 0.1 * 0.4114)
    assert result.above(1.10) is True  # 3.0 mg/dL = 1.23 mmol/L


def test_just_below_the_target_in_mg_dl_is_low():
    assert one(obs("19123-9", 1.69, "mg/dL", ago(hours=1))).below(0.70) is True
    assert one(obs("19123-9", 1.6, "mg/dL", ago(hours=1))).below(0.70) is True


def test_exactly_the_threshold_in_mmol_is_not_low_and_just_under_is():
    assert one(obs("2601-3", 0.70, "mmol/L", ago(hours=1))).below(0.70) is False
    assert one(obs("2601-3", 0.69, "mmol/L", ago(hours=1))).below(0.70) is True


# ---------------------------------------------------------------- comparators

@pytest.mark.parametrize("comparator,value,threshold,below,above", [
    ("<", 0.5, 0.70, True, False),
    ("<", 0.70, 0.70, True, False),   # < 0.70 is below 0.70
    ("<", 0.9, 0.70, None, None),     # < 0.9 could be either side of 0.70
    ("<=", 0.69, 0.70, True, False),
    ("<=", 0.70, 0.70, None, False),
    (">", 0.70, 0.70, False, True),
    (">", 0.5, 0.70, None, None),
    (">=", 0.8, 0.70, False, True),
    (">=", 0.70, 0.70, False, None),
])
def test_comparators_are_honoured(comparator, value, threshold, below, above):
    result = one(obs("2601-3", value, "mmol/L", ago(hours=1), comparator=comparator))
    assert result.comparator == comparator
    assert result.below(threshold) is below
    assert result.above(threshold) is above


def test_comparator_is_shown():
    assert one(obs("2601-3", 0.5, "mmol/L", ago(hours=1), comparator="<")).display().startswith("< 0.50 mmol/L")


# ---------------------------------------------------------------- statuses

@pytest.mark.parametrize("status", ["final", "amended", "corrected", "preliminary"])
def test_counted_statuses(status):
    assert one(obs("2601-3", 0.5, "mmol/L", ago(hours=1), status=status)) is not None


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered", "unknown"])
def test_statuses_that_do_not_count(status):
    assert one(obs("2601-3", 0.5, "mmol/L", ago(hours=1), status=status)) is None


def test_entered_in_error_newest_leaves_the_older_valid_result():
    p = panel(obs("2601-3", 0.45, "mmol/L", ago(hours=1), status="entered-in-error"),
              obs("2601-3", 0.82, "mmol/L", ago(days=2)))
    assert p.latest("mg").value == 0.82


# ---------------------------------------------------------------- latest by clinical time

def test_latest_uses_clinical_time_not_server_order():
    older_low = obs("2601-3", 0.55, "mmol/L", ago(days=5))
    newer_normal = obs("2601-3", 0.84, "mmol/L", ago(days=1))
    for order in ([older_low, newer_normal], [newer_normal, older_low]):
        assert panel(*order).latest("mg").value == 0.84


def test_clinical_time_precedence():
    # effectiveDateTime beats issued; effectivePeriod.end, then .start; issued only as a last resort.
    a = obs("2601-3", 0.50, "mmol/L", None, extra={"effectivePeriod": {"start": ts(ago(days=3)),
                                                                       "end": ts(ago(hours=2))}})
    b = obs("2601-3", 0.60, "mmol/L", ago(hours=5), extra={"issued": ts(ago(minutes=1))})
    assert panel(a, b).latest("mg").value == 0.50
    c = obs("2601-3", 0.70, "mmol/L", None, extra={"effectivePeriod": {"start": ts(ago(hours=1))}})
    assert panel(a, b, c).latest("mg").value == 0.70
    d = obs("2601-3", 0.80, "mmol/L", None, extra={"issued": ts(ago(minutes=30))})
    assert panel(a, b, c, d).latest("mg").value == 0.80
    assert labs.raw_clinical_time(obs("2601-3", 1, "mmol/L", None)) is None


def test_lookback_window_applies_to_latest():
    p = panel(obs("2601-3", 0.5, "mmol/L", ago(days=31)))
    assert p.latest("mg") is not None
    assert p.latest("mg", NOW, timedelta(days=30)) is None
    assert p.latest("mg", NOW, timedelta(days=60)).value == 0.5


def test_within_returns_results_inside_the_window_only():
    p = panel(*(obs("8867-4", 60 + i, "/min", ago(hours=i * 5)) for i in range(8)))
    values = [r.value for r in p.within("heart_rate", NOW, timedelta(hours=24))]
    assert values == [60, 61, 62, 63, 64]


# ---------------------------------------------------------------- properties

@settings(max_examples=200, deadline=None)
@given(mmol=st.floats(min_value=0.05, max_value=5.0, allow_nan=False, allow_infinity=False),
       analyte_loinc=st.sampled_from([("mg", "19123-9"), ("ica", "17864-0"), ("k", "22760-3"), ("po4", "2777-1")]))
def test_mass_units_round_trip_within_the_reported_precision(mmol, analyte_loinc):
    analyte, loinc = analyte_loinc
    reported = round(mmol * codes.MMOL_TO_MG_DL[analyte], 2)  # what a lab reporting mg/dL would send
    result = one(obs(loinc, reported, "mg/dL", ago(hours=1)))
    assert result is not None
    # The conversion factors have four significant figures; the lab rounded to 0.01 mg/dL.
    assert abs(result.value - mmol) <= result.resolution + 1e-3 * mmol + 1e-9
    # Precision is never wider than one decimal in mg/dL (trailing zeros are lost in JSON: 3.10 -> 3.1).
    assert result.resolution <= 0.5 * 0.1 * codes._MG_DL[analyte] + 1e-12


@settings(max_examples=200, deadline=None)
@given(mmol=st.decimals(min_value="0.10", max_value="3.00", places=2),
       analyte_loinc=st.sampled_from([("mg", "19123-9"), ("ica", "1995-0"), ("k", "2823-3")]))
def test_meq_and_mmol_agree(mmol, analyte_loinc):
    analyte, loinc = analyte_loinc
    valence = 1 if analyte == "k" else 2
    in_meq = one(obs(loinc, float(mmol) * valence, "meq/L", ago(hours=1)))
    in_mmol = one(obs(loinc, float(mmol), "mmol/L", ago(hours=1)))
    assert in_meq.value == pytest.approx(in_mmol.value)


@settings(max_examples=200, deadline=None)
@given(value=st.floats(min_value=0.1, max_value=3.0), threshold=st.floats(min_value=0.1, max_value=3.0))
def test_below_and_above_never_both_true(value, threshold):
    result = one(obs("2601-3", round(value, 2), "mmol/L", ago(hours=1)))
    assert not (result.below(threshold) is True and result.above(threshold) is True)


_STATUSES = ["final", "amended", "corrected", "preliminary", "entered-in-error", "cancelled", "registered"]


@settings(max_examples=150, deadline=None)
@given(items=st.lists(st.tuples(st.integers(min_value=0, max_value=60 * 24 * 40),  # minutes ago
                                st.decimals(min_value="0.20", max_value="1.50", places=2),
                                st.sampled_from(_STATUSES),
                                st.sampled_from(["effectiveDateTime", "period", "issued"])),
                      min_size=1, max_size=8, unique_by=lambda t: t[0]),
       seed=st.integers(min_value=0, max_value=10_000))
def test_latest_is_the_newest_counted_result_whatever_the_order(items, seed):
    raws = []
    for minutes, value, status, how in items:
        when = ago(minutes=minutes)
        if how == "effectiveDateTime":
            raw = obs("2601-3", float(value), "mmol/L", when, status=status)
        elif how == "period":
            raw = obs("2601-3", float(value), "mmol/L", None, status=status,
                      extra={"effectivePeriod": {"start": ts(when - timedelta(minutes=5)), "end": ts(when)}})
        else:
            raw = obs("2601-3", float(value), "mmol/L", None, status=status, extra={"issued": ts(when)})
        raws.append(raw)
    random.Random(seed).shuffle(raws)
    counted = [(m, v) for m, v, s, _h in items if s in labs.COUNTED_STATUSES]
    latest = panel(*raws).latest("mg")
    if not counted:
        assert latest is None
    else:
        minutes, value = min(counted)
        assert latest.value == pytest.approx(float(value))
        assert latest.time == ago(minutes=minutes)
