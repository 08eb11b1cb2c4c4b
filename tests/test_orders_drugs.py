"""The curated medication table and the display-text fallback."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    "calcium 500 mg",  # salt not stated: a binder or a replacement, so neither
    "gabapentin enacarbil 600 mg ER tablet",
    "dextrose 50% 50 mL",
    "",
    "   ",
])
def test_text_fallback_refuses_unknowns(text):
    assert from_text(text) is None


@pytest.mark.parametrize("text", [
    "potassium chloride / sodium chloride",
    "Nuedexta (dextromethorphan/quinidine) 20-10 mg",
    "dextromethorphan 20 mg + quinidine 10 mg",
    "quinine / mystery herb",
])
def test_text_combinations_are_never_a_single_drug(text):
    product = from_text(text)
    assert product is not None and product.multi and product.single is None
    assert product.principal("potassium") is None


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


def test_unknown_rxnorm_code_falls_back_to_the_text():
    assert classify([(RX, "999999999", "")], "Gabapentin 300 mg capsule").product.single == "gabapentin"
    combo = classify([(RX, "999999999", "")], "potassium chloride / sodium chloride").product
    assert combo.single is None and combo.principal("potassium") is None


def test_medication_with_several_ingredients_is_never_a_single_drug():
    result = classify([(RX, "8591", "potassium chloride")], "potassium chloride", ingredient_count=2,
                      ingredient_texts=("potassium chloride", "sodium chloride"))
    assert result.product.single is None and result.product.principal("potassium") is None and result.notes
    fluid = classify([], "PD fluid", ingredient_count=3,
                     ingredient_texts=("magnesium chloride", "dextrose", "peritoneal dialysis solution"))
    assert fluid.product is not None and fluid.product.decoy_fluid
    unnamed = classify([], "antacid", ingredient_count=2, ingredient_texts=("magnesium hydroxide", ""))
    assert unnamed.product.principal("magnesium") is None  # an ingredient we cannot name: never principal
    antacid = classify([], "antacid", ingredient_count=2,
                       ingredient_texts=("aluminum hydroxide", "magnesium hydroxide"))
    assert antacid.product.principal("magnesium") == "magnesium hydroxide"
    assert antacid.product.principal("aluminum") == "aluminum hydroxide"


# ---------------------------------------------------------------- which products count (policy section 5)

@pytest.mark.parametrize("text,salt", [
    ("Potassium chloride 20 mEq oral", "potassium chloride"),
    ("K-Dur 20 mEq", "potassium chloride"),
    ("Potassium citrate ER 10 mEq tablet", "potassium citrate"),
    ("Urocit-K 15 mEq", "potassium citrate"),
    ("Potassium bicarbonate 25 mEq effervescent tablet", "potassium bicarbonate"),
    ("Effer-K 25 mEq", "potassium bicarbonate"),
    ("potassium bicarbonate / potassium citrate effervescent", "potassium bicarbonate"),
    ("Potassium phosphates 15 mmol IV", "potassium phosphate"),
    ("K-Phos Neutral tablet", "potassium phosphate"),
    ("KCl 10 mEq in 100 mL sterile water IV", "potassium chloride"),
    ("Potassium chloride 20 mEq in 0.9% sodium chloride 100 mL", "potassium chloride"),  # a rider, not a fluid
])
def test_potassium_salts_are_principal(text, salt):
    assert from_text(text).principal("potassium") == salt


@pytest.mark.parametrize("text", [
    "KCl 20 mEq in sodium chloride 0.9% 1000 mL",
    "potassium chloride 20 mEq in dextrose 5% and 0.45% sodium chloride",
    "D5 1/2 NS with 20 mEq KCl",
    "Lactated Ringer's 1000 mL",
    "Plasma-Lyte A 1000 mL",
    "Prismasol BGK 4/2.5 replacement fluid",
    "Dianeal low calcium 2.5% dextrose peritoneal dialysis solution",
    "Renal multivitamin with minerals",
    "Multivitamin with minerals (contains magnesium 50 mg, potassium 80 mg)",
    "Calcium 600 mg / vitamin D3 / magnesium / zinc tablet",
    "Suprep bowel prep kit",  # potassium sulfate is no K supplement
    "TPN with potassium 40 mEq/L",
])
def test_fluids_and_supplements_are_not_potassium(text):
    product = from_text(text)
    assert product is None or product.principal("potassium") is None


@pytest.mark.parametrize("text,salt", [
    ("Milk of Magnesia 30 mL at bedtime", "magnesium hydroxide"),
    ("magnesium hydroxide 400 mg/5 mL suspension", "magnesium hydroxide"),
    ("Mag-Ox 400 mg tablet", "magnesium oxide"),
    ("Magnesium citrate 300 mL oral solution", "magnesium citrate"),
    ("Epsom salt 15 g oral", "magnesium sulfate"),
    ("Suprep bowel prep kit", "magnesium sulfate"),
    ("Maalox suspension 30 mL", "magnesium hydroxide"),
    ("aluminum hydroxide 40 MG/ML / magnesium hydroxide 40 MG/ML / simethicone 4 MG/ML Oral Suspension",
     "magnesium hydroxide"),
    ("Rolaids chewable", "magnesium hydroxide"),
    ("Gaviscon extra strength liquid", "magnesium carbonate"),
    ("Slow-Mag 64 mg tablet", "magnesium chloride"),
    ("Magnesium sulfate 2 g in 50 mL dextrose 5%", "magnesium sulfate"),  # a diluent is no second ingredient
])
def test_magnesium_products_are_principal(text, salt):
    assert from_text(text).principal("magnesium") == salt


@pytest.mark.parametrize("text", [
    "Multivitamin with minerals (contains magnesium 50 mg)",
    "Nephro-Vite Rx",
    "Calcium 600 mg / vitamin D3 / magnesium / zinc tablet",
    "Centrum Silver tablet",
    "calcium chloride / dextrose / magnesium chloride / sodium chloride / sodium lactate Intraperitoneal Solution",
    "CRRT replacement fluid with magnesium 0.75 mmol/L",
    "Phoxillum BK4/2.5",
    "Dialysate bath Mg 0.5 K 2 Ca 1.25",
])
def test_supplements_and_fluids_are_not_magnesium(text):
    product = from_text(text)
    assert product is None or product.principal("magnesium") is None


@pytest.mark.parametrize("text,drug", [
    ("Aluminum hydroxide 640 mg capsule", "aluminum hydroxide"),
    ("Aluminum hydroxide 500 mg tablet", "aluminum hydroxide"),
    ("AlternaGel 600 mg/5 mL", "aluminum hydroxide"),
    ("Maalox suspension 30 mL", "aluminum hydroxide"),
    ("Sucralfate 1 g tablet", "sucralfate"),
    ("Carafate 1 g/10 mL suspension", "sucralfate"),
])
def test_aluminum_drugs(text, drug):
    assert from_text(text).principal("aluminum") == drug


@pytest.mark.parametrize("text", ["Sevelamer carbonate 800 mg", "Calcium acetate 667 mg", "Lanthanum 1000 mg chewable"])
def test_other_phosphate_binders_are_not_aluminum(text):
    product = from_text(text)
    assert product.principal("aluminum") is None and product.single in drugs.PHOSPHATE_BINDERS


def test_magnesium_sulfate_equivalents():
    assert drugs.magnesium_sulfate_mg(2000, "mg", "magnesium sulfate") == pytest.approx(2000)
    assert drugs.magnesium_sulfate_mg(8.12, "mEq", "magnesium sulfate") == pytest.approx(1000, rel=0.002)
    assert drugs.magnesium_sulfate_mg(203.3, "mg", "magnesium chloride") == pytest.approx(246.47, rel=0.001)
    assert drugs.magnesium_sulfate_mg(1, "mL", "magnesium sulfate") is None


@given(st.lists(st.sampled_from(sorted(drugs.MAGNESIUM_SALTS | drugs.POTASSIUM_SALTS | {
    "simethicone", "aluminum hydroxide", "calcium carbonate", "sodium chloride", "dextrose", "citric acid",
    "sucralfate", "zinc", "vitamin D", "sodium lactate", "unknown herb"})), min_size=1, max_size=5, unique=True))
@settings(max_examples=200, deadline=None)
def test_principal_ingredient_properties(names):
    """Whatever is combined: a principal ingredient is one of the product's own ingredients and belongs to
    its group; a vitamin or trace mineral, or an ingredient nobody can name, makes nothing principal."""
    text = " / ".join(names)
    product = from_text(text)
    if product is None:
        return
    for group, members in (("magnesium", drugs.MAGNESIUM_SALTS), ("potassium", drugs.POTASSIUM_SALTS),
                           ("aluminum", drugs.ALUMINUM_DRUGS)):
        found = product.principal(group)
        if found is not None:
            assert found in members and found in product.ingredients
            assert not product.decoy_fluid and not product.supplement
            assert "unknown" not in product.ingredients
    if any(n in ("zinc", "vitamin D") for n in names):
        assert all(product.principal(g) is None for g in ("magnesium", "potassium", "aluminum"))
    if "unknown herb" in names:
        assert all(product.principal(g) is None for g in ("magnesium", "potassium", "aluminum"))
