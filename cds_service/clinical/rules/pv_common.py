"""Thresholds and small helpers shared by the patient-view rules (no rule is declared here)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..electrolytes import Reading, acute_window, reading
from ..symptoms import cramps
from ..wording import ago_text
from . import RuleContext, Threshold

# Plausible ranges catch typos in card files; the clinical values are in the card files.
MG_LOW = Threshold("mmol/L", low=0.40, high=1.00)
K_LOW = Threshold("mmol/L", low=2.5, high=4.5)
ICA_LOW = Threshold("mmol/L", low=0.80, high=1.30)
ACUTE_HOURS = Threshold("h", low=6, high=168)        # acute look-back, HD/PD/unknown (design: 72 h)
CRRT_HOURS = Threshold("h", low=2, high=48)          # acute look-back on CRRT (design: 12 h)
CHRONIC_DAYS = Threshold("d", low=7, high=90)        # chronic look-back (design: 45 days)
CRAMP_DAYS = Threshold("d", low=1, high=30)          # cramps "documented in the last 7 days"

ACUTE = {"acute_window": ACUTE_HOURS, "crrt_window": CRRT_HOURS, "chronic_window": CHRONIC_DAYS}


def read(ctx: RuleContext, analyte: str) -> Reading:
    """The reading of ``analyte`` with this rule's acute and chronic look-backs (card-file thresholds)."""
    p = ctx.params
    return reading(ctx.snapshot, analyte, chronic=timedelta(days=p["chronic_window"]),
                   acute=acute_window(ctx.snapshot, p["acute_window"], p["crrt_window"]))


def cramp_text(ctx: RuleContext, days: float) -> str:
    """'' or 'cramp documented 1 d 2 h ago' (the newest documentation inside the window)."""
    found = cramps(ctx.snapshot, timedelta(days=days))
    if not found:
        return ""
    newest = found[0]
    if newest.time is None:
        return f"{newest.label.lower()} documented"
    return f"{newest.label.lower()} documented {ago_text(newest.time, ctx.snapshot.now)}"


def value_or(reading: Reading, snapshot: Any, missing: str) -> tuple[str, str]:
    """(value text, draw-time text) of a reading, or (missing, '')."""
    if reading.result is None:
        return missing, ""
    from ..wording import value_text

    return value_text(reading.result), snapshot.when_text(reading.result)
