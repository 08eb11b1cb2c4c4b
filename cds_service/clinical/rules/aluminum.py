"""Aluminium toxicity: KDOQI action levels (the project's reference overrides the seed's 150-350 ug/L)."""
from __future__ import annotations

from datetime import timedelta

from ..symptoms import neuro_signs
from . import PATIENT_VIEW, Finding, RuleContext, order_lab, rule


@rule("aluminum-toxicity", hooks={PATIENT_VIEW}, needs={"aluminum"}, order=40,
      provides={"al", "al_time", "action", "signs", "window"})
def aluminum_toxicity(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    window = timedelta(days=float(p["result_window_days"]))
    al = snap.labs.latest("aluminum", snap.now, window)
    signs = neuro_signs(snap, timedelta(days=float(p["sign_window_days"])))
    signs_text = "; ".join(d.describe(snap.now) for d in signs[:3]) if signs else "none coded"
    window_text = f"{float(p['result_window_days']):g} days"
    if al is None:
        if snap.data_missing("aluminum") or not signs:
            return []
        return [Finding("aluminum-toxicity", variant="check-level", values={
            "al": "no result", "al_time": "", "action": "", "signs": signs_text, "window": window_text,
        }, suggestions=[order_lab("aluminum")])]
    warn, info, no_dfo = float(p["al_warning_ug_l"]), float(p["al_info_ug_l"]), float(p["al_no_dfo_ug_l"])
    values = {"al": al.display(), "al_time": al.when(snap.now), "signs": signs_text, "window": window_text}
    if al.above(warn) is True:
        if al.above(no_dfo) is True:
            values["action"] = (f"Above {no_dfo:g} µg/L: KDOQI advises **not** to do a deferoxamine (DFO) test "
                                "at this level (risk of precipitating neurotoxicity); seek specialist advice.")
        else:
            values["action"] = (f"Between {warn:g} and {no_dfo:g} µg/L: KDOQI advises a deferoxamine (DFO) test, "
                                "and finding and removing aluminium sources.")
        return [Finding("aluminum-toxicity", values=values)]
    if al.at_or_above(info) is True:
        values["action"] = f"Between {info:g} and {warn:g} µg/L: find and remove aluminium sources (KDOQI)."
        return [Finding("aluminum-toxicity", variant="sources", values=values)]
    return []
