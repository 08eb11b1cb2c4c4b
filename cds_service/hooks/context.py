"""Build the typed snapshot the rules read from resolved prefetch data."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from ..clinical import dialysis, labs
from ..clinical.orders import read_draft_orders
from ..clinical.snapshot import Snapshot
from ..fhir.parse import bundle_resources, lenient, parse_all
from .prefetch import Resolved

OBSERVATION_KEYS = ("labs", "aluminum", "heartRate")


def _parse_observation(raw: dict):
    return lenient(raw, "Observation")


def build_snapshot(hook: str, request: Mapping[str, Any], resolved: Resolved, now: datetime,
                   lookback: timedelta, notes: list[str] | None = None) -> Snapshot:
    data = resolved.data
    context = request.get("context") or {}
    raw_obs: list[dict] = []
    for key in OBSERVATION_KEYS:
        raw_obs.extend(bundle_resources(data.get(key), "Observation"))
    panel = labs.build_panel(raw_obs, _parse_observation)

    conditions = parse_all(bundle_resources(data.get("conditions"), "Condition"), "Condition", notes)
    procedures = parse_all(bundle_resources(data.get("procedures"), "Procedure"), "Procedure", notes)
    encounters = parse_all(bundle_resources(data.get("encounters"), "Encounter"), "Encounter", notes)
    symptoms = parse_all(bundle_resources(data.get("symptoms"), "Observation"), "Observation", notes)
    status = dialysis.assess(conditions, procedures, encounters, now)

    patient = None
    patients = bundle_resources(data.get("patient"), "Patient")
    if patients:
        patient = lenient(patients[0], "Patient", notes)

    drafts = []
    if "draftOrders" in context:
        drafts = read_draft_orders(context.get("draftOrders"), lambda raw, rtype: lenient(raw, rtype, notes), notes)
    selections = None
    if hook == "order-select":
        selections = frozenset(str(s) for s in context.get("selections") or [])

    return Snapshot(
        now=now,
        patient_id=str(context.get("patientId")),
        hook=hook,
        labs=panel,
        dialysis=status,
        lookback=lookback,
        patient=patient,
        conditions=conditions,
        symptom_observations=symptoms,
        draft_orders=drafts,
        selections=selections,
        unavailable=dict(resolved.unavailable),
    )
