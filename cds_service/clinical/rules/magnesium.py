"""Magnesium cards of their own: severe hypomagnesemia and hypermagnesemia (policy section 4)."""
from __future__ import annotations

from ..medication_list import magnesium_sources
from ..wording import value_text
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule
from .potassium import _modality_line
from .pv_common import ACUTE, high_tiers, named_sources, read, recheck_reason
from .pv_common import MG_LOW as MG_LOW  # re-exported: the order rules import it from here

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
        "mg": value_text(mg.lab),
        "mg_when": snap.when_text(mg.lab),
        "modality_line": _modality_line(
            snap, "On peritoneal dialysis: look for losses (diarrhea, diuretics, proton-pump inhibitors) and "
                  "plan oral or IV replacement with level checks.",
            "On CRRT (especially with citrate): magnesium losses are obligatory; use a replacement protocol or "
            "magnesium-enriched fluids.",
            "Given during HD, part of it is removed: give it after the session where possible. For the longer "
            "term, raise the dialysate magnesium rather than repeating IV doses."),
        "reason": "",
    }
    if mg.acute(snap.now):
        return [Finding(values=values, indicator="critical")]
    values["reason"] = recheck_reason(mg)
    return [Finding(values=values, variant="recheck", suggestions=[order_lab("mg")])]


@rule("hypermagnesemia", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"severe-tier", "analyte:mg"},
      label="high magnesium", thresholds={"mg_high": MG_HIGH, "mg_critical": MG_CRITICAL, **ACUTE})
def hypermagnesemia(ctx: RuleContext) -> list[Finding]:
    """Mg >= 3.0 current: critical; Mg >= 2.0: warning; superseded or old: warning with recheck."""
    snap, p = ctx.snapshot, ctx.params
    mg = read(ctx, "mg")
    if not mg.at_or_above(p["mg_high"]):
        return []
    values = {
        "mg": value_text(mg.lab),
        "mg_when": snap.when_text(mg.lab),
        "mg_sources": named_sources(magnesium_sources(snap.medications), "Magnesium on the active medication list",
                                    "No magnesium product is on the active medication list; ask about laxatives "
                                    "and antacids.", tail=": stop it."),
        "reason": "",
    }
    # a current Mg 2.0-2.9 past the acute window keeps the warning: its advice (stop Mg products) still stands
    return high_tiers(ctx, mg, values, p["mg_critical"], "mg", old_current_is_warning=True)
