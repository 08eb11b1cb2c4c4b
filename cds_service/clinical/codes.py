"""Terminology used by the rules, taken from the project's verified code reference.

Only codes listed in the reference ("clinical-codes-and-safety", sections 1 and 4)
are used. Urine and red-cell codes are deliberately absent from every serum
value set: a urine magnesium is never a serum magnesium.
"""
from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# The one code system for every card's source.topic in this product.
TOPIC_SYSTEM = "https://cds.dialysis-cramps.example/rules"


# ---------------------------------------------------------------- analytes
# analyte -> {LOINC code: property}, property "mass" (mg/dL family) or "molar" (mmol/L family)
ANALYTE_LOINC: dict[str, dict[str, str]] = {
    "mg": {  # serum/plasma and blood (total) magnesium. 2597-3 (RBC) and 2598-1 (urine) excluded.
        # 73573-8 (ionized Mg, pH-adjusted) is excluded too: ionized Mg runs about 0.45-0.60 mmol/L,
        # so the 0.70 mmol/L total-Mg target would flag nearly every ionized result as low.
        "19123-9": "mass", "2601-3": "molar", "2593-2": "molar", "21377-7": "mass",
    },
    "ica": {  # ionized calcium only; total calcium is a separate analyte
        "1994-3": "molar", "1995-0": "molar", "17864-0": "mass", "17863-2": "mass", "38230-9": "mass",
        "12180-6": "molar", "47596-2": "molar", "47598-8": "molar", "19072-8": "molar", "53139-2": "molar",
        "59472-1": "mass", "59473-9": "mass",
        # 83064-6 (blood drawn from the CRRT circuit) is circuit blood, not the patient's: excluded.
    },
    "k": {  # 2824-1 (RBC) excluded
        "2823-3": "molar", "6298-4": "molar", "32713-0": "molar", "39789-3": "molar", "39790-1": "molar",
        "41656-0": "molar", "51618-7": "molar", "29349-8": "molar", "22760-3": "mass", "75940-7": "mass",
    },
    "po4": {"2777-1": "mass", "14879-1": "molar", "24519-1": "molar"},
    "total_ca": {"17861-6": "mass", "2000-8": "molar", "29265-6": "molar", "1996-8": "molar", "49765-1": "mass"},
    "albumin": {"1751-7": "mass", "61151-7": "mass", "61152-5": "mass"},
    "aluminum": {"5574-9": "mass"},
    "heart_rate": {"8867-4": "rate"},
    # Body weight (VSAC "Body Weight" value set 2.16.840.1.113762.1.4.1045.159): 29463-7 Body weight,
    # 3141-9 Body weight Measured, 8347-7 Body weight Measured --pre dialysis, 8344-4 Body weight
    # Measured --post dialysis. The last two say which side of the session they were taken on.
    "weight": {"29463-7": "mass", "3141-9": "mass", "8347-7": "mass", "8344-4": "mass"},
}

# Pre-/post-dialysis potassium codes, kept so that cards can say which one was drawn.
K_PRE_DIALYSIS = "51618-7"
K_POST_DIALYSIS = "29349-8"
WEIGHT_PRE_DIALYSIS = "8347-7"
WEIGHT_POST_DIALYSIS = "8344-4"
# Codes that say a value was taken before / after the dialysis session (whatever its timestamp).
PRE_DIALYSIS_CODES = frozenset({K_PRE_DIALYSIS, WEIGHT_PRE_DIALYSIS})
POST_DIALYSIS_CODES = frozenset({K_POST_DIALYSIS, WEIGHT_POST_DIALYSIS})

ANALYTE_LABEL = {
    "mg": "Magnesium", "ica": "Ionized calcium", "k": "Potassium", "po4": "Phosphate",
    "total_ca": "Total calcium", "albumin": "Albumin", "aluminum": "Aluminum", "heart_rate": "Heart rate",
    "weight": "Body weight",
}

# Codes to order when suggesting a missing test (serum/plasma, molar where usual).
ORDERABLE_LOINC = {
    "mg": ("19123-9", "Magnesium [Mass/volume] in Serum or Plasma"),
    "ica": ("1995-0", "Calcium.ionized [Moles/volume] in Serum or Plasma"),
    "k": ("2823-3", "Potassium [Moles/volume] in Serum or Plasma"),
    "po4": ("2777-1", "Phosphate [Mass/volume] in Serum or Plasma"),
    "aluminum": ("5574-9", "Aluminum [Mass/volume] in Serum or Plasma"),
}

LOINC_TO_ANALYTE: dict[str, str] = {code: analyte for analyte, codes in ANALYTE_LOINC.items() for code in codes}

# Units: canonical unit per analyte and multiplicative factors into it.
CANONICAL_UNIT = {
    "mg": "mmol/L", "ica": "mmol/L", "k": "mmol/L", "po4": "mmol/L", "total_ca": "mmol/L",
    "albumin": "g/L", "aluminum": "ug/L", "heart_rate": "/min", "weight": "kg",
}

# Factors from the reference's unit table (atomic weights Mg 24.305, Ca 40.078, K 39.098, P 30.974).
_MG_DL = {"mg": 0.4114, "ica": 0.2495, "total_ca": 0.2495, "k": 0.2558, "po4": 0.3229}
_MEQ_DIVISOR = {"mg": 2.0, "ica": 2.0, "total_ca": 2.0, "k": 1.0}  # mEq/L -> mmol/L; phosphate is pH dependent

# Unit spellings, normalised to a small set of keys.
_UNIT_ALIASES = {
    "mmol/l": "mmol/L", "mmol/liter": "mmol/L", "mmol per l": "mmol/L",
    "mg/dl": "mg/dL", "mg/100ml": "mg/dL", "mg%": "mg/dL",
    "meq/l": "meq/L", "m[eq]/l": "meq/L", "meq/liter": "meq/L",
    "mg/l": "mg/L",
    "umol/l": "umol/L", "µmol/l": "umol/L", "μmol/l": "umol/L",
    "ug/l": "ug/L", "µg/l": "ug/L", "μg/l": "ug/L", "ng/ml": "ug/L", "mcg/l": "ug/L",
    "g/dl": "g/dL", "g/l": "g/L",
    "/min": "/min", "{beats}/min": "/min", "{beat}/min": "/min", "beats/min": "/min", "beats/minute": "/min",
    "bpm": "/min", "1/min": "/min",
    "kg": "kg", "g": "g", "[lb_av]": "lb", "lb": "lb", "lbs": "lb",
}


def normalise_unit_key(unit: str | None) -> str | None:
    if not unit:
        return None
    return _UNIT_ALIASES.get(unit.strip().lower().replace(" ", ""), None) or _UNIT_ALIASES.get(unit.strip().lower())


def conversion_factor(analyte: str, unit_key: str | None) -> float | None:
    """Factor taking a value in ``unit_key`` to the analyte's canonical unit, or None when unknown."""
    if unit_key is None:
        return None
    canonical = CANONICAL_UNIT[analyte]
    if analyte in ("mg", "ica", "k", "po4", "total_ca"):
        if unit_key == "mmol/L":
            return 1.0
        if unit_key == "mg/dL":
            return _MG_DL[analyte]
        if unit_key == "mg/L":
            return _MG_DL[analyte] / 10.0
        if unit_key == "umol/L":
            return 0.001
        if unit_key == "meq/L" and analyte in _MEQ_DIVISOR:
            return 1.0 / _MEQ_DIVISOR[analyte]
        return None
    if analyte == "albumin":
        return {"g/dL": 10.0, "g/L": 1.0}.get(unit_key)
    if analyte == "aluminum":
        return {"ug/L": 1.0, "umol/L": 26.98}.get(unit_key)
    if analyte == "heart_rate":
        return 1.0 if unit_key == canonical else None
    if analyte == "weight":
        return {"kg": 1.0, "g": 0.001, "lb": 0.45359237}.get(unit_key)
    return None


# Conventional display unit per analyte for cards (mg/dL shown beside mmol/L for Mg).
MMOL_TO_MG_DL = {"mg": 2.4305, "ica": 4.008, "total_ca": 4.008, "k": 3.91, "po4": 3.097}

# ---------------------------------------------------------------- dialysis
DIALYSIS_CONDITIONS = {
    (SNOMED, "236435004"),  # End stage renal failure on dialysis
    (SNOMED, "714152005"),  # CKD stage 5 on dialysis
    (SNOMED, "105502003"),  # Dependence on renal dialysis
    (ICD10CM, "Z99.2"),     # Dependence on renal dialysis
}
ESRD_ONLY_CONDITIONS = {(SNOMED, "46177005"), (ICD10CM, "N18.6")}  # not enough on their own
TRANSPLANT_CONDITIONS = {
    (SNOMED, "236436003"),  # ESRF with renal transplant (reference, section 4)
    (ICD10CM, "Z94.0"),     # Kidney transplant status
}

ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

# Dialysis procedures by modality (policy section 3; codes from the verified reference, section 4).
HD_PROCEDURES = {
    (SNOMED, "302497006"),  # Hemodialysis
    (SNOMED, "233575001"),  # Intermittent hemodialysis
    (SNOMED, "34897002"),   # Hemodialysis maintenance in hospital
    (SNOMED, "67970008"),   # Hemodialysis maintenance at home
    (CPT, "90935"), (CPT, "90937"),  # Hemodialysis procedure (single / repeated evaluation)
    (ICD10PCS, "5A1D70Z"),  # Performance of urinary filtration, intermittent, < 6 h/day
}
PD_PROCEDURES = {(SNOMED, "71192002")}  # Peritoneal dialysis (procedure; also seen on problem lists)
CRRT_PROCEDURES = {
    (SNOMED, "714749008"),  # Continuous renal replacement therapy
    (ICD10PCS, "5A1D90Z"),  # Performance of urinary filtration, continuous, > 18 h/day
}
# "Dialysis other than hemodialysis" (PD or CRRT): PD when there is PD evidence, CRRT when continuous.
NON_HD_PROCEDURES = {(CPT, "90945"), (CPT, "90947")}
# Modality not stated: an intermittent session (start and end, a few hours) counts as HD.
GENERIC_DIALYSIS_PROCEDURES = {
    (SNOMED, "108241001"),  # Dialysis procedure
    (SNOMED, "265764009"),  # Renal dialysis
    (HCPCS, "G0257"),       # Unscheduled or emergency dialysis treatment for an ESRD patient
    (ICD10PCS, "5A1D80Z"),  # Performance of urinary filtration, prolonged intermittent, 6-18 h/day
}
DIALYSIS_PROCEDURES = (HD_PROCEDURES | PD_PROCEDURES | CRRT_PROCEDURES | NON_HD_PROCEDURES
                       | GENERIC_DIALYSIS_PROCEDURES)
# Encounter.type codes that make an encounter a dialysis encounter: the same procedure codes.
DIALYSIS_ENCOUNTER_TYPES = DIALYSIS_PROCEDURES
PD_CONDITIONS = PD_PROCEDURES  # 71192002 recorded as a Condition means the patient is on PD

# ---------------------------------------------------------------- symptoms and comorbidities
CRAMP_CODES = {(SNOMED, "55300003"), (SNOMED, "45352006"), (ICD10CM, "R25.2")}

# Heart disease that makes electrolyte shifts dysrhythmogenic (SNOMED and ICD-10-CM parents).
HEART_DISEASE_CODES = {
    (SNOMED, "84114007"),   # Heart failure
    (SNOMED, "42343007"),   # Congestive heart failure
    (SNOMED, "88805009"),   # Chronic congestive heart failure (as Synthea codes it)
    (SNOMED, "85898001"),   # Cardiomyopathy
    (SNOMED, "53741008"),   # Coronary arteriosclerosis
    (SNOMED, "414545008"),  # Ischemic heart disease
    (SNOMED, "22298006"),   # Myocardial infarction
    (SNOMED, "399211009"),  # History of myocardial infarction
    (SNOMED, "368009"),     # Heart valve disorder
    (SNOMED, "40445007"),   # Heart valve regurgitation
    (SNOMED, "44241007"),   # Heart valve stenosis
}
# I50 heart failure, I42/I43 cardiomyopathy, I20-I25 ischaemic (coronary) heart disease,
# I11.0 / I13.0 / I13.2 hypertensive heart (and kidney) disease with heart failure.
# I05-I08 rheumatic and I34-I37 non-rheumatic valve disease.
HEART_DISEASE_ICD_PREFIXES = ("I50", "I42", "I43", "I20", "I21", "I22", "I24", "I25", "I11.0", "I13.0", "I13.2",
                              "I05", "I06", "I07", "I08", "I34", "I35", "I36", "I37")

# Neurological signs that raise aluminium neurotoxicity (dialysis encephalopathy). The seed names
# speech disturbance, personality change, myoclonic jerks and dialysis encephalopathy. Codes were
# checked against public terminology files (see cards/aluminum-toxicity.yaml and
# docs/clinical-rules.md for where each was found); two earlier guesses (247778009, 231526006)
# could not be found in any source and were replaced.
NEURO_SIGN_CODES = {
    (SNOMED, "17450006"),   # Myoclonus (finding)
    (SNOMED, "29164008"),   # Disturbance in speech (finding)
    (SNOMED, "102943000"),  # Personality change (finding)
    (SNOMED, "9345005"),    # Dialysis dementia (disorder), i.e. dialysis encephalopathy
    (ICD10CM, "G25.3"),     # Myoclonus
    (ICD10CM, "R47.9"),     # Unspecified speech disturbances
    (ICD10CM, "F07.0"),     # Personality change due to known physiological condition
    (ICD10CM, "G92.8"),     # Other toxic encephalopathy (ICD-10-CM has no dialysis-encephalopathy code)
    (SNOMED, "52448006"),   # Dementia (disorder)
    (SNOMED, "91175000"),   # Seizure (finding)
    (ICD10CM, "F03.90"),    # Unspecified dementia
    (ICD10CM, "R56.9"),     # Unspecified convulsions
}
# Tetany (hypocalcemia-severe, with cramps and spasm). SNOMED has no code checked for it; ICD-10-CM R29.0.
TETANY_CODES = {(ICD10CM, "R29.0")}

# A documented ECG change (Condition, or Observation code or coded value): a pre-session value then still
# counts as current (policy section 2). 102594003 Electrocardiogram abnormal (finding); 55930002 ST-T wave
# changes on electrocardiogram (finding): both in HL7 Lithuania's EKG interpretation value set, 102594003
# also in CDC NEDSS case forms.
ECG_CHANGE_CODES = {(SNOMED, "102594003"), (SNOMED, "55930002")}
# LOINC 8601-7 EKG impression: an ECG report whose coded value is one of the codes above (C-CDA examples).
ECG_REPORT_CODES = {(LOINC, "8601-7")}

# Observation.valueCodeableConcept saying that a symptom was looked for and found absent.
SNOMED_ABSENT = "2667000"

_CONDITION_CODES_READ: frozenset[tuple[str, str]] = frozenset()  # filled in below, once every set exists


def pairs(concept: Any) -> set[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept or a list of them: fhir.resources models, or raw JSON.

    Raw JSON is read leniently (a ``coding`` object instead of a list, blanks around codes), so a raw
    filter keeps at least what the validated models would give.
    """
    if concept is None:
        return set()
    if isinstance(concept, list):
        out: set[tuple[str, str]] = set()
        for item in concept:
            out |= pairs(item)
        return out
    out = set()
    if isinstance(concept, dict):
        codings = concept.get("coding")
        for coding in [codings] if isinstance(codings, dict) else codings if isinstance(codings, list) else []:
            if isinstance(coding, dict) and coding.get("code") not in (None, ""):
                out.add((str(coding.get("system") or "").strip(), str(coding["code"]).strip()))
        return out
    for coding in getattr(concept, "coding", None) or []:
        if coding.code:
            out.add((str(coding.system or ""), str(coding.code)))
    return out


def condition_read_by_rules(found: set[tuple[str, str]]) -> bool:
    """True when a Condition with these (system, code) pairs can matter to any rule: dialysis, ESRD or
    transplant status, cramps and spasms, neurological signs, heart disease. Others are never read."""
    if found & _CONDITION_CODES_READ:
        return True
    return any(system == ICD10CM and code.startswith(HEART_DISEASE_ICD_PREFIXES) for system, code in found)


_CONDITION_CODES_READ = frozenset(DIALYSIS_CONDITIONS | ESRD_ONLY_CONDITIONS | TRANSPLANT_CONDITIONS | CRAMP_CODES
                                  | PD_CONDITIONS | ECG_CHANGE_CODES | TETANY_CODES
                                  | NEURO_SIGN_CODES | HEART_DISEASE_CODES)
