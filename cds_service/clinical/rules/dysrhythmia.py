"""Dysrhythmia risk (policy section 4): a cardiac substrate, a current derangement, and either a marked
derangement or cramps. The advice is a 12-lead ECG; continuous monitoring only where the evidence asks."""
from __future__ import annotations

from datetime import timedelta

from ..electrolytes import Reading
from ..symptoms import heart_disease
from ..wording import ago_text, compact_value, value_text
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, rule
from .pv_common import ACUTE, CRAMP_DAYS, ICA_LOW, K_LOW, MG_LOW, cramp_text, read


OWN = {"k": "potassium", "mg": "magnesium", "ica": "ionized calcium"}


@rule("dysrhythmia-risk", hooks={PATIENT_VIEW}, needs={"labs"}, after={"electrolyte-review", "tag:severe-tier"},
      label="dysrhythmia risk",
      thresholds={"k_low": K_LOW, "k_high": Threshold("mmol/L", low=5.5, high=7.0),
                  "mg_low": MG_LOW, "ica_low": ICA_LOW,
                  "k_marked_low": Threshold("mmol/L", low=2.0, high=3.5),
                  "mg_marked_low": Threshold("mmol/L", low=0.2, high=0.7),
                  "ica_marked_low": Threshold("mmol/L", low=0.6, high=1.12),
                  "hr_high": Threshold("/min", low=90, high=150), "hr_low": Threshold("/min", low=30, high=60),
                  "hr_window": Threshold("h", low=1, high=72), "cramp_window": CRAMP_DAYS, **ACUTE})
def dysrhythmia_risk(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    k, mg, ica = read(ctx, "k"), read(ctx, "mg"), read(ctx, "ica")

    def acute_low(r: Reading, threshold: float) -> bool:  # an early-post low K is rebound, not a derangement
        return r.acute(snap.now) and r.below(threshold) and not (r.analyte == "k" and r.early_post)

    deranged, marked = [], []
    if acute_low(k, p["k_low"]) or (k.acute(snap.now) and k.at_or_above(p["k_high"])):
        deranged.append(k)
        if k.below(p["k_marked_low"]) or k.at_or_above(p["k_high"]):
            marked.append(k)
    if acute_low(mg, p["mg_low"]):
        deranged.append(mg)
        if mg.below(p["mg_marked_low"]):
            marked.append(mg)
    if acute_low(ica, p["ica_low"]):
        deranged.append(ica)
        if ica.below(p["ica_marked_low"]):
            marked.append(ica)
    if not deranged:
        return []
    cramp = cramp_text(ctx, p["cramp_window"])
    if not marked and not cramp:
        return []
    # one card per clinical problem (policy principle 1): a severe card of the same analyte already asks for
    # the ECG, so this card names only the derangements no severe card covers, and is silent when none is left
    covered = {a for a in ("k", "mg", "ica") if ctx.fired_tagged(f"analyte:{a}")}
    deranged = [r for r in deranged if r.analyte not in covered]
    if not deranged:
        return []
    substrate = [f"{d.label} (on the problem list)" for d in heart_disease(snap.conditions)[:2]]
    window = timedelta(hours=p["hr_window"])
    rates = [r for r in snap.labs.within("heart_rate", snap.now, window)]
    fast = [r for r in rates if r.above(p["hr_high"]) is True]
    slow = [r for r in rates if r.below(p["hr_low"]) is True]
    if fast:
        top = max(fast, key=lambda r: r.value)
        substrate.append(f"heart rate {top.value:.0f}/min {ago_text(top.time, snap.now)}")
    if slow:
        bottom = min(slow, key=lambda r: r.value)
        substrate.append(f"heart rate {bottom.value:.0f}/min {ago_text(bottom.time, snap.now)}")
    if not substrate:
        return []
    names = {"k": "K", "mg": "Mg", "ica": "iCa"}
    return [Finding(values={
        "derangements": "; ".join(f"{names[r.analyte]} {value_text(r.lab)}, {snap.when_text(r.lab)}"
                                  for r in deranged),
        "short": " and ".join(f"{names[r.analyte]} {compact_value(r.lab)}" for r in deranged[:2]) + " mmol/L",
        "substrate": "; ".join(substrate[:3]),
        "trigger": (("a marked derangement: " + ", ".join(
            f"{names[r.analyte]} {compact_value(r.lab)} mmol/L"
            + (f" (see the separate {OWN[r.analyte]} card)" if r.analyte in covered else "") for r in marked))
            if marked else cramp),
    })]
