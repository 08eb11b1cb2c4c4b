"""Dysrhythmia risk: an electrolyte disturbance plus tachycardia or structural heart disease."""
from __future__ import annotations

from datetime import timedelta

from ..symptoms import heart_disease
from . import PATIENT_VIEW, Finding, RuleContext, rule

ELECTROLYTE_RULES = ("hypomagnesemia", "hypokalemia", "hyperkalemia", "hypocalcemia")


@rule("dysrhythmia-risk", hooks={PATIENT_VIEW}, needs={"labs"}, order=50,
      provides={"electrolytes", "cardiac"})
def dysrhythmia_risk(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    fired = [r for r in ELECTROLYTE_RULES if r in ctx.fired]
    if not fired:
        return []
    reasons = []
    window = timedelta(hours=float(p["hr_window_hours"]))
    limit = float(p["hr_high_per_min"])
    fast = [r for r in snap.labs.within("heart_rate", snap.now, window) if r.above(limit) is True]
    if fast:
        top = max(fast, key=lambda r: r.value)
        reasons.append(f"heart rate {top.display()} at {top.when(snap.now)} (above {limit:g}/min in the last "
                       f"{float(p['hr_window_hours']):g} h)")
    for cond in heart_disease(snap.conditions)[:3]:
        reasons.append(f"{cond.label} ({cond.source})")
    if not reasons:
        return []
    labels = {"hypomagnesemia": "low magnesium", "hypokalemia": "low potassium",
              "hyperkalemia": "high potassium", "hypocalcemia": "low ionized calcium"}
    return [Finding("dysrhythmia-risk", values={
        "electrolytes": ", ".join(labels[r] for r in fired),
        "cardiac": "; ".join(reasons),
    })]
