"""The electrolyte trend app's one door into the clinical code.

Everything the app *judges* (which HD sessions there were, which class a result is in, the
ultrafiltration rate of a session) is answered by the same clinical code the cards use: sessions by
``clinical.dialysis.assess``, classes by ``clinical.snapshot.Snapshot.classify`` (policy section 2,
``clinical.timing``), pre/post weights and UFR by ``clinical.weights``. Nothing is re-decided here.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from ..clinical import codes, timing
from ..clinical.dialysis import DialysisStatus, assess
from ..clinical.labs import LabPanel, LabResult
from ..clinical.snapshot import Snapshot
from ..clinical.timing import ResultClass, Session
from ..clinical.weights import SessionUfr, session_ufrs

__all__ = ["ResultClass", "Session", "SessionRow", "dialysis_status", "classifier", "session_rows"]

# Policy section 4, ultrafiltration-rate: weights within 2 h of the session; 13 mL/kg/h or more is high.
WEIGHT_WINDOW = timedelta(hours=2)
UFR_HIGH_ML_KG_H = 13.0


def dialysis_status(procedures: Iterable[Any], now: datetime, days: int) -> DialysisStatus:
    """Dialysis status with the HD sessions of the last ``days`` (fhir.resources Procedure models)."""
    span = timedelta(days=days + 1)
    return assess([], procedures, [], now, window=span, history=span)


def classifier(status: DialysisStatus, now: datetime) -> Callable[[LabResult], ResultClass]:
    """``result -> class``, as the cards classify it (``Snapshot.classify``: ``clinical.timing`` with the
    snapshot's settings), but judged against the sessions next to the draw only.

    A result's class depends only on the session it falls in, the next completed one after it (any later
    completed session makes it pre-session) and the last one that ended before it (early-post or
    current); ``timing`` itself walks every session, which for a year of results (10,000 draws, 156
    sessions) costs seconds. The two previous and two next sessions by start time are passed instead;
    tests/test_smart_units.py checks the classes equal the snapshot's on full histories.
    """
    snapshot = Snapshot(now=now, patient_id="", hook="patient-view", labs=LabPanel(), dialysis=status)
    sessions = sorted((s for s in snapshot.sessions if s.start is not None), key=lambda s: s.start or now)
    starts = [s.start or now for s in sessions]

    known: dict[tuple[datetime, bool, bool], ResultClass] = {}  # a panel's results share one draw time

    def classify(result: LabResult) -> ResultClass:
        key = (result.time, result.loinc in codes.PRE_DIALYSIS_CODES, result.loinc in codes.POST_DIALYSIS_CODES)
        if key not in known:
            i = bisect_left(starts, result.time)
            known[key] = timing.classify(result.time, sessions[max(0, i - 2):i + 2], now,
                                         early_post_hours=snapshot.early_post_hours,
                                         short_session_hours=snapshot.short_session_hours,
                                         ecg_change_times=snapshot.ecg_change_times,
                                         coded_pre=key[1], coded_post=key[2])
        return known[key]
    return classify


@dataclass(frozen=True)
class SessionRow:
    session: Session
    measured: SessionUfr | None  # None: no pre- and post-session weight pair

    @property
    def hours(self) -> float | None:
        d = self.session.duration
        return None if d is None else d.total_seconds() / 3600.0

    @property
    def pre_kg(self) -> float | None:
        return self.measured.pre.value if self.measured else None

    @property
    def post_kg(self) -> float | None:
        return self.measured.post.value if self.measured else None

    @property
    def ufr(self) -> float | None:
        return self.measured.ufr if self.measured else None

    @property
    def ufr_high(self) -> bool:
        return self.ufr is not None and self.ufr >= UFR_HIGH_ML_KG_H


def session_rows(sessions: Iterable[Session], weights: Iterable[LabResult]) -> list[SessionRow]:
    """Every completed session, oldest first, with its weights and UFR where both weights are on record."""
    sessions = [s for s in sessions if s.completed and s.start is not None]
    weights = sorted(weights, key=lambda w: w.time)
    times = [w.time for w in weights]
    rows = []
    for s in sessions:  # each session with the weights that can be its own (within the window around it)
        if s.start is None or s.end is None:
            continue
        near = weights[bisect_left(times, s.start - WEIGHT_WINDOW):bisect_right(times, s.end + WEIGHT_WINDOW)]
        measured = session_ufrs([s], near, WEIGHT_WINDOW)
        rows.append(SessionRow(s, measured[0] if measured else None))
    return rows
