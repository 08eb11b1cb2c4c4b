"""Cramp and spasm work-up, and monitoring in the hours after a dialysis session."""
from __future__ import annotations

from datetime import timedelta

from .. import codes
from ..labs import LabResult
from ..symptoms import cramps
from ..timeutil import format_delta, format_time
from ..wording import relative_to_session
from . import PATIENT_VIEW, Finding, RuleContext, order_lab, rule

PANEL = ("mg", "ica", "k", "po4")  # the seed's order: magnesium first
# Electrolyte rules whose firing makes the post-session window worth a card, with how the card names them.
ELECTROLYTE_RULES = {"hypomagnesemia": "low magnesium", "hypokalemia": "low potassium",
                     "hyperkalemia": "high potassium", "hypocalcemia": "low ionized calcium",
                     "magnesium-first": "low K or ionized Ca with low or unknown Mg"}


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


@rule("spasm-workup", hooks={PATIENT_VIEW}, needs={"labs"}, order=30,
      provides={"cramp", "panel", "session", "missing", "abnormal"})
def spasm_workup(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    found = cramps(snap, timedelta(days=float(p["cramp_window_days"])))
    if not found:
        return []
    end = snap.dialysis.last_session_end
    rows, abnormal, missing, suggestions = [], [], [], []
    for analyte in PANEL:
        result = snap.latest(analyte)
        f = flag(result, float(p[f"{analyte}_low_mmol_l"]), float(p[f"{analyte}_high_mmol_l"]))
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
    return [Finding("spasm-workup", values=values, variant=None if abnormal else "info", suggestions=suggestions)]


@rule("post-dialysis-monitoring", hooks={PATIENT_VIEW}, needs={"labs"}, order=60,
      provides={"session_end", "since_end", "reasons", "window"})
def post_dialysis_monitoring(ctx: RuleContext) -> list[Finding]:
    """The last session ended within the window, and an electrolyte rule fired or a cramp is documented."""
    snap, p = ctx.snapshot, ctx.params
    end = snap.dialysis.last_session_end
    window = timedelta(hours=float(p["window_hours"]))
    if end is None or snap.dialysis.in_progress:
        return []
    since = snap.now - end
    if not timedelta(0) <= since <= window:
        return []
    fired = [r for r in ELECTROLYTE_RULES if r in ctx.fired]
    if fired and fired != ["magnesium-first"]:
        fired = [r for r in fired if r != "magnesium-first"]  # already said by the K / Ca / Mg names
    reasons = [ELECTROLYTE_RULES[r] for r in fired]
    found = cramps(snap, timedelta(days=float(p["cramp_window_days"])))
    if found:
        reasons.append(f"cramp or spasm documented: {found[0].label}")
    if not reasons:
        return []
    return [Finding("post-dialysis-monitoring", values={
        "session_end": format_time(end),
        "since_end": format_delta(since),
        "reasons": ", ".join(reasons),
        "window": f"{float(p['window_hours']):g} h",
    })]
