"""Curated medication table for the order rules: which draft order is which drug.

Built from the verified code reference (section 3, RxNorm ingredients and common clinical
drugs). For each RxNorm code the table records the ingredient(s), the dose form, whether the
product can only be given IV (premixed bags), and whether it is intrathecal. Ingredient names
are canonical: salts that the rules treat alike keep their own name (magnesium oxide is not
magnesium sulfate) and are grouped by the sets below.

What counts as a drug of interest (clinical policy section 5):
- Dialysis, PD and CRRT fluids, maintenance IV fluids and parenteral nutrition are never matched
  (``Product.decoy_fluid``): they contain Mg, K and Ca salts but are not a supplement of them.
- Vitamin and multi-mineral supplements are never matched (``Product.supplement``): there Mg, K or
  Ca is not the principal active ingredient.
- An ingredient is *principal* (``principal()``) when it is the only one, or when every other
  ingredient is a known partner of it: antacid and laxative combinations (aluminum/magnesium
  hydroxide with or without simethicone, calcium carbonate/magnesium hydroxide, magnesium bowel
  preparations) and potassium salts mixed with other potassium salts or citric acid. A diluent
  named after "in" ("magnesium sulfate 2 g in 50 mL dextrose 5%") is not an ingredient, except that
  potassium in a sodium chloride or dextrose fluid of more than 250 mL (or of unstated volume) is
  a maintenance fluid.
- "Given IV" / route is decided from ``dosageInstruction.route`` (see ``clinical.orders``); the dose
  form is only a hint, used when no route is given.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

RXNORM_SYSTEMS = frozenset({"http://www.nlm.nih.gov/research/umls/rxnorm", "urn:oid:2.16.840.1.113883.6.88"})

# ---------------------------------------------------------------- ingredient groups used by the rules
MAGNESIUM_SALTS = frozenset({
    "magnesium sulfate", "magnesium oxide", "magnesium chloride", "magnesium hydroxide", "magnesium citrate",
    "magnesium carbonate", "magnesium gluconate", "magnesium lactate", "magnesium trisilicate",
    "magnesium",  # "magnesium": salt not stated (text fallback only)
})
# Magnesium salts that can be given parenterally (IV or IM).
PARENTERAL_MAGNESIUM = frozenset({"magnesium sulfate", "magnesium chloride", "magnesium"})
# Magnesium salts that exist only as oral products (laxatives, antacids, supplements).
ORAL_ONLY_MAGNESIUM = MAGNESIUM_SALTS - PARENTERAL_MAGNESIUM
POTASSIUM_SALTS = frozenset({"potassium chloride", "potassium phosphate", "potassium citrate", "potassium bicarbonate",
                             "potassium"})  # "potassium": salt not stated (text fallback only)
POTASSIUM_REPLACEMENT = POTASSIUM_SALTS  # kept for callers that name the older group
CALCIUM_REPLACEMENT = frozenset({"calcium gluconate", "calcium chloride"})
PHOSPHATE_BINDERS = frozenset({"calcium carbonate", "calcium acetate", "sevelamer", "lanthanum carbonate",
                               "ferric citrate", "sucroferric oxyhydroxide"})  # never calcium replacement
ALUMINUM_DRUGS = frozenset({"aluminum hydroxide", "aluminum carbonate", "sucralfate"})
QUININE_LIKE = frozenset({"quinine", "quinidine"})
# Citrate salts (KDOQI 2003: patients taking aluminum should not receive citrate salts at the same time).
CITRATE_SALTS = frozenset({"potassium citrate", "sodium citrate", "calcium citrate", "magnesium citrate",
                           "ferric citrate", "citric acid"})

# Partners with which an ingredient stays principal in a combination product.
_ANTACID_PARTNERS = frozenset({"aluminum hydroxide", "aluminum carbonate", "simethicone", "calcium carbonate",
                               "alginic acid", "sodium alginate", "sodium bicarbonate"})
_PARTNERS: dict[str, frozenset[str]] = {
    "magnesium": _ANTACID_PARTNERS | MAGNESIUM_SALTS | {"citric acid", "sodium picosulfate", "sodium sulfate",
                                                        "potassium sulfate"},
    "potassium": POTASSIUM_SALTS | {"citric acid", "sodium citrate", "sodium phosphate"},
    "aluminum": _ANTACID_PARTNERS | MAGNESIUM_SALTS,
}
_GROUPS: dict[str, frozenset[str]] = {"magnesium": MAGNESIUM_SALTS, "potassium": POTASSIUM_SALTS,
                                      "aluminum": ALUMINUM_DRUGS}


@dataclass(frozen=True)
class Strength:
    """Amount of the (single) ingredient per dose unit: per "each" (tablet, capsule) or per "mL"."""
    amount: float
    unit: str  # "mg" or "mEq"
    per: str  # "each" or "mL"


@dataclass(frozen=True)
class Product:
    name: str
    ingredients: frozenset[str]
    form: str | None = None  # RxNorm dose form, e.g. "Oral Tablet", "Injection"
    iv_only: bool = False  # a premixed bag: no route given still means IV
    intrathecal: bool = False
    decoy_fluid: bool = False  # dialysate / PD / CRRT / maintenance fluid / parenteral nutrition
    supplement: bool = False  # a vitamin or multi-mineral supplement
    strength: Strength | None = None
    volume_ml: float | None = None
    code: str | None = None  # RxNorm code when classified by code
    source: str = "rxnorm"  # "rxnorm" or "text"

    @property
    def multi(self) -> bool:
        return len(self.ingredients) > 1

    @property
    def single(self) -> str | None:
        """The ingredient of a single-ingredient product (None for combinations and unknowns)."""
        return next(iter(self.ingredients)) if len(self.ingredients) == 1 else None

    @property
    def oral(self) -> bool:
        form = self.form
        return form is not None and any(word in form for word in ("Oral", "Chewable", "Enema", "Granules"))

    @property
    def injectable(self) -> bool:
        form = self.form
        return form is not None and any(word in form for word in ("Inject", "Syringe", "Infusion"))

    @property
    def concentration_mg_ml(self) -> float | None:
        if self.strength and self.strength.unit == "mg" and self.strength.per == "mL":
            return self.strength.amount
        return None

    def principal(self, group: str) -> str | None:
        """The ingredient of ``group`` ("magnesium", "potassium", "aluminum") that is a principal active
        ingredient of this product, or None (fluids, supplements, and combinations with a non-partner)."""
        if self.decoy_fluid or self.supplement:
            return None
        members = self.ingredients & _GROUPS[group]
        if not members:
            return None
        if any(i not in _PARTNERS[group] and i not in _GROUPS[group] for i in self.ingredients):
            return None
        return sorted(members)[0]


# ---------------------------------------------------------------- the table
# (RxCUI, name as in RxNorm, flags). Flags: "premix" = IV-only bag per the reference;
# "bag" = IV-only by inference (a diluted solution in a >= 50 mL container cannot be given
# IM or orally; the reference lists these volumes but does not mark them premix);
# "intrathecal" = the reference lists the product under intrathecal injections.
_SCD_ROWS: tuple[tuple[str, str, str], ...] = (
    # magnesium sulfate, injection (50% is labelled IM and IV: route decides)
    ("1658221", "2 ML magnesium sulfate 500 MG/ML Injection", ""),
    ("1658244", "10 ML magnesium sulfate 500 MG/ML Injection", ""),
    ("1658236", "20 ML magnesium sulfate 500 MG/ML Injection", ""),
    ("1658245", "50 ML magnesium sulfate 500 MG/ML Injection", ""),
    ("829762", "10 ML magnesium sulfate 500 MG/ML Prefilled Syringe", ""),
    ("1658259", "50 ML magnesium sulfate 40 MG/ML Injection", "premix"),
    ("1658262", "100 ML magnesium sulfate 40 MG/ML Injection", "premix"),
    ("1658264", "500 ML magnesium sulfate 40 MG/ML Injection", "bag"),
    ("1658265", "1000 ML magnesium sulfate 40 MG/ML Injection", "bag"),
    ("829734", "50 ML magnesium sulfate 80 MG/ML Injection", "bag"),
    ("829757", "100 ML magnesium sulfate 10 MG/ML Injection", "bag"),
    # magnesium sulfate and oxide, oral
    ("1053346", "magnesium sulfate 1000 MG Granules for Oral Solution", ""),
    ("1666549", "magnesium sulfate 100 MG Oral Capsule", ""),
    ("198741", "magnesium oxide 400 MG Oral Tablet", ""),
    ("252430", "magnesium oxide 400 MG Oral Capsule", ""),
    ("311430", "magnesium oxide 420 MG Oral Tablet", ""),
    ("311429", "magnesium oxide 250 MG Oral Tablet", ""),
    ("311431", "magnesium oxide 500 MG Oral Tablet", ""),
    ("314113", "magnesium oxide 200 MG Oral Tablet", ""),
    # potassium chloride, oral
    ("628953", "potassium chloride 10 MEQ Extended Release Oral Tablet", ""),
    ("1801298", "Microencapsulated potassium chloride 10 MEQ Extended Release Oral Tablet", ""),
    ("312504", "potassium chloride 10 MEQ Extended Release Oral Capsule", ""),
    ("198116", "potassium chloride 20 MEQ Extended Release Oral Tablet", ""),
    ("1801294", "Microencapsulated potassium chloride 20 MEQ Extended Release Oral Tablet", ""),
    ("312529", "potassium chloride 8 MEQ Extended Release Oral Tablet", ""),
    ("315183", "potassium chloride 8 MEQ Extended Release Oral Capsule", ""),
    ("312515", "potassium chloride 1.33 MEQ/ML Oral Solution", ""),
    ("314182", "potassium chloride 2.67 MEQ/ML Oral Solution", ""),
    ("1867544", "potassium chloride 20 MEQ Powder for Oral Solution", ""),
    # potassium chloride, IV
    ("204520", "potassium chloride 2 MEQ/ML Injectable Solution", ""),
    ("1860132", "5 ML potassium chloride 2 MEQ/ML Injection", ""),
    ("1860136", "10 ML potassium chloride 2 MEQ/ML Injection", ""),
    ("1860139", "20 ML potassium chloride 2 MEQ/ML Injection", ""),
    ("312507", "100 ML potassium chloride 0.1 MEQ/ML Injection", "premix"),
    ("1860241", "50 ML potassium chloride 0.2 MEQ/ML Injection", "premix"),
    ("1860239", "100 ML potassium chloride 0.2 MEQ/ML Injection", "premix"),
    ("1860466", "50 ML potassium chloride 0.4 MEQ/ML Injection", "premix"),
    ("1860463", "100 ML potassium chloride 0.4 MEQ/ML Injection", "premix"),
    # calcium gluconate
    ("197435", "calcium gluconate 100 MG/ML Injectable Solution", ""),
    ("1668250", "10 ML calcium gluconate 100 MG/ML Injection", ""),
    ("1668248", "50 ML calcium gluconate 100 MG/ML Injection", ""),
    ("2117610", "50 ML calcium gluconate 20 MG/ML Injection", "premix"),
    ("2117608", "100 ML calcium gluconate 20 MG/ML Injection", "premix"),
    ("2562542", "100 ML calcium gluconate 10 MG/ML Injection", "bag"),
    ("198546", "calcium gluconate 500 MG Oral Tablet", ""),
    ("198547", "calcium gluconate 650 MG Oral Tablet", ""),
    # calcium chloride, IV
    ("828525", "10 ML calcium chloride 100 MG/ML Injection", ""),
    ("828527", "10 ML calcium chloride 100 MG/ML Prefilled Syringe", ""),
    # calcium carbonate, oral (a phosphate binder here)
    ("308907", "calcium carbonate 500 MG Chewable Tablet", ""),
    ("308915", "calcium carbonate 750 MG Chewable Tablet", ""),
    ("308892", "calcium carbonate 1000 MG Chewable Tablet", ""),
    ("282465", "calcium carbonate 1250 MG Oral Tablet", ""),
    ("237420", "calcium carbonate 1500 MG Oral Tablet", ""),
    # baclofen, oral
    ("430902", "baclofen 5 MG Oral Tablet", ""),
    ("197391", "baclofen 10 MG Oral Tablet", ""),
    ("197392", "baclofen 20 MG Oral Tablet", ""),
    ("2679605", "baclofen 15 MG Oral Tablet", ""),
    ("250976", "baclofen 1 MG/ML Oral Solution", ""),
    ("2667941", "baclofen 2 MG/ML Oral Solution", ""),
    ("2593376", "baclofen 5 MG/ML Oral Suspension", ""),
    ("2586599", "baclofen 5 MG Oral Granules", ""),
    ("2586589", "baclofen 10 MG Oral Granules", ""),
    ("2586596", "baclofen 20 MG Oral Granules", ""),
    # baclofen, intrathecal
    ("308516", "1 ML baclofen 0.05 MG/ML Injection", "intrathecal"),
    ("1047437", "1 ML baclofen 0.05 MG/ML Prefilled Syringe", "intrathecal"),
    ("308517", "20 ML baclofen 0.5 MG/ML Injection", "intrathecal"),
    ("1300890", "20 ML baclofen 1 MG/ML Injection", "intrathecal"),
    ("1666613", "20 ML baclofen 2 MG/ML Injection", "intrathecal"),
    ("1666622", "5 ML baclofen 2 MG/ML Injection", "intrathecal"),
    ("1369783", "20 ML baclofen 0.5 MG/ML Prefilled Syringe", "intrathecal"),
    ("1369787", "20 ML baclofen 1 MG/ML Prefilled Syringe", "intrathecal"),
    ("1369791", "20 ML baclofen 2 MG/ML Prefilled Syringe", "intrathecal"),
    # gabapentin, oral
    ("310430", "gabapentin 100 MG Oral Capsule", ""),
    ("310431", "gabapentin 300 MG Oral Capsule", ""),
    ("310432", "gabapentin 400 MG Oral Capsule", ""),
    ("476673", "gabapentin 100 MG Oral Tablet", ""),
    ("476679", "gabapentin 400 MG Oral Tablet", ""),
    ("310433", "gabapentin 600 MG Oral Tablet", ""),
    ("310434", "gabapentin 800 MG Oral Tablet", ""),
    # quinine and quinidine, oral
    ("997010", "quinine sulfate 324 MG Oral Capsule", ""),
    ("852877", "quinidine sulfate 200 MG Oral Tablet", ""),
    ("852913", "quinidine sulfate 300 MG Oral Tablet", ""),
    ("852920", "quinidine gluconate 324 MG Extended Release Oral Tablet", ""),
    # sodium chloride, concentrated injection (23.4% = 234 mg/mL; 14.6% listed so it is not mistaken for 23.4%)
    ("313016", "sodium chloride 234 MG/ML Injectable Solution", ""),
    ("1807571", "30 ML sodium chloride 234 MG/ML Injection", ""),
    ("1807578", "20 ML sodium chloride 146 MG/ML Injection", ""),
    ("1807580", "40 ML sodium chloride 146 MG/ML Injection", ""),
)

# Products the name parser does not cover: (RxCUI, name, ingredients, form, flags)
_OTHER_ROWS: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    # potassium phosphates injection: dibasic + monobasic salts of one replacement, so one ingredient here
    ("1928567", "5 ML potassium phosphates (236/224 MG/ML) Injection", ("potassium phosphate",), "Injection", ""),
    ("1928569", "15 ML potassium phosphates (236/224 MG/ML) Injection", ("potassium phosphate",), "Injection", ""),
    ("1928570", "50 ML potassium phosphates (236/224 MG/ML) Injection", ("potassium phosphate",), "Injection", ""),
    ("2667657", "potassium phosphates (236/224 MG/ML) Injectable Solution", ("potassium phosphate",),
     "Injectable Solution", ""),
    ("2205512", "15 ML potassium phosphates (300/175 MG/ML) Injection", ("potassium phosphate",), "Injection", ""),
    ("2716829", "100 ML potassium phosphates (11.8/11.2 MG/ML) Injection", ("potassium phosphate",),
     "Injection", "bag"),
    ("2688947", "250 ML potassium phosphates (4.72/4.48 MG/ML) Injection", ("potassium phosphate",),
     "Injection", "bag"),
    # combinations the rules must recognise as such
    ("1040054", "dextromethorphan hydrobromide 20 MG / quinidine sulfate 10 MG Oral Capsule",
     ("dextromethorphan", "quinidine"), "Oral Capsule", ""),
    ("214792", "potassium chloride / sodium chloride", ("potassium chloride", "sodium chloride"), "", "fluid"),
)

# Ingredient-level codes (TTY IN, and PIN rolled up to their ingredient). No dose form: route decides.
_INGREDIENT_ROWS: tuple[tuple[str, str], ...] = (
    ("6585", "magnesium sulfate"), ("6582", "magnesium oxide"), ("6579", "magnesium chloride"),
    ("6581", "magnesium hydroxide"), ("52356", "magnesium citrate"), ("29155", "magnesium carbonate"),
    ("8591", "potassium chloride"), ("34322", "potassium phosphate"), ("55019", "potassium phosphate"),
    ("54993", "potassium citrate"),
    ("1908", "calcium gluconate"), ("1901", "calcium chloride"), ("1897", "calcium carbonate"),
    ("214342", "calcium acetate"),
    ("1292", "baclofen"), ("25480", "gabapentin"),
    ("9068", "quinidine"), ("9069", "quinidine"), ("35220", "quinidine"),
    ("9071", "quinine"), ("9075", "quinine"),
    ("9863", "sodium chloride"),
)

_NAME = re.compile(
    r"^(?:(?P<volume>\d+(?:\.\d+)?) ML )?(?:Microencapsulated )?(?P<ingredient>[a-z][a-z ]*?)"
    r" (?P<amount>\d+(?:\.\d+)?) (?P<unit>MG|MEQ)(?P<per>/ML)? (?P<form>[A-Z].*)$")
# Salt names in RxNorm clinical drugs that the rules treat as their ingredient.
_SALT_TO_INGREDIENT = {"quinine sulfate": "quinine", "quinidine sulfate": "quinidine",
                       "quinidine gluconate": "quinidine"}


def parse_scd_name(name: str) -> tuple[str, Strength, str, float | None]:
    """(ingredient, strength, dose form, volume in mL) from a single-ingredient RxNorm SCD name."""
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"not a single-ingredient SCD name: {name!r}")
    ingredient = _SALT_TO_INGREDIENT.get(match["ingredient"], match["ingredient"])
    strength = Strength(float(match["amount"]), "mg" if match["unit"] == "MG" else "mEq",
                        "mL" if match["per"] else "each")
    volume = float(match["volume"]) if match["volume"] else None
    return ingredient, strength, match["form"], volume


def _build() -> dict[str, Product]:
    table: dict[str, Product] = {}
    for code, name, flags in _SCD_ROWS:
        ingredient, strength, form, volume = parse_scd_name(name)
        table[code] = Product(name=name, ingredients=frozenset({ingredient}), form=form,
                              iv_only=flags in ("premix", "bag"), intrathecal=flags == "intrathecal",
                              strength=strength, volume_ml=volume, code=code)
    for code, name, ingredients, form, flags in _OTHER_ROWS:
        table[code] = Product(name=name, ingredients=frozenset(ingredients), form=form or None,
                              iv_only=flags in ("premix", "bag"), decoy_fluid=flags == "fluid", code=code)
    for code, ingredient in _INGREDIENT_ROWS:
        table[code] = Product(name=ingredient, ingredients=frozenset({ingredient}), code=code)
    return table


TABLE: dict[str, Product] = _build()


def by_code(code: str | None) -> Product | None:
    return TABLE.get(str(code).strip()) if code else None


# ---------------------------------------------------------------- display-text fallback
# Words that make a text a dialysis / replacement / maintenance fluid: never an electrolyte replacement.
_FLUID_WORDS = re.compile(
    r"dialys|dialysate|peritoneal|intraperitoneal|\bcrrt\b|\bcvvh|h(a)?emofiltration|h(a)?emodiafiltration"
    r"|replacement (fluid|solution)|\bprismasol|\bphoxillum|\bdianeal|\bextraneal|\bphysioneal|\bnutrineal"
    r"|\bbath\b|ringer|hartmann|plasma-?lyte|normosol|isolyte|maintenance|parenteral nutrition|\btpn\b|\bppn\b"
    r"|\bd5\s*(1/2|0\.45|0\.9|\.45|\.9)\s*ns\b|\bd5\s*(1/2\s*)?ns\b", re.I)
# Words that make a text a vitamin or multi-mineral supplement.
_SUPPLEMENT_WORDS = re.compile(
    r"vitamin|multivit|\bmvi\b|\bmultiple vitamins?\b|prenatal|with minerals|\bminerals\b|centrum|nephro-?vite"
    r"|rena-?vite|renal caps|\bb[- ]?complex\b|ascorbic|cholecalciferol|ergocalciferol|folic acid|\bfolate\b"
    r"|cyanocobalamin|thiamine|riboflavin|niacin|pyridoxine|biotin|tocopherol|retinol|\bzinc\b|\biron\b"
    r"|ferrous|\bcopper\b|cupric|selenium|manganese|chromium|iodine|\bboron\b|trace elements?", re.I)
# Brand and common names that name their ingredients only implicitly.
_BRANDS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple((re.compile(p, re.I), names) for p, names in (
    (r"milk of magnesia|\bphillips'?\b", ("magnesium hydroxide",)),
    (r"epsom salts?", ("magnesium sulfate",)),
    (r"\bmag-?ox\b", ("magnesium oxide",)),
    (r"\bslow-?mag\b|\bmag-?tab\b", ("magnesium chloride",)),
    (r"\bcitroma\b", ("magnesium citrate",)),
    (r"\bmaalox\b|\bmylanta\b", ("aluminum hydroxide", "magnesium hydroxide", "simethicone")),
    (r"\bgaviscon\b", ("aluminum hydroxide", "magnesium carbonate")),
    (r"\brolaids\b", ("calcium carbonate", "magnesium hydroxide")),
    (r"\bamphojel\b|\balternagel\b", ("aluminum hydroxide",)),
    (r"\bcarafate\b", ("sucralfate",)),
    (r"\bsuprep\b", ("sodium sulfate", "potassium sulfate", "magnesium sulfate")),
    (r"\bprepopik\b|\bclenpiq\b", ("sodium picosulfate", "magnesium oxide", "citric acid")),
    (r"\bk-?dur\b|\bklor-?con(?!/ef)\b|\bk-?tab\b|\bmicro-?k\b", ("potassium chloride",)),
    (r"\burocit-?k\b", ("potassium citrate",)),
    (r"\beffer-?k\b|\bklor-?con/ef\b|\bk-?lyte\b", ("potassium bicarbonate", "potassium citrate")),
    (r"\bk-?phos neutral\b", ("potassium phosphate", "sodium phosphate")),
    (r"\bk-?phos\b", ("potassium phosphate",)),
    (r"\bqualaquin\b", ("quinine",)),
    (r"\bnuedexta\b", ("dextromethorphan", "quinidine")),
    (r"\blioresal\b|\bozobax\b|\blyvispah\b|\bfleqsuvy\b|\bgablofen\b", ("baclofen",)),
    (r"\bneurontin\b|\bgralise\b", ("gabapentin",)),
    (r"\bhorizant\b", ("gabapentin enacarbil",)),
))
# Most specific first; a match consumes its text so "magnesium sulfate" is not also "magnesium".
_TEXT_INGREDIENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.I), name) for p, name in (
    (r"\bmagnesium sul(ph|f)ate\b|\bmgso4\b|\bmg sul(ph|f)ate\b", "magnesium sulfate"),
    (r"\bmagnesium oxide\b|\bmg oxide\b", "magnesium oxide"),
    (r"\bmagnesium chloride\b|\bmgcl2?\b", "magnesium chloride"),
    (r"\bmagnesium hydroxide\b|\bmg\(oh\)2\b", "magnesium hydroxide"),
    (r"\bmag(nesium)? citrate\b", "magnesium citrate"),
    (r"\bmagnesium carbonate\b", "magnesium carbonate"),
    (r"\bmagnesium gluconate\b", "magnesium gluconate"),
    (r"\bmagnesium (l-)?lactate\b", "magnesium lactate"),
    (r"\bmagnesium trisilicate\b", "magnesium trisilicate"),
    (r"\bpotassium chloride\b|\bkcl\b", "potassium chloride"),
    (r"\bpotassium (acid )?phosphates?\b|\b(mono|di)basic potassium phosphate\b", "potassium phosphate"),
    (r"\bpotassium citrate\b|\bk[- ]citrate\b", "potassium citrate"),
    (r"\bpotassium bicarbonate\b|\bkhco3\b", "potassium bicarbonate"),
    (r"\bpotassium sul(ph|f)ate\b", "potassium sulfate"),
    (r"\bcalcium gluconate\b", "calcium gluconate"),
    (r"\bcalcium chloride\b|\bcacl2?\b", "calcium chloride"),
    (r"\bcalcium carbonate\b", "calcium carbonate"),
    (r"\bcalcium acetate\b", "calcium acetate"),
    (r"\bcalcium citrate\b", "calcium citrate"),
    (r"\balumin(i)?um hydroxide\b|\bal\(oh\)3\b", "aluminum hydroxide"),
    (r"\balumin(i)?um carbonate\b", "aluminum carbonate"),
    (r"\bsucralfate\b", "sucralfate"),
    (r"\bsimethicone\b", "simethicone"),
    (r"\balginic acid\b", "alginic acid"),
    (r"\bsodium alginate\b", "sodium alginate"),
    (r"\bsevelamer( carbonate| hydrochloride)?\b", "sevelamer"),
    (r"\blanthanum( carbonate)?\b", "lanthanum carbonate"),
    (r"\bferric citrate\b", "ferric citrate"),
    (r"\bsucroferric oxyhydroxide\b", "sucroferric oxyhydroxide"),
    (r"\bcitric acid\b", "citric acid"),
    (r"\bsodium picosulfate\b", "sodium picosulfate"),
    (r"\bsodium sul(ph|f)ate\b", "sodium sulfate"),
    (r"\bsodium citrate\b", "sodium citrate"),
    (r"\bsodium (acid )?phosphates?\b", "sodium phosphate"),
    (r"\bsodium bicarbonate\b", "sodium bicarbonate"),
    (r"\bbaclofen\b", "baclofen"),
    (r"\bgabapentin enacarbil\b", "gabapentin enacarbil"),  # a different product; named so it is not gabapentin
    (r"\bgabapentin\b", "gabapentin"),
    (r"\bquinine( sul(ph|f)ate)?\b", "quinine"),
    (r"\bquinidine( sul(ph|f)ate| gluconate)?\b", "quinidine"),
    (r"\bdextromethorphan( hydrobromide)?\b", "dextromethorphan"),
    (r"\bsodium chloride\b|\bnacl\b|\bsaline\b", "sodium chloride"),
    (r"\bdextrose\b|\bglucose\b", "dextrose"),
    (r"\bsodium (lactate|acetate)\b", "sodium salt"),
    (r"\bmagnesium\b", "magnesium"),
    (r"\bpotassium\b", "potassium"),
    (r"\bcalcium\b", "calcium"),  # salt not stated: no rule uses it (could be a binder or a replacement)
))
# Texts that name no drug the rules need, or not one drug: never classified as such.
_NOT_A_DRUG = frozenset({"dextrose", "sodium salt", "calcium", "gabapentin enacarbil"})
_IV_TEXT = re.compile(r"\bintravenous\b|\biv\b|\bivpb\b|\bpremix(ed)?\b|\binfusion\b", re.I)
_INJECTION_TEXT = re.compile(r"\binject(ion|able)\b|\binj\b|\bvial\b|\bsyringe\b|\bampoule\b|\bampule\b", re.I)
_INTRATHECAL_TEXT = re.compile(r"intrathecal|\bgablofen\b", re.I)
_STRENGTH_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|meq)\s*(/\s*ml)?\b", re.I)
_PERCENT_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_FORM_TEXT = ((re.compile(r"\btab(let)?s?\b", re.I), "Oral Tablet"), (re.compile(r"\bcap(sule)?s?\b", re.I),
              "Oral Capsule"), (re.compile(r"\bchew", re.I), "Chewable Tablet"),
              (re.compile(r"\boral\b|\bp\.?o\.?\b|\bsuspension\b|\bliquid\b|\bgranules\b|\bpowder\b|\belixir\b"
                          r"|\bsyrup\b", re.I), "Oral"))
# A diluent after "in": "KCl 10 mEq in 100 mL water", "magnesium sulfate 2 g in dextrose 5% 50 mL".
_DILUENT = re.compile(r"\b(?:in|diluted in|added to)\s+(?P<rest>.*\b(?:water|dextrose|d5w|d5|sodium chloride|"
                      r"saline|\bns\b|nacl)\b.*)$", re.I)
_SALINE_OR_DEXTROSE = re.compile(r"dextrose|d5w|\bd5\b|sodium chloride|saline|\bns\b|nacl", re.I)
_VOLUME_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(ml|l)\b", re.I)
_LEADING_VOLUME = re.compile(r"^(\d+(?:\.\d+)?)\s*ml\b|\b(\d+(?:\.\d+)?)\s*ml\s+(?:single-dose\s+)?"
                             r"(?:vial|bag|syringe|ampoule|ampule|bottle|premix)\b", re.I)
# Strength and unit expressions removed before a text is split into its parts ("mg/mL" is not "A / B").
_AMOUNTS = re.compile(r"\d+(?:\.\d+)?\s*(?:mg|meq|mmol|mcg|ug|g|ml|l|%|unt|units?|iu)?(?:\s*/\s*(?:\d+\s*)?"
                      r"(?:ml|l|tab\w*|cap\w*|dose))?\b", re.I)
_PART_SPLIT = re.compile(r"\s*/\s*|\s*\+\s*|,|&|\band\b|\bwith\b", re.I)
_FILLER = re.compile(r"\b(oral|tablets?|tabs?|capsules?|caps?|chewable|extended|release|er|sr|cr|dr|xr|solution|"
                     r"suspension|liquid|granules|powder|for|injection|injectable|inj|vial|bag|syringe|prefilled|"
                     r"premix(ed)?|iv|im|po|intravenous|intramuscular|bolus|push|infusion|effervescent|"
                     r"microencapsulated|concentrate|hypertonic|elemental|as|of|the|a|daily|once|twice|bid|tid|"
                     r"qid|qd|nightly|at|night|bedtime|hs|prn|every|q\d+h|hours?|over|min(utes)?|dose|strength|"
                     r"regular|extra|maximum|original|plus|ds|generic|brand|usp|hcl|hydrochloride|sulfate|"
                     r"sulphate|gluconate|salt|[a-z])\b|[()\[\]\-.:;#*]", re.I)


def text_ingredients(text: str) -> list[str]:
    """Canonical ingredient names found in a display text, most specific first, each text span used once."""
    remaining = text
    found: list[str] = []
    for pattern, names in _BRANDS:
        if pattern.search(remaining):
            found.extend(n for n in names if n not in found)
            remaining = pattern.sub(" ", remaining)
    for pattern, name in _TEXT_INGREDIENTS:
        if pattern.search(remaining):
            if name not in found:
                found.append(name)
            remaining = pattern.sub(" ", remaining)
    return found


def _has_unknown_part(text: str) -> bool:
    """True when a combination text ("A / B", "A + B", "A and B") has a part that names no known ingredient."""
    parts = _PART_SPLIT.split(_AMOUNTS.sub(" ", text))
    if len(parts) < 2:
        return False
    for part in parts:
        if not part or not part.strip():
            continue
        if text_ingredients(part):
            continue
        if _FILLER.sub(" ", part).strip():
            return True
    return False


def from_text(text: str | None) -> Product | None:
    """Classify by display text; None when the text names no ingredient the rules know.

    Dialysate / PD / CRRT / maintenance fluids come back as a decoy fluid with no ingredients, vitamin and
    multi-mineral supplements as a supplement. A combination keeps all its ingredients (``principal()``
    decides whether one of them counts); a part that names no known ingredient adds "unknown".
    """
    if not text or not text.strip():
        return None
    clean = " ".join(text.split())
    if _FLUID_WORDS.search(clean):
        return Product(name=clean, ingredients=frozenset(), decoy_fluid=True, source="text")
    main, diluent_volume, diluent = clean, None, None
    diluted = _DILUENT.search(clean)
    if diluted:
        main, diluent = clean[: diluted.start()], diluted["rest"]
        volumes = [float(v) * (1000.0 if u.lower() == "l" else 1.0) for v, u in _VOLUME_TEXT.findall(diluent)]
        diluent_volume = max(volumes) if volumes else None
    found = text_ingredients(main)
    if diluent is not None and not found:
        found = [i for i in text_ingredients(diluent) if i not in ("sodium chloride", "dextrose")]
    if not found or all(i in _NOT_A_DRUG for i in found):
        return None
    ingredients = set(found)
    if _has_unknown_part(main):
        ingredients.add("unknown")
    supplement = bool(_SUPPLEMENT_WORDS.search(clean))
    # Potassium in a saline or dextrose fluid of more than 250 mL (or of unstated volume) is a maintenance fluid.
    if (diluent is not None and ingredients & POTASSIUM_SALTS and _SALINE_OR_DEXTROSE.search(diluent)
            and (diluent_volume is None or diluent_volume > 250)):
        return Product(name=clean, ingredients=frozenset(), decoy_fluid=True, source="text")
    single = next(iter(ingredients)) if len(ingredients) == 1 else None
    strength = None
    form = next((name for pattern, name in _FORM_TEXT if pattern.search(clean)), None)
    injection = bool(_INJECTION_TEXT.search(clean))
    if injection and form in (None, "Oral"):
        form = "Injection"
    if single is not None:
        percent = _PERCENT_TEXT.search(main)
        amounts = _STRENGTH_TEXT.findall(main)
        if percent:
            strength = Strength(float(percent.group(1)) * 10.0, "mg", "mL")  # g/100 mL -> mg/mL
        elif len(amounts) == 1 and amounts[0][2]:
            strength = Strength(float(amounts[0][0]), "mg" if amounts[0][1].lower() == "mg" else "mEq", "mL")
        elif len(amounts) == 1 and form in ("Oral Tablet", "Oral Capsule", "Chewable Tablet"):
            strength = Strength(float(amounts[0][0]), "mg" if amounts[0][1].lower() == "mg" else "mEq", "each")
    leading = _LEADING_VOLUME.search(clean)
    volume = float(leading.group(1) or leading.group(2)) if leading else diluent_volume
    return Product(name=clean, ingredients=frozenset(ingredients), form=form,
                   iv_only=bool(_IV_TEXT.search(clean)) and form in (None, "Injection"),
                   intrathecal=bool(_INTRATHECAL_TEXT.search(clean)), supplement=supplement, strength=strength,
                   volume_ml=volume, source="text")


@dataclass(frozen=True)
class Classification:
    product: Product | None
    notes: tuple[str, ...] = field(default_factory=tuple)


def classify(codings: list[tuple[str, str, str]], text: str | None, ingredient_count: int | None = None,
             ingredient_texts: tuple[str, ...] = ()) -> Classification:
    """The product a medication names.

    codings: (system, code, display) of the medication's CodeableConcept; text: its text.
    ingredient_count: number of Medication.ingredient entries when the medication is a Medication
    resource (more than one makes it a combination whatever its code or text says).
    """
    notes: list[str] = []
    for system, code, _display in codings:
        if system in RXNORM_SYSTEMS:
            product = by_code(code)
            if product is not None:
                if ingredient_count and ingredient_count > 1 and not product.multi:
                    notes.append(f"RxNorm {code} is single-ingredient but the Medication lists "
                                 f"{ingredient_count} ingredients; treated as a combination")
                    return Classification(_combination(text, ingredient_texts, ingredient_count), tuple(notes))
                return Classification(product, tuple(notes))
    if ingredient_count and ingredient_count > 1:
        notes.append("Medication with several ingredients: classified as a combination")
        return Classification(_combination(text, ingredient_texts, ingredient_count), tuple(notes))
    candidates = [text] + [display for _s, _c, display in codings if display]
    for candidate in candidates:
        product = from_text(candidate)
        if product is not None:
            notes.append(f"classified by text: {candidate!r}")
            return Classification(product, tuple(notes))
    return Classification(None, tuple(notes))


def _combination(text: str | None, ingredient_texts: tuple[str, ...], count: int) -> Product:
    """A Medication listing several ingredients: each one named (or "unknown"), never a single drug."""
    every = (text or "", *ingredient_texts)
    if any(_FLUID_WORDS.search(t) for t in every):
        return Product(name=text or "", ingredients=frozenset(), decoy_fluid=True, source="text")
    found: set[str] = set()
    named = 0
    for item in ingredient_texts:
        names = text_ingredients(item)
        if names:
            named += 1
            found.update(names)
    if named < count:
        found.add("unknown")
    if len(found) < 2:
        found.add("unknown")
    return Product(name=text or " / ".join(ingredient_texts), ingredients=frozenset(found),
                   supplement=any(_SUPPLEMENT_WORDS.search(t) for t in every), source="text")


# ---------------------------------------------------------------- magnesium amounts
# Molar masses (g/mol) of the hydrated salts in injections: the label's grams are grams of magnesium sulfate
# (heptahydrate, as in "magnesium sulfate 500 MG/ML"), so other amounts are expressed as that equivalent.
_MGSO4_7H2O = 246.47
_SALT_MOLAR_MASS = {"magnesium sulfate": _MGSO4_7H2O, "magnesium chloride": 203.30, "magnesium": _MGSO4_7H2O}


def magnesium_sulfate_mg(amount: float, unit: str, ingredient: str | None) -> float | None:
    """An amount of a parenteral magnesium salt as mg of magnesium sulfate heptahydrate (None if not convertible).

    mEq of magnesium: 2 mEq per mmol. mg of magnesium chloride (hexahydrate): by molar mass.
    """
    if unit == "mEq":
        return amount / 2.0 * _MGSO4_7H2O
    if unit == "mg":
        molar = _SALT_MOLAR_MASS.get(ingredient or "magnesium")
        return None if molar is None else amount / molar * _MGSO4_7H2O
    return None
