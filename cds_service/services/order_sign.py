"""order-sign: check every draft medication order before it is signed."""
from __future__ import annotations

from .base import CdsService
from .common import PREFETCH

SERVICE = CdsService(
    id="dialysis-electrolytes-order-sign",
    hook="order-sign",
    title="Dialysis medication safety (order sign)",
    description=(
        "For patients on dialysis: before signing, checks potassium supplements against the potassium level, "
        "magnesium co-management, IV/IM and oral magnesium (level, dose, modality), aluminum-containing "
        "drugs, quinine, baclofen, gabapentin dose and 23.4% sodium chloride."
    ),
    prefetch=PREFETCH,
    usage_requirements="Sends context.draftOrders; every draft order is checked.",
)
