"""Dysrhythmia risk: an electrolyte disturbance plus tachycardia or structural heart disease."""
from __future__ import annotations

from datetime import timedelta

from ..symptoms import heart_disease
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, rule


@rule("dysrhythmia-risk", hooks={PATIENT_VIEW}, needs={"labs"}, after={"tag:electrolyte"},
      thresholds={"hr_high": Threshold("/min", low=80, high=150), "hr_window": Threshold("h", low=1, high=72)})
def dysrhythmia_risk(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    fired = ctx.fired_tagged("electrolyte")
    if not fired:
        return []
    reasons = []
    window = timedelta(hours=p["hr_window"])
    limit = p["hr_high"]
    fast = [r for r in snap.labs.within("heart_rate", snap.now, window) if r.above(limit) is True]
    if fast:
        top = max(fast, key=lambda r: r.value)
        reasons.append(f"heart rate {top.display()} at {top.when(snap.now)} (above {limit:g}/min in the last "
                       f"{p['hr_window']:g} h)")
    for cond in heart_disease(snap.conditions)[:3]:
        reasons.append(f"{cond.label} ({cond.source})")
    if not reasons:
        return []
    return [Finding(values={
        "electrolytes": ", ".join(ctx.label(r) for r in fired),
        "cardiac": "; ".join(reasons),
    })]
