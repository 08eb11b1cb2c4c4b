"""Pre- and post-session body weights and the ultrafiltration rate of an HD session. Pure code.

UFR (mL/kg/h) = (pre-session kg - post-session kg) x 1000 / (post-session kg x session hours): the
weight lost is taken as the volume ultrafiltered, per kg of post-session weight, per hour of treatment.

A pre-session weight is the one taken nearest the start within the window before it (a weight coded
"pre dialysis", LOINC 8347-7, also counts when timed inside the session); a post-session weight the
one nearest the end within the window after it (8344-4 "post dialysis" also when timed inside it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable

from . import codes
from .labs import LabResult
from .timing import Session


@dataclass(frozen=True)
class SessionUfr:
    session: Session
    pre: LabResult
    post: LabResult

    @property
    def hours(self) -> float:
        return self.session.duration.total_seconds() / 3600.0

    @property
    def removed_kg(self) -> float:
        return self.pre.value - self.post.value

    @property
    def ufr(self) -> float:
        return ufr(self.pre.value, self.post.value, self.hours)


def ufr(pre_kg: float, post_kg: float, hours: float) -> float:
    """Ultrafiltration rate in mL/kg/h; ValueError for a non-positive weight or duration."""
    if post_kg <= 0 or pre_kg <= 0 or hours <= 0:
        raise ValueError("weights and session length must be positive")
    return (pre_kg - post_kg) * 1000.0 / (post_kg * hours)


def _nearest(candidates: list[LabResult], target) -> LabResult | None:
    return min(candidates, key=lambda w: abs((w.time - target).total_seconds()), default=None)


def pre_weight(session: Session, weights: Iterable[LabResult], window: timedelta) -> LabResult | None:
    weights = list(weights)
    before = [w for w in weights if session.start - window <= w.time <= session.start]
    coded = [w for w in weights if w.loinc == codes.WEIGHT_PRE_DIALYSIS
             and session.start - window <= w.time < session.end]
    return _nearest(coded, session.start) or _nearest(before, session.start)


def post_weight(session: Session, weights: Iterable[LabResult], window: timedelta) -> LabResult | None:
    weights = list(weights)
    after = [w for w in weights if session.end <= w.time <= session.end + window]
    coded = [w for w in weights if w.loinc == codes.WEIGHT_POST_DIALYSIS
             and session.start < w.time <= session.end + window]
    return _nearest(coded, session.end) or _nearest(after, session.end)


def session_ufrs(sessions: Iterable[Session], weights: Iterable[LabResult], window: timedelta) -> list[SessionUfr]:
    """Sessions (completed, with a known length) that have both weights, newest first."""
    weights = [w for w in weights if w.analyte == "weight" and w.value > 0]
    out = []
    for s in sessions:
        if not s.completed or s.duration is None:
            continue
        pre, post = pre_weight(s, weights, window), post_weight(s, weights, window)
        if pre is not None and post is not None and pre is not post:
            out.append(SessionUfr(s, pre, post))
    out.sort(key=lambda u: u.session.end, reverse=True)
    return out
