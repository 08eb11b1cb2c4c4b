"""The typed projection (fhir/project.py) and the fhir.resources path give the same snapshot and the same cards.

Inputs: every patient fixture under each service, every scenario file, the bench history generator,
Epic- and sandbox-shaped copies of the fixtures, generated variants that put odd values into the
elements the rules read, and, when ``CDS_SYNTHEA_DIR`` names a folder of Synthea R4 patient Bundles,
each of those. Each request goes through the snapshot builder and the whole hook twice: once as served
(projection, falling back to fhir.resources) and once with fhir.resources for every resource.
"""
from __future__ import annotations

import copy
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service import fixtures
from cds_service.authoring import scenarios as sc
from cds_service.fhir import project as projection
from cds_service.fhir.parse import bundle_resources
from cds_service.hooks.context import build_snapshot
from cds_service.hooks.invoke import invoke
from cds_service.hooks.prefetch import resolve
from cds_service.services import SERVICES
from cds_service.timing import Timings
from tests.support.clinical import cards as card_library
from tests.support.ehr_profiles import epic_prefetch, sandbox_bundle, strip_uuids
from tests.support.helpers import NOW, OSIGN, PV, orders_bundle, prefetch_from_fixture, synthea_files
from tests.support.projection import full_path, snapshot_view

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from history import patient_history  # noqa: E402

LOOKBACK = timedelta(days=30)
CARDS = card_library()
EPIC_BASE = "https://fhir.epic.example/api/FHIR/R4"


def _service(body: dict):
    return next(s for s in SERVICES.values() if s.hook == body["hook"])


def _run(body: dict):
    try:
        return _outcome(body)
    except Exception as exc:  # noqa: BLE001 - raw pre-filters refuse some shapes; both paths must do so alike
        return ("refused", type(exc).__name__, str(exc))


def _outcome(body: dict):
    service = _service(body)
    resolved = resolve(service.prefetch, body, NOW, None, lambda _u: False, LOOKBACK)
    snap = build_snapshot(service.hook, body, resolved, NOW, LOOKBACK, [])
    outcome = invoke(service, copy.deepcopy(body), cards=CARDS, now=NOW, lookback=LOOKBACK, fetcher=None,
                     allowed=lambda _u: False, timings=Timings(), strict=True)
    return snapshot_view(snap), strip_uuids(outcome.body), outcome.silent


def assert_same(body: dict, monkeypatch) -> None:
    projection.UNDECLARED_READS.clear()
    fast = _run(body)
    assert not projection.UNDECLARED_READS, f"elements read but not declared: {dict(projection.UNDECLARED_READS)}"
    with monkeypatch.context() as m:
        full_path(m)
        full = _run(body)
    assert fast[0] == full[0]
    assert fast[1:] == full[1:]


def _patient_id(bundle: dict) -> str:
    return next(r["id"] for r in bundle_resources(bundle, "Patient"))


def _request(service_id: str, bundle: dict, **kw) -> dict:
    hook = SERVICES[service_id].hook
    pid = _patient_id(bundle)
    context: dict = {"userId": "Practitioner/test-user", "patientId": pid}
    if hook != "patient-view":
        context["draftOrders"] = kw.get("draft_orders") or {"resourceType": "Bundle", "type": "collection",
                                                              "entry": []}
    body = {"hook": hook, "hookInstance": "fast-parse", "context": context,
            "prefetch": prefetch_from_fixture(service_id, pid, bundle, NOW, **kw)}
    return body


PATIENTS = sorted(p.name.split(".")[0] for p in (fixtures.FIXTURES_DIR / "patients").iterdir())
ORDERS = sorted(p.stem for p in (fixtures.FIXTURES_DIR / "orders").glob("*.json"))


def _fixture(name: str) -> dict:
    folder = fixtures.FIXTURES_DIR / "patients"
    path = folder / f"{name}.json"
    return fixtures.load_json(path if path.exists() else folder / f"{name}.json.gz")


@pytest.mark.parametrize("name", PATIENTS)
def test_patient_fixtures(name, monkeypatch):
    bundle = _fixture(name)
    body = _request(PV, bundle)
    assert_same(body, monkeypatch)
    # the same data as Epic and the sandbox send it
    epic = copy.deepcopy(body)
    epic["prefetch"] = epic_prefetch(body["prefetch"], EPIC_BASE)
    assert_same(epic, monkeypatch)
    sandbox = copy.deepcopy(body)
    sandbox["prefetch"] = {k: sandbox_bundle(v) for k, v in body["prefetch"].items()}
    assert_same(sandbox, monkeypatch)


@pytest.mark.parametrize("order", ORDERS)
def test_order_fixtures(order, monkeypatch):
    bundle = _fixture("ord-hd-low-mg" if "ord-hd-low-mg" in PATIENTS else PATIENTS[0])
    assert_same(_request(OSIGN, bundle, draft_orders=orders_bundle(order)), monkeypatch)


SCENARIOS = sc.scenario_files([sc.scenario_dir(Path(__file__).resolve().parent.parent / "cards")])


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenarios(path, monkeypatch):
    s = sc.load(path)
    m = sc.materialise(s, NOW)
    service = next(svc for svc in SERVICES.values() if svc.hook == s.hook)
    assert_same(sc.request_for(s, m, service, prefetch=True), monkeypatch)


@pytest.mark.parametrize("n", [50, 2000])
def test_generated_histories(n, monkeypatch):
    body = {"hook": "patient-view", "hookInstance": "fast-parse",
            "context": {"userId": "Practitioner/test-user", "patientId": "bench-1"}, "prefetch": patient_history(n, NOW)}
    assert_same(body, monkeypatch)


@pytest.mark.skipif(not synthea_files(), reason="set CDS_SYNTHEA_DIR to a folder of Synthea R4 patient Bundles")
@pytest.mark.parametrize("path", synthea_files(), ids=lambda p: p.name.split("_")[0])
def test_synthea_histories(path, monkeypatch):
    bundle = _as_of_now(_local_references(fixtures.load_json(path)))
    body = _request(PV, bundle)
    assert sum(len(v.get("entry") or []) for v in body["prefetch"].values() if isinstance(v, dict)) > 0
    assert_same(body, monkeypatch)


def _local_references(bundle: dict) -> dict:
    """Synthea refers to resources by their urn:uuid fullUrl; the prefetch templates match Type/id."""
    names = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
             for e in bundle.get("entry") or [] if e.get("fullUrl") and e.get("resource", {}).get("id")}

    def walk(node):
        if isinstance(node, dict):
            return {k: (names.get(v, v) if k == "reference" and isinstance(v, str) else walk(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    return walk(bundle)


def _as_of_now(bundle: dict) -> dict:
    """The history moved so that its last encounter ends a day before NOW (its labs then fall in the look-back)."""
    ends = [e["resource"]["period"]["end"] for e in bundle.get("entry") or []
            if e.get("resource", {}).get("resourceType") == "Encounter" and (e["resource"].get("period") or {}).get("end")]
    last = max(fixtures.parse_fhir_datetime(t) for t in ends)
    return fixtures.at(dict(bundle, timestamp=fixtures._fmt(last + timedelta(days=1))), NOW)


# ---------------------------------------------------------------------- generated variants

ODD = [None, "", " ", "final", " final", "a b", "a  b", 0, 5, -1.5, 1.70, True, False, "1.70", "2026",
       "2025-12", "2025-12-31", "2026-02-30", "2026-01-01T10:00:00", "2026-01-10T10:00:60Z",
       "2026-01-10T10:00:00.1234567Z", "2026-01-14T10:00:00+05:00", "2026-01-14T23:00:00Z", "x" * 70, {}, [],
       {"coding": {"system": "http://loinc.org", "code": "2601-3"}}, [{"code": "x"}], {"start": "2026-01-14"},
       {"value": "0.5"}, {"value": 0.5, "unit": "mmol/L"}, {"text": ""}, "<", "http://loinc.org", "mg/dL"]
PATHS = {
    "Observation": ["status", "id", "code", "code.coding", "code.coding.0", "code.coding.0.code",
                    "code.coding.0.system", "code.text", "effectiveDateTime", "effectivePeriod",
                    "effectivePeriod.start", "effectivePeriod.end", "effectiveInstant", "issued", "valueQuantity",
                    "valueQuantity.value", "valueQuantity.unit", "valueQuantity.code", "valueQuantity.system",
                    "valueQuantity.comparator", "valueCodeableConcept", "valueBoolean", "valueString",
                    "valueInteger", "effectiveTiming", "resourceType", "category", "subject", "meta"],
    "Condition": ["clinicalStatus", "clinicalStatus.coding.0.code", "verificationStatus",
                  "verificationStatus.coding.0.code", "code", "code.coding.0.code", "code.coding.0.system",
                  "onsetDateTime", "onsetPeriod", "onsetString", "abatementDateTime", "abatementPeriod",
                  "abatementString", "recordedDate", "subject", "id", "category"],
    "Procedure": ["status", "code", "code.coding.0.code", "performedDateTime", "performedPeriod",
                  "performedPeriod.start", "performedPeriod.end", "performedString", "subject", "id"],
    "Encounter": ["status", "class", "class.code", "type", "type.0.coding.0.code", "period", "period.start",
                  "period.end", "subject", "id"],
    "Patient": ["id", "gender", "birthDate", "deceasedBoolean", "deceasedDateTime"],
}
_DELETE = object()


def _set(resource: dict, path: str, value) -> None:
    node = resource
    parts = path.split(".")
    for part in parts[:-1]:
        key = int(part) if part.isdigit() else part
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    last = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    try:
        if value is _DELETE:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)
    except (KeyError, IndexError, TypeError):
        return


BASES = {name: _request(PV, _fixture(name)) for name in ("dx-low-mg", "dx-cramp-post-session", "dx-aluminum-high",
                                                         "dx-neuro-no-aluminum", "esrd-transplant")
         if name in PATIENTS}


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_variants(data, monkeypatch):
    body = copy.deepcopy(data.draw(st.sampled_from(sorted(BASES.items())))[1])
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(k for k, v in body["prefetch"].items() if bundle_resources(v))))
        resources = bundle_resources(body["prefetch"][key])
        resource = data.draw(st.sampled_from(resources))
        paths = PATHS.get(resource.get("resourceType"), ["id"])
        _set(resource, data.draw(st.sampled_from(paths)), data.draw(st.sampled_from([*ODD, _DELETE])))
    assert_same(body, monkeypatch)


# ---------------------------------------------------------------------- the projection's own checks

def _procedure(**fields) -> dict:
    base = {"resourceType": "Procedure", "id": "p1", "status": "completed", "subject": {"reference": "Patient/x"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "302497006"}]},
            "performedPeriod": {"start": "2026-01-14T06:00:00Z", "end": "2026-01-14T10:00:00Z"}}
    base.update(fields)
    return base


@pytest.mark.parametrize("fields", [
    {"id": "p_1"}, {"id": "p 1"}, {"id": ""}, {"id": "x" * 256}, {"status": " completed"}, {"status": "a  b"},
    {"status": ""}, {"performedPeriod": {"start": "2026-02-30T06:00:00Z"}},
    {"performedPeriod": {"start": "2026-01-14T06:00:60Z"}}, {"performedDateTime": "2026-01-14 06:00"},
    {"code": {"coding": [{"code": "30249 7006 "}]}},
])
def test_projection_refuses_what_the_full_model_refuses_every_time(fields):
    """A refused value is refused on every call, however often valid values were seen before it."""
    valid = projection.project(_procedure(), "Procedure")
    assert isinstance(valid, projection.Procedure)
    for _ in range(3):
        assert not isinstance(projection.project(_procedure(**fields), "Procedure"), projection.Procedure)


def test_remembered_values_are_per_kind():
    """'2026-01-14' is a valid dateTime (seen first) but never a valid instant."""
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]},
           "effectiveDateTime": "2026-01-14", "valueQuantity": {"value": 0.5, "unit": "mmol/L"}}
    assert isinstance(projection.project(obs, "Observation"), projection.Observation)
    assert not isinstance(projection.project({**obs, "issued": "2026-01-14"}, "Observation"), projection.Observation)


def test_remembered_values_stay_bounded(monkeypatch):
    monkeypatch.setattr(projection, "MATCHED_MAX", 5)
    for day in range(1, 20):
        raw = _procedure(performedDateTime=f"2025-03-{day:02d}")
        del raw["performedPeriod"]
        assert isinstance(projection.project(raw, "Procedure"), projection.Procedure)
        assert len(projection._MATCHED["dateTime"]) <= 5


@pytest.mark.parametrize("cls, trim", [(projection.Observation, "_trim_observation"),
                                       (projection.Procedure, "_trim_procedure"),
                                       (projection.Encounter, "_trim_encounter")])
def test_trimming_keeps_every_element_the_projection_reads(cls, trim):
    """The projection is given untrimmed resources: that is the same only while the trim keeps all it declares."""
    import msgspec

    from cds_service.hooks import context
    declared = {f.encode_name for f in msgspec.structs.fields(cls)}
    kept = getattr(context, trim)({name: 1 for name in declared})
    assert set(kept) == declared
