"""Magnesium rules."""
from __future__ import annotations

from . import PATIENT_VIEW, Finding, RuleContext, rule


@rule("hypomagnesemia", hooks={PATIENT_VIEW}, needs={"labs"}, order=10,
      provides={"mg", "mg_time", "threshold"})
def hypomagnesemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    mg = snap.latest("mg")
    threshold = float(ctx.params["mg_low_mmol_l"])
    if mg is None or mg.below(threshold) is not True:
        return []
    return [Finding("hypomagnesemia", values={
        "mg": mg.display(),
        "mg_time": mg.when(snap.now),
        "threshold": f"{threshold:.2f} mmol/L",
    })]
