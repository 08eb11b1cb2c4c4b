"""The card link's appContext: which analyte to open on, and the hookInstance of the card's call.

CDS Hooks 2.0: a smart link's appContext is an opaque string the EHR hands to the app in the
token response. Ours is compact JSON. Oracle Health sends none: the app then opens on magnesium.
"""
from __future__ import annotations

import json
from typing import Any

from . import trends

DEFAULT_ANALYTE = "mg"


def make(analyte: str, hook_instance: str | None) -> str:
    data = {"analyte": analyte}
    if hook_instance:
        data["hookInstance"] = hook_instance
    return json.dumps(data, separators=(",", ":"))


def read(value: Any) -> dict[str, str]:
    """{'analyte': one of the four, 'hookInstance': str or absent}; anything unreadable gives the default."""
    data: Any = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            data = {"analyte": value.strip()}  # a bare analyte name is accepted too
    if not isinstance(data, dict):
        return {"analyte": DEFAULT_ANALYTE}
    analyte = data.get("analyte")
    out: dict[str, str] = {"analyte": analyte if isinstance(analyte, str) and analyte in trends.ANALYTES
                           else DEFAULT_ANALYTE}
    if isinstance(data.get("hookInstance"), str):
        out["hookInstance"] = data["hookInstance"][:200]
    return out
