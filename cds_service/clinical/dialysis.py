"""Who is on dialysis, and when did the last session end. Pure code over fhir.resources models."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Iterable

from . import codes
from .codes import pairs
from .timeutil import parse_fhir_datetime
from .timing import Session

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


MODALITIES = ("HD", "PD", "CRRT", "unknown")
# How long a session may last and still be an intermittent (HD) session when its code names no modality.
INTERMITTENT_MAX = timedelta(hours=12)
# Sessions kept for timing results against (policy section 2): the chronic look-back, plus a day.
SESSION_HISTORY = timedelta(days=46)


@dataclass
class DialysisStatus:
    """Who is on dialysis, by which modality, and the HD sessions results are timed against.

    ``modality`` is "HD", "PD", "CRRT" or "unknown" for a patient on dialysis, None otherwise.
    ``events``: every dialysis treatment (any modality) in the recent window, newest first;
    ``hd_sessions``: completed intermittent HD sessions in the session history, oldest first;
    ``session_in_progress``: the HD session running now, if any.
    """
    on_dialysis: bool
    reasons: list[str] = field(default_factory=list)
    last_session_end: datetime | None = None
    in_progress: bool = False
    events: list[Session] = field(default_factory=list)
    esrd_without_dialysis: bool = False
    transplant: bool = False
    modality: str | None = None
    hd_sessions: list[Session] = field(default_factory=list)
    session_in_progress: Session | None = None

    @property
    def last_session(self) -> Session | None:
        return self.hd_sessions[-1] if self.hd_sessions else None

    def hours_since_session(self, now: datetime) -> float | None:
        if self.last_session_end is None:
            return None
        return (now - self.last_session_end).total_seconds() / 3600.0


def _fresh(start: datetime | None, now: datetime) -> bool:
    """A session that started this long ago can still be running (an open record older than that is stale)."""
    return start is None or timedelta(0) <= now - start <= MAX_SESSION_LENGTH


def _kind(found: set[tuple[str, str]]) -> str:
    if found & codes.HD_PROCEDURES:
        return "HD"
    if found & codes.CRRT_PROCEDURES:
        return "CRRT"
    if found & codes.PD_PROCEDURES:
        return "PD"
    if found & codes.NON_HD_PROCEDURES:
        return "non-HD"
    return "dialysis"


def _procedure_session(proc: Any, now: datetime) -> Session | None:
    status = str(getattr(proc, "status", "") or "")
    found = pairs(getattr(proc, "code", None))
    if status in PROCEDURE_NOT_A_SESSION or not found & codes.DIALYSIS_PROCEDURES:
        return None  # may_be_session, with the codes read once
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
    kind = _kind(found)
    open_ended = start is not None and end is None and status not in ("completed", "stopped")
    in_progress = (status == "in-progress" and end is None) or open_ended
    if end is not None and end > now and start is not None and start <= now:
        in_progress = True  # a period that has begun and not yet ended
    if in_progress and kind not in ("CRRT", "non-HD") and not _fresh(start, now):
        in_progress = False  # an "in-progress" record left open for days is not a running session
    return Session(start=start, end=None if in_progress else end, in_progress=in_progress, kind=kind,
                   source=f"Procedure/{proc.id}")


def _encounter_session(enc: Any, now: datetime) -> Session | None:
    status = str(getattr(enc, "status", "") or "")
    found = pairs(getattr(enc, "type", None))
    if status in ENCOUNTER_NOT_A_SESSION or not found & codes.DIALYSIS_ENCOUNTER_TYPES:
        return None  # may_be_session, with the codes read once
    period = getattr(enc, "period", None)
    start = parse_fhir_datetime(period.start) if period is not None else None
    end = parse_fhir_datetime(period.end) if period is not None else None
    kind = _kind(found)
    in_progress = (status in ("in-progress", "arrived") and (end is None or end > now)) or (
        start is not None and end is None and status != "finished")
    if end is not None and end > now and start is not None and start <= now:
        in_progress = True
    if in_progress and kind not in ("CRRT", "non-HD") and not _fresh(start, now):
        in_progress = False
    return Session(start=start, end=None if in_progress else end, in_progress=in_progress, kind=kind,
                   source=f"Encounter/{enc.id}")


def _resolve_kinds(sessions: list[Session], pd_evidence: bool) -> list[Session]:
    """Give generic and "other than HD" codes a modality from their shape and the rest of the record."""
    out = []
    for s in sessions:
        kind = s.kind
        if kind == "non-HD":
            if pd_evidence:
                kind = "PD"
            elif s.in_progress or (s.duration is not None and s.duration > INTERMITTENT_MAX):
                kind = "CRRT"
            else:
                kind = "other"  # "other than hemodialysis", neither PD nor continuous: never an HD session
        if kind == "dialysis":
            # an intermittent session (start and end a few hours apart), or one running now for under 12 h
            if (s.duration is not None and s.duration <= INTERMITTENT_MAX) or (s.in_progress and s.start is not None):
                kind = "HD"
        out.append(replace(s, kind=kind) if kind != s.kind else s)
    return out


def _modality(recent: list[Session], pd_evidence: bool, dependence: bool, now: datetime) -> str | None:
    """The modality of the most recent treatment with one; else PD evidence; else "unknown" if on dialysis."""
    typed = [s for s in recent if s.kind in ("HD", "PD", "CRRT")]
    if typed:
        newest = max(typed, key=lambda s: now if s.in_progress else (s.latest_time or now))
        return newest.kind
    if pd_evidence:
        return "PD"
    if dependence or recent:
        return "unknown"
    return None


def assess(conditions: Iterable[Any], procedures: Iterable[Any], encounters: Iterable[Any], now: datetime,
           window: timedelta = RECENT_SESSION_WINDOW, *, pd_orders: Iterable[str] = (),
           history: timedelta = SESSION_HISTORY) -> DialysisStatus:
    """Dialysis status from the record (policy section 3).

    ``pd_orders``: references of active or draft orders for PD solutions (PD evidence).
    A kidney transplant with no dialysis Procedure or Encounter in ``window`` is not on dialysis, whatever
    the problem list still says; ESRD without dialysis evidence is not on dialysis either.
    """
    reasons: list[str] = []
    esrd = transplant = dependence = pd_condition = False
    for cond in conditions:
        if not condition_is_active(cond):
            continue
        found = pairs(cond.code)
        if found & codes.DIALYSIS_CONDITIONS:
            system, code = sorted(found & codes.DIALYSIS_CONDITIONS)[0]
            reasons.append(f"active Condition {code} ({_system_name(system)})")
            dependence = True
        if found & codes.PD_CONDITIONS:
            reasons.append("active Condition 71192002 (peritoneal dialysis)")
            pd_condition = True
        if found & codes.ESRD_ONLY_CONDITIONS:
            esrd = True
        if found & codes.TRANSPLANT_CONDITIONS:
            transplant = True

    raw_sessions: list[Session] = []
    for proc in procedures:
        s = _procedure_session(proc, now)
        if s is not None:
            raw_sessions.append(s)
    for enc in encounters:
        s = _encounter_session(enc, now)
        if s is not None:
            raw_sessions.append(s)

    # Each session's time is compared with "now" for two windows several times below: once each here.
    latest_ok = now + _FUTURE_SLACK
    earliest = {window: now - window, history: now - history}

    def in_window(s: Session, span: timedelta) -> bool:
        moment = s.end or s.start
        return moment is not None and earliest[span] <= moment <= latest_ok

    pd_orders = sorted(pd_orders)
    pd_evidence = pd_condition or bool(pd_orders) or any(s.kind == "PD" for s in raw_sessions if in_window(s, window))
    sessions = _resolve_kinds(raw_sessions, pd_evidence)
    recent = [s for s in sessions if in_window(s, window)]
    if recent:
        kinds = sorted({s.source.split("/")[0] for s in recent})
        reasons.append(f"dialysis {' and '.join(k.lower() for k in kinds)} in the last {window.days} days")
    if pd_orders:
        reasons.append(f"peritoneal dialysis solution ordered ({pd_orders[0]})")
    if transplant and not recent:
        reasons = []  # a transplant and no dialysis treatment for 30 days: the dialysis codes are history

    on = bool(reasons)
    ended = [s.end for s in sessions if s.end is not None and s.end <= now]
    hd_done = sorted((s for s in sessions if s.kind == "HD" and s.completed and s.start is not None
                      and in_window(s, history)), key=lambda s: (s.start, s.end))
    running = [s for s in recent if s.in_progress and s.kind == "HD"]
    status = DialysisStatus(
        on_dialysis=on,
        reasons=reasons,
        last_session_end=max(ended) if ended else None,
        in_progress=any(s.in_progress for s in recent),
        events=sorted(recent, key=lambda s: _session_time(s) or now, reverse=True),
        esrd_without_dialysis=esrd and not on,
        transplant=transplant,
        modality=_modality(recent, pd_evidence, dependence, now) if on else None,
        hd_sessions=hd_done,
        session_in_progress=max(running, key=lambda s: s.start or now) if running else None,
    )
    return status


def _session_time(s: Session) -> datetime | None:
    return s.end or s.start


_FUTURE_SLACK = timedelta(minutes=5)



def _system_name(system: str) -> str:
    return {codes.SNOMED: "SNOMED CT", codes.ICD10CM: "ICD-10-CM"}.get(system, system)
