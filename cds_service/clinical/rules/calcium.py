"""Severe hypocalcemia: ionized calcium only (total calcium is a different analyte and never fires it)."""
from __future__ import annotations

from datetime import timedelta

from ..symptoms import cramps, tetany
from ..wording import ago_text, value_text
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule
from .pv_common import ACUTE, CRAMP_DAYS, MG_LOW, read, recheck_reason

ICA_SEVERE = Threshold("mmol/L", low=0.60, high=1.00)
ICA_SYMPTOMATIC = Threshold("mmol/L", low=0.80, high=1.12)


@rule("hypocalcemia-severe", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"severe-tier", "analyte:ica"},
      label="severe low ionized calcium",
      thresholds={"ica_severe": ICA_SEVERE, "ica_symptomatic": ICA_SYMPTOMATIC, "symptom_window": CRAMP_DAYS,
                  "mg_low": MG_LOW, **ACUTE})
def hypocalcemia_severe(ctx: RuleContext) -> list[Finding]:
    """iCa < 0.90, or < 1.00 with cramps, spasm or tetany in the last 7 days: critical (recheck when superseded)."""
    snap, p = ctx.snapshot, ctx.params
    ica = read(ctx, "ica")
    if not ica.below(p["ica_symptomatic"]):
        return []
    window = timedelta(days=p["symptom_window"])
    symptoms = sorted([*cramps(snap, window), *tetany(snap, window)],
                      key=lambda d: d.time.timestamp() if d.time else 0, reverse=True)
    if not ica.below(p["ica_severe"]) and not symptoms:
        return []
    suggestions = []
    mg, po4 = read(ctx, "mg"), read(ctx, "po4")
    checks = []
    if mg.missing:
        checks.append("no magnesium on record: measure it")
        suggestions.append(order_lab("mg"))
    elif mg.below(p["mg_low"]):
        checks.append(f"magnesium is low ({value_text(mg.lab)}): correct it alongside the calcium")
    else:
        checks.append(f"magnesium {value_text(mg.lab)}")
    if po4.missing:
        checks.append("no phosphate on record: measure it")
        suggestions.append(order_lab("po4"))
    else:
        checks.append(f"phosphate {value_text(po4.lab)}")
    newest = symptoms[0] if symptoms else None
    values = {
        "ica": value_text(ica.lab),
        "ica_when": snap.when_text(ica.lab),
        "symptoms": (f"with {newest.label.lower()} documented"
                     + (f" {ago_text(newest.time, snap.now)}" if newest.time else "") if newest else
                     "no cramps, spasm or tetany documented in the last 7 days"),
        "checks": "; ".join(checks),
        "hd_line": ("During or just after HD, bicarbonate-induced alkalosis lowers ionized calcium: review the "
                    "dialysate bicarbonate." if snap.modality == "HD" else "Review the dialysis fluid."),
        "reason": "",
    }
    if ica.acute(snap.now):
        return [Finding(values=values, indicator="critical", suggestions=suggestions)]
    values["reason"] = recheck_reason(ica)
    return [Finding(values=values, variant="recheck", suggestions=[order_lab("ica"), *suggestions])]
