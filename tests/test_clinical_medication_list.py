"""The medication list as the patient-view rules read it: PD solutions, aluminium, potassium and Mg sources."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from cds_service.clinical import medication_list as ml


@dataclass
class Order:
    text: str
    route: str | None = None


@pytest.mark.parametrize("text,route,expected", [
    ("Dianeal PD-2 1.5% dextrose", None, True),
    ("Extraneal (icodextrin) 2 L", None, True),
    ("dextrose 2.5% solution", "intraperitoneal", True),
    ("Peritoneal dialysis solution 4.25%", None, True),
    ("sodium chloride 0.9% 1000 mL", "intravenous", False),   # decoy: IV fluid
    ("Prismasol BGK 4/2.5", None, False),                     # decoy: CRRT fluid is not PD
])
def test_pd_solutions(text, route, expected):
    assert ml.is_pd_solution(Order(text, route)) is expected


def test_aluminium_sources():
    orders = [Order("aluminum hydroxide 320 mg/5 mL suspension"), Order("sucralfate 1 g tablet"),
              Order("aluminium hydroxide / magnesium hydroxide"), Order("sevelamer carbonate 800 mg")]
    assert [o.text for o in ml.aluminium_sources(orders)] == [o.text for o in orders[:3]]


def test_potassium_sources_are_potassium_salts_not_drug_salts_or_fluids():
    orders = [Order("potassium chloride 20 mEq ER tablet"), Order("KCl 10 mEq IV"),
              Order("losartan potassium 50 mg"), Order("Prismasol BGK 4/2.5 (potassium chloride 4 mmol/L)"),
              Order("potassium citrate 10 mEq")]
    assert [o.text for o in ml.potassium_sources(orders)] == [
        "potassium chloride 20 mEq ER tablet", "KCl 10 mEq IV", "potassium citrate 10 mEq"]


def test_magnesium_sources():
    orders = [Order("magnesium oxide 400 mg"), Order("Milk of Magnesia 30 mL"), Order("MgSO4 2 g IV"),
              Order("Dianeal low calcium with magnesium chloride"), Order("calcium acetate 667 mg")]
    assert [o.text for o in ml.magnesium_sources(orders)] == [
        "magnesium oxide 400 mg", "Milk of Magnesia 30 mL", "MgSO4 2 g IV"]
