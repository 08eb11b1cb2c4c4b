"""Draft medication orders: read leniently from context.draftOrders.

(The medication classification table and order rules build on DraftOrder.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class DraftOrder:
    id: str
    reference: str  # "MedicationRequest/<id>"
    request: Any  # fhir.resources MedicationRequest
    medication: Any = None  # fhir.resources Medication when medicationReference resolved
    text: str = ""
    notes: list[str] = field(default_factory=list)


Parse = Callable[[dict, str], Any]


def read_draft_orders(bundle: Any, parse: Parse, notes: list[str] | None = None) -> list[DraftOrder]:
    """Every MedicationRequest in the draftOrders Bundle, entry by entry; a bad entry is skipped, not fatal."""
    if not isinstance(bundle, dict):
        return []
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    raws = [e.get("resource") for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    medications = {}
    for raw in raws:
        if raw.get("resourceType") == "Medication" and raw.get("id"):
            med = parse(raw, "Medication")
            if med is not None:
                medications[str(raw["id"])] = med
    orders = []
    for index, raw in enumerate(raws):
        if raw.get("resourceType") != "MedicationRequest":
            continue
        model = parse(raw, "MedicationRequest")
        if model is None:
            if notes is not None:
                notes.append(f"draftOrders entry {index}: MedicationRequest could not be read; skipped")
            continue
        rid = str(model.id or f"draft-{index}")
        medication = None
        ref = getattr(model, "medicationReference", None)
        if ref is not None and ref.reference:
            target = ref.reference
            if target.startswith("#"):
                for contained in model.contained or []:
                    if getattr(contained, "id", None) == target[1:]:
                        medication = contained
            else:
                medication = medications.get(target.split("/")[-1])
        concept = model.medicationCodeableConcept or getattr(medication, "code", None)
        text = ""
        if concept is not None:
            text = concept.text or next((c.display for c in concept.coding or [] if c.display), "") or ""
        orders.append(DraftOrder(id=rid, reference=f"MedicationRequest/{rid}", request=model,
                                 medication=medication, text=text))
    return orders
