"""Aluminium toxicity: KDOQI action levels (the project's reference overrides the seed's 150-350 ug/L)."""
from __future__ import annotations

from datetime import timedelta

from ..symptoms import neuro_signs
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule


@rule("aluminum-toxicity", hooks={PATIENT_VIEW}, needs={"aluminum"},
      thresholds={"al_info": Threshold("ug/L", low=5, high=100), "al_warning": Threshold("ug/L", low=20, high=200),
                  "al_no_dfo": Threshold("ug/L", low=60, high=500), "result_window": Threshold("d", low=7, high=365),
                  "sign_window": Threshold("d", low=7, high=365)})
def aluminum_toxicity(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    window = timedelta(days=p["result_window"])
    al = snap.labs.latest("aluminum", snap.now, window)
    signs = neuro_signs(snap, timedelta(days=p["sign_window"]))
    signs_text = "; ".join(d.describe(snap.now) for d in signs[:3]) if signs else "none coded"
    window_text = f"{p['result_window']:g} days"
    if al is None:
        if snap.data_missing("aluminum") or not signs:
            return []
        return [Finding(variant="check-level", values={
            "al": "no result", "al_time": "", "action": "", "signs": signs_text, "window": window_text,
        }, suggestions=[order_lab("aluminum")])]
    warn, info, no_dfo = p["al_warning"], p["al_info"], p["al_no_dfo"]
    values = {"al": al.display(), "al_time": al.when(snap.now), "signs": signs_text, "window": window_text}
    if al.above(warn) is True:
        if al.above(no_dfo) is True:
            values["action"] = (f"Above {no_dfo:g} µg/L: KDOQI advises **not** to do a deferoxamine (DFO) test "
                                "at this level (risk of precipitating neurotoxicity); seek specialist advice.")
        else:
            values["action"] = (f"Between {warn:g} and {no_dfo:g} µg/L: KDOQI advises a deferoxamine (DFO) test, "
                                "and finding and removing aluminium sources.")
        return [Finding(values=values)]
    if al.at_or_above(info) is True:
        values["action"] = f"Between {info:g} and {warn:g} µg/L: find and remove aluminium sources (KDOQI)."
        return [Finding(variant="sources", values=values)]
    return []
