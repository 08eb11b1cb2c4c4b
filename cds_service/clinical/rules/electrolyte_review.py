"""The consolidated electrolyte card (policy section 4, `electrolyte-review`).

One card per patient-view call for everything the severe-tier cards do not already say: low Mg, a
current low K or ionized Ca, and, for a patient with cramps in the last 7 days, a missing or superseded
Mg, iCa, K or phosphate (one lab order per test). An analyte with a card of its own (hyperkalemia,
hypokalemia-severe, hypocalcemia-severe, hypomagnesemia-severe, hypermagnesemia) is left out. A normal
panel without cramps gives no card, even just after a session.

K drawn within 2 h after a session (early-post) rebounds: a low K of 3.0 or more there does not count as
low (and below 3.0 it has its own card).
"""
from __future__ import annotations

from datetime import timedelta

from ..codes import LOINC_TO_ANALYTE
from ..electrolytes import Reading
from ..timing import ResultClass
from ..wording import class_text, compact_value, value_text
from . import PATIENT_VIEW, REGISTRY, Finding, RuleContext, Threshold, order_lab, rule
from .pv_common import ACUTE, CRAMP_DAYS, ICA_LOW, K_LOW, MG_LOW, cramp_text, read

PANEL = ("mg", "ica", "k", "po4")
NAMES = {"mg": "Magnesium", "ica": "Ionized calcium", "k": "Potassium", "po4": "Phosphate"}
SHORT = {"mg": "Mg", "ica": "iCa", "k": "K", "po4": "PO4"}
OWN_CARD = {"k": "potassium", "ica": "ionized calcium", "mg": "magnesium"}


def _own_card(ctx: RuleContext) -> set[str]:
    """Analytes that a severe-tier card already covers in this call."""
    return {a for a in ("k", "ica", "mg") if ctx.fired_tagged(f"analyte:{a}")}


def _ordered_by_severe(ctx: RuleContext) -> set[str]:
    """Analytes a severe-tier card of this call already offers as a lab order (never repeated here)."""
    return {LOINC_TO_ANALYTE.get(s.params.get("loinc", ""), "") for f in ctx.findings
            if "severe-tier" in REGISTRY[f.rule_id].tags for s in f.suggestions if s.kind == "order-lab"}


def _flag(r: Reading, low: float, high: float) -> str | None:
    if r.result is None:
        return None
    if r.below(low):
        return "low"
    if r.above(high):
        return "high"
    return None


@rule("electrolyte-review", hooks={PATIENT_VIEW}, needs={"labs"}, after={"tag:severe-tier"},
      label="electrolyte review",
      thresholds={"mg_low": MG_LOW, "k_low": K_LOW, "ica_low": ICA_LOW,
                  "mg_high": Threshold("mmol/L", low=0.9, high=2.0),
                  "k_high": Threshold("mmol/L", low=4.5, high=6.5),
                  "ica_high": Threshold("mmol/L", low=1.2, high=1.6),
                  "po4_low": Threshold("mmol/L", low=0.3, high=1.2),
                  "po4_high": Threshold("mmol/L", low=1.0, high=3.0),
                  "cramp_window": CRAMP_DAYS, "shifting_window": Threshold("h", low=0, high=12), **ACUTE})
def electrolyte_review(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    own = _own_card(ctx)
    readings = {a: read(ctx, a) for a in PANEL}
    cramp = cramp_text(ctx, p["cramp_window"])

    def counts(a: str) -> bool:
        """The value still describes the patient for this card (current or early-post; not for a low early K)."""
        return readings[a].current

    low: list[str] = []
    if "mg" not in own and readings["mg"].below(p["mg_low"]):
        low.append("mg")  # chronic: any class inside the look-back
    if "k" not in own and counts("k") and not readings["k"].early_post and readings["k"].below(p["k_low"]):
        low.append("k")
    if "ica" not in own and counts("ica") and readings["ica"].below(p["ica_low"]):
        low.append("ica")

    limits = {"mg": (p["mg_low"], p["mg_high"]), "ica": (p["ica_low"], p["ica_high"]),
              "k": (p["k_low"], p["k_high"]), "po4": (p["po4_low"], p["po4_high"])}
    ordered = _ordered_by_severe(ctx)
    stale = [a for a in PANEL if a not in own and a not in ordered and (readings[a].missing or not counts(a))]
    if not low and not cramp:
        return []
    if not low and cramp and own and not stale:
        return []  # the severe card says it all; nothing else remains to report

    rows, abnormal = [], []
    for a in PANEL:
        r = readings[a]
        if a in own:
            rows.append(f"| {NAMES[a]} | see the separate {OWN_CARD[a]} card | | |")
            continue
        if r.result is None:
            rows.append(f"| {NAMES[a]} | none in the last {p['chronic_window']:g} days | | missing |")
            continue
        flag = _flag(r, *limits[a])
        if a == "k" and r.early_post and flag == "low":
            flag = "low, but within 2 h after a session: rebounds, not counted as low"
        elif flag and (a != "mg" and not counts(a)):
            flag = f"{flag} when drawn"
        if flag in ("low", "high"):
            abnormal.append(a)
        status = class_text(r.when) if snap.session_timed() else "current" if counts(a) else class_text(r.when)
        rows.append(f"| {NAMES[a]} | {value_text(r.lab)}{' **' + flag + '**' if flag else ''} | "
                    f"{snap.when_text(r.lab)} | {status} |")
    table = "\n".join(["| Test | Value | Drawn | Status |", "|---|---|---|---|", *rows])

    suggestions, actions = [], []
    order_for = set(stale) if cramp else set()
    k_or_ca_low = [a for a in ("k", "ica") if a in low]
    comanagement = ""
    if k_or_ca_low:
        names = " and ".join(SHORT[a] for a in k_or_ca_low)
        replacement = {"k": "K", "ica": "Ca"}
        what = " or ".join(replacement[a] for a in k_or_ca_low)
        if "mg" in low:
            comanagement = (f"**Low {names} with low Mg: correct Mg alongside the {what} replacement** (magnesium "
                            "deficiency makes low potassium refractory, Huang & Kuo 2007). Do not hold the "
                            f"{what}.")
            actions.append(f"correct Mg alongside {what}")
        elif readings["mg"].missing and "mg" not in own:
            comanagement = (f"**Low {names} and no magnesium result: measure Mg and correct it if low**, alongside "
                            f"the {what} replacement (Huang & Kuo 2007; the mechanism is renal potassium wasting, "
                            "so the rationale is weaker in anuric patients).")
            order_for.add("mg")
            actions.append("measure Mg")
    dialysate = ""
    if snap.modality == "HD" and "mg" in low:
        low_pre = [r for r in snap.results("mg", within=timedelta(days=p["chronic_window"]))
                   if r.below(p["mg_low"]) is True
                   and snap.classify(r) in (ResultClass.PRE_SESSION, ResultClass.CURRENT)]
        if len(low_pre) >= 2 or (low_pre and cramp):
            pre = all(snap.classify(r) is ResultClass.PRE_SESSION for r in low_pre)
            dialysate = (("Low pre-dialysis Mg " if pre else "Low Mg ") + ("on two occasions" if len(low_pre) >= 2 else "with cramps")
                         + ": consider raising the dialysate Mg, e.g. from 0.5 to 0.75 mmol/L (observational "
                           "evidence: higher dialysate Mg went with fewer cramps and lower mortality).")
            actions.append("consider dialysate Mg 0.75 mmol/L")
    pd_k = ""
    if snap.modality == "PD" and "k" in low:
        pd_k = ("On peritoneal dialysis: oral potassium chloride titrated to K 4–5 mmol/L (Pichitporn 2022 trial: "
                "fewer peritonitis episodes).")
        actions.append("oral KCl to K 4–5")
    if "mg" in low and not k_or_ca_low and not dialysate:
        actions.append("replace Mg and find the cause")
    # every low value says what to do (policy sections 1.3 and 4), not only the co-managed ones
    per_low = []
    if "mg" in low and not k_or_ca_low:
        per_low.append("Low Mg: replace it at a reduced dose with level checks (IV magnesium sulfate at most 20 g "
                       "in 48 h in severe renal insufficiency, label) and look for losses (diarrhea, diuretics, "
                       "proton-pump inhibitors)." + (" On CRRT: use a magnesium replacement protocol."
                                                     if snap.modality == "CRRT" else ""))
    if "k" in low and snap.modality != "PD":
        per_low.append("Low K: " + ("use potassium-containing CRRT replacement and dialysate fluid."
                                    if snap.modality == "CRRT" else
                                    "replace it cautiously (an anuric patient cannot excrete an excess until the "
                                    "next session), review diet and the dialysate K, and recheck K before the next "
                                    "session."))
        if not comanagement:
            actions.append("replace K cautiously")
    if "ica" in low:
        per_low.append("Low iCa: check Mg and phosphate; review the calcimimetic, active vitamin D and a dialysate "
                       "Ca of 1.25–1.50 mmol/L (KDIGO 2017 4.1.4); give IV calcium gluconate if symptomatic or the "
                       "QT is prolonged.")
        if not comanagement:
            actions.append("review calcimimetic, vitamin D and dialysate Ca")
    shifting = ""
    since = snap.hours_since_last_session()
    if snap.modality == "HD" and since is not None and 0 <= since < p["shifting_window"]:
        shifting = (f"The last session ended {since:.1f} h ago: values keep shifting for about "
                    f"{p['shifting_window']:g} h after a session (potassium rebounds).")
    total_ca = ""
    if "ica" not in own and readings["ica"].missing and snap.latest("total_ca") is not None:
        total_ca = ("Total calcium is on file but is not used: act on ionized calcium, which dialysis and pH "
                    "change independently of total calcium.")
        order_for.add("ica")
    order_for -= ordered
    if not low and not order_for and own:
        return []  # the severe card already carries every order; nothing new remains for this card
    for a in PANEL:
        if a in order_for:
            suggestions.append(order_lab(a))
    if suggestions:
        actions.append("order " + ", ".join(SHORT[a] for a in PANEL if a in order_for))

    if low:
        parts = [f"{SHORT[a]} {compact_value(readings[a].lab)}" for a in low]
        problems = "Low " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]) + " mmol/L"
    elif abnormal:
        problems = ", ".join(f"{SHORT[a]} {_flag(readings[a], *limits[a])}" for a in abnormal[:2])
    else:
        problems = ("no abnormal value" if not order_for else
                    ", ".join(SHORT[a] for a in PANEL if a in order_for) + " missing or out of date")
    action = "; ".join(actions[:2]) if actions else "review the table"
    findings_text = []
    if low:
        findings_text.append("Low: " + ", ".join(f"{NAMES[a].lower()} {value_text(readings[a].lab)}"
                                                 for a in low) + ".")
    if order_for:
        findings_text.append("Missing or out of date: " + ", ".join(NAMES[a].lower() for a in PANEL
                                                                    if a in order_for) + " (orders below).")
    cramp_advice = ""
    if cramp and snap.modality in ("HD", "unknown"):
        cramp_advice = ("For a cramp during a session: 50% dextrose (if not diabetic) or a 23.4% sodium chloride bolus "
                        "into the venous line per unit protocol (Canzanello 1991); cooler dialysate may be tried "
                        "(weak evidence). Check the ultrafiltration rate and dry weight.")
    advice = [line for line in (comanagement, *per_low, dialysate, pd_k, shifting, total_ca, cramp_advice) if line]
    if not advice:
        advice = ["Order the tests below and act on the results." if order_for else
                  "No electrolyte value is low: look for other causes of the cramps (fluid removal, dry weight, "
                  "drugs)."]
    values = {
        "problems": problems,
        "action": action,
        "table": table,
        "findings": " ".join(findings_text) or "No low value and nothing missing.",
        "cramps": (cramp[0].upper() + cramp[1:] + "." if cramp else "No cramps or spasm documented in the last "
                   f"{p['cramp_window']:g} days."),
        "advice": "\n".join(f"- {line}" for line in advice),
    }
    indicator = "warning" if (low or abnormal) else "info"
    return [Finding(values=values, indicator=indicator, variant=None if indicator == "warning" else "info",
                    suggestions=suggestions)]
