"""Is a result still current? Results classified against haemodialysis sessions and "now" (policy section 2).

Pure code. A result is one of:

- ``future``: taken more than 5 min after now: a data error, never "latest";
- ``pre-session``: taken before the start of an HD session that has since completed. It is
  superseded (dialysis has changed K, Mg, iCa and PO4 since), unless every such session was cut
  short (under ``short_session_hours``) or an ECG change is documented after it: the value then
  still counts as current;
- ``intradialytic``: taken during an HD session; superseded once that session has ended (with the
  same two exceptions);
- ``early-post``: taken within ``early_post_hours`` after an HD session ended (potassium rebounds);
- ``current``: none of the above.

Only intermittent HD sessions count: PD exchanges and CRRT are not sessions. A session whose
length is not on record (a single ``performedDateTime``) is taken as a full session: "cut short"
must be documented, never assumed, since it would make a superseded value count.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable, Sequence

FUTURE_TOLERANCE = timedelta(minutes=5)


class ResultClass(str, Enum):
    FUTURE = "future"
    PRE_SESSION = "pre-session"
    INTRADIALYTIC = "intradialytic"
    EARLY_POST = "early-post"
    CURRENT = "current"


@dataclass(frozen=True)
class Session:
    """One dialysis treatment. ``kind`` is "HD", "PD", "CRRT", "dialysis" (a generic code, not known to be
    intermittent) or "other" (CPT "other than hemodialysis", neither PD nor continuous);
    only "HD" sessions are timed against. ``end`` is None while the session is in progress."""
    start: datetime | None
    end: datetime | None
    in_progress: bool = False
    kind: str = "HD"
    source: str = ""  # "Procedure/x" or "Encounter/y"

    @property
    def completed(self) -> bool:
        return not self.in_progress and self.end is not None

    @property
    def duration(self) -> timedelta | None:
        """Length of a completed session; None when unknown (no start, or start == end from one date)."""
        if self.start is None or self.end is None or self.end <= self.start:
            return None
        return self.end - self.start

    @property
    def latest_time(self) -> datetime | None:
        return self.end or self.start

    def short(self, short_session: timedelta) -> bool:
        """Cut short: a documented length under ``short_session`` (unknown length is not short)."""
        d = self.duration
        return d is not None and d < short_session


@dataclass(frozen=True)
class Timing:
    """The class of one result, with the session it was judged against (None when no session matters)."""
    cls: ResultClass
    session: Session | None = None
    sessions_since: int = 0  # completed HD sessions that started after the draw
    exception: str | None = None  # "short-session" or "ecg-change" when a pre-session value still counts

    @property
    def superseded(self) -> bool:
        """Pre-session, or drawn during a session that has since ended (and no exception applies)."""
        if self.exception is not None:
            return False
        if self.cls is ResultClass.PRE_SESSION:
            return True
        return self.cls is ResultClass.INTRADIALYTIC and self.session is not None and self.session.completed

    @property
    def usable_acute(self) -> bool:
        """May rest an acute (critical) card: current, or a pre-session/intradialytic value an exception revives."""
        return self.cls is ResultClass.CURRENT or (self.exception is not None
                                                   and self.cls in (ResultClass.PRE_SESSION,
                                                                    ResultClass.INTRADIALYTIC))


class _Span:
    """An HD session with its times read once: ``end`` is None while it runs (or when never closed);
    ``done_end`` is the end of a completed session, else None; ``duration`` as ``Session.duration``."""
    __slots__ = ("start", "end", "session", "done_end", "duration")

    def __init__(self, start: datetime, end: datetime | None, session: Session):
        self.start = start
        self.end = end
        self.session = session
        self.done_end = end if session.completed else None
        self.duration = session.duration

    def short(self, short_session: timedelta) -> bool:
        """``Session.short``, from the duration read once."""
        return self.duration is not None and self.duration < short_session


def hd_spans(sessions: Iterable[Session]) -> list[_Span]:
    """The HD sessions results are timed against, oldest first (work out once, pass to ``timing`` as ``spans``)."""
    spans = [_Span(s.start, s.end, s) for s in sessions if s.kind == "HD" and s.start is not None]
    return sorted(spans, key=lambda x: x.start)


def timing(when: datetime, sessions: Sequence[Session], now: datetime, *, early_post_hours: float = 2.0,
           short_session_hours: float = 2.0, ecg_change_times: Iterable[datetime] = (),
           coded_pre: bool = False, coded_post: bool = False, spans: Sequence[_Span] | None = None) -> Timing:
    """Classify a result taken at ``when``; see the module docstring.

    ``spans``: ``hd_spans(sessions)`` when the caller has it already (``sessions`` is then not read).

    ``coded_pre`` / ``coded_post``: the result's code itself says pre- or post-dialysis (e.g. LOINC
    51618-7 / 29349-8). A pre-dialysis sample is often timed at or just after the session start and
    a post-dialysis one at its end, so the code decides between "before" and "during" there.
    """
    if when - now > FUTURE_TOLERANCE:
        return Timing(ResultClass.FUTURE)
    hd = hd_spans(sessions) if spans is None else spans
    short = timedelta(hours=short_session_hours)
    ecg = sorted(t for t in ecg_change_times if t <= now + FUTURE_TOLERANCE)

    def exception_for(later: list[_Span]) -> str | None:
        # The value still counts when no full session without a later ECG change has happened since.
        if all(x.short(short) for x in later):
            return "short-session"
        full_ends = [x.done_end for x in later if not x.short(short)]
        if all(end is not None and any(t > end for t in ecg) for end in full_ends):
            return "ecg-change"
        return None

    # During a session (the pre-/post-dialysis code decides at the edges).
    for x in hd:
        end = x.end if x.end is not None else (now + FUTURE_TOLERANCE if x.session.in_progress else None)
        # strictly inside: a sample timed at the start is the pre-dialysis sample, one at the end the post one
        if end is None or not (x.start < when < end):
            continue
        if x.done_end is None:
            return Timing(ResultClass.INTRADIALYTIC, x.session)
        if coded_pre:
            break  # a coded pre-dialysis sample inside the session window: treated as drawn just before it
        if coded_post:
            return Timing(ResultClass.EARLY_POST, x.session)
        later = [y for y in hd if y.done_end is not None and y.start > when]
        return Timing(ResultClass.INTRADIALYTIC, x.session, len(later), exception_for([x, *later]))

    # Before a session that has since completed.
    before = []
    for x in hd:
        done = x.done_end
        if done is not None and (x.start >= when or (coded_pre and x.start <= when < done)):
            before.append(x)
    if before:
        return Timing(ResultClass.PRE_SESSION, before[-1].session, len(before), exception_for(before))

    # Shortly after the last session that ended before the draw.
    ended = [(done, x) for x in hd if (done := x.done_end) is not None and done <= when]
    if ended:
        last_end, last = max(ended, key=lambda pair: pair[0])
        if when - last_end <= timedelta(hours=early_post_hours):
            return Timing(ResultClass.EARLY_POST, last.session)
        return Timing(ResultClass.CURRENT, last.session)
    return Timing(ResultClass.CURRENT)


def classify(when: datetime, sessions: Sequence[Session], now: datetime, *, early_post_hours: float = 2.0,
             short_session_hours: float = 2.0, ecg_change_times: Iterable[datetime] = (),
             coded_pre: bool = False, coded_post: bool = False) -> ResultClass:
    """The class alone (see ``timing`` for the session it was judged against and the exceptions)."""
    return timing(when, sessions, now, early_post_hours=early_post_hours, short_session_hours=short_session_hours,
                  ecg_change_times=ecg_change_times, coded_pre=coded_pre, coded_post=coded_post).cls
