"""The typed snapshot every rule reads: patient, labs, dialysis status and modality, conditions, orders, and now.

Time (policy section 2) is answered here so that every rule reads it the same way:
``classify(result)`` / ``timing(result)`` place a result against the HD sessions, and
``latest(analyte, within=...)`` is the newest usable result (never future-dated, never entered in
error or cancelled, only serum, plasma or whole blood: the lab panel drops the rest).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, TypeVar

from . import codes, wording
from .dialysis import DialysisStatus
from .labs import LabPanel, LabResult
from .timing import ResultClass, Session, Timing, hd_spans, timing
from .weights import SessionUfr, session_ufrs

_T = TypeVar("_T")


@dataclass
class Snapshot:
    now: datetime
    patient_id: str
    hook: str
    labs: LabPanel
    dialysis: DialysisStatus
    lookback: timedelta = timedelta(days=45)
    patient: Any = None
    conditions: Sequence[Any] = field(default_factory=list)  # fhir.resources Condition models
    symptom_observations: Sequence[Any] = field(default_factory=list)  # Observation models (cramp, spasm, neuro, ECG)
    draft_orders: list[Any] = field(default_factory=list)  # clinical.orders.DraftOrder
    selections: frozenset[str] | None = None  # order-select: the selected "Type/id" references
    unavailable: dict[str, str] = field(default_factory=dict)  # data key -> why it could not be had
    medications: list[Any] = field(default_factory=list)  # active MedicationRequests (clinical.orders.DraftOrder)
    ecg_change_times: tuple[datetime, ...] = ()  # documented ECG changes (codes.ECG_CHANGE_CODES)
    # Design numbers of section 2, kept here so that every rule times results the same way.
    early_post_hours: float = 2.0
    short_session_hours: float = 2.0
    # Rules ask for the timing of the same few results many times (about 20 asks per call), and several rules
    # ask the same questions of the record (the newest Mg, cramps in the last 7 days); each answer is kept
    # for the inputs it was computed from (see ``memo``).
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------ dialysis
    @property
    def modality(self) -> str | None:
        """"HD", "PD", "CRRT" or "unknown"; None when the patient is not on dialysis."""
        return self.dialysis.modality

    @property
    def sessions(self) -> list[Session]:
        """Completed intermittent HD sessions, oldest first (PD exchanges and CRRT are not sessions)."""
        return self.dialysis.hd_sessions

    @property
    def session_in_progress(self) -> Session | None:
        return self.dialysis.session_in_progress

    @property
    def last_session(self) -> Session | None:
        """The most recent completed HD session."""
        return self.dialysis.last_session

    def hours_since_last_session(self) -> float | None:
        last = self.last_session
        if last is None or last.end is None:
            return None
        return (self.now - last.end).total_seconds() / 3600.0

    # ------------------------------------------------------------------ results and time
    def memo(self, key: tuple[Any, ...], compute: Callable[[], _T]) -> _T:
        """``compute()``, worked out once per snapshot for ``key``.

        The key must hold every input of ``compute`` besides the snapshot's own fields named in ``_inputs``
        (now, the dialysis status, the record's lists), which are added here: a test or caller that replaces
        one of them gets a fresh answer.
        """
        full = (key, self._inputs())
        if full in self._memo:
            return self._memo[full]  # type: ignore[no-any-return]
        value = self._memo[full] = compute()
        return value

    def _inputs(self) -> tuple[Any, ...]:
        return (self.now, id(self.dialysis), id(self.labs), id(self.conditions), id(self.symptom_observations),
                self.early_post_hours, self.short_session_hours, self.ecg_change_times)

    def timing(self, result: LabResult) -> Timing:
        # keyed by identity; the result is kept beside its answer, so its id cannot be reused while cached
        return self.memo(("timing", id(result)), lambda: (result, self._timing(result)))[1]

    def _timing(self, result: LabResult) -> Timing:
        return timing(result.time, (), self.now, early_post_hours=self.early_post_hours,
                      short_session_hours=self.short_session_hours, ecg_change_times=self.ecg_change_times,
                      coded_pre=result.loinc in codes.PRE_DIALYSIS_CODES,
                      coded_post=result.loinc in codes.POST_DIALYSIS_CODES,
                      spans=self.memo(("hd-spans",), self._hd_spans))

    def _hd_spans(self) -> list[Any]:
        sessions = self.sessions if self.session_in_progress is None else [*self.sessions, self.session_in_progress]
        return hd_spans(sessions)

    def classify(self, result: LabResult) -> ResultClass:
        return self.timing(result).cls

    def session_timed(self) -> bool:
        """Results are timed against sessions (and the card says so) for HD only; "unknown" gets no timing text."""
        return self.modality == "HD"

    def when_text(self, result: LabResult) -> str:
        """'drawn 6 h ago, before the session that ended 1 h ago' (only the age outside HD)."""
        t = self.timing(result) if self.session_timed() else None
        return wording.when_text(result.time, self.now, t, in_progress=self.session_in_progress)

    def result_text(self, result: LabResult) -> str:
        """'K 6.8 mmol/L, drawn 6 h ago, before the session that ended 1 h ago'."""
        return f"{wording.short_name(result.analyte)} {wording.value_text(result)}, {self.when_text(result)}"

    def latest(self, analyte: str, within: timedelta | None = None) -> LabResult | None:
        """Newest usable result of ``analyte`` no older than ``within`` (default: the configured look-back)."""
        return self.labs.latest(analyte, self.now, self.lookback if within is None else within)

    def results(self, analyte: str, within: timedelta | None = None) -> list[LabResult]:
        """Usable results of ``analyte`` taken in the window, newest first (as many as the panel keeps)."""
        return self.labs.within(analyte, self.now, self.lookback if within is None else within)

    def ufr_sessions(self, within: timedelta = timedelta(days=7), weight_window_hours: float = 2.0
                     ) -> list[SessionUfr]:
        """Completed HD sessions ending in ``within`` with pre- and post-session weights, newest first."""
        recent = [s for s in self.sessions if s.end is not None and self.now - s.end <= within]
        weights = self.labs.within("weight", self.now, within + timedelta(days=1))
        return session_ufrs(recent, weights, timedelta(hours=weight_window_hours))

    def data_missing(self, key: str) -> bool:
        return key in self.unavailable
