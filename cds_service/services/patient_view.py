"""patient-view: review the electrolytes of a dialysis patient with cramps or spasms."""
from __future__ import annotations

from .base import CdsService
from .common import PREFETCH

SERVICE = CdsService(
    id="dialysis-electrolytes-patient-view",
    hook="patient-view",
    title="Post-dialysis cramps: electrolyte review",
    description=(
        "For patients on hemodialysis, peritoneal dialysis or CRRT: one consolidated electrolyte review "
        "(magnesium, ionized calcium, potassium, phosphate, timed against dialysis sessions), separate cards "
        "for severe potassium, calcium and magnesium derangements, and aluminum toxicity, dysrhythmia risk "
        "and ultrafiltration-rate checks."
    ),
    prefetch=PREFETCH,
    usage_requirements="Needs read access to Patient, Condition, Procedure, Encounter, Observation and MedicationRequest.",
)
