"""order-select: check the medication orders a clinician has just selected."""
from __future__ import annotations

from .base import CdsService
from .common import PREFETCH

SERVICE = CdsService(
    id="dialysis-electrolytes-order-select",
    hook="order-select",
    title="Dialysis medication safety (order select)",
    description=(
        "For patients on dialysis: checks potassium supplements against the potassium level, magnesium "
        "co-management, IV/IM and oral magnesium (level, dose, modality), aluminum-containing drugs, "
        "quinine, baclofen, gabapentin dose and 23.4% sodium chloride, on the orders being selected."
    ),
    prefetch=PREFETCH,
    usage_requirements="Sends context.draftOrders; only orders named in context.selections get cards.",
)
