"""Property tests (hypothesis): unit conversion, latest-result selection, draft-order parsing."""
from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds_service.clinical import codes, labs
from cds_service.clinical.orders import read_draft_orders
from cds_service.fhir.parse import lenient

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ELECTROLYTES = ["mg", "ica", "k", "po4", "total_ca"]
# Spellings a lab system may send for each unit key, all of which must mean the same thing.
SPELLINGS = {
    "mmol/L": ["mmol/L", "mmol/l", "MMOL/L", " mmol/L ", "mmol / L"],
    "mg/dL": ["mg/dL", "mg/dl", "MG/DL", "mg/100mL", "mg%"],
    "meq/L": ["mEq/L", "meq/l", "m[eq]/L"],
    "mg/L": ["mg/L", "mg/l"],
    "umol/L": ["umol/L", "µmol/L", "μmol/L"],
}


def _obs(oid: str, loinc: str, value, unit: str | None, when: datetime | str, status: str = "final",
         comparator: str | None = None) -> dict:
    qty = {"value": value}
    if unit is not None:
        qty["unit"] = unit
    if comparator:
        qty["comparator"] = comparator
    effective = when if isinstance(when, str) else when.isoformat()
    return {"resourceType": "Observation", "id": oid, "status": status,
            "code": {"coding": [{"system": codes.LOINC, "code": loinc}]}, "effectiveDateTime": effective,
            "valueQuantity": qty}


def _panel(raws):
    return labs.build_panel(raws, lambda raw: lenient(raw, "Observation"))


values = st.floats(min_value=0.01, max_value=50.0, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 3))


# ---------------------------------------------------------------------- unit conversion

@SETTINGS
@given(analyte=st.sampled_from(ELECTROLYTES), value=values, data=st.data())
def test_a_value_reads_the_same_in_every_spelling_of_its_unit(analyte, value, data):
    unit_key = data.draw(st.sampled_from([k for k in SPELLINGS if codes.conversion_factor(analyte, k)]))
    spellings = SPELLINGS[unit_key]
    first, second = data.draw(st.sampled_from(spellings)), data.draw(st.sampled_from(spellings))
    loinc = next(iter(codes.ANALYTE_LOINC[analyte]))
    a = _panel([_obs("a", loinc, value, first, NOW)]).latest(analyte)
    b = _panel([_obs("b", loinc, value, second, NOW)]).latest(analyte)
    assert a is not None and b is not None
    assert a.value == pytest.approx(b.value)
    assert a.value == pytest.approx(value * codes.conversion_factor(analyte, unit_key))
    assert a.unit == codes.CANONICAL_UNIT[analyte] == "mmol/L"


@SETTINGS
@given(analyte=st.sampled_from(["mg", "ica", "k", "po4", "total_ca"]), mmol=values)
def test_mass_and_molar_forms_of_one_result_agree(analyte, mmol):
    """The same concentration sent in mmol/L and in mg/dL lands on the same canonical value (within 0.1 %)."""
    loinc = next(iter(codes.ANALYTE_LOINC[analyte]))
    mg_dl = mmol * codes.MMOL_TO_MG_DL[analyte]
    molar = _panel([_obs("m", loinc, mmol, "mmol/L", NOW)]).latest(analyte)
    mass = _panel([_obs("d", loinc, mg_dl, "mg/dL", NOW)]).latest(analyte)
    assert mass.value == pytest.approx(molar.value, rel=1e-3)


@SETTINGS
@given(analyte=st.sampled_from(["mg", "ica", "total_ca"]), meq=values)
def test_divalent_milliequivalents_are_half_the_millimoles(analyte, meq):
    loinc = next(iter(codes.ANALYTE_LOINC[analyte]))
    result = _panel([_obs("e", loinc, meq, "mEq/L", NOW)]).latest(analyte)
    assert result.value == pytest.approx(meq / 2)


@SETTINGS
@given(analyte=st.sampled_from(ELECTROLYTES + ["albumin", "aluminum"]), value=values,
       unit=st.text(alphabet="abcxyz/%[]", min_size=1, max_size=8))
def test_an_unknown_unit_is_never_guessed(analyte, value, unit):
    assume(codes.normalise_unit_key(unit) is None)
    loinc = next(iter(codes.ANALYTE_LOINC[analyte]))
    panel = _panel([_obs("u", loinc, value, unit, NOW)])
    assert panel.latest(analyte) is None
    assert any("unknown unit" in why for why in panel.skipped)


@SETTINGS
@given(analyte=st.sampled_from(ELECTROLYTES), value=values, threshold=values,
       comparator=st.sampled_from([None, "<", "<=", ">", ">="]))
def test_comparators_never_claim_more_than_the_value_says(analyte, value, threshold, comparator):
    loinc = next(iter(codes.ANALYTE_LOINC[analyte]))
    result = _panel([_obs("c", loinc, value, "mmol/L", NOW, comparator=comparator)]).latest(analyte)
    below = result.below(threshold)
    if comparator is None:
        assert below == (value < threshold)
    elif comparator in ("<", "<="):
        # "< v": the true value is under v; it is surely below the threshold only when v <= threshold
        assert below in (True, None) and (below is True) == (value <= threshold if comparator == "<"
                                                              else value < threshold)
    else:
        assert below in (False, None) and (below is False) == (value >= threshold)


# ---------------------------------------------------------------------- latest-result selection

offsets = st.integers(min_value=-12 * 60, max_value=14 * 60)  # minutes: every real UTC offset
result_st = st.tuples(
    st.integers(min_value=0, max_value=60 * 24 * 60),  # minutes before NOW
    offsets,
    st.sampled_from(["final", "amended", "corrected", "preliminary", "entered-in-error", "cancelled",
                     "registered"]),
    st.sampled_from(["19123-9", "2601-3", "2598-1"]),  # serum mass, serum molar, urine (never counted)
    values,
)


def _when_text(minutes_ago: int, offset_min: int) -> str:
    tz = timezone(timedelta(minutes=offset_min))
    return (NOW - timedelta(minutes=minutes_ago)).astimezone(tz).isoformat()


@SETTINGS
@given(items=st.lists(result_st, min_size=1, max_size=25, unique_by=lambda t: t[0]), seed=st.integers(0, 1000))
def test_latest_is_the_newest_counted_serum_result_whatever_the_order(items, seed):
    raws = [_obs(f"o{i}", loinc, value, "mg/dL" if loinc == "19123-9" else "mmol/L", _when_text(ago, off),
                 status)
            for i, (ago, off, status, loinc, value) in enumerate(items)]
    shuffled = copy.deepcopy(raws)
    random.Random(seed).shuffle(shuffled)
    counted = [(ago, i) for i, (ago, _off, status, loinc, _v) in enumerate(items)
               if status in labs.COUNTED_STATUSES and loinc != "2598-1"]
    latest = _panel(raws).latest("mg")
    again = _panel(shuffled).latest("mg")
    if not counted:
        assert latest is None and again is None
        return
    expected = f"o{min(counted)[1]}"
    assert latest.resource_id == expected == again.resource_id
    assert latest.time == NOW - timedelta(minutes=min(counted)[0])


@SETTINGS
@given(ago_days=st.floats(min_value=0, max_value=90), window_days=st.integers(1, 60))
def test_a_result_older_than_the_window_is_not_latest(ago_days, window_days):
    raws = [_obs("o", "2601-3", 0.6, "mmol/L", NOW - timedelta(days=ago_days))]
    panel = _panel(raws)
    within = panel.latest("mg", NOW, timedelta(days=window_days))
    assert (within is not None) == (ago_days <= window_days)


# ---------------------------------------------------------------------- draft-order parsing

def _med_request(i: int, text: str, with_intent: bool, ref: str | None = None) -> dict:
    req = {"resourceType": "MedicationRequest", "id": f"mr-{i}", "status": "draft",
           "subject": {"reference": "Patient/p1"}}
    if with_intent:
        req["intent"] = "order"
    if ref:
        req["medicationReference"] = {"reference": ref}
    else:
        req["medicationCodeableConcept"] = {"text": text}
    return req


junk = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
                 st.just({"resource": "x"}), st.just({"resource": {"resourceType": "Observation", "id": "o"}}),
                 st.just({"resource": {"resourceType": "MedicationRequest", "id": 5, "status": {"bad": 1}}}))


@SETTINGS
@given(orders=st.lists(st.tuples(st.text(alphabet="abcdefgh ", min_size=1, max_size=12), st.booleans()),
                       max_size=6),
       noise=st.lists(junk, max_size=6), seed=st.integers(0, 1000))
def test_every_readable_draft_order_is_read_in_order_and_junk_is_skipped(orders, noise, seed):
    good = [{"resource": _med_request(i, text, intent)} for i, (text, intent) in enumerate(orders)]
    entries = good + list(noise)
    rng = random.Random(seed)
    rng.shuffle(entries)
    notes: list[str] = []
    read = read_draft_orders({"resourceType": "Bundle", "type": "collection", "entry": entries},
                             lambda raw, rtype: lenient(raw, rtype, notes), notes)
    expected = [e["resource"]["id"] for e in entries if e in good]
    got = [o.id for o in read if o.id.startswith("mr-")]
    assert got == expected
    by_id = {o.id: o for o in read}
    for i, (text, _intent) in enumerate(orders):
        order = by_id[f"mr-{i}"]
        assert order.reference == f"MedicationRequest/mr-{i}"
        assert order.text == text.strip() or order.text == text


@SETTINGS
@given(bundle=st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(st.none(), max_size=2),
                        st.fixed_dictionaries({"resourceType": st.just("Bundle"),
                                               "entry": st.one_of(st.none(), st.text(max_size=3),
                                                                  st.dictionaries(st.text(max_size=3),
                                                                                  st.integers(), max_size=2))})))
def test_malformed_draft_orders_never_raise(bundle):
    assert read_draft_orders(bundle, lambda raw, rtype: lenient(raw, rtype)) == []


@SETTINGS
@given(n=st.integers(1, 4), contained=st.booleans())
def test_medication_references_resolve_to_the_medication(n, contained):
    entries = []
    for i in range(n):
        med = {"resourceType": "Medication", "id": f"med-{i}", "code": {"text": f"drug {i}"}}
        if contained:
            req = _med_request(i, "", True, ref=f"#med-{i}")
            req["contained"] = [med]
            entries.append({"resource": req})
        else:
            entries.append({"resource": _med_request(i, "", True, ref=f"Medication/med-{i}")})
            entries.append({"resource": med})
    read = read_draft_orders({"resourceType": "Bundle", "entry": entries}, lambda raw, rtype: lenient(raw, rtype))
    assert [o.id for o in read] == [f"mr-{i}" for i in range(n)]
    assert [o.text for o in read] == [f"drug {i}" for i in range(n)]
