"""What the patient's medication list (active MedicationRequests, read like draft orders) says to the
patient-view rules: PD solution orders (modality evidence) and aluminium sources. Pure code."""
from __future__ import annotations

import re
from typing import Any, Iterable

# Peritoneal dialysis solutions by name or form (the verified reference lists "Intraperitoneal Solution"
# as the RxNorm dose form of PD fluids).
_PD_TEXT = re.compile(r"peritoneal dialysis|intraperitoneal|\bdianeal\b|\bextraneal\b|\bicodextrin\b"
                      r"|\bphysioneal\b|\bnutrineal\b|\bdelflex\b|\bbalance\b.*peritoneal", re.I)
# Aluminium sources to name on the aluminium card (KDIGO 2017 4.1.7; sucralfate label).
_ALUMINIUM_TEXT = re.compile(r"alumin(i)?um hydroxide|\balgeldrate\b|\bsucralfate\b|\bcarafate\b"
                             r"|alumin(i)?um carbonate|alumin(i)?um", re.I)


def is_pd_solution(order: Any) -> bool:
    """An order for a PD solution: intraperitoneal route, or a PD solution named in its text."""
    if getattr(order, "route", None) == "intraperitoneal":
        return True
    return bool(_PD_TEXT.search(getattr(order, "text", "") or ""))


def aluminium_sources(orders: Iterable[Any]) -> list[Any]:
    """Orders for aluminium-containing drugs (aluminium hydroxide binders or antacids, sucralfate)."""
    return [o for o in orders if _ALUMINIUM_TEXT.search(getattr(o, "text", "") or "")]


# Potassium salts given as potassium (not drugs that are merely potassium salts: losartan potassium, ...).
_POTASSIUM_TEXT = re.compile(r"potassium (chloride|citrate|bicarbonate|phosphates?|acetate|gluconate)|\bkcl\b"
                             r"|\bk-dur\b|\bklor-con\b|\bslow-k\b", re.I)
# Magnesium-containing products: oral salts, laxatives and antacids, parenteral magnesium.
_MAGNESIUM_TEXT = re.compile(r"\bmagnesi(um|a)\b|\bmgso4\b", re.I)
_FLUID_TEXT = re.compile(r"dialys|dialysate|peritoneal|\bcrrt\b|replacement (fluid|solution)|\bprismasol\b"
                         r"|\bphoxillum\b", re.I)


def potassium_sources(orders: Iterable[Any]) -> list[Any]:
    """Active orders that give potassium (to stop or review when K is high); dialysis fluids excluded."""
    return [o for o in orders if _POTASSIUM_TEXT.search(getattr(o, "text", "") or "")
            and not _FLUID_TEXT.search(getattr(o, "text", "") or "") and not is_pd_solution(o)]


def magnesium_sources(orders: Iterable[Any]) -> list[Any]:
    """Active orders that give magnesium (oral salts, laxatives, antacids, IV); dialysis fluids excluded."""
    return [o for o in orders if _MAGNESIUM_TEXT.search(getattr(o, "text", "") or "")
            and not _FLUID_TEXT.search(getattr(o, "text", "") or "") and not is_pd_solution(o)]
