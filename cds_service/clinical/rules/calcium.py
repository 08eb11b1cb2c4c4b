"""Ionized calcium rule. Total calcium never fires it: it is a different analyte in the lab panel."""
from __future__ import annotations

from datetime import timedelta

from ..wording import draw_context
from . import PATIENT_VIEW, Finding, RuleContext, rule


@rule("hypocalcemia", hooks={PATIENT_VIEW}, needs={"labs"}, order=16,
      provides={"ica", "ica_time", "threshold", "ica_context"})
def hypocalcemia(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    ica = snap.latest("ica")
    threshold = float(ctx.params["ica_low_mmol_l"])
    if ica is None or ica.below(threshold) is not True:
        return []
    shifting = timedelta(hours=float(ctx.params.get("shifting_hours", 5)))
    return [Finding("hypocalcemia", values={
        "ica": ica.display(), "ica_time": ica.when(snap.now), "threshold": f"{threshold:.2f} mmol/L",
        "ica_context": draw_context(ica, snap.dialysis.last_session_end, shifting),
    })]
