"""Reading draft orders: medication lookup, sandbox shapes, route, dose, selections, robustness."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.clinical.orders import orders_to_check, read_draft_orders
from cds_service.fhir.parse import lenient
from support.orders import EDQM_IV_ROUTE, IV_ROUTE, ORAL_ROUTE, draft_bundle, med_request, rx


def read(bundle, notes=None):
    return read_draft_orders(bundle, lambda raw, rtype: lenient(raw, rtype, notes), notes)


def one(resource, **kw):
    orders = read(draft_bundle([resource], **kw))
    assert len(orders) == 1
    return orders[0]


# ---------------------------------------------------------------- finding the medication

def test_medication_codeable_concept():
    order = one(med_request("a", rx("197391", "baclofen 10 MG Oral Tablet")))
    assert order.reference == "MedicationRequest/a"
    assert order.text == "baclofen 10 MG Oral Tablet"
    assert order.product.single == "baclofen"


def test_contained_medication():
    res = med_request("b", None, medicationReference={"reference": "#m1"},
                      contained=[{"resourceType": "Medication", "id": "m1",
                                  "code": rx("1658244", "10 ML magnesium sulfate 500 MG/ML Injection")}])
    order = one(res)
    assert order.medication is not None
    assert order.product.single == "magnesium sulfate"


@pytest.mark.parametrize("reference,full_url", [
    ("Medication/med-1", None),
    ("urn:uuid:7f1c2a2e-1111-4c6a-9b7e-1234567890ab", "urn:uuid:7f1c2a2e-1111-4c6a-9b7e-1234567890ab"),
    ("https://ehr.example.org/fhir/Medication/med-1", None),
])
def test_medication_elsewhere_in_the_bundle(reference, full_url):
    med = {"resourceType": "Medication", "id": "med-1", "code": rx("1860463", "100 ML potassium chloride 0.4 MEQ/ML Injection")}
    req = med_request("c", None, medicationReference={"reference": reference})
    bundle = draft_bundle([med, req])
    if full_url:
        bundle["entry"][0]["fullUrl"] = full_url
    orders = read(bundle)
    assert [o.id for o in orders] == ["c"]
    assert orders[0].product.single == "potassium chloride"
    assert orders[0].product.iv_only


def test_unresolvable_reference_gives_an_unclassified_order_not_an_error():
    order = one(med_request("d", None, medicationReference={"reference": "Medication/nowhere"}))
    assert order.product is None and order.medication is None


def test_medication_ingredients_make_a_combination():
    med = {"resourceType": "Medication", "id": "m", "code": {"text": "potassium chloride"},
           "ingredient": [{"itemCodeableConcept": {"text": "potassium chloride"}},
                          {"itemCodeableConcept": {"text": "sodium chloride"}}]}
    order = one(med_request("e", None, medicationReference={"reference": "#m"}, contained=[med]))
    assert order.product.multi and order.product.single is None
    assert order.potassium_salt is None  # potassium in sodium chloride is a fluid, not a K supplement


# ---------------------------------------------------------------- sandbox shapes

def test_sandbox_shapes_bundle_without_type_no_intent_category_object():
    notes: list[str] = []
    res = med_request("sb1", rx("1658259", "50 ML magnesium sulfate 40 MG/ML Injection"), sandbox=True)
    assert "intent" not in res and isinstance(res["category"], dict)
    bundle = draft_bundle([res], sandbox=True)
    assert "type" not in bundle
    orders = read(bundle, notes)
    assert [o.id for o in orders] == ["sb1"]
    order = orders[0]
    assert order.product.single == "magnesium sulfate"
    assert order.request.intent == "order"
    # the category object is kept (wrapped in a list), not thrown away
    assert order.request.category[0].coding[0].code == "inpatient"
    assert any("wrapped single category" in n for n in notes)


def test_lenient_wraps_single_objects_where_lists_belong():
    raw = {"resourceType": "MedicationRequest", "id": "x", "status": "draft", "intent": "order",
           "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": {"text": "baclofen"},
           "dosageInstruction": {"text": "5 mg daily", "route": ORAL_ROUTE}}
    model = lenient(raw, "MedicationRequest")
    assert model.dosageInstruction[0].text == "5 mg daily"
    assert raw["dosageInstruction"]["text"] == "5 mg daily"  # the caller's dict is not changed


def test_entered_in_error_and_cancelled_orders_are_not_checked():
    bundle = draft_bundle([med_request("ok", rx("197391", "baclofen 10 MG Oral Tablet")),
                           med_request("eie", rx("197391", "baclofen 10 MG Oral Tablet"), status="entered-in-error"),
                           med_request("cx", rx("197391", "baclofen 10 MG Oral Tablet"), status="cancelled")])
    assert [o.id for o in read(bundle)] == ["ok"]


def test_order_without_id_is_read_but_has_no_id_to_act_on():
    order = one(med_request(None, rx("197391", "baclofen 10 MG Oral Tablet")))
    assert not order.has_id


def test_non_medication_request_entries_are_ignored():
    bundle = draft_bundle([{"resourceType": "ServiceRequest", "id": "s", "status": "draft", "intent": "order",
                            "subject": {"reference": "Patient/p"}, "code": {"text": "Mg"}},
                           med_request("m", rx("197391", "baclofen 10 MG Oral Tablet"))])
    assert [o.id for o in read(bundle)] == ["m"]


# ---------------------------------------------------------------- route

@pytest.mark.parametrize("route,expected", [
    (IV_ROUTE, "intravenous"),
    (EDQM_IV_ROUTE, "intravenous"),
    ({"coding": [{"system": "urn:oid:0.4.0.127.0.16.1.1.2.1", "code": "20045000"}]}, "intravenous"),
    ({"text": "IV"}, "intravenous"),
    ({"text": "Intravenous infusion"}, "intravenous"),
    (ORAL_ROUTE, "oral"),
    ({"text": "PO"}, "oral"),
    ({"coding": [{"system": "http://snomed.info/sct", "code": "78421000"}]}, "intramuscular"),
    ({"text": "Intrathecal"}, "intrathecal"),
    ({"coding": [{"system": "http://snomed.info/sct", "code": "999999"}]}, None),
])
def test_route_kind(route, expected):
    order = one(med_request("r", rx("6585", "magnesium sulfate"), route=route))
    assert order.route == expected


def test_no_route_counts_as_iv_only_for_iv_only_products():
    premix = one(med_request("p", rx("1658262", "100 ML magnesium sulfate 40 MG/ML Injection")))
    assert premix.route is None and premix.intravenous
    vial = one(med_request("v", rx("1658221", "2 ML magnesium sulfate 500 MG/ML Injection")))
    assert vial.route is None and not vial.intravenous
    im = one(med_request("i", rx("1658262", "100 ML magnesium sulfate 40 MG/ML Injection"),
                         route={"text": "intramuscular"}))
    assert not im.intravenous  # a stated route wins over the product hint


# ---------------------------------------------------------------- dose

@pytest.mark.parametrize("code,display,dose,freq,period,unit,single,daily,dose_unit", [
    ("197391", "baclofen 10 MG Oral Tablet", (10, "mg"), 3, 1, "d", 10, 30, "mg"),
    ("197391", "baclofen 10 MG Oral Tablet", (2, "{tbl}"), 2, 1, "d", 20, 40, "mg"),
    ("1658262", "100 ML magnesium sulfate 40 MG/ML Injection", (2, "g"), 1, 1, "d", 2000, 2000, "mg"),
    ("1666622", "5 ML baclofen 2 MG/ML Injection", (100, "ug"), 1, 1, "d", 0.1, 0.1, "mg"),
    ("250976", "baclofen 1 MG/ML Oral Solution", (5, "mL"), 2, 1, "d", 5, 10, "mg"),
    ("198116", "potassium chloride 20 MEQ Extended Release Oral Tablet", (20, "meq"), 2, 1, "d", 20, 40, "mEq"),
    ("310431", "gabapentin 300 MG Oral Capsule", (300, "mg"), 3, 1, "wk", 300, 300 * 3 / 7, "mg"),
    ("310431", "gabapentin 300 MG Oral Capsule", (100, "mg"), 1, 8, "h", 100, 300, "mg"),
    ("310431", "gabapentin 300 MG Oral Capsule", (100, "mg"), None, 12, "h", 100, 200, "mg"),  # once per period
])
def test_single_and_daily_dose(code, display, dose, freq, period, unit, single, daily, dose_unit):
    order = one(med_request("x", rx(code, display), dose=dose, frequency=freq, period=period, period_unit=unit))
    assert order.dose.unit == dose_unit
    assert order.dose.single == pytest.approx(single)
    assert order.dose.daily == pytest.approx(daily)


@pytest.mark.parametrize("dose,freq,period,unit", [
    ((1, "puff"), 1, 1, "d"),      # unit that is no amount of drug
    ((1, "{tbl}"), 1, 1, "mo"),    # months are not a fixed number of days
    (None, 1, 1, "d"),             # no dose
])
def test_unreadable_doses_are_none_not_guessed(dose, freq, period, unit):
    order = one(med_request("x", rx("1292", "baclofen"), dose=dose, frequency=freq, period=period, period_unit=unit))
    assert order.dose.daily is None
    if dose is None or dose[1] in ("puff", "{tbl}"):
        assert order.dose.single is None  # a tablet of an ingredient-only code has no known strength


def test_dose_without_timing_has_no_daily_dose():
    order = one(med_request("x", rx("310431", "gabapentin 300 MG Oral Capsule"), dose=(300, "mg")))
    assert order.dose.single == 300 and order.dose.daily is None
    assert "frequency not stated" in order.dose.describe()


def test_timing_code_bid():
    res = med_request("x", rx("310431", "gabapentin 300 MG Oral Capsule"), dose=(300, "mg"))
    res["dosageInstruction"][0]["timing"] = {"code": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": "BID"}]}}
    assert one(res).dose.daily == 600


def test_split_doses_add_up_and_sequences_take_the_largest():
    res = med_request("x", rx("197391", "baclofen 10 MG Oral Tablet"))
    morning = {"doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg"}}],
               "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}
    night = copy.deepcopy(morning)
    night["doseAndRate"][0]["doseQuantity"]["value"] = 20
    res["dosageInstruction"] = [morning, night]
    assert one(res).dose.daily == 30
    first, second = copy.deepcopy(morning), copy.deepcopy(night)
    first["sequence"], second["sequence"] = 1, 2
    res["dosageInstruction"] = [first, second]
    dose = one(res).dose
    assert dose.daily == 20 and dose.single == 20


def test_dose_range_uses_the_high_end_as_an_upper_bound():
    res = med_request("x", rx("310431", "gabapentin 300 MG Oral Capsule"), frequency=1, period=1)
    res["dosageInstruction"][0]["doseAndRate"] = [{"doseRange": {"low": {"value": 300, "unit": "mg"},
                                                                 "high": {"value": 600, "unit": "mg"}}}]
    dose = one(res).dose
    assert dose.single == 600 and dose.upper_bound and dose.describe().startswith("up to")


# ---------------------------------------------------------------- selections

def test_order_select_checks_only_selected_orders_and_order_sign_all():
    bundle = draft_bundle([med_request("one", rx("197391", "baclofen 10 MG Oral Tablet")),
                           med_request("two", rx("310431", "gabapentin 300 MG Oral Capsule")),
                           med_request(None, rx("997010", "quinine sulfate 324 MG Oral Capsule"))])
    orders = read(bundle)
    select = SimpleNamespace(draft_orders=orders, selections=frozenset({"MedicationRequest/two"}))
    assert [o.id for o in orders_to_check(select)] == ["two"]
    versioned = SimpleNamespace(draft_orders=orders,
                                selections=frozenset({"https://ehr.example/fhir/MedicationRequest/one/_history/2"}))
    assert [o.id for o in orders_to_check(versioned)] == ["one"]
    sign = SimpleNamespace(draft_orders=orders, selections=None)
    assert len(orders_to_check(sign)) == 3
    nothing = SimpleNamespace(draft_orders=orders, selections=frozenset())
    assert orders_to_check(nothing) == []


# ---------------------------------------------------------------- robustness (property tests)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
FIELDS = ["resourceType", "id", "status", "intent", "category", "medicationCodeableConcept", "medicationReference",
          "dosageInstruction", "contained", "subject", "fullUrl"]
mutations = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)


def _valid(i: int) -> dict:
    return med_request(f"valid-{i}", rx("197391", "baclofen 10 MG Oral Tablet"), route=ORAL_ROUTE,
                       dose=(10, "mg"), frequency=3, period=1)


def _junk_entry(mutation: dict, shape: int) -> object:
    base = med_request("junk", rx("1658221", "2 ML magnesium sulfate 500 MG/ML Injection"))
    base.update(mutation)
    if shape == 0:
        return {"resource": base}
    if shape == 1:
        return {"resource": mutation}
    if shape == 2:
        return mutation
    return {"resource": {"resourceType": "Medication", **mutation}}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(mutations, st.integers(0, 3)), max_size=5), st.integers(0, 3))
def test_malformed_entries_never_raise_and_never_sink_valid_ones(junk, n_valid):
    entries: list = [_junk_entry(m, s) for m, s in junk]
    valid = [{"resource": _valid(i)} for i in range(n_valid)]
    mixed = entries[: len(entries) // 2] + valid + entries[len(entries) // 2:]
    notes: list[str] = []
    orders = read({"resourceType": "Bundle", "entry": mixed}, notes)
    for i in range(n_valid):
        assert any(o.id == f"valid-{i}" and o.product is not None and o.product.single == "baclofen"
                   and o.dose.daily == 30 and o.route == "oral" for o in orders)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_any_json_as_draft_orders_never_raises(value):
    read(value)
    read({"resourceType": "Bundle", "entry": value})
    read({"resourceType": "Bundle", "entry": [value, {"resource": value}]})
