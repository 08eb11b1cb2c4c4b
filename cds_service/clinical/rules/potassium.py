"""Potassium rules: low and high K. Thresholds come from the card files."""
from __future__ import annotations

from datetime import timedelta

from ..wording import draw_context
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, rule
from .magnesium import K_LOW, SHIFTING


def _shifting(ctx: RuleContext) -> timedelta:
    return timedelta(hours=ctx.params["shifting_window"])


@rule("hypokalemia", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"electrolyte"}, label="low potassium",
      after={"hypomagnesemia"},  # shown below the Mg card: Mg is checked first
      thresholds={"k_low": K_LOW, "shifting_window": SHIFTING})
def hypokalemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    k = snap.latest("k")
    threshold = ctx.params["k_low"]
    if k is None or k.below(threshold) is not True:
        return []
    return [Finding(values={
        "k": k.display(), "k_time": k.when(snap.now), "threshold": f"{threshold:.1f} mmol/L",
        "k_context": draw_context(k, snap.dialysis.last_session_end, _shifting(ctx)),
    })]


@rule("hyperkalemia", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"electrolyte"}, label="high potassium",
      thresholds={"k_high": Threshold("mmol/L", low=4.5, high=7.0),
                  "k_critical": Threshold("mmol/L", low=5.5, high=8.0), "shifting_window": SHIFTING})
def hyperkalemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    k = snap.latest("k")
    high = ctx.params["k_high"]
    critical = ctx.params["k_critical"]
    if k is None or k.above(high) is not True:
        return []
    is_critical = k.at_or_above(critical) is True
    return [Finding(indicator="critical" if is_critical else None,
                    variant="critical" if is_critical else None, values={
        "k": k.display(), "k_time": k.when(snap.now), "threshold": f"{high:.1f} mmol/L",
        "critical": f"{critical:.1f} mmol/L",
        "k_context": draw_context(k, snap.dialysis.last_session_end, _shifting(ctx)),
    })]
