"""Scenario files: what a patient's hook call must answer, written by informaticists in YAML.

A scenario gives one hook, one patient's FHIR resources (inline, and/or a patient file of
``fhir_fixtures/patients``), draft orders and selections for the order hooks, and the cards
expected. ``cds-service cards test`` and the test suite run every file of ``cards/scenarios/``
(the ``scenarios/`` folder next to the card files: ``CDS_CARDS_DIR`` moves both).

    name: Low magnesium two hours after a session
    hook: patient-view
    resources:
      - resourceType: Condition          # subject and id are filled in
        code: {coding: [{system: http://hl7.org/fhir/sid/icd-10-cm, code: Z99.2}]}
        clinicalStatus: {coding: [{system: http://terminology.hl7.org/CodeSystem/condition-clinical,
                                   code: active}]}
      - resourceType: Procedure          # a dialysis session that ended 2 h ago
        status: completed
        code: {coding: [{system: http://snomed.info/sct, code: "302497006"}]}
        performedPeriod: {start: now-6h, end: now-2h}
      - resourceType: Observation
        status: final
        code: {coding: [{system: http://loinc.org, code: 2601-3}]}
        valueQuantity: {value: 0.53, unit: mmol/L, system: http://unitsofmeasure.org, code: mmol/L}
        effectiveDateTime: now-3h
    expect:
      cards:
        - {rule: hypomagnesemia, indicator: warning}
      absent: [hyperkalemia]
      only: false                         # true: exactly these cards, in this order

Times: any string ``now``, ``now-2h``, ``now+10m``, ``now-3d``, ``now-1d6h30m`` (units w, d, h, m, s)
becomes that moment (UTC) when the scenario is run; a fixture is moved so that its
``Bundle.timestamp`` is the scenario's now. Every resource is given to one patient, ``scn-<file
name>`` unless ``patient:`` says otherwise, and fixture resource ids are renamed after it, so
scenarios loaded into one FHIR server never see each other's data.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from .. import fixtures
from ..hooks.cards import load_schema, load_yaml

SCENARIO_DIR_NAME = "scenarios"
_RELATIVE = re.compile(r"^now(?:\s*([+-])\s*((?:\d+[wdhms])+))?$")
_PART = re.compile(r"(\d+)([wdhms])")
_UNIT = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_SUBJECT_TYPES = {"Observation", "Condition", "Procedure", "Encounter", "MedicationRequest", "ServiceRequest"}


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class ExpectedCard:
    rule: str
    indicator: str | None = None
    suggestions: tuple[str, ...] | None = None

    def describe(self) -> str:
        text = self.rule + (f" ({self.indicator})" if self.indicator else "")
        if self.suggestions is not None:
            text += f" [{', '.join(self.suggestions) or 'no suggestions'}]"
        return text


@dataclass(frozen=True)
class ActualCard:
    rule: str
    indicator: str
    suggestions: tuple[str, ...]

    def describe(self) -> str:
        suggestions = f" [{', '.join(self.suggestions)}]" if self.suggestions else ""
        return f"{self.rule} ({self.indicator}){suggestions}"


@dataclass
class Scenario:
    path: Path
    name: str
    hook: str
    patient_id: str
    description: str = ""
    fixture: str | None = None
    resources: list[dict] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    draft_orders: list[dict] = field(default_factory=list)
    selections: list[str] | None = None
    cards: list[ExpectedCard] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    only: bool = False

    @property
    def key(self) -> str:
        return self.path.stem


# ------------------------------------------------------------------------------------------ loading

def scenario_dir(cards_dir: str | Path) -> Path:
    return Path(cards_dir) / SCENARIO_DIR_NAME


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p])
    return out


def load(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read the file: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML: "
                            f"{getattr(exc, 'problem', None) or exc}") from None
    errors = sorted(jsonschema.Draft202012Validator(load_schema("scenario.schema.json")).iter_errors(data),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "scenario file"
        raise ScenarioError(f"{path}: {where}: {errors[0].message[:300]}")
    expect = data.get("expect") or {}
    hook = data["hook"]
    if hook == "patient-view" and (data.get("orders") or data.get("draftOrders") or "selections" in data):
        raise ScenarioError(f"{path}: orders, draftOrders and selections are for the order hooks, not patient-view")
    if data.get("fixture") and not _fixture_path(data["fixture"]).exists():
        raise ScenarioError(f"{path}: fixture: no patient file {data['fixture']} in {fixtures.FIXTURES_DIR / 'patients'}")
    for name in data.get("orders") or []:
        if not (fixtures.FIXTURES_DIR / "orders" / f"{name}.json").exists():
            raise ScenarioError(f"{path}: orders: no draft-order file {name}.json in {fixtures.FIXTURES_DIR / 'orders'}")
    return Scenario(
        path=path, name=data["name"], hook=hook, description=data.get("description") or "",
        patient_id=data.get("patient") or f"scn-{path.stem}"[:64],
        fixture=data.get("fixture"), resources=list(data.get("resources") or []),
        orders=list(data.get("orders") or []), draft_orders=list(data.get("draftOrders") or []),
        selections=list(data["selections"]) if "selections" in data else None,
        cards=[ExpectedCard(c["rule"], c.get("indicator"),
                            tuple(c["suggestions"]) if "suggestions" in c else None) for c in expect.get("cards") or []],
        absent=list(expect.get("absent") or []), only=bool(expect.get("only")))


def _fixture_path(name: str) -> Path:
    folder = fixtures.FIXTURES_DIR / "patients"
    plain = folder / f"{name}.json"
    return plain if plain.exists() else folder / f"{name}.json.gz"


# ------------------------------------------------------------------------------------------ materialising

def resolve_times(node: Any, now: datetime) -> Any:
    """A copy of ``node`` with every relative time string ("now-2h") replaced by a FHIR dateTime."""
    if isinstance(node, dict):
        return {k: resolve_times(v, now) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_times(v, now) for v in node]
    if isinstance(node, str):
        match = _RELATIVE.match(node.strip())
        if match:
            delta = timedelta()
            for amount, unit in _PART.findall(match.group(2) or ""):
                delta += timedelta(**{_UNIT[unit]: int(amount)})
            moment = now - delta if match.group(1) == "-" else now + delta
            return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return node


def _new_id(old: str, old_patient: str | None, patient: str) -> str:
    base = patient + old[len(old_patient):] if old_patient and old.startswith(old_patient) else f"{patient}-{old}"
    if len(base) <= 64:
        return base
    return f"{patient[:40]}-{hashlib.sha1(old.encode()).hexdigest()[:20]}"


def _rewrite_references(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: (renames.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite_references(v, renames))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_references(v, renames) for v in node]
    return node


def _fixture_resources(s: Scenario, now: datetime) -> list[dict]:
    bundle = fixtures.at(fixtures.load_json(_fixture_path(s.fixture or "")), now)
    resources = [e["resource"] for e in bundle.get("entry") or [] if e.get("resource")]
    old_patient = next((r.get("id") for r in resources if r.get("resourceType") == "Patient"), None)
    renames: dict[str, str] = {}
    for r in resources:
        if r.get("id"):
            new = s.patient_id if r["resourceType"] == "Patient" else _new_id(r["id"], old_patient, s.patient_id)
            renames[f"{r['resourceType']}/{r['id']}"] = f"{r['resourceType']}/{new}"
    out = []
    for r in _rewrite_references(resources, renames):
        if r.get("id"):
            r["id"] = renames[f"{r['resourceType']}/{r['id']}"].split("/", 1)[1]
        out.append(r)
    return out


def _own(resource: dict, patient_id: str, default_id: str) -> dict:
    r = dict(resource)
    r.setdefault("id", default_id)
    if r["resourceType"] in _SUBJECT_TYPES:
        r.setdefault("subject", {"reference": f"Patient/{patient_id}"})
    return r


@dataclass
class Materialised:
    """A scenario as of one moment: the patient's transaction Bundle, and the hook's context."""
    bundle: dict
    context: dict


def materialise(s: Scenario, now: datetime) -> Materialised:
    resources = _fixture_resources(s, now) if s.fixture else []
    for i, raw in enumerate(resolve_times(s.resources, now)):
        resources.append(_own(raw, s.patient_id, f"{s.patient_id}-r{i + 1}"))
    if not any(r["resourceType"] == "Patient" for r in resources):
        resources.insert(0, {"resourceType": "Patient", "id": s.patient_id})
    bundle = {"resourceType": "Bundle", "type": "transaction", "timestamp": resolve_times("now", now),
              "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r,
                         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    context: dict[str, Any] = {"userId": "Practitioner/scenario", "patientId": s.patient_id}
    if s.hook != "patient-view":
        drafts = [_draft_orders(s, now)]
        context["draftOrders"] = drafts[0]
        if s.hook == "order-select":
            context["selections"] = s.selections if s.selections is not None else [
                f"MedicationRequest/{e['resource']['id']}" for e in drafts[0]["entry"]
                if e["resource"].get("resourceType") == "MedicationRequest" and e["resource"].get("id")]
    return Materialised(bundle, context)


def _draft_orders(s: Scenario, now: datetime) -> dict:
    entries: list[dict] = []
    patient_refs: dict[str, str] = {}
    for name in s.orders:
        drafts = fixtures.load_json(fixtures.FIXTURES_DIR / "orders" / f"{name}.json")
        for entry in drafts.get("entry") or []:
            res = entry.get("resource") or {}
            ref = (res.get("subject") or {}).get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                patient_refs[ref] = f"Patient/{s.patient_id}"
            entries.append(entry)
    entries = _rewrite_references(entries, patient_refs)
    for i, raw in enumerate(resolve_times(s.draft_orders, now)):
        entries.append({"resource": _own(raw, s.patient_id, f"draft-{i + 1}")})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def request_for(s: Scenario, m: Materialised, service, *, prefetch: bool, fhir_server: str | None = None,
                token: str | None = None) -> dict:
    """The hook request: with the full prefetch an EHR would send, or with fhirServer for fetch mode."""
    body: dict[str, Any] = {"hook": s.hook, "hookInstance": str(uuid.uuid4()), "context": m.context}
    if prefetch:
        body["prefetch"] = fixtures.prefetch_for(service, m.context, m.bundle)
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {"access_token": token or "", "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "cds-service"}
    return body


# ------------------------------------------------------------------------------------------ comparing

def _rule_of_topic(code: str) -> str:
    """The rule id behind a card's topic code (``ElectrolyteReview`` -> ``electrolyte-review``)."""
    from ..clinical import codes
    from ..clinical.rules import load_all

    return codes.rule_for_topic(code, load_all()) or code


def actual_cards(response: dict) -> list[ActualCard]:
    out = []
    for card in response.get("cards") or []:
        suggestions = []
        for suggestion in card.get("suggestions") or []:
            for action in suggestion.get("actions") or []:
                if action.get("type") == "create":
                    codings = ((action.get("resource") or {}).get("code") or {}).get("coding") or [{}]
                    suggestions.append(f"order-lab {codings[0].get('code')}")
                elif action.get("type") == "delete":
                    suggestions.append(f"remove-draft {action.get('resourceId')}")
        code = ((card.get("source") or {}).get("topic") or {}).get("code", "?")
        out.append(ActualCard(_rule_of_topic(code),
                              card.get("indicator", "?"), tuple(suggestions)))
    return out


def _matches(e: ExpectedCard, a: ActualCard) -> bool:
    return (e.rule == a.rule and (e.indicator is None or e.indicator == a.indicator)
            and (e.suggestions is None or e.suggestions == a.suggestions))


def compare(s: Scenario, got: list[ActualCard]) -> list[str]:
    """Every way ``got`` differs from the expectation, one line each ("-" missing, "+" unexpected, "~" differs)."""
    problems: list[str] = []
    unmatched = list(range(len(got)))
    pairs: list[tuple[ExpectedCard, int | None]] = []
    for e in s.cards:
        exact = next((i for i in unmatched if _matches(e, got[i])), None)
        same_rule = next((i for i in unmatched if got[i].rule == e.rule), None)
        chosen = exact if exact is not None else same_rule
        if chosen is not None:
            unmatched.remove(chosen)
        pairs.append((e, chosen))
    for e, i in pairs:
        if i is None:
            problems.append(f"- {e.describe()}: expected, not given")
        elif not _matches(e, got[i]):
            problems.append(f"~ {e.rule}: expected {e.describe()}, got {got[i].describe()}")
    for rule_id in s.absent:
        for a in got:
            if a.rule == rule_id:
                problems.append(f"+ {a.describe()}: listed under absent, but it fired")
    if s.only:
        for i in unmatched:
            if got[i].rule not in s.absent:
                problems.append(f"+ {got[i].describe()}: not expected (only: true)")
        matched_in_order = [i for _e, i in pairs if i is not None]
        if not problems and matched_in_order != sorted(matched_in_order):
            problems.append("~ order: expected " + ", ".join(e.rule for e in s.cards)
                            + "; got " + ", ".join(a.rule for a in got))
    return problems


def report(s: Scenario, got: list[ActualCard], problems: list[str], mode: str = "") -> str:
    """A readable expected-against-actual report of one scenario run."""
    where = f" [{mode}]" if mode else ""
    head = f"{'FAIL' if problems else 'ok  '} {s.path}{where}: {s.name}"
    if not problems:
        return head
    expected = [e.describe() for e in s.cards] or ["(no cards)"]
    if s.only:
        expected.append("(and no other card)")
    lines = [head, "    expected: " + "; ".join(expected)]
    if s.absent:
        lines.append("    absent:   " + ", ".join(s.absent))
    lines.append("    actual:   " + ("; ".join(a.describe() for a in got) or "(no cards)"))
    lines.extend(f"    {p}" for p in problems)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ running in-process

@dataclass
class Result:
    scenario: Scenario
    cards: list[ActualCard]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def run_prefetch(s: Scenario, cards, now: datetime, lookback: timedelta) -> Result:
    """Run one scenario in-process, in prefetch mode, with ``cards`` (a CardLibrary), strictly: a rule
    error is a failure of the scenario."""
    from ..clinical.rules import RuleError
    from ..hooks.errors import HookError
    from ..hooks.invoke import invoke
    from ..services import SERVICES
    from ..timing import Timings

    [service] = [svc for svc in SERVICES.values() if svc.hook == s.hook]
    m = materialise(s, now)
    body = request_for(s, m, service, prefetch=True)
    try:
        outcome = invoke(service, body, cards=cards, now=now, lookback=lookback, fetcher=None,
                         allowed=lambda _url: False, timings=Timings(), strict=True)
    except RuleError as exc:
        return Result(s, [], [f"! {exc}"])
    except HookError as exc:
        return Result(s, [], [f"! the service refused the request ({exc.status}): {exc.message}"])
    got = actual_cards(outcome.body)
    return Result(s, got, compare(s, got))
