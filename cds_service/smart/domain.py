"""The electrolyte trend app's one door into the clinical code.

Everything the app *judges* (which HD sessions there were, which class a result is in, the
ultrafiltration rate of a session) is answered by the same clinical code the cards use: sessions by
``clinical.dialysis.assess``, classes by ``clinical.snapshot.Snapshot.classify`` (policy section 2,
``clinical.timing``), pre/post weights and UFR by ``clinical.weights``. Nothing is re-decided here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

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
    """``result -> class``, exactly as the cards classify it (the snapshot's own method)."""
    return Snapshot(now=now, patient_id="", hook="patient-view", labs=LabPanel(), dialysis=status).classify


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
    sessions = [s for s in sessions if s.completed]
    measured = {u.session: u for u in session_ufrs(sessions, list(weights), WEIGHT_WINDOW)}
    return [SessionRow(s, measured.get(s)) for s in sessions]
