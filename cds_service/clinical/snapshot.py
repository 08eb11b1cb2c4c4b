"""The typed snapshot every rule reads: patient, labs, dialysis status, conditions, draft orders, and now."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .dialysis import DialysisStatus
from .labs import LabPanel, LabResult


@dataclass
class Snapshot:
    now: datetime
    patient_id: str
    hook: str
    labs: LabPanel
    dialysis: DialysisStatus
    lookback: timedelta = timedelta(days=30)
    patient: Any = None
    conditions: Sequence[Any] = field(default_factory=list)  # fhir.resources Condition models
    symptom_observations: Sequence[Any] = field(default_factory=list)  # Observation models (cramp, spasm, neuro signs)
    draft_orders: list[Any] = field(default_factory=list)  # clinical.orders.DraftOrder
    selections: frozenset[str] | None = None  # order-select: the selected "Type/id" references
    unavailable: dict[str, str] = field(default_factory=dict)  # data key -> why it could not be had

    def latest(self, analyte: str) -> LabResult | None:
        """Latest usable result inside the lookback window (the value an alert may rest on)."""
        return self.labs.latest(analyte, self.now, self.lookback)

    def data_missing(self, key: str) -> bool:
        return key in self.unavailable
