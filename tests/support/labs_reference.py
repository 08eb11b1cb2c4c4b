"""The lab pre-filter as it was before it was made fast: the oracle the fast one is compared with.

``candidates`` and ``raw_analyte`` written the plain way (one dict look-up at a time, every date
through ``raw_clinical_time``, a lambda sort key), together with the filter ``build_snapshot`` put in
front of it (only a string or absent status reached the counted-status set look-up).
``raw_clinical_time`` (the date fallbacks, via ``parse_fhir_datetime``) and ``specimen_excluded`` are
the service's own: the fast candidates() calls them unchanged for anything but the usual shape.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from cds_service.clinical import codes
from cds_service.clinical.labs import COUNTED_STATUSES, raw_clinical_time, specimen_excluded
from cds_service.clinical.timing import FUTURE_TOLERANCE
from cds_service.fhir import parse


def raw_analyte(raw: dict[str, Any]) -> tuple[str, str] | None:
    """(analyte, loinc) for a raw Observation dict, or None when it is none of ours."""
    code = raw.get("code")
    if not isinstance(code, dict):
        return None
    for coding in code.get("coding") or []:
        if not isinstance(coding, dict):
            continue
        system = coding.get("system")
        c = coding.get("code")
        if c in codes.LOINC_TO_ANALYTE and (system in (None, "", codes.LOINC)):
            return codes.LOINC_TO_ANALYTE[c], c
    return None


def candidates(raw_observations: Iterable[Any], now: datetime | None = None,
               dropped: list[str] | None = None) -> dict[str, list[tuple[datetime, str, dict[str, Any]]]]:
    """Group raw Observations by analyte, keeping counted statuses, newest clinical time first.

    Server order is never trusted: the sort uses the clinical time of each result. With ``now``, a
    result taken more than 5 min after it is a data error: logged (and noted in ``dropped``), never used.
    Results on a specimen other than serum, plasma or blood are never used either.
    """
    grouped: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = {}
    for raw in raw_observations:
        if not isinstance(raw, dict) or raw.get("resourceType") != "Observation":
            continue
        if raw.get("status") not in COUNTED_STATUSES:
            continue
        hit = raw_analyte(raw)
        if hit is None:
            continue
        when = raw_clinical_time(raw)
        if when is None:
            continue
        if now is not None and when - now > FUTURE_TOLERANCE:
            why = f"Observation/{raw.get('id')}: {hit[0]} dated in the future ({when.isoformat()}); not used"
            if dropped is not None:
                dropped.append(why)
            continue
        if specimen_excluded(raw):
            if dropped is not None:
                dropped.append(f"Observation/{raw.get('id')}: {hit[0]} on a specimen other than serum, plasma or "
                               f"blood; not used")
            continue
        grouped.setdefault(hit[0], []).append((when, str(raw.get("issued") or ""), raw))
    for items in grouped.values():
        items.sort(key=lambda t: (t[0], t[1], str(t[2].get("id") or "")), reverse=True)
    return grouped


def snapshot_candidates(raw_observations: list[dict], now: datetime | None = None,
                        dropped: list[str] | None = None) -> dict[str, list[tuple[datetime, str, dict[str, Any]]]]:
    """What ``build_snapshot`` handed the panel: a status that is not a string or absent was filtered out first."""
    kept = [r for r in raw_observations if not isinstance(r, dict) or isinstance(r.get("status"), (str, type(None)))]
    return candidates(kept, now, dropped)


def bundle_resources(bundle: Any, resource_type: str | None = None) -> list[dict]:
    """fhir.parse.bundle_resources as it was for a Bundle (a loop with append; anything else is unchanged)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return parse.bundle_resources(bundle, resource_type)
    out = []
    for entry in bundle.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        res = entry.get("resource")
        if not isinstance(res, dict) or res.get("resourceType") == "OperationOutcome":
            continue
        if resource_type is None or res.get("resourceType") == resource_type:
            out.append(res)
    return out
