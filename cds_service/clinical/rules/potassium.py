"""Potassium rules: low and high K. Thresholds come from the card files."""
from __future__ import annotations

from datetime import timedelta

from ..wording import draw_context
from . import PATIENT_VIEW, Finding, RuleContext, rule


def _shifting(ctx: RuleContext) -> timedelta:
    return timedelta(hours=float(ctx.params.get("shifting_hours", 5)))


@rule("hypokalemia", hooks={PATIENT_VIEW}, needs={"labs"}, order=12,
      provides={"k", "k_time", "threshold", "k_context"})
def hypokalemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    k = snap.latest("k")
    threshold = float(ctx.params["k_low_mmol_l"])
    if k is None or k.below(threshold) is not True:
        return []
    return [Finding("hypokalemia", values={
        "k": k.display(), "k_time": k.when(snap.now), "threshold": f"{threshold:.1f} mmol/L",
        "k_context": draw_context(k, snap.dialysis.last_session_end, _shifting(ctx)),
    })]


@rule("hyperkalemia", hooks={PATIENT_VIEW}, needs={"labs"}, order=14,
      provides={"k", "k_time", "threshold", "critical", "k_context"})
def hyperkalemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    k = snap.latest("k")
    high = float(ctx.params["k_high_mmol_l"])
    critical = float(ctx.params["k_critical_mmol_l"])
    if k is None or k.above(high) is not True:
        return []
    is_critical = k.at_or_above(critical) is True
    return [Finding("hyperkalemia", indicator="critical" if is_critical else None,
                    variant="critical" if is_critical else None, values={
        "k": k.display(), "k_time": k.when(snap.now), "threshold": f"{high:.1f} mmol/L",
        "critical": f"{critical:.1f} mmol/L",
        "k_context": draw_context(k, snap.dialysis.last_session_end, _shifting(ctx)),
    })]
