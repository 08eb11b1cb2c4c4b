"""Magnesium cards of their own: severe hypomagnesemia and hypermagnesemia (policy section 4)."""
from __future__ import annotations

from ..medication_list import magnesium_sources
from ..wording import value_text
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule
from .potassium import _modality_line, _recheck_reason
from .pv_common import ACUTE, MG_LOW, read  # noqa: F401  (MG_LOW: the order rules import it from here)

MG_SEVERE_LOW = Threshold("mmol/L", low=0.20, high=0.60)
MG_HIGH = Threshold("mmol/L", low=1.2, high=3.0)
MG_CRITICAL = Threshold("mmol/L", low=2.0, high=5.0)


@rule("hypomagnesemia-severe", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"severe-tier", "analyte:mg"},
      label="severe low magnesium", thresholds={"mg_severe_low": MG_SEVERE_LOW, **ACUTE})
def hypomagnesemia_severe(ctx: RuleContext) -> list[Finding]:
    """Mg < 0.40 current: critical (IV MgSO4 is appropriate at reduced dose); superseded or old: warning (recheck)."""
    snap, p = ctx.snapshot, ctx.params
    mg = read(ctx, "mg")
    if not mg.below(p["mg_severe_low"]):
        return []
    values = {
        "mg": value_text(mg.result),
        "mg_when": snap.when_text(mg.result),
        "modality_line": _modality_line(
            snap, "On peritoneal dialysis: look for losses (diarrhea, diuretics, proton-pump inhibitors) and "
                  "plan oral or IV replacement with level checks.",
            "On CRRT (especially with citrate): magnesium losses are obligatory; use a replacement protocol or "
            "magnesium-enriched fluids.",
            "For the longer term, raise the dialysate magnesium rather than repeating IV doses."),
        "reason": "",
    }
    if mg.acute(snap.now):
        return [Finding(values=values, indicator="critical")]
    values["reason"] = _recheck_reason(mg, snap)
    return [Finding(values=values, variant="recheck", suggestions=[order_lab("mg")])]


@rule("hypermagnesemia", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"severe-tier", "analyte:mg"},
      label="high magnesium", thresholds={"mg_high": MG_HIGH, "mg_critical": MG_CRITICAL, **ACUTE})
def hypermagnesemia(ctx: RuleContext) -> list[Finding]:
    """Mg >= 3.0 current: critical; Mg >= 2.0: warning; superseded or old: warning with recheck."""
    snap, p = ctx.snapshot, ctx.params
    mg = read(ctx, "mg")
    if not mg.at_or_above(p["mg_high"]):
        return []
    sources = magnesium_sources(snap.medications)
    values = {
        "mg": value_text(mg.result),
        "mg_when": snap.when_text(mg.result),
        "mg_sources": ("Magnesium on the active medication list: " + "; ".join(o.label(60) for o in sources[:3])
                       + ": stop it." if sources else
                       "No magnesium product is on the active medication list; ask about laxatives and antacids."),
        "reason": "",
    }
    if mg.acute(snap.now):
        if mg.at_or_above(p["mg_critical"]):
            return [Finding(values=values, indicator="critical", variant="critical")]
        return [Finding(values=values)]
    if not mg.current or mg.at_or_above(p["mg_critical"]):
        values["reason"] = _recheck_reason(mg, snap)
        return [Finding(values=values, variant="recheck", suggestions=[order_lab("mg")])]
    return [Finding(values=values)]  # current, past the acute window: the chronic advice stands
