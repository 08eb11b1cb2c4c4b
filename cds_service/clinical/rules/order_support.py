"""Helpers shared by the order rules: the order's placeholders, the delete suggestion, lab views.

Not a rule module (it registers no rule). A ``LabView`` is the one place the order rules read a
lab result, its class against the dialysis sessions and its wording, so every order card states a
value the same way ("K 6.8 mmol/L, drawn 3 h ago, before the session that ended 1 h ago").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .. import wording
from ..labs import LabResult
from ..orders import DraftOrder, orders_to_check
from ..timing import ResultClass
from . import RuleContext, SuggestionSpec, Threshold

INDICATOR_RANK = {"info": 0, "warning": 1, "critical": 2}


def checked(ctx: RuleContext) -> list[DraftOrder]:
    """order-select: the selected draft orders; order-sign: all of them."""
    return orders_to_check(ctx.snapshot)


def order_values(order: DraftOrder) -> dict[str, str]:
    """Placeholders every order card fills: which order it is about, its route and dose."""
    route = order.route_text or order.route or ""
    if not route:
        route = "not stated (IV-only premix)" if order.product is not None and order.product.iv_only else "not stated"
    return {
        "medication": order.label(80),
        "med_short": order.label(40),
        "order": order.reference if order.has_id else "draft order without an id",
        "route": route,
        "dose": order.dose.describe(),
    }


def remove_order(order: DraftOrder, recommended: bool) -> SuggestionSpec | None:
    """Delete this draft order (action delete, resourceId = the MedicationRequest); None without an id."""
    if not order.has_id:
        return None
    return SuggestionSpec("remove-draft", {"resource_id": order.reference, "medication": order.label(80)},
                          recommended=recommended)


def modality(snapshot: Any) -> str:
    """"HD", "PD", "CRRT" or "unknown" (the order rules run only for patients on dialysis)."""
    return snapshot.modality or "unknown"


# Acute look-back (policy section 2, design, E-Q10): a critical card rests only on a current result no older
# than this; 12 h for CRRT, where values change continuously. Rules declare these as card-file thresholds.
ACUTE_THRESHOLDS = {
    "acute_hours": Threshold("h", low=12, high=168),
    "acute_hours_crrt": Threshold("h", low=4, high=48),
}


@dataclass
class LabView:
    """The newest usable result of one analyte for an order card, with its class and its wording."""
    result: LabResult | None
    cls: ResultClass | None = None
    current: bool = False  # not superseded (current, early post-dialysis, or revived by an exception)
    acute_ok: bool = False  # may rest a critical card: usable for acute rules and within the acute look-back
    early_post: bool = False

    def below(self, threshold: float) -> bool:
        return self.result is not None and self.result.below(threshold) is True

    def at_or_above(self, threshold: float) -> bool:
        return self.result is not None and self.result.at_or_above(threshold) is True

    def values(self, snapshot: Any, name: str, missing: str) -> dict[str, str]:
        """``{name}`` = the value with units; ``{name}_drawn`` = ", drawn 6 h ago, before the session that ended
        1 h ago" (empty when there is no result, ``{name}`` then says so)."""
        if self.result is None:
            return {name: missing, f"{name}_drawn": ""}
        return {name: wording.value_text(self.result), f"{name}_drawn": ", " + snapshot.when_text(self.result)}


def lab_view(ctx: RuleContext, analyte: str, within: timedelta) -> LabView:
    snap = ctx.snapshot
    result = snap.latest(analyte, within=within)
    if result is None:
        return LabView(None)
    t = snap.timing(result)
    hours = ctx.params.get("acute_hours_crrt" if modality(snap) == "CRRT" else "acute_hours", 72.0)
    young = snap.now - result.time <= timedelta(hours=hours)
    return LabView(result, t.cls, current=not t.superseded, acute_ok=(t.usable_acute or t.cls is ResultClass.EARLY_POST) and young,
                   early_post=t.cls is ResultClass.EARLY_POST)
