"""Card wording shared by the rules: values with units, and draw times relative to now and to dialysis.

The v2 helpers (policy section 6) are ``value_text``, ``when_text``, ``class_text`` and ``result_text``.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from . import codes
from .labs import LabResult
from .timeutil import format_delta
from .timing import ResultClass, Session, Timing


def relative_to_session(moment: datetime, session_end: datetime | None) -> str:
    """'2 h 10 min after the last session ended', '1 d 3 h before ...', or 'no session end on record'."""
    if session_end is None:
        return "no session end on record"
    delta = moment - session_end
    if delta >= timedelta(0):
        return f"{format_delta(delta)} after the last session ended"
    return f"{format_delta(-delta)} before the last session ended"


def draw_context(result: LabResult, session_end: datetime | None, shifting: timedelta) -> str:
    """One sentence on when the value was drawn relative to dialysis ('' when nothing to say)."""
    parts = []
    if result.loinc == codes.K_POST_DIALYSIS:
        parts.append("Coded as a post-dialysis potassium (LOINC 29349-8): post-dialysis values are transient.")
    elif result.loinc == codes.K_PRE_DIALYSIS:
        parts.append("Coded as a pre-dialysis potassium (LOINC 51618-7).")
    if session_end is not None and timedelta(0) <= result.time - session_end <= shifting:
        parts.append(f"Drawn {format_delta(result.time - session_end)} after the last session ended, while values "
                     f"are still shifting (4–5 h): recheck before acting on it.")
    return " ".join(parts)


def analyte_value(result: LabResult | None, now: datetime, lookback_days: int) -> str:
    if result is None:
        return f"no result in the last {lookback_days} days"
    return f"{result.display()}, taken {result.when(now)}"


# ---------------------------------------------------------------- policy v2 wording (section 6)

_SHORT = {"mg": "Mg", "ica": "iCa", "k": "K", "po4": "PO4", "total_ca": "total Ca", "aluminum": "Al",
          "weight": "weight", "heart_rate": "heart rate", "albumin": "albumin"}
# Own-unit decimals per canonical analyte when the lab reported another unit.
_DECIMALS = {"mg": 2, "ica": 2, "k": 1, "po4": 2, "total_ca": 2}


def short_name(analyte: str) -> str:
    return _SHORT.get(analyte, analyte)


def _fmt_number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def value_text(result: LabResult) -> str:
    """Value with units, mmol/L first and the lab's own unit beside it when different: '0.53 mmol/L (1.3 mg/dL)'.

    A comparator is kept ('< 0.50 mmol/L'); a preliminary result says so.
    """
    prefix = f"{result.comparator} " if result.comparator else ""
    if result.analyte in _DECIMALS:
        main = f"{prefix}{_fmt_number(result.value, _DECIMALS[result.analyte])} mmol/L"
        own = (result.original_unit or "").strip()
        if own and codes.normalise_unit_key(own) != "mmol/L":
            shown = {"meq/L": "mEq/L", "umol/L": "µmol/L"}.get(codes.normalise_unit_key(own) or "", own)
            main += f" ({prefix}{result.original_value:g} {shown})"
    else:
        main = result.display()
    return main + (" (preliminary)" if result.preliminary else "")


def ago_text(moment: datetime, now: datetime) -> str:
    """'6 h ago', 'in the future by 2 h'."""
    delta = now - moment
    return f"{format_delta(delta)} ago" if delta >= timedelta(0) else format_delta(delta)


def when_text(moment: datetime, now: datetime, timing: Timing | None, *, in_progress: Session | None = None) -> str:
    """Draw time relative to now and to the dialysis session it was judged against.

    'drawn 6 h ago, before the session that ended 1 h ago'; 'drawn 10 d ago, before 4 sessions since (the
    last ended 1 h ago)'; 'drawn 3 h ago, during the session that ended 1 h ago'; 'drawn 40 min ago, during
    the session in progress'; 'drawn 30 min ago, 20 min after the session that ended 50 min ago';
    'drawn 2 d ago'. Without a timing (no session-timing text, e.g. PD or unknown modality) only the age.
    """
    head = f"drawn {ago_text(moment, now)}"
    if timing is None or timing.session is None:
        if in_progress is not None and in_progress.start is not None and moment >= in_progress.start:
            return f"{head}, during the session in progress"
        return head
    s = timing.session
    if timing.cls is ResultClass.PRE_SESSION:
        if timing.sessions_since > 1:
            return (f"{head}, before {timing.sessions_since} sessions since (the last ended "
                    f"{ago_text(s.end, now)})")
        return f"{head}, before the session that ended {ago_text(s.end, now)}"
    if timing.cls is ResultClass.INTRADIALYTIC:
        if s.completed:
            return f"{head}, during the session that ended {ago_text(s.end, now)}"
        return f"{head}, during the session in progress"
    if s.end is not None:
        after = moment - s.end
        if after >= timedelta(0):
            return f"{head}, {format_delta(after)} after the session that ended {ago_text(s.end, now)}"
    return head


CLASS_LABEL = {
    ResultClass.FUTURE: "future-dated (not used)",
    ResultClass.PRE_SESSION: "before a session since completed",
    ResultClass.INTRADIALYTIC: "during a session",
    ResultClass.EARLY_POST: "within 2 h after a session",
    ResultClass.CURRENT: "current",
}


def class_text(timing: Timing) -> str:
    """The class of a result for a card table: 'current', 'before a session since completed: superseded', ..."""
    label = CLASS_LABEL[timing.cls]
    if timing.exception == "short-session":
        return f"{label}, but that session was under 2 h: counts as current"
    if timing.exception == "ecg-change":
        return f"{label}, ECG change documented since: counts as current"
    if timing.superseded:
        return f"{label}: superseded"
    return label
