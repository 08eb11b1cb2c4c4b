"""Potassium cards of their own: hyperkalemia and severe hypokalemia (policy section 4).

A critical tier rests only on a value that still describes the patient (current, no older than the
acute window); a value that would have been critical but is superseded by dialysis, or too old, gives a
warning with recheck wording and a potassium order instead (policy section 2).
"""
from __future__ import annotations

from datetime import timedelta

from ..snapshot import Snapshot
from ..timeutil import format_delta

from ..medication_list import potassium_sources
from ..wording import value_text
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule
from .pv_common import ACUTE, MG_LOW, counted_text, high_tiers, named_sources, read, recheck_reason

K_HIGH = Threshold("mmol/L", low=5.5, high=7.0)
K_CRITICAL = Threshold("mmol/L", low=6.0, high=8.0)
K_SEVERE_LOW = Threshold("mmol/L", low=2.0, high=3.5)
K_IV = Threshold("mmol/L", low=1.5, high=3.0)


def _modality_line(snapshot: Snapshot, pd_text: str, crrt_text: str, hd_text: str) -> str:
    return {"PD": pd_text, "CRRT": crrt_text}.get(snapshot.modality or "", hd_text)


@rule("hyperkalemia", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"severe-tier", "analyte:k"},
      label="high potassium", thresholds={"k_high": K_HIGH, "k_critical": K_CRITICAL, **ACUTE})
def hyperkalemia(ctx: RuleContext) -> list[Finding]:
    """K >= 6.5 current: critical; 6.0-6.4 current: warning; a superseded or old K >= 6.0: warning (recheck)."""
    snap, p = ctx.snapshot, ctx.params
    k = read(ctx, "k")
    if not k.at_or_above(p["k_high"]):
        return []
    values = {
        "k": value_text(k.lab),
        "k_when": snap.when_text(k.lab) + (counted_text(k) if k.acute(snap.now) else ""),
        "k_sources": named_sources(potassium_sources(snap.medications), "Potassium on the active medication list",
                                   "No potassium supplement is on the active medication list."),
        "modality_line": _modality_line(
            snap, "On peritoneal dialysis: urgent exchanges, or HD if K stays high.",
            "On CRRT: check the replacement and dialysate fluid K and the circuit's delivered dose.",
            "Review the dialysate K and bring the next session forward if needed."),
        "removal": _modality_line(
            snap, "**Remove it: urgent exchanges, or HD if K stays high.** Contact the renal team now.",
            "**Remove it: increase the CRRT dose with potassium-free replacement and dialysate fluid** and check "
            "the circuit's delivered dose. Contact the renal team now.",
            "**Remove it: urgent dialysis.** Contact the renal team now."),
        "remove_short": _modality_line(snap, "urgent exchanges or HD", "raise the CRRT dose, K-free fluids",
                                       "urgent dialysis"),
        "recheck_timing": _recheck_timing(snap),
        "reason": "",
    }
    return high_tiers(ctx, k, values, p["k_critical"], "k")


def _recheck_timing(snap: Snapshot) -> str:
    """When to recheck K: on HD once 2 h have passed since the last session (rebound), otherwise now."""
    if snap.modality == "CRRT":
        return "now (CRRT changes K continuously)"
    since = snap.hours_since_last_session()
    if snap.modality in ("HD", "unknown") and since is not None and 0 <= since < 2:
        return (f"once 2 h have passed since the session that ended {format_delta(timedelta(hours=since))} ago "
                f"(in {format_delta(timedelta(hours=2 - since))}), or before the next session")
    return "now, before the next session" if snap.modality in ("HD", "unknown") else "now"


@rule("hypokalemia-severe", hooks={PATIENT_VIEW}, needs={"labs"}, tags={"severe-tier", "analyte:k"},
      label="severe low potassium",
      thresholds={"k_severe_low": K_SEVERE_LOW, "k_iv": K_IV, "mg_low": MG_LOW, **ACUTE})
def hypokalemia_severe(ctx: RuleContext) -> list[Finding]:
    """K < 3.0 current: critical; early-post K < 3.0: warning (recheck within 2 h); superseded/old: warning."""
    snap, p = ctx.snapshot, ctx.params
    k = read(ctx, "k")
    if not k.below(p["k_severe_low"]):
        return []
    mg = read(ctx, "mg")
    suggestions = []
    if mg.missing:
        mg_line = "No magnesium result on record: measure Mg and correct it alongside the potassium if low."
        suggestions.append(order_lab("mg"))
    elif mg.below(p["mg_low"]):
        mg_line = (f"Magnesium is low too ({value_text(mg.lab)}, {snap.when_text(mg.lab)}): correct Mg "
                   "alongside the potassium; low Mg makes low K refractory.")
    else:
        mg_line = f"Magnesium {value_text(mg.lab)} ({snap.when_text(mg.lab)}): not low."
    if k.below(p["k_iv"]):
        tier = (f"Below {p['k_iv']:.1f} mmol/L: give potassium intravenously per the potassium chloride label, "
                "with continuous ECG monitoring.")
    else:
        tier = ("Replace potassium cautiously with ECG monitoring: an anuric patient cannot excrete an excess "
                + ("until the next session." if snap.modality in ("HD", "unknown") else
                   "and PD removes it only slowly." if snap.modality == "PD" else "except through the CRRT circuit."))
    values = {
        "k": value_text(k.lab),
        "k_when": snap.when_text(k.lab),
        "tier": tier,
        "mg_line": mg_line,
        "recheck_line": ("Recheck K after the replacement and before the next session."
                         if snap.modality in ("HD", "unknown") else "Recheck K after the replacement."),
        "modality_line": _modality_line(
            snap, ("On peritoneal dialysis: once K is 2.5 mmol/L or more, oral potassium chloride titrated to K "
                   "4–5 mmol/L (Pichitporn 2022)." if k.below(p["k_iv"]) else
                   "On peritoneal dialysis: oral potassium chloride titrated to K 4–5 mmol/L (Pichitporn 2022)."),
            "On CRRT: use potassium-containing replacement and dialysate fluid.",
            "Review the dialysate K: 0–1 mmol/L baths carry a higher risk of sudden cardiac death."),
        "reason": "",
    }
    if k.early_post:
        return [Finding(values=values, variant="early-post", suggestions=[order_lab("k"), *suggestions])]
    if k.acute(snap.now):
        return [Finding(values=values, indicator="critical", suggestions=suggestions)]
    values["reason"] = recheck_reason(k)
    return [Finding(values=values, variant="recheck", suggestions=[order_lab("k"), *suggestions])]
