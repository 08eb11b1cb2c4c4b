"""Vendor ``extension`` keys of a hook request, recorded in the log; they never change which rules run.

Epic sends ``com.epic.cdshooks.request.*`` keys (Epic's CDS Hooks documentation): among them
``bpa-trigger-action``, which says what the clinician did, because Epic reuses patient-view for other
triggers (18 entering an order, 23 signing, 60 opening the chart), and ``criteria-id``, the advisory
record that called the service. Only key names and those two short values are logged; other values
(which may identify the user) are not.
"""
from __future__ import annotations

import re
from typing import Any

EPIC_REQUEST = "com.epic.cdshooks.request."
EPIC_TRIGGER_ACTION = EPIC_REQUEST + "bpa-trigger-action"
EPIC_CRITERIA_ID = EPIC_REQUEST + "criteria-id"
EPIC_TRIGGERS = {"18": "enter order", "23": "sign order", "60": "open chart"}

_KEY = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_VALUE = re.compile(r"^[A-Za-z0-9._ -]{1,40}$")
MAX_KEYS = 20


def _short(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text if _VALUE.match(text) else None


def log_fields(body: Any) -> dict[str, Any]:
    """Fields for the hook log line: the extension keys sent, and Epic's trigger action and criteria id."""
    extension = body.get("extension") if isinstance(body, dict) else None
    if not isinstance(extension, dict) or not extension:
        return {}
    out: dict[str, Any] = {"extensions": sorted(k for k in extension if isinstance(k, str) and _KEY.match(k))[:MAX_KEYS]}
    trigger = _short(extension.get(EPIC_TRIGGER_ACTION))
    if trigger is not None:
        out["epicTriggerAction"] = trigger
        out["epicTrigger"] = EPIC_TRIGGERS.get(trigger, "other")
    criteria = _short(extension.get(EPIC_CRITERIA_ID))
    if criteria is not None:
        out["epicCriteriaId"] = criteria
    return out
