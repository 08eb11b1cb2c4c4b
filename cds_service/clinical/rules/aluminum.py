"""Aluminum toxicity: KDOQI 2003 (adult Guideline 11) action levels, and neurological signs with no level."""
from __future__ import annotations

from datetime import timedelta

from ..medication_list import aluminium_sources
from ..symptoms import neuro_signs_with_onset
from ..wording import value_text
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule
from .pv_common import named_sources


@rule("aluminum-toxicity", hooks={PATIENT_VIEW}, needs={"aluminum"}, after={"ultrafiltration-rate"},
      label="aluminum",
      thresholds={"al_sources": Threshold("ug/L", low=5, high=100), "al_dfo": Threshold("ug/L", low=20, high=200),
                  "al_no_dfo": Threshold("ug/L", low=60, high=500),
                  "result_window": Threshold("d", low=30, high=730), "sign_window": Threshold("d", low=7, high=365)})
def aluminum_toxicity(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    al = snap.latest("aluminum", within=timedelta(days=p["result_window"]))
    sources = aluminium_sources(snap.medications)
    values = {
        "al": "no result",
        "al_when": "",
        "sources": named_sources(sources, "Aluminum sources on the active medication list",
                                 "No aluminum-containing drug is on the active medication list; check antacids, "
                                 "sucralfate and the dialysate water."),
        "signs": "",
        "window": f"{p['result_window']:g} days",
    }
    signs = neuro_signs_with_onset(snap, timedelta(days=p["sign_window"]))
    if signs:
        values["signs"] = "; ".join(d.label for d in signs[:3])
    if al is None:
        if not signs or snap.data_missing("aluminum"):
            return []
        return [Finding(values=values, variant="check-level", suggestions=[order_lab("aluminum")])]
    values["al"] = value_text(al)
    values["al_when"] = snap.when_text(al)
    if al.above(p["al_no_dfo"]) is True:
        return [Finding(values=values, indicator="critical", variant="critical")]
    if al.at_or_above(p["al_dfo"]) is True:
        return [Finding(values=values)]
    if al.at_or_above(p["al_sources"]) is True:
        return [Finding(values=values, variant="sources")]
    return []
