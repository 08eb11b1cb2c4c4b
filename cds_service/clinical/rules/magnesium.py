"""Magnesium rules: low Mg, and Mg co-management when K or ionized Ca is low."""
from __future__ import annotations

from datetime import timedelta

from ..wording import draw_context
from . import PATIENT_VIEW, Finding, RuleContext, order_lab, rule


@rule("hypomagnesemia", hooks={PATIENT_VIEW}, needs={"labs"}, order=10,
      provides={"mg", "mg_time", "threshold", "mg_context"})
def hypomagnesemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    mg = snap.latest("mg")
    threshold = float(ctx.params["mg_low_mmol_l"])
    if mg is None or mg.below(threshold) is not True:
        return []
    shifting = timedelta(hours=float(ctx.params.get("shifting_hours", 5)))
    return [Finding("hypomagnesemia", values={
        "mg": mg.display(),
        "mg_time": mg.when(snap.now),
        "threshold": f"{threshold:.2f} mmol/L",
        "mg_context": draw_context(mg, snap.dialysis.last_session_end, shifting),
    })]


@rule("magnesium-first", hooks={PATIENT_VIEW}, needs={"labs"}, order=20,
      provides={"trigger", "trigger_short", "mg_status", "mg_short"})
def magnesium_first(ctx: RuleContext) -> list[Finding]:
    """K < 3.5 or ionized Ca < 1.12 while Mg is low or unknown: correct Mg alongside (co-management)."""
    snap, p = ctx.snapshot, ctx.params
    k, ica, mg = snap.latest("k"), snap.latest("ica"), snap.latest("mg")
    low = []
    if k is not None and k.below(float(p["k_low_mmol_l"])) is True:
        low.append(("potassium", "K", k))
    if ica is not None and ica.below(float(p["ica_low_mmol_l"])) is True:
        low.append(("ionized calcium", "iCa", ica))
    if not low:
        return []
    mg_low = mg is not None and mg.below(float(p["mg_low_mmol_l"])) is True
    if mg is not None and not mg_low:
        return []  # Mg known and not low: nothing to co-manage
    trigger = "; ".join(f"{name} {r.display()}, taken {r.when(snap.now)}" for name, _s, r in low)
    trigger_short = " and ".join(f"{short} {r.display()}" for _n, short, r in low)
    if mg_low:
        return [Finding("magnesium-first", values={
            "trigger": trigger, "trigger_short": trigger_short,
            "mg_status": f"magnesium is low too: {mg.display()}, taken {mg.when(snap.now)}",
            "mg_short": f"low Mg {mg.display()}",
        })]
    days = int(snap.lookback.days)
    return [Finding("magnesium-first", variant="mg-missing", values={
        "trigger": trigger, "trigger_short": trigger_short,
        "mg_status": f"there is no usable magnesium result in the last {days} days",
        "mg_short": "no recent Mg",
    }, suggestions=[order_lab("mg")])]
