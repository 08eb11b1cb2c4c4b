"""Thresholds and small helpers shared by the patient-view rules (no rule is declared here)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Sequence

from ..electrolytes import Reading, acute_window, reading
from ..symptoms import cramps
from ..timeutil import format_delta
from ..wording import ago_text
from . import Finding, RuleContext, Threshold, order_lab

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


def named_sources(orders: Sequence[Any], lead: str, none: str, tail: str = ".") -> str:
    """'<lead>: a; b; c<tail>' for up to three orders from the medication list, or ``none``."""
    if not orders:
        return none
    return f"{lead}: " + "; ".join(o.label(60) for o in orders[:3]) + tail


def counted_text(r: Reading) -> str:
    """'' or why a value drawn before or during a session still counts as current (policy section 2)."""
    t = r.timing
    if t is None or t.exception is None:
        return ""
    if t.exception == "short-session" and t.session is not None and t.session.duration is not None:
        return f"; still counted: the session was cut short at {format_delta(t.session.duration)}"
    if t.exception == "short-session":
        return "; still counted: the session was cut short"
    return "; still counted: an ECG change was documented after it"


def recheck_reason(r: Reading) -> str:
    """Why a value is not acted on as it stands: dialyzed since, drawn during a session, or too old."""
    if r.superseded:
        return "dialyzed since"
    if r.cls is not None and r.cls.value == "intradialytic":
        return "drawn during a session"
    return f"older than {r.acute_window.total_seconds() / 3600:g} h"


def high_tiers(ctx: RuleContext, r: Reading, values: dict[str, Any], critical: float, analyte: str,
               old_current_is_warning: bool = False) -> list[Finding]:
    """Warning, critical at ``critical``, or a recheck warning with a lab order when the value is not acute.

    ``old_current_is_warning``: a current value past the acute window below ``critical`` keeps the plain warning
    (its advice is not time-critical); otherwise every non-acute value gets the recheck wording.
    """
    if r.acute(ctx.snapshot.now):
        if r.at_or_above(critical):
            return [Finding(values=values, indicator="critical", variant="critical")]
        return [Finding(values=values)]
    if old_current_is_warning and r.current and not r.at_or_above(critical):
        return [Finding(values=values)]
    values["reason"] = recheck_reason(r)
    return [Finding(values=values, variant="recheck", suggestions=[order_lab(analyte)])]
