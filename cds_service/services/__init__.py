"""The CDS services, one module per service. ``SERVICES`` maps id -> CdsService."""
from __future__ import annotations

from .base import CdsService
from .order_select import SERVICE as ORDER_SELECT
from .order_sign import SERVICE as ORDER_SIGN
from .patient_view import SERVICE as PATIENT_VIEW

SERVICES: dict[str, CdsService] = {s.id: s for s in (PATIENT_VIEW, ORDER_SELECT, ORDER_SIGN)}

__all__ = ["CdsService", "SERVICES"]
