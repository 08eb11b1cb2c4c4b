"""What a draft order is, in the order rules' terms: route, K salt, parenteral or oral Mg, 24/48 h totals,
aluminum, quinine/quinidine, oral baclofen, gabapentin maintenance dose, 23.4 % NaCl volume and route."""
from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.clinical.orders import read_draft_orders
from cds_service.fhir.parse import lenient
from support.orders import IV_ROUTE, ORAL_ROUTE, draft_bundle, med_request, rx

IM_ROUTE = {"coding": [{"system": "http://snomed.info/sct", "code": "78421000", "display": "Intramuscular route"}]}
MG_VIAL = rx("1658221", "2 ML magnesium sulfate 500 MG/ML Injection")
MG_PREMIX = rx("1658262", "100 ML magnesium sulfate 40 MG/ML Injection")


def one(resource):
    orders = read_draft_orders(draft_bundle([resource]), lambda raw, rtype: lenient(raw, rtype))
    assert len(orders) == 1
    return orders[0]


def text_med(text: str) -> dict:
    return {"text": text}


# ---------------------------------------------------------------- potassium salts

@pytest.mark.parametrize("medication,route,salt", [
    (rx("198116", "potassium chloride 20 MEQ Extended Release Oral Tablet"), ORAL_ROUTE, "potassium chloride"),
    (rx("1860463", "100 ML potassium chloride 0.4 MEQ/ML Injection"), None, "potassium chloride"),
    (rx("1928569", "15 ML potassium phosphates (236/224 MG/ML) Injection"), IV_ROUTE, "potassium phosphate"),
    (rx("54993", "potassium citrate"), ORAL_ROUTE, "potassium citrate"),
    (text_med("Potassium bicarbonate 25 mEq effervescent tablet"), ORAL_ROUTE, "potassium bicarbonate"),
])
def test_potassium_salts_oral_or_iv(medication, route, salt):
    assert one(med_request("k", medication, route=route)).potassium_salt == salt


@pytest.mark.parametrize("medication,route", [
    (rx("214792", "potassium chloride / sodium chloride"), IV_ROUTE),            # maintenance fluid
    (text_med("calcium chloride / dextrose / magnesium chloride / sodium chloride / sodium lactate "
              "Intraperitoneal Solution"), {"text": "Intraperitoneal"}),        # PD fluid
    (text_med("Prismasol BGK 4/2.5"), IV_ROUTE),                                # CRRT replacement fluid
    (text_med("Renal multivitamin with minerals"), ORAL_ROUTE),
    (rx("8591", "potassium chloride"), {"text": "Intraperitoneal"}),            # KCl added to a PD bag
])
def test_potassium_decoys(medication, route):
    assert one(med_request("k", medication, route=route)).potassium_salt is None


# ---------------------------------------------------------------- magnesium: parenteral or oral

def test_parenteral_magnesium_iv_im_and_unrouted_injection():
    assert one(med_request("a", MG_VIAL, route=IV_ROUTE)).parenteral_magnesium == "magnesium sulfate"
    assert one(med_request("b", MG_VIAL, route=IM_ROUTE)).parenteral_magnesium == "magnesium sulfate"
    assert one(med_request("c", MG_VIAL)).parenteral_magnesium == "magnesium sulfate"  # IM or IV: both parenteral
    assert one(med_request("d", MG_PREMIX)).parenteral_magnesium == "magnesium sulfate"
    edqm = one(med_request("e", text_med("Magnesium sulphate 2 g IV"),
                           route={"coding": [{"system": "http://standardterms.edqm.eu", "code": "20045000"}]}))
    assert edqm.parenteral_magnesium == "magnesium sulfate" and edqm.oral_magnesium is None


@pytest.mark.parametrize("medication,route,salt", [
    (rx("198741", "magnesium oxide 400 MG Oral Tablet"), ORAL_ROUTE, "magnesium oxide"),
    (rx("198741", "magnesium oxide 400 MG Oral Tablet"), None, "magnesium oxide"),
    (rx("1053346", "magnesium sulfate 1000 MG Granules for Oral Solution"), ORAL_ROUTE, "magnesium sulfate"),
    (rx("6581", "magnesium hydroxide"), None, "magnesium hydroxide"),  # laxative salt: oral whatever the route gap
    (text_med("Milk of Magnesia 30 mL at bedtime"), ORAL_ROUTE, "magnesium hydroxide"),
    (text_med("Magnesium citrate 300 mL bowel prep"), None, "magnesium citrate"),
    (text_med("Maalox suspension 30 mL"), ORAL_ROUTE, "magnesium hydroxide"),
    (text_med("Maalox suspension 30 mL"), {"text": "via NG tube"}, "magnesium hydroxide"),
])
def test_oral_magnesium(medication, route, salt):
    order = one(med_request("m", medication, route=route))
    assert order.oral_magnesium == salt and order.parenteral_magnesium is None


@pytest.mark.parametrize("medication,route", [
    (text_med("Multivitamin with minerals (contains magnesium 50 mg)"), ORAL_ROUTE),
    (text_med("Dianeal PD-2 1.5% dextrose"), {"text": "Intraperitoneal"}),
    (text_med("CRRT replacement fluid with magnesium 0.75 mmol/L"), IV_ROUTE),
    (rx("6585", "magnesium sulfate"), None),  # neither route nor form: not guessed
])
def test_magnesium_decoys(medication, route):
    order = one(med_request("m", medication, route=route))
    assert order.oral_magnesium is None and order.parenteral_magnesium is None


# ---------------------------------------------------------------- parenteral magnesium totals (24 h / 48 h)

def _mg(dose, route=IV_ROUTE, medication=MG_VIAL, **timing):
    res = med_request("mg", medication, route=route, dose=dose)
    if timing:
        res["dosageInstruction"][0]["timing"] = {"repeat": timing}
    return one(res)


@pytest.mark.parametrize("dose,timing,h24,h48", [
    ((2, "g"), {}, 2000, 2000),                                                    # no timing: one dose
    ((2, "g"), {"count": 1}, 2000, 2000),
    ((1, "g"), {"frequency": 1, "period": 6, "periodUnit": "h"}, 4000, 8000),        # q6h, no end
    ((1, "g"), {"frequency": 1, "period": 6, "periodUnit": "h", "count": 4}, 4000, 4000),
    ((2, "g"), {"frequency": 1, "period": 4, "periodUnit": "h",
                "boundsDuration": {"value": 24, "unit": "h", "code": "h"}}, 12000, 12000),
    ((2, "g"), {"frequency": 1, "period": 1, "periodUnit": "d",
                "boundsDuration": {"value": 3, "unit": "d", "code": "d"}}, 2000, 4000),
    ((16.24, "meq"), {"frequency": 2, "period": 1, "periodUnit": "d"}, 4000, 8000),  # mEq -> g MgSO4
    ((4, "mL"), {"count": 1}, 2000, 2000),                                          # 4 mL of 50 %
])
def test_magnesium_totals(dose, timing, h24, h48):
    totals = _mg(dose, **timing).magnesium_totals()
    assert totals.h24 == pytest.approx(h24, rel=0.002)
    assert totals.h48 == pytest.approx(h48, rel=0.002)


def test_magnesium_totals_boundaries_for_the_policy_thresholds():
    # 8 g/24 h design threshold: 2 g q6h is exactly 8 g (not more); 2 g q4h is 12 g
    assert _mg((2, "g"), frequency=1, period=6, periodUnit="h").magnesium_totals().h24 == pytest.approx(8000)
    # 20 g/48 h label limit: 5 g q12h for 48 h is exactly 20 g; 5 g q12h without end is also 20 g in any 48 h
    assert _mg((5, "g"), frequency=1, period=12, periodUnit="h").magnesium_totals().h48 == pytest.approx(20000)
    assert _mg((5, "g"), frequency=1, period=11, periodUnit="h").magnesium_totals().h48 == pytest.approx(25000)


def test_loading_dose_then_maintenance_sequences():
    res = med_request("mg", MG_PREMIX, route=IV_ROUTE)
    res["dosageInstruction"] = [
        {"sequence": 1, "doseAndRate": [{"doseQuantity": {"value": 4, "unit": "g"}}], "timing": {"repeat": {"count": 1}}},
        {"sequence": 2, "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "g"}}],
         "timing": {"repeat": {"frequency": 1, "period": 4, "periodUnit": "h"}}},
    ]
    totals = one(res).magnesium_totals()
    # the loading dose takes no time: 4 g + 2 g every 4 h (6 doses in the first 24 h)
    assert totals.h24 == pytest.approx(4000 + 6 * 2000)
    assert totals.h48 == pytest.approx(4000 + 12 * 2000)


def test_continuous_infusion_rate():
    res = med_request("mg", MG_PREMIX, route=IV_ROUTE)
    res["dosageInstruction"] = [{"doseAndRate": [{"rateQuantity": {"value": 1, "unit": "g/h", "code": "g/h"}}],
                                 "timing": {"repeat": {"boundsDuration": {"value": 12, "unit": "h", "code": "h"}}}}]
    totals = one(res).magnesium_totals()
    assert totals.h24 == pytest.approx(12000) and totals.h48 == pytest.approx(12000)
    res["dosageInstruction"][0].pop("timing")
    unbounded = one(res).magnesium_totals()
    assert unbounded.h24 == pytest.approx(24000) and unbounded.readings


def test_unreadable_magnesium_dose_gives_no_total():
    totals = _mg((1, "puff"), frequency=1, period=1, periodUnit="d").magnesium_totals()
    assert totals.h24 is None and totals.h48 is None


@given(dose_g=st.floats(0.5, 10), period_h=st.sampled_from([1, 2, 4, 6, 8, 12, 24]),
       count=st.one_of(st.none(), st.integers(1, 30)))
@settings(max_examples=150, deadline=None)
def test_totals_properties(dose_g, period_h, count):
    """A 48 h total is never below the 24 h one nor above twice it; both are whole numbers of doses and
    never more doses than the count allows or the period fits."""
    timing = {"frequency": 1, "period": period_h, "periodUnit": "h"}
    if count is not None:
        timing["count"] = count
    totals = _mg((dose_g, "g"), **timing).magnesium_totals()
    dose = dose_g * 1000
    assert totals.h24 <= totals.h48 <= 2 * totals.h24 + 1e-6
    for total, hours in ((totals.h24, 24), (totals.h48, 48)):
        doses = round(total / dose)
        assert total == pytest.approx(doses * dose)
        assert doses <= -(-hours // period_h)
        if count is not None:
            assert doses <= count


# ---------------------------------------------------------------- calcium replacement vs phosphate binders

@pytest.mark.parametrize("medication,replacement", [
    (rx("1668250", "10 ML calcium gluconate 100 MG/ML Injection"), "calcium gluconate"),
    (rx("828525", "10 ML calcium chloride 100 MG/ML Injection"), "calcium chloride"),
    (rx("198546", "calcium gluconate 500 MG Oral Tablet"), "calcium gluconate"),
    (rx("308892", "calcium carbonate 1000 MG Chewable Tablet"), None),
    (rx("214342", "calcium acetate"), None),
    (text_med("Calcium 600 mg / vitamin D3 tablet"), None),
])
def test_calcium_replacement_is_never_a_phosphate_binder(medication, replacement):
    assert one(med_request("ca", medication)).calcium_replacement == replacement


# ---------------------------------------------------------------- aluminum, quinine, baclofen

@pytest.mark.parametrize("medication,route,drug", [
    (text_med("Aluminum hydroxide 640 mg capsule"), ORAL_ROUTE, "aluminum hydroxide"),
    (text_med("Maalox suspension 30 mL"), ORAL_ROUTE, "aluminum hydroxide"),
    (text_med("Sucralfate 1 g tablet"), None, "sucralfate"),
    (text_med("Aluminum chloride 20% solution"), {"text": "topical"}, None),
    (text_med("Sevelamer carbonate 800 mg tablet"), ORAL_ROUTE, None),
])
def test_aluminum_orders(medication, route, drug):
    assert one(med_request("al", medication, route=route)).aluminum == drug


@pytest.mark.parametrize("medication,kind", [
    (rx("997010", "quinine sulfate 324 MG Oral Capsule"), "quinine"),
    (text_med("Qualaquin 324 mg"), "quinine"),
    (rx("852877", "quinidine sulfate 200 MG Oral Tablet"), "quinidine"),
    (rx("852920", "quinidine gluconate 324 MG Extended Release Oral Tablet"), "quinidine"),
    (rx("1040054", "dextromethorphan hydrobromide 20 MG / quinidine sulfate 10 MG Oral Capsule"), None),
    (text_med("Nuedexta 20-10 mg capsule"), None),
])
def test_quinine_vs_quinidine(medication, kind):
    assert one(med_request("q", medication)).quinine_kind == kind


@pytest.mark.parametrize("medication,route,oral", [
    (rx("197391", "baclofen 10 MG Oral Tablet"), ORAL_ROUTE, True),
    (rx("197391", "baclofen 10 MG Oral Tablet"), None, True),
    (rx("1292", "baclofen"), None, True),
    (rx("250976", "baclofen 1 MG/ML Oral Solution"), {"text": "via PEG tube"}, True),
    (rx("1666622", "5 ML baclofen 2 MG/ML Injection"), None, False),
    (rx("1666622", "5 ML baclofen 2 MG/ML Injection"), {"text": "Intrathecal"}, False),
    (rx("1292", "baclofen"), {"text": "intrathecal pump"}, False),
    (text_med("Gablofen 2000 mcg/mL"), None, False),
])
def test_oral_baclofen_excludes_intrathecal(medication, route, oral):
    assert one(med_request("b", medication, route=route)).oral_baclofen is oral


def test_baclofen_daily_and_single_dose():
    order = one(med_request("b", rx("197391", "baclofen 10 MG Oral Tablet"), route=ORAL_ROUTE, dose=(1, "{tbl}"),
                            frequency=3, period=1, period_unit="d"))
    assert order.dose.single == 10 and order.dose.daily == 30
    once = one(med_request("b", rx("197391", "baclofen 10 MG Oral Tablet"), route=ORAL_ROUTE, dose=(10, "mg")))
    assert once.dose.single == 10 and once.dose.daily is None


# ---------------------------------------------------------------- gabapentin maintenance dose

def _gaba(lines):
    res = med_request("g", rx("310431", "gabapentin 300 MG Oral Capsule"), route=ORAL_ROUTE)
    res["dosageInstruction"] = lines
    return one(res)


def _line(mg, freq=None, period=None, unit="d", text=None):
    line = {"doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg"}}]}
    if freq is not None:
        line["timing"] = {"repeat": {"frequency": freq, "period": period or 1, "periodUnit": unit}}
    if text:
        line["text"] = text
    return line


def test_gabapentin_maintenance_excludes_the_post_dialysis_supplement():
    order = _gaba([_line(300, 1, 1, "d"), _line(350, 3, 1, "wk", text="350 mg after each hemodialysis session")])
    assert order.maintenance.daily == pytest.approx(300)
    assert order.after_dialysis.single == 350
    assert order.dose.daily == pytest.approx(300 + 150)  # the whole order still adds up


@pytest.mark.parametrize("text", ["after each HD session", "post-dialysis", "Give after dialysis on HD days",
                                  "supplemental dose after hemodialysis"])
def test_after_dialysis_wording(text):
    assert _gaba([_line(100, 1), _line(125, 3, 1, "wk", text=text)]).maintenance.daily == pytest.approx(100)


def test_before_dialysis_is_maintenance_not_the_supplement():
    order = _gaba([_line(300, 3, 1, "wk", text="300 mg before each dialysis session")])
    assert order.maintenance.daily == pytest.approx(300 * 3 / 7)


@pytest.mark.parametrize("lines", [
    [],
    [{"text": "take as directed"}],
    [_line(300)],                               # no frequency
    [{"doseAndRate": [{"doseQuantity": {"value": 1, "unit": "puff"}}]}],
])
def test_gabapentin_unreadable_daily_dose_is_detected(lines):
    assert _gaba(lines).maintenance.daily is None


# ---------------------------------------------------------------- 23.4 % sodium chloride

NACL = rx("1807571", "30 ML sodium chloride 234 MG/ML Injection")


@pytest.mark.parametrize("medication,is_234", [
    (NACL, True), (rx("313016", "sodium chloride 234 MG/ML Injectable Solution"), True),
    (text_med("Sodium chloride 23.4% injection"), True), (text_med("hypertonic saline 23.5% 16 mL"), True),
    (text_med("sodium chloride 4 mEq/mL concentrate"), True),
    (rx("1807578", "20 ML sodium chloride 146 MG/ML Injection"), False),
    (text_med("sodium chloride 3% 250 mL"), False), (text_med("sodium chloride 0.9% 10 mL flush"), False),
])
def test_hypertonic_saline_concentration(medication, is_234):
    assert one(med_request("n", medication)).hypertonic_saline is is_234


@pytest.mark.parametrize("dose,volume", [((16, "mL"), 16), ((20, "mL"), 20), ((4.68, "g"), 20), ((80, "meq"), None),
                                         ((1, "{vial}"), 30)])
def test_hypertonic_saline_volume_per_dose(dose, volume):
    order = one(med_request("n", NACL, route=IV_ROUTE, dose=dose))
    assert order.volume_ml == (pytest.approx(volume) if volume is not None else None)


def test_hypertonic_saline_volume_from_meq_when_the_strength_is_in_meq():
    order = one(med_request("n", text_med("sodium chloride 4 mEq/mL concentrate"), route=IV_ROUTE, dose=(80, "meq")))
    assert order.volume_ml == pytest.approx(20)


@pytest.mark.parametrize("route,text,kind,peripheral", [
    (IV_ROUTE, "16 mL bolus into the venous line during dialysis", "dialysis-circuit", False),
    ({"text": "via dialysis circuit"}, None, "dialysis-circuit", False),
    (IV_ROUTE, None, "intravenous", False),
    ({"text": "peripheral IV"}, None, "intravenous", True),
    (IV_ROUTE, "push via peripheral cannula", "intravenous", True),
    (None, None, None, False),
])
def test_hypertonic_saline_route_statements(route, text, kind, peripheral):
    res = med_request("n", NACL, route=route, dose=(16, "mL"))
    if text:
        res["dosageInstruction"][0]["text"] = text
    order = one(res)
    assert order.route == kind and order.peripheral is peripheral
    if kind is not None:
        assert order.intravenous


def test_reading_an_order_does_not_change_it():
    res = med_request("n", NACL, route=IV_ROUTE, dose=(16, "mL"))
    before = copy.deepcopy(res)
    one(res)
    assert res == before
