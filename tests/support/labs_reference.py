"""The lab pre-filter as it was before it was made fast: the oracle the fast one is compared with.

``candidates``, its ``raw_*`` helpers and ``parse_fhir_datetime``, written the plain way (one dict
look-up at a time, a lambda sort key), together with the filter ``build_snapshot`` put in front of it
(only a string or absent status reaches the counted-status set look-up).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any, Iterable

from cds_service.clinical import codes
from cds_service.clinical.labs import COUNTED_STATUSES
from cds_service.clinical.timing import FUTURE_TOLERANCE

_DATE_ONLY = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def parse_fhir_datetime(value: object) -> datetime | None:
    """Parse a FHIR dateTime/instant string (or a datetime) to aware UTC.

    Partial dates (YYYY, YYYY-MM, YYYY-MM-DD) are taken at midnight UTC; a time
    without a zone is taken as UTC. Returns None for anything unparseable.
    """
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T":
        # The common form, YYYY-MM-DDThh:mm:ssZ, in one C call (since 3.11 fromisoformat reads "Z" as UTC);
        # anything it refuses takes the general path below, which gives the same answer for this form.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    try:
        if _DATE_ONLY.match(text):
            parts = [int(p) for p in text.split("-")] + [1, 1]
            return datetime(parts[0], parts[1], parts[2], tzinfo=timezone.utc)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past the last representable instant
        return None


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


def raw_clinical_time(raw: dict[str, Any]) -> datetime | None:
    """Clinical time: effectiveDateTime, else effectivePeriod.end/.start, else issued (effectiveInstant too)."""
    period: dict[str, Any] = raw["effectivePeriod"] if isinstance(raw.get("effectivePeriod"), dict) else {}
    for value in (raw.get("effectiveDateTime"), raw.get("effectiveInstant"), period.get("end"), period.get("start"),
                  raw.get("issued")):
        if isinstance(value, str):
            parsed = parse_fhir_datetime(value)
            if parsed is not None:
                return parsed
    return None


# Specimens that are not the patient's serum, plasma or blood (policy section 2): never used, whatever the code.
_EXCLUDED_SPECIMEN = re.compile(r"urine|dialys|effluent|circuit|ultrafiltrate|peritoneal|ascit|drain|csf"
                                r"|cerebrospinal|pleural|sweat|saliva", re.I)
# SNOMED specimen types that are not blood: urine, dialysate, peritoneal fluid (verified reference, section 1:
# the LOINC systems for urine and dialysis fluid are excluded by code; these catch a serum code on such a sample).
_EXCLUDED_SPECIMEN_CODES = frozenset({"122575003"})  # Urine specimen


def specimen_excluded(raw: dict[str, Any]) -> bool:
    """True when the Observation names a specimen that is not serum, plasma or blood.

    Looks at ``specimen.display`` and, for a contained Specimen (``#id``), its ``type`` text, displays and
    SNOMED codes. A specimen that cannot be read says nothing: the LOINC code's system (serum/plasma/blood)
    stands.
    """
    spec = raw.get("specimen")
    if not isinstance(spec, dict):
        return False
    texts = [spec.get("display")]
    ref = spec.get("reference")
    if isinstance(ref, str) and ref.startswith("#"):
        for res in raw.get("contained") or []:
            if isinstance(res, dict) and res.get("resourceType") == "Specimen" and res.get("id") == ref[1:]:
                stype = res.get("type")
                if isinstance(stype, dict):
                    texts.append(stype.get("text"))
                    for c in stype.get("coding") or []:
                        if isinstance(c, dict):
                            texts.append(c.get("display"))
                            if str(c.get("code")) in _EXCLUDED_SPECIMEN_CODES:
                                return True
    return any(isinstance(t, str) and _EXCLUDED_SPECIMEN.search(t) for t in texts)


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
