"""The electrolyte trend app's one door into the clinical code.

Everything the app needs to *judge* (which class a result is in, what counts as a dialysis
session, the ultrafiltration rate) comes through these few functions, so that the app and the
cards always agree. When the snapshot v2 timing code (``cds_service.clinical.timing``) lands,
``classify`` below becomes a one-line call into it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Sequence

from ..clinical.dialysis import Session

# Policy section 2 (design numbers): rebound is largely over 2 h after a session; a result dated
# more than 5 min after now is a data error.
EARLY_POST = timedelta(hours=2)
FUTURE_SLACK = timedelta(minutes=5)
# Policy section 4, ultrafiltration-rate: weights within 2 h before the start / after the end.
WEIGHT_WINDOW = timedelta(hours=2)
UFR_HIGH_ML_KG_H = 13.0


class ResultClass(str, Enum):
    FUTURE = "future"
    PRE_SESSION = "pre-session"
    INTRADIALYTIC = "intradialytic"
    EARLY_POST = "early-post"
    CURRENT = "current"


def classify(when: datetime, sessions: Sequence[Session], now: datetime) -> ResultClass:
    """The class of a result drawn at ``when`` (policy section 2), against HD sessions and now.

    A draw inside a session is intradialytic; within 2 h after a session ended it is early-post;
    before the start of a session that has since completed it is pre-session (superseded);
    otherwise current.
    """
    if when > now + FUTURE_SLACK:
        return ResultClass.FUTURE
    completed_after = False
    for s in sessions:
        if s.start is None:
            continue
        end = s.end if s.end is not None else (now if s.in_progress else None)
        if end is not None and s.start <= when <= end:
            return ResultClass.INTRADIALYTIC
        if s.end is not None and s.end < when <= s.end + EARLY_POST:
            return ResultClass.EARLY_POST
        if s.end is not None and when < s.start and s.end <= now:
            completed_after = True
    return ResultClass.PRE_SESSION if completed_after else ResultClass.CURRENT


@dataclass(frozen=True)
class Weight:
    time: datetime
    kg: float


@dataclass(frozen=True)
class SessionWeights:
    session: Session
    pre_kg: float | None
    post_kg: float | None

    @property
    def hours(self) -> float | None:
        if self.session.start is None or self.session.end is None:
            return None
        return (self.session.end - self.session.start).total_seconds() / 3600.0

    @property
    def ufr(self) -> float | None:
        """UFR in mL/kg/h = (pre - post kg) x 1000 / (post kg x hours) (policy section 4)."""
        hours = self.hours
        if self.pre_kg is None or self.post_kg is None or not hours or self.post_kg <= 0:
            return None
        return (self.pre_kg - self.post_kg) * 1000.0 / (self.post_kg * hours)

    @property
    def ufr_high(self) -> bool:
        return self.ufr is not None and self.ufr >= UFR_HIGH_ML_KG_H


def session_weights(session: Session, weights: Sequence[Weight]) -> SessionWeights:
    """Pre-session weight: the last within 2 h before the start; post: the first within 2 h after the end."""
    pre = post = None
    if session.start is not None:
        before = [w for w in weights if session.start - WEIGHT_WINDOW <= w.time <= session.start]
        pre = max(before, key=lambda w: w.time).kg if before else None
    if session.end is not None:
        after = [w for w in weights if session.end <= w.time <= session.end + WEIGHT_WINDOW]
        post = min(after, key=lambda w: w.time).kg if after else None
    return SessionWeights(session, pre, post)
