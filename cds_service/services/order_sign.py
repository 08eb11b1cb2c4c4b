"""order-sign: check every draft medication order before it is signed."""
from __future__ import annotations

from .base import CdsService
from .common import PREFETCH

SERVICE = CdsService(
    id="dialysis-electrolytes-order-sign",
    hook="order-sign",
    title="Dialysis medication safety (order sign)",
    description=(
        "For patients on dialysis: before signing, flags IV magnesium during dialysis, potassium or calcium "
        "replacement without magnesium, and quinine, baclofen, gabapentin and hypertonic saline risks."
    ),
    prefetch=PREFETCH,
    usage_requirements="Sends context.draftOrders; every draft order is checked.",
)
