"""FHIR date/time parsing and human formatting. Times are compared as aware UTC datetimes."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_DATE_ONLY = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def parse_fhir_datetime(value: object) -> datetime | None:
    """Parse a FHIR dateTime/instant string (or a datetime) to aware UTC.

    Partial dates (YYYY, YYYY-MM, YYYY-MM-DD) are taken at midnight UTC; a time
    without a zone is taken as UTC. Returns None for anything unparseable.
    """
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T":
        # The common form, YYYY-MM-DDThh:mm:ssZ, in one C call (since 3.11 fromisoformat reads "Z" as UTC);
        # anything it refuses takes the general path below, which gives the same answer for this form.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    try:
        if _DATE_ONLY.match(text):
            parts = [int(p) for p in text.split("-")] + [1, 1]
            return datetime(parts[0], parts[1], parts[2], tzinfo=timezone.utc)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past the last representable instant
        return None


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def format_delta(delta: timedelta) -> str:
    """'45 min', '3 h 20 min', '2 d 4 h'. Negative deltas read as 'in the future'."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in the future by " + format_delta(-delta)
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
