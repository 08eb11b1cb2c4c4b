"""The curated medication table and the display-text fallback."""
from __future__ import annotations

import pytest

from cds_service.clinical import drugs
from cds_service.clinical.drugs import (CALCIUM_REPLACEMENT, MAGNESIUM_SALTS, PHOSPHATE_BINDERS,
                                        POTASSIUM_REPLACEMENT, classify, from_text, parse_scd_name)

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.mark.parametrize("code,ingredient", [
    ("6585", "magnesium sulfate"), ("6582", "magnesium oxide"), ("8591", "potassium chloride"),
    ("34322", "potassium phosphate"), ("1908", "calcium gluconate"), ("1901", "calcium chloride"),
    ("1897", "calcium carbonate"), ("214342", "calcium acetate"), ("1292", "baclofen"), ("25480", "gabapentin"),
    ("9068", "quinidine"), ("9071", "quinine"), ("9075", "quinine"), ("9069", "quinidine"), ("9863", "sodium chloride"),
    ("1658221", "magnesium sulfate"), ("198741", "magnesium oxide"), ("198116", "potassium chloride"),
    ("1928567", "potassium phosphate"), ("1668250", "calcium gluconate"), ("828525", "calcium chloride"),
    ("308892", "calcium carbonate"), ("197391", "baclofen"), ("310431", "gabapentin"), ("997010", "quinine"),
    ("852920", "quinidine"), ("1807571", "sodium chloride"),
])
def test_reference_codes_map_to_their_ingredient(code, ingredient):
    product = drugs.by_code(code)
    assert product is not None
    assert product.ingredients == frozenset({ingredient})
    assert not product.multi


def test_scd_names_are_parsed_into_strength_form_and_volume():
    ingredient, strength, form, volume = parse_scd_name("50 ML magnesium sulfate 40 MG/ML Injection")
    assert (ingredient, strength.amount, strength.unit, strength.per, form, volume) == (
        "magnesium sulfate", 40.0, "mg", "mL", "Injection", 50.0)
    ingredient, strength, form, volume = parse_scd_name("potassium chloride 20 MEQ Extended Release Oral Tablet")
    assert (ingredient, strength.amount, strength.unit, strength.per, form, volume) == (
        "potassium chloride", 20.0, "mEq", "each", "Extended Release Oral Tablet", None)
    assert parse_scd_name("quinine sulfate 324 MG Oral Capsule")[0] == "quinine"
    with pytest.raises(ValueError):
        parse_scd_name("dextromethorphan hydrobromide 20 MG / quinidine sulfate 10 MG Oral Capsule")


def test_iv_only_flags_follow_the_premix_products():
    assert drugs.by_code("1658259").iv_only and drugs.by_code("1658262").iv_only
    assert drugs.by_code("1860463").iv_only and drugs.by_code("2117610").iv_only
    # 50% magnesium sulfate is labelled IM and IV: the route decides, not the product
    assert not drugs.by_code("1658221").iv_only
    assert not drugs.by_code("198741").iv_only
    assert drugs.by_code("198741").oral


def test_intrathecal_baclofen_is_flagged_and_oral_is_not():
    assert drugs.by_code("1666622").intrathecal
    assert not drugs.by_code("197391").intrathecal


def test_combinations_are_multi_ingredient():
    nuedexta = drugs.by_code("1040054")
    assert nuedexta.multi and nuedexta.ingredients == {"dextromethorphan", "quinidine"}
    maintenance = drugs.by_code("214792")
    assert maintenance.multi and maintenance.decoy_fluid and maintenance.single is None


def test_groups_keep_phosphate_binders_out_of_calcium_replacement():
    assert not (PHOSPHATE_BINDERS & CALCIUM_REPLACEMENT)
    assert "magnesium oxide" in MAGNESIUM_SALTS and "potassium citrate" in POTASSIUM_REPLACEMENT


@pytest.mark.parametrize("text", [
    "calcium chloride / dextrose / magnesium chloride / sodium chloride / sodium lactate Intraperitoneal Solution",
    "Dianeal PD-2 with 1.5% dextrose",
    "CRRT replacement fluid with potassium 4 mmol/L",
    "Dialysate bath Mg 0.5 K 2 Ca 1.25",
    "Lactated Ringer's injection",
    "Maintenance IV fluid with potassium chloride 20 mEq/L",
])
def test_dialysis_and_maintenance_fluids_are_decoys(text):
    product = from_text(text)
    assert product is not None and product.decoy_fluid and product.single is None


@pytest.mark.parametrize("text", [
    "potassium chloride / sodium chloride",
    "KCl 20 mEq in sodium chloride 0.9% 1000 mL",
    "Nuedexta (dextromethorphan/quinidine) 20-10 mg",
    "dextromethorphan 20 mg + quinidine 10 mg",
    "calcium 500 mg",  # salt not stated: a binder or a replacement, so neither
    "gabapentin enacarbil 600 mg ER tablet",
    "",
    "   ",
])
def test_text_fallback_refuses_combinations_and_unknowns(text):
    assert from_text(text) is None


@pytest.mark.parametrize("text,ingredient", [
    ("Magnesium sulphate 2 g IV", "magnesium sulfate"),
    ("MgSO4 4 g in 100 mL water", "magnesium sulfate"),
    ("Quinidine sulfate 200 mg tablet", "quinidine"),
    ("quinine 300 mg at night", "quinine"),
    ("KCl 20 mEq oral", "potassium chloride"),
    ("Calcium gluconate 10% 10 mL", "calcium gluconate"),
    ("Calcium carbonate 1250 mg", "calcium carbonate"),
    ("Baclofen 10mg tablet", "baclofen"),
])
def test_text_fallback_names_single_ingredients(text, ingredient):
    product = from_text(text)
    assert product is not None and product.single == ingredient and product.source == "text"


def test_text_fallback_reads_hypertonic_saline_strength():
    assert from_text("Sodium chloride 23.4% injection").concentration_mg_ml == pytest.approx(234)
    assert from_text("hypertonic saline 234 mg/mL").concentration_mg_ml == pytest.approx(234)
    assert from_text("sodium chloride 0.9%").concentration_mg_ml == pytest.approx(9)


def test_classify_prefers_the_code_and_ignores_other_systems():
    result = classify([("http://example.org/local", "123", "quinine"), (RX, "197391", "baclofen 10 MG Oral Tablet")],
                      "some local name")
    assert result.product.single == "baclofen"
    assert classify([("http://example.org/local", "198741", "x")], None).product is None


def test_unknown_rxnorm_code_falls_back_to_single_ingredient_text_only():
    assert classify([(RX, "999999999", "")], "Gabapentin 300 mg capsule").product.single == "gabapentin"
    assert classify([(RX, "999999999", "")], "potassium chloride / sodium chloride").product is None


def test_medication_with_several_ingredients_is_never_a_single_drug():
    result = classify([(RX, "8591", "potassium chloride")], "potassium chloride", ingredient_count=2,
                      ingredient_texts=("potassium chloride", "sodium chloride"))
    assert result.product is None and result.notes
    fluid = classify([], "PD fluid", ingredient_count=3,
                     ingredient_texts=("magnesium chloride", "dextrose", "peritoneal dialysis solution"))
    assert fluid.product is not None and fluid.product.decoy_fluid
