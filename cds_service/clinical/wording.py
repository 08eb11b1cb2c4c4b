"""Small pieces of card wording shared by several rules (times relative to the dialysis session)."""
from __future__ import annotations

from datetime import datetime, timedelta

from . import codes
from .labs import LabResult
from .timeutil import format_delta


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

