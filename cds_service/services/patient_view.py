"""patient-view: review the electrolytes of a dialysis patient with cramps or spasms."""
from __future__ import annotations

from .base import CdsService
from .common import PREFETCH

SERVICE = CdsService(
    id="dialysis-electrolytes-patient-view",
    hook="patient-view",
    title="Post-dialysis cramps: electrolyte review",
    description=(
        "For patients on dialysis: reviews magnesium, ionized calcium, potassium and phosphate, "
        "prompts to check magnesium first, and watches for aluminium toxicity and dysrhythmia risk "
        "after a session."
    ),
    prefetch=PREFETCH,
    usage_requirements="Needs read access to Patient, Condition, Procedure, Encounter and Observation.",
)
