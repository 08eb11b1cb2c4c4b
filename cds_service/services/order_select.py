"""order-select: check the medication orders a clinician has just selected."""
from __future__ import annotations

from .base import CdsService
from .common import PREFETCH

SERVICE = CdsService(
    id="dialysis-electrolytes-order-select",
    hook="order-select",
    title="Dialysis medication safety (order select)",
    description=(
        "For patients on dialysis: flags IV magnesium during dialysis, potassium or calcium replacement "
        "without magnesium, and quinine, baclofen, gabapentin and hypertonic saline risks, on the orders "
        "being selected."
    ),
    prefetch=PREFETCH,
    usage_requirements="Sends context.draftOrders; only orders named in context.selections get cards.",
)
