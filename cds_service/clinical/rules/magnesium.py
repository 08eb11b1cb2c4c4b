"""Magnesium rules: low Mg, and Mg co-management when K or ionized Ca is low."""
from __future__ import annotations

from datetime import timedelta

from ..wording import draw_context
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule

MG_LOW = Threshold("mmol/L", low=0.40, high=1.00)
K_LOW = Threshold("mmol/L", low=2.5, high=4.5)
ICA_LOW = Threshold("mmol/L", low=0.80, high=1.30)
SHIFTING = Threshold("h", low=0, high=12)


@rule("hypomagnesemia", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"electrolyte"}, label="low magnesium",
      thresholds={"mg_low": MG_LOW, "shifting_window": SHIFTING})
def hypomagnesemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    mg = snap.latest("mg")
    threshold = ctx.params["mg_low"]
    if mg is None or mg.below(threshold) is not True:
        return []
    shifting = timedelta(hours=ctx.params["shifting_window"])
    return [Finding(values={
        "mg": mg.display(),
        "mg_time": mg.when(snap.now),
        "threshold": f"{threshold:.2f} mmol/L",
        "mg_context": draw_context(mg, snap.dialysis.last_session_end, shifting),
    })]


@rule("magnesium-first", hooks={PATIENT_VIEW}, needs={"labs"}, label="low K or ionized Ca with low or unknown Mg",
      after={"hypokalemia", "hypocalcemia"},  # the co-management card follows the cards of the values it combines
      thresholds={"k_low": K_LOW, "ica_low": ICA_LOW, "mg_low": MG_LOW})
def magnesium_first(ctx: RuleContext) -> list[Finding]:
    """K < 3.5 or ionized Ca < 1.12 while Mg is low or unknown: correct Mg alongside (co-management)."""
    snap, p = ctx.snapshot, ctx.params
    k, ica, mg = snap.latest("k"), snap.latest("ica"), snap.latest("mg")
    low = []
    if k is not None and k.below(p["k_low"]) is True:
        low.append(("potassium", "K", k))
    if ica is not None and ica.below(p["ica_low"]) is True:
        low.append(("ionized calcium", "iCa", ica))
    if not low:
        return []
    mg_low = mg is not None and mg.below(p["mg_low"]) is True
    if mg is not None and not mg_low:
        return []  # Mg known and not low: nothing to co-manage
    trigger = "; ".join(f"{name} {r.display()}, taken {r.when(snap.now)}" for name, _s, r in low)
    trigger_short = " and ".join(f"{short} {r.display()}" for _n, short, r in low)
    if mg_low:
        return [Finding(values={
            "trigger": trigger, "trigger_short": trigger_short,
            "mg_status": f"magnesium is low too: {mg.display()}, taken {mg.when(snap.now)}",
            "mg_short": f"low Mg {mg.display()}",
        })]
    days = int(snap.lookback.days)
    return [Finding(variant="mg-missing", values={
        "trigger": trigger, "trigger_short": trigger_short,
        "mg_status": f"there is no usable magnesium result in the last {days} days",
        "mg_short": "no recent Mg",
    }, suggestions=[order_lab("mg")])]
