"""Who is on dialysis, and when did the last session end. Pure code over fhir.resources models."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from . import codes
from .codes import pairs
from .timeutil import parse_fhir_datetime

RECENT_SESSION_WINDOW = timedelta(days=30)
# A session with a start and no end is taken as in progress only this long after its start.
MAX_SESSION_LENGTH = timedelta(hours=12)

EXCLUDED_VERIFICATION = {"entered-in-error", "refuted"}
# Statuses that never make a dialysis session: "preparation" has not started, "not-done" never happened,
# "entered-in-error" is not a record; an encounter cancelled or only planned did not take place.
PROCEDURE_NOT_A_SESSION = frozenset({"entered-in-error", "not-done", "preparation"})
ENCOUNTER_NOT_A_SESSION = frozenset({"entered-in-error", "cancelled", "planned"})


def may_be_session(resource_type: str, status: Any, concept: Any) -> bool:
    """Whether a Procedure (its ``code``) or an Encounter (its ``type``) can be a dialysis session, from its
    status and codes alone: models or raw JSON (the protocol layer filters raw data with this before
    validating anything)."""
    if resource_type == "Procedure":
        return str(status or "") not in PROCEDURE_NOT_A_SESSION and bool(pairs(concept) & codes.DIALYSIS_PROCEDURES)
    return str(status or "") not in ENCOUNTER_NOT_A_SESSION and bool(pairs(concept) & codes.DIALYSIS_ENCOUNTER_TYPES)


def condition_is_active(cond: Any) -> bool:
    ver = pairs(getattr(cond, "verificationStatus", None))
    if any(code in EXCLUDED_VERIFICATION for _s, code in ver):
        return False
    clinical = pairs(getattr(cond, "clinicalStatus", None))
    if not clinical:
        # clinicalStatus is required unless entered-in-error; absent: treat as active only if no abatement
        return getattr(cond, "abatementDateTime", None) is None and getattr(cond, "abatementPeriod", None) is None
    return any(code in ("active", "recurrence", "relapse") for _s, code in clinical)


@dataclass
class Session:
    start: datetime | None
    end: datetime | None
    in_progress: bool
    source: str  # "Procedure/x" or "Encounter/y"


@dataclass
class DialysisStatus:
    on_dialysis: bool
    reasons: list[str] = field(default_factory=list)
    last_session_end: datetime | None = None
    in_progress: bool = False
    sessions: list[Session] = field(default_factory=list)
    esrd_without_dialysis: bool = False
    transplant: bool = False

    def hours_since_session(self, now: datetime) -> float | None:
        if self.last_session_end is None:
            return None
        return (now - self.last_session_end).total_seconds() / 3600.0


def _fresh(start: datetime | None, now: datetime) -> bool:
    """A session that started this long ago can still be running (an open record older than that is stale)."""
    return start is None or timedelta(0) <= now - start <= MAX_SESSION_LENGTH


def _procedure_session(proc: Any, now: datetime) -> Session | None:
    status = str(getattr(proc, "status", "") or "")
    if not may_be_session("Procedure", status, getattr(proc, "code", None)):
        return None
    start = end = None
    period = getattr(proc, "performedPeriod", None)
    if period is not None:
        start = parse_fhir_datetime(period.start)
        end = parse_fhir_datetime(period.end)
    performed = parse_fhir_datetime(getattr(proc, "performedDateTime", None))
    if performed is not None and start is None and end is None:
        if status == "in-progress":
            start = performed
        else:
            start = end = performed
    open_ended = start is not None and end is None and status not in ("completed", "stopped")
    in_progress = (status == "in-progress" and end is None) or open_ended
    if end is not None and end > now and start is not None and start <= now:
        in_progress = True  # a period that has begun and not yet ended
    if in_progress and not _fresh(start, now):
        in_progress = False  # an "in-progress" record left open for days is not a running session
    return Session(start=start, end=None if in_progress else end, in_progress=in_progress,
                   source=f"Procedure/{proc.id}")


def _encounter_session(enc: Any, now: datetime) -> Session | None:
    status = str(getattr(enc, "status", "") or "")
    if not may_be_session("Encounter", status, getattr(enc, "type", None)):
        return None
    period = getattr(enc, "period", None)
    start = parse_fhir_datetime(period.start) if period is not None else None
    end = parse_fhir_datetime(period.end) if period is not None else None
    in_progress = (status in ("in-progress", "arrived") and (end is None or end > now)) or (
        start is not None and end is None and status != "finished")
    if end is not None and end > now and start is not None and start <= now:
        in_progress = True
    if in_progress and not _fresh(start, now):
        in_progress = False
    return Session(start=start, end=None if in_progress else end, in_progress=in_progress,
                   source=f"Encounter/{enc.id}")


def assess(conditions: Iterable[Any], procedures: Iterable[Any], encounters: Iterable[Any], now: datetime,
           window: timedelta = RECENT_SESSION_WINDOW) -> DialysisStatus:
    reasons: list[str] = []
    esrd = transplant = False
    for cond in conditions:
        if not condition_is_active(cond):
            continue
        found = pairs(cond.code)
        if found & codes.DIALYSIS_CONDITIONS:
            system, code = sorted(found & codes.DIALYSIS_CONDITIONS)[0]
            reasons.append(f"active Condition {code} ({_system_name(system)})")
        if found & codes.ESRD_ONLY_CONDITIONS:
            esrd = True
        if found & codes.TRANSPLANT_CONDITIONS:
            transplant = True

    sessions: list[Session] = []
    for proc in procedures:
        s = _procedure_session(proc, now)
        if s is not None:
            sessions.append(s)
    for enc in encounters:
        s = _encounter_session(enc, now)
        if s is not None:
            sessions.append(s)

    recent = [s for s in sessions if _is_recent(_session_time(s), now, window)]
    if recent:
        kinds = sorted({s.source.split("/")[0] for s in recent})
        reasons.append(f"dialysis {' and '.join(k.lower() for k in kinds)} in the last {window.days} days")

    ended = [s.end for s in sessions if s.end is not None and s.end <= now]
    status = DialysisStatus(
        on_dialysis=bool(reasons),
        reasons=reasons,
        last_session_end=max(ended) if ended else None,
        in_progress=any(s.in_progress for s in recent),
        sessions=sorted(recent, key=lambda s: _session_time(s) or now, reverse=True),
        esrd_without_dialysis=esrd and not reasons,
        transplant=transplant,
    )
    return status


def _session_time(s: Session) -> datetime | None:
    return s.end or s.start


def _is_recent(moment: datetime | None, now: datetime, window: timedelta) -> bool:
    return moment is not None and now - moment <= window and moment <= now + timedelta(minutes=5)


def _system_name(system: str) -> str:
    return {codes.SNOMED: "SNOMED CT", codes.ICD10CM: "ICD-10-CM"}.get(system, system)
