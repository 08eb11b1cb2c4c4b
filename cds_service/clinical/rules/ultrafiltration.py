"""Ultrafiltration rate (policy section 4, new): UFR of a recent HD session from its pre- and post-session
weights and its length. UFR >= 13 mL/kg/h is associated with higher mortality and with cramps."""
from __future__ import annotations

from datetime import timedelta

from ..timeutil import format_delta
from ..wording import ago_text
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, rule


@rule("ultrafiltration-rate", hooks={PATIENT_VIEW}, needs={"weights"}, after={"dysrhythmia-risk"},
      label="high ultrafiltration rate",
      thresholds={"ufr_high": Threshold("mL/kg/h", low=8, high=20), "session_window": Threshold("d", low=1, high=30),
                  "weight_window": Threshold("h", low=0.5, high=6)})
def ultrafiltration_rate(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    if snap.modality != "HD":
        return []
    measured = snap.ufr_sessions(timedelta(days=p["session_window"]), p["weight_window"])
    high = [u for u in measured if u.ufr >= p["ufr_high"]]
    if not high:
        return []
    u = high[0]  # the most recent session at or above the threshold
    return [Finding(values={
        "ufr": f"{u.ufr:.1f} mL/kg/h",
        "session": f"the session that ended {ago_text(u.end, snap.now)} ({format_delta(u.duration)})",
        "weights": (f"{u.pre.value:.1f} kg before, {u.post.value:.1f} kg after: {u.removed_kg:.1f} kg removed"),
        "count": (f"{len(high)} of {len(measured)} {'session' if len(measured) == 1 else 'sessions'} with weights "
                  f"in the last {p['session_window']:g} days {'was' if len(high) == 1 else 'were'} at "
                  f"{p['ufr_high']:g} mL/kg/h or more."),
    })]
