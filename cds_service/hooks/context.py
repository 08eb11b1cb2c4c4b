"""Build the typed snapshot the rules read from resolved prefetch data.

Parsing stays cheap on long histories. fhir.resources validation costs tens of
microseconds per resource, so raw dicts are filtered first and models are built only
for what is read:

- labs: ``labs.build_panel`` groups raw Observations by code and status and validates
  only the newest few per analyte, each trimmed to the elements a LabResult is made of;
- procedures and encounters: only those with a dialysis code and a usable status are
  validated (trimmed to the elements ``dialysis.assess`` reads), and of those only the
  ones that can change the dialysis status: every one inside the recent-session window,
  and older ones only while they could still hold the last session end;
- conditions: only those with a code some rule reads (codes.condition_read_by_rules) are
  kept; ``dialysis.assess`` gets those with a dialysis, ESRD or transplant code, and the
  rest are parsed lazily, on first use by a rule, each at most once. Symptom Observations
  are parsed lazily too.

The result is the same Snapshot the plain "validate everything" build gives (a test
compares the two on long and odd histories).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Iterator, Mapping

from ..clinical import codes, dialysis, labs, medication_list
from ..clinical.orders import read_draft_orders
from ..clinical.snapshot import Snapshot
from ..clinical.symptoms import ecg_change_times
from ..clinical.timeutil import parse_fhir_datetime
from ..fhir.parse import bundle_resources
from ..fhir.project import project
from .prefetch import Resolved

OBSERVATION_KEYS = ("labs", "aluminum", "heartRate", "weights")

# Elements each pre-filtered resource keeps before validation: what the domain code reads, the elements the
# resource cannot be valid without, and every choice-type variant (so one-of-many checks still apply).
_OBSERVATION_KEEP = ("resourceType", "id", "status", "code", "issued")
_PROCEDURE_KEEP = ("resourceType", "id", "status", "code", "subject")
_ENCOUNTER_KEEP = ("resourceType", "id", "status", "class", "type", "period", "subject")
_ASSESS_CONDITION_CODES = frozenset(codes.DIALYSIS_CONDITIONS | codes.ESRD_ONLY_CONDITIONS
                                    | codes.TRANSPLANT_CONDITIONS | codes.PD_CONDITIONS)


def _trim(raw: dict, keep: tuple[str, ...], choice_prefixes: tuple[str, ...]) -> dict:
    return {k: v for k, v in raw.items() if k in keep or k.startswith(choice_prefixes)}


def _trim_observation(raw: dict) -> dict:
    return _trim(raw, _OBSERVATION_KEEP, ("value", "effective"))


def _trim_procedure(raw: dict) -> dict:
    return _trim(raw, _PROCEDURE_KEEP, ("performed",))


def _trim_encounter(raw: dict) -> dict:
    return _trim(raw, _ENCOUNTER_KEEP, ())


def _parse_observation(raw: dict):
    return project(raw, "Observation", repair=_trim_observation)


class LazyModels(Sequence):
    """A read-only list of fhir.resources models, validated on first use and each raw resource at most once.

    Resources that cannot be parsed are left out, exactly as ``parse_all`` does.
    """

    def __init__(self, raws: list[dict], resource_type: str, notes: list[str] | None = None):
        self._raws = raws
        self._type = resource_type
        self._notes = notes
        self._cache: dict[int, Any] = {}
        self._items: list[Any] | None = None

    def model(self, index: int):
        if index not in self._cache:
            self._cache[index] = project(self._raws[index], self._type, self._notes)
        return self._cache[index]

    def _all(self) -> list[Any]:
        if self._items is None:
            self._items = [m for m in (self.model(i) for i in range(len(self._raws))) if m is not None]
        return self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, index):
        return self._all()[index]

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, Sequence)) else NotImplemented

    def __repr__(self) -> str:
        state = "parsed" if self._items is not None else "not parsed yet"
        return f"LazyModels({self._type}, {len(self._raws)} raw, {state})"

    @property
    def parsed_count(self) -> int:
        """How many raw resources have been validated so far (for tests and benchmarks)."""
        return len(self._cache)


def _raw_times(raw: dict, elements: tuple[str, ...]) -> list[datetime | None]:
    """Every date the domain code may read from ``elements`` (a period's start/end, or a dateTime)."""
    out = []
    for element in elements:
        value = raw.get(element)
        if isinstance(value, dict):
            for part in ("start", "end"):
                if part in value:
                    out.append(parse_fhir_datetime(value[part]))
        elif value is not None:
            out.append(parse_fhir_datetime(value))
    return out


class _Candidate:
    __slots__ = ("kind", "raw", "latest", "model")

    def __init__(self, kind: str, raw: dict, latest: datetime | None):
        self.kind = kind
        self.raw = raw
        self.latest = latest  # newest parseable date in the resource; None when any date could not be read
        self.model: Any = None  # the validated model, False when it does not validate, None before trying


# Per session resource type: the element with its dialysis codes, and the elements with its dates.
_SESSION_FIELDS = {"Procedure": ("code", ("performedPeriod", "performedDateTime")), "Encounter": ("type", ("period",))}


def _session_candidates(procedures: list[dict], encounters: list[dict]) -> list[_Candidate]:
    found = []
    for kind, raws in (("Procedure", procedures), ("Encounter", encounters)):
        concept, dates = _SESSION_FIELDS[kind]
        for raw in raws:
            if not isinstance(raw.get("status", ""), str):
                continue  # status is a required code: the resource cannot validate, so it can never count
            if not dialysis.may_be_session(kind, raw.get("status"), raw.get(concept)):
                continue
            times = _raw_times(raw, dates)
            known = [t for t in times if t is not None]
            latest = max(known) if known and len(known) == len(times) else None
            found.append(_Candidate(kind, raw, latest))
    return found


def _model(c: _Candidate, notes: list[str] | None):
    if c.model is None:
        if c.kind == "Procedure":
            c.model = project(c.raw, "Procedure", notes, repair=_trim_procedure) or False
        else:
            c.model = project(c.raw, "Encounter", notes, repair=_trim_encounter) or False
    return c.model or None


def assess_dialysis(conditions: list[Any], procedures: list[dict], encounters: list[dict], now: datetime,
                    notes: list[str] | None = None, pd_orders: tuple[str, ...] = ()) -> dialysis.DialysisStatus:
    """``dialysis.assess`` over the few resources that can decide it.

    A session can be recent only if one of its dates is inside the window; an older one can only supply
    ``last_session_end``, which is one of its dates. So older sessions are added newest first, and only
    while the newest of them could still be later than the last session end found so far.
    """
    window = dialysis.SESSION_HISTORY  # every session results may be timed against, not only the recent ones
    candidates = _session_candidates(procedures, encounters)
    cutoff = now - window
    chosen = [c for c in candidates if c.latest is None or c.latest >= cutoff]
    older = [c for c in candidates if c.latest is not None and c.latest < cutoff]
    older.sort(key=lambda c: c.latest or cutoff, reverse=True)
    taken = 0
    while True:
        subset = chosen + older[:taken]
        procs = [m for m in (_model(c, notes) for c in subset if c.kind == "Procedure") if m is not None]
        encs = [m for m in (_model(c, notes) for c in subset if c.kind == "Encounter") if m is not None]
        status = dialysis.assess(conditions, procs, encs, now, pd_orders=pd_orders)
        if taken >= len(older):
            return status
        if status.last_session_end is not None and status.last_session_end >= (older[taken].latest or cutoff):
            return status  # nothing older can change any part of the status
        taken = max(1, taken * 2)


def build_snapshot(hook: str, request: Mapping[str, Any], resolved: Resolved, now: datetime,
                   lookback: timedelta, notes: list[str] | None = None) -> Snapshot:
    data = resolved.data
    context = request.get("context") or {}
    raw_obs: list[dict] = []
    for key in OBSERVATION_KEYS:
        raw_obs += bundle_resources(data.get(key), "Observation")  # labs.candidates skips a status not a string
    panel = labs.build_panel(raw_obs, _parse_observation, now=now)

    # Only Conditions some rule can read are kept (a long problem list is mostly other diagnoses).
    raw_conditions = [raw for raw in bundle_resources(data.get("conditions"), "Condition")
                      if codes.condition_read_by_rules(codes.pairs(raw.get("code")))]
    conditions = LazyModels(raw_conditions, "Condition", notes)
    for_assess = [conditions.model(i) for i, raw in enumerate(raw_conditions)
                  if codes.pairs(raw.get("code")) & _ASSESS_CONDITION_CODES]
    symptoms_raw = bundle_resources(data.get("symptoms"), "Observation")
    symptoms = LazyModels(symptoms_raw, "Observation", notes)

    drafts = []
    if "draftOrders" in context:
        drafts = read_draft_orders(context.get("draftOrders"), lambda raw, rtype: project(raw, rtype, notes), notes)
    medications = read_draft_orders(data.get("medications"), lambda raw, rtype: project(raw, rtype, notes), notes)
    pd_orders = tuple(sorted({o.reference for o in (*medications, *drafts) if medication_list.is_pd_solution(o)}))
    status = assess_dialysis([m for m in for_assess if m is not None],
                             bundle_resources(data.get("procedures"), "Procedure"),
                             bundle_resources(data.get("encounters"), "Encounter"), now, notes, pd_orders)

    patient = None
    patients = bundle_resources(data.get("patient"), "Patient")
    if patients:
        patient = project(patients[0], "Patient", notes)

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
        medications=medications,
        ecg_change_times=ecg_change_times(
            [conditions.model(i) for i, raw in enumerate(raw_conditions)
             if codes.pairs(raw.get("code")) & codes.ECG_CHANGE_CODES and conditions.model(i) is not None],
            [symptoms.model(i) for i, raw in enumerate(symptoms_raw)
             if (codes.pairs(raw.get("code")) | codes.pairs(raw.get("valueCodeableConcept"))) & codes.ECG_CHANGE_CODES
             and symptoms.model(i) is not None], now),
    )
