"""Documented symptoms and comorbidities, read from Conditions and symptom Observations. Pure code.

A symptom counts when it is documented (not refuted, not entered in error, not recorded as
absent) at a known time inside the window the rule asks about.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from . import codes
from .codes import pairs
from .dialysis import EXCLUDED_VERIFICATION, condition_is_active
from .labs import COUNTED_STATUSES
from .timeutil import format_delta, format_time, parse_fhir_datetime


@dataclass(frozen=True)
class Documented:
    label: str  # display text of the matching coding, or its code
    code: str
    time: datetime | None
    source: str  # "Condition/x" or "Observation/y"

    def describe(self, now: datetime) -> str:
        when = f", {format_time(self.time)} ({format_delta(now - self.time)} ago)" if self.time else ""
        return f"{self.label} ({self.source}{when})"


def _display(concept: Any, wanted: set[tuple[str, str]]) -> tuple[str, str]:
    for coding in getattr(concept, "coding", None) or []:
        if (str(coding.system or ""), str(coding.code)) in wanted:
            return str(coding.display or getattr(concept, "text", None) or coding.code), str(coding.code)
    return str(getattr(concept, "text", None) or "coded finding"), ""


def condition_time(cond: Any) -> datetime | None:
    """When a Condition began: onsetDateTime, onsetPeriod.start, else recordedDate."""
    onset = parse_fhir_datetime(getattr(cond, "onsetDateTime", None))
    if onset is None and getattr(cond, "onsetPeriod", None) is not None:
        onset = parse_fhir_datetime(cond.onsetPeriod.start)
    return onset or parse_fhir_datetime(getattr(cond, "recordedDate", None))


def observation_time(obs: Any) -> datetime | None:
    when = parse_fhir_datetime(getattr(obs, "effectiveDateTime", None))
    if when is None and getattr(obs, "effectivePeriod", None) is not None:
        when = parse_fhir_datetime(obs.effectivePeriod.end) or parse_fhir_datetime(obs.effectivePeriod.start)
    return when or parse_fhir_datetime(getattr(obs, "issued", None))


def _observation_says_absent(obs: Any) -> bool:
    if getattr(obs, "valueBoolean", None) is False:
        return True
    value = getattr(obs, "valueCodeableConcept", None)
    return any(code == codes.SNOMED_ABSENT for _s, code in pairs(value))


def documented(conditions: Iterable[Any], observations: Iterable[Any], wanted: set[tuple[str, str]],
               now: datetime, window: timedelta | None,
               condition_needs_time: bool = True, episodes: bool = False) -> list[Documented]:
    """Documentation of any code in ``wanted``, newest first.

    Conditions must be active (with ``episodes``, a resolved episode inside the window counts too:
    a cramp yesterday that has passed is still a cramp yesterday); with a window, their onset (or recorded date) must fall inside it
    unless ``condition_needs_time`` is False (an active problem-list entry then counts whatever its
    date). Observations must have a counted status, a time inside the window, and not say "absent".
    """
    found: list[Documented] = []
    for cond in conditions:
        if not (pairs(getattr(cond, "code", None)) & wanted):
            continue
        if episodes:
            if any(code in EXCLUDED_VERIFICATION for _s, code in pairs(getattr(cond, "verificationStatus", None))):
                continue
        elif not condition_is_active(cond):
            continue
        when = condition_time(cond)
        if window is not None and condition_needs_time:
            if when is None or not timedelta(0) <= now - when <= window:
                continue
        label, code = _display(cond.code, wanted)
        found.append(Documented(label, code, when, f"Condition/{cond.id}"))
    for obs in observations:
        if str(getattr(obs, "status", "")) not in COUNTED_STATUSES:
            continue
        if not (pairs(getattr(obs, "code", None)) & wanted) or _observation_says_absent(obs):
            continue
        when = observation_time(obs)
        if window is not None and (when is None or not timedelta(0) <= now - when <= window):
            continue
        label, code = _display(obs.code, wanted)
        found.append(Documented(label, code, when, f"Observation/{obs.id}"))
    found.sort(key=lambda d: d.time.timestamp() if d.time else float("-inf"), reverse=True)
    return found


def cramps(snapshot: Any, window: timedelta) -> list[Documented]:
    """Cramp or spasm (SNOMED 55300003, 45352006; ICD-10-CM R25.2) documented inside ``window``."""
    return list(snapshot.memo(("cramps", window), lambda: documented(
        snapshot.conditions, snapshot.symptom_observations, codes.CRAMP_CODES, snapshot.now, window, episodes=True)))


def tetany(snapshot: Any, window: timedelta) -> list[Documented]:
    """Tetany (ICD-10-CM R29.0) documented inside ``window``."""
    return documented(snapshot.conditions, snapshot.symptom_observations, codes.TETANY_CODES, snapshot.now, window,
                      episodes=True)


def neuro_signs_with_onset(snapshot: Any, window: timedelta) -> list[Documented]:
    """Neurological signs of aluminium toxicity with onset (or observation) inside ``window`` (policy: 90 days)."""
    return documented(snapshot.conditions, snapshot.symptom_observations, codes.NEURO_SIGN_CODES, snapshot.now,
                      window)


def neuro_signs(snapshot: Any, window: timedelta) -> list[Documented]:
    """Neurological signs of aluminium toxicity: active Conditions (any date) or Observations inside ``window``."""
    return documented(snapshot.conditions, snapshot.symptom_observations, codes.NEURO_SIGN_CODES, snapshot.now,
                      window, condition_needs_time=False)


def is_heart_disease(concept_pairs: set[tuple[str, str]]) -> bool:
    if concept_pairs & codes.HEART_DISEASE_CODES:
        return True
    return any(system == codes.ICD10CM and code.startswith(codes.HEART_DISEASE_ICD_PREFIXES)
               for system, code in concept_pairs)


def heart_disease(conditions: Iterable[Any]) -> list[Documented]:
    """Active heart failure, cardiomyopathy or coronary artery disease Conditions."""
    out = []
    for cond in conditions:
        found = pairs(getattr(cond, "code", None))
        if not is_heart_disease(found) or not condition_is_active(cond):
            continue
        label = next((str(c.display or c.code) for c in cond.code.coding or [] if c.code), "heart disease")
        out.append(Documented(str(getattr(cond.code, "text", None) or label), "", condition_time(cond),
                              f"Condition/{cond.id}"))
    return out


def ecg_change_times(conditions: Iterable[Any], observations: Iterable[Any], now: datetime) -> tuple[datetime, ...]:
    """When an ECG change (codes.ECG_CHANGE_CODES) was documented, as a Condition or an Observation whose
    code or coded value names one; oldest first. Untimed, refuted or absent ones do not count."""
    times = []
    for cond in conditions:
        if not (pairs(getattr(cond, "code", None)) & codes.ECG_CHANGE_CODES):
            continue
        if any(code in EXCLUDED_VERIFICATION for _s, code in pairs(getattr(cond, "verificationStatus", None))):
            continue
        when = condition_time(cond)
        if when is not None and when <= now:
            times.append(when)
    for obs in observations:
        if str(getattr(obs, "status", "")) not in COUNTED_STATUSES or _observation_says_absent(obs):
            continue
        found = pairs(getattr(obs, "code", None)) | pairs(getattr(obs, "valueCodeableConcept", None))
        if not (found & codes.ECG_CHANGE_CODES):
            continue
        when = observation_time(obs)
        if when is not None and when <= now:
            times.append(when)
    return tuple(sorted(times))
