"""One reading of an analyte as the patient-view rules use it: the newest usable result, its class against
the HD sessions, and whether it may rest an acute (critical) tier or a chronic one (policy section 2). Pure code.

- **acute**: current (or a pre-session/intradialytic value that a short session or a later ECG change
  revives), or early-post (drawn within 2 h after a session: counts as current for every analyte except
  a *low* potassium, which the rules check with ``early_post``), and no older than the acute window:
  72 h for HD, PD and unknown modality, 12 h for CRRT.
- **current** (chronic rules: electrolyte review): the same classes, any age inside the chronic look-back.
- **superseded**: pre-session, or drawn during a session that has since ended (no exception applies).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .labs import LabResult
from .timing import ResultClass, Timing

if TYPE_CHECKING:
    from .snapshot import Snapshot

CHRONIC_LOOKBACK = timedelta(days=45)


@dataclass(frozen=True)
class Reading:
    analyte: str
    result: LabResult | None
    timing: Timing | None
    acute_window: timedelta

    @property
    def lab(self) -> LabResult:
        """The result, for code that has checked it is there (``missing`` is False)."""
        assert self.result is not None, f"no {self.analyte} result"
        return self.result

    @property
    def when(self) -> Timing:
        """The timing of the result (``missing`` is False)."""
        assert self.timing is not None, f"no {self.analyte} result"
        return self.timing

    @property
    def missing(self) -> bool:
        return self.result is None

    @property
    def cls(self) -> ResultClass | None:
        return None if self.timing is None else self.timing.cls

    @property
    def superseded(self) -> bool:
        return self.timing is not None and self.timing.superseded

    @property
    def early_post(self) -> bool:
        return self.cls is ResultClass.EARLY_POST

    @property
    def current(self) -> bool:
        """Usable for a chronic rule as a value that still describes the patient."""
        if self.timing is None:
            return False
        return self.timing.usable_acute or self.cls is ResultClass.EARLY_POST

    def acute(self, now: datetime) -> bool:
        """Usable for an acute (critical) tier: current and no older than the acute window."""
        return self.current and self.result is not None and now - self.result.time <= self.acute_window

    # comparisons honouring comparators (True only when certain)
    def below(self, threshold: float) -> bool:
        return self.result is not None and self.result.below(threshold) is True

    def at_or_above(self, threshold: float) -> bool:
        return self.result is not None and self.result.at_or_above(threshold) is True

    def above(self, threshold: float) -> bool:
        return self.result is not None and self.result.above(threshold) is True


def acute_window(snapshot: Snapshot, hd_pd_hours: float = 72.0, crrt_hours: float = 12.0) -> timedelta:
    """The acute look-back for this patient's modality (policy section 2, design numbers)."""
    return timedelta(hours=crrt_hours if snapshot.modality == "CRRT" else hd_pd_hours)


def reading(snapshot: Snapshot, analyte: str, *, chronic: timedelta = CHRONIC_LOOKBACK,
            acute: timedelta = timedelta(hours=72)) -> Reading:
    """The newest usable result of ``analyte`` inside ``chronic``, with its timing (once per snapshot)."""
    def compute() -> Reading:
        result = snapshot.latest(analyte, within=chronic)
        return Reading(analyte, result, snapshot.timing(result) if result is not None else None, acute)
    return snapshot.memo(("reading", analyte, chronic, acute), compute)
