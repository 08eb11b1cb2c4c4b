"""Ionized calcium rule. Total calcium never fires it: it is a different analyte in the lab panel."""
from __future__ import annotations

from datetime import timedelta

from ..wording import draw_context
from . import PATIENT_VIEW, Finding, RuleContext, rule
from .magnesium import ICA_LOW, SHIFTING


@rule("hypocalcemia", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"electrolyte"}, label="low ionized calcium",
      after={"hypomagnesemia"},  # shown below the Mg card: Mg is checked first
      thresholds={"ica_low": ICA_LOW, "shifting_window": SHIFTING})
def hypocalcemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    ica = snap.latest("ica")
    threshold = ctx.params["ica_low"]
    if ica is None or ica.below(threshold) is not True:
        return []
    shifting = timedelta(hours=ctx.params["shifting_window"])
    return [Finding(values={
        "ica": ica.display(), "ica_time": ica.when(snap.now), "threshold": f"{threshold:.2f} mmol/L",
        "ica_context": draw_context(ica, snap.dialysis.last_session_end, shifting),
    })]
