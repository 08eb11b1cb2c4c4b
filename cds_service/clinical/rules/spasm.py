"""Cramp and spasm work-up, and monitoring in the hours after a dialysis session."""
from __future__ import annotations

from datetime import timedelta

from .. import codes
from ..labs import LabResult
from ..symptoms import cramps
from ..timeutil import format_delta, format_time
from ..wording import relative_to_session
from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule

PANEL = ("mg", "ica", "k", "po4")  # magnesium first
CRAMP_WINDOW = Threshold("d", low=1, high=30)


def _range(low: tuple[float, float], high: tuple[float, float]) -> dict[str, Threshold]:
    return {"low": Threshold("mmol/L", *low), "high": Threshold("mmol/L", *high)}


_PANEL_RANGES = {"mg": _range((0.40, 1.00), (0.80, 2.00)), "ica": _range((0.80, 1.30), (1.10, 1.60)),
                 "k": _range((2.5, 4.5), (4.5, 7.0)), "po4": _range((0.50, 1.20), (1.00, 2.50))}


def flag(result: LabResult | None, low: float, high: float) -> str:
    if result is None:
        return "no result"
    if result.below(low) is True:
        return "**LOW**"
    if result.above(high) is True:
        return "**HIGH**"
    if result.below(low) is False and result.above(high) is False:
        return "normal"
    return "undetermined (reported with a comparator)"


@rule("spasm-workup", hooks={PATIENT_VIEW}, needs={"labs"},
      thresholds={"cramp_window": CRAMP_WINDOW, **{f"{analyte}_{side}": threshold
                                                   for analyte, sides in _PANEL_RANGES.items()
                                                   for side, threshold in sides.items()}})
def spasm_workup(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    found = cramps(snap, timedelta(days=p["cramp_window"]))
    if not found:
        return []
    end = snap.dialysis.last_session_end
    rows, abnormal, missing, suggestions = [], [], [], []
    for analyte in PANEL:
        result = snap.latest(analyte)
        f = flag(result, p[f"{analyte}_low"], p[f"{analyte}_high"])
        label = codes.ANALYTE_LABEL[analyte]
        if result is None:
            rows.append(f"| {label} | no result in the last {snap.lookback.days} days | | | {f} |")
        else:
            rows.append(f"| {label} | {result.display()} | {format_time(result.time)} "
                        f"({format_delta(snap.now - result.time)} ago) | {relative_to_session(result.time, end)} | {f} |")
        if f in ("**LOW**", "**HIGH**"):
            abnormal.append(f"{label} {f.strip('*').lower()}")
        fresh = result is not None and (end is None or result.time >= end)
        if not fresh:
            missing.append(label)
            suggestions.append(order_lab(analyte))
    panel = "\n".join(["| Test | Value | Taken | Relative to the last session | Flag |",
                       "|---|---|---|---|---|", *rows])
    since = f"since the last session ended ({format_time(end)})" if end else f"in the last {snap.lookback.days} days"
    missing_text = (f"No result {since} for: {', '.join(missing)}. Suggested orders below." if missing
                    else f"Every panel test has a result {since}.")
    values = {
        "cramp": "; ".join(d.describe(snap.now) for d in found[:3]),
        "panel": panel,
        "session": (f"The last session ended {format_time(end)} ({format_delta(snap.now - end)} ago)."
                    if end else "No session end is on record in the last 30 days."),
        "missing": missing_text,
        "abnormal": ", ".join(abnormal) if abnormal else "no abnormal electrolyte",
    }
    return [Finding(values=values, variant=None if abnormal else "info", suggestions=suggestions)]


@rule("post-dialysis-monitoring", hooks={PATIENT_VIEW}, needs={"labs"},
      after={"tag:electrolyte", "magnesium-first"},
      thresholds={"monitoring_window": Threshold("h", low=1, high=12), "cramp_window": CRAMP_WINDOW})
def post_dialysis_monitoring(ctx: RuleContext) -> list[Finding]:
    """The last session ended within the window, and an electrolyte rule fired or a cramp is documented."""
    snap, p = ctx.snapshot, ctx.params
    end = snap.dialysis.last_session_end
    window = timedelta(hours=p["monitoring_window"])
    if end is None or snap.dialysis.in_progress:
        return []
    since = snap.now - end
    if not timedelta(0) <= since <= window:
        return []
    fired = ctx.fired_tagged("electrolyte")
    if not fired and "magnesium-first" in ctx.fired:
        fired = ["magnesium-first"]  # otherwise already said by the K / Ca / Mg names
    reasons = [ctx.label(r) for r in fired]
    found = cramps(snap, timedelta(days=p["cramp_window"]))
    if found:
        reasons.append(f"cramp or spasm documented: {found[0].label}")
    if not reasons:
        return []
    return [Finding(values={
        "session_end": format_time(end),
        "since_end": format_delta(since),
        "reasons": ", ".join(reasons),
        "window": f"{p['monitoring_window']:g} h",
    })]
