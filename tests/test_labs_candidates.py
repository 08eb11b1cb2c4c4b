"""The fast lab pre-filter (labs.candidates) gives exactly what the plain one gave.

The plain version (tests/support/labs_reference.py: one look-up at a time, a lambda sort key, and the
status filter build_snapshot used to put in front of it) is the oracle. Compared on the patient
fixtures, the bench histories, Synthea patients when ``CDS_SYNTHEA_DIR`` names them, and generated
Observations with odd dates, statuses, codings, specimens, ids and shapes: the same groups in the same
order (times, issued strings and the very same raw dicts), the same ``dropped`` notes, or the same
exception type where the plain version refused the input.
"""
from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service import fixtures
from cds_service.clinical import codes, labs
from cds_service.fhir.parse import bundle_resources
from support import labs_reference as reference
from support.helpers import NOW, synthea_files

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from history import patient_history  # noqa: E402


def _run(fn, raws, now):
    dropped: list[str] = []
    try:
        grouped = fn(raws, now, dropped)
    except Exception as exc:  # noqa: BLE001 - the plain version refuses some shapes; the fast one must alike
        return ("refused", type(exc).__name__)
    # identity of the raw dicts, not only equality: the panel converts exactly the resources it was given
    return {a: [(t[0], t[0].utcoffset(), t[1], id(t[2])) for t in items] for a, items in grouped.items()}, dropped


def assert_same(raws, now=NOW) -> None:
    expected = _run(reference.snapshot_candidates, raws, now)
    assert _run(labs.candidates, raws, now) == expected
    # no dropped list and no clock: the same again
    assert _run(lambda r, n, _d: labs.candidates(r, n), raws, now)[0] == expected[0]


def _observations(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry") or []
            if isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == "Observation"]


@pytest.mark.parametrize("path,bundle", list(fixtures.patient_bundles()), ids=lambda v: getattr(v, "stem", ""))
def test_patient_fixtures(path, bundle):
    raws = _observations(fixtures.at(bundle, NOW))
    assert raws
    for now in (NOW, NOW - timedelta(days=2), None):
        assert_same(raws, now)


@pytest.mark.parametrize("n", [50, 2000])
def test_bench_histories(n):
    prefetch = patient_history(n, NOW)
    raws = [r for key in ("labs", "aluminum", "heartRate", "weights")
            for r in bundle_resources(prefetch[key], "Observation")]
    grouped = labs.candidates(raws, NOW)
    assert sum(map(len, grouped.values())) > n // 2
    assert_same(raws)
    assert_same(raws, NOW - timedelta(days=3))  # the newest results are now in the future
    assert_same(raws[::-1] + raws[:7])  # server order never trusted; duplicates tie on every key


@pytest.mark.skipif(not synthea_files(), reason="set CDS_SYNTHEA_DIR to a folder of Synthea R4 patient Bundles")
@pytest.mark.parametrize("path", synthea_files(), ids=lambda p: p.name.split("_")[0])
def test_synthea_histories(path):
    raws = _observations(fixtures.load_json(path))
    times = sorted(t for t in (labs.raw_clinical_time(r) for r in raws) if t is not None)
    assert times
    for now in (None, times[-1], times[len(times) // 2], datetime.now(timezone.utc)):
        assert_same(raws, now)


# ---------------------------------------------------------------------- generated Observations

OURS = sorted(codes.LOINC_TO_ANALYTE)[:12] + ["2601-3", "19123-9", "2823-3", "8867-4"]
DATES = st.one_of(
    st.just("2026-01-14T10:00:00Z"),
    st.sampled_from([
        None, "", " ", "2026", "2025-12", "2025-12-31", "2026-02-30", "2026-13-01", "2026-01-14T10:00:00",
        "2026-01-14T10:00:00Z", "2026-01-14t10:00:00z", "2026-01-14T10:00:60Z", "2026-01-14T24:00:00Z",
        "2026-01-14T10:00:00.1234567Z", "2026-01-14T10:00:00.123Z", "2026-01-14T15:00:00+05:00",
        "2026-01-14T10:00:00-00:00", "2026-01-15T12:04:59Z", "2026-01-15T12:05:00Z", "2026-01-15T12:05:01Z",
        "2026-01-15T12:05:00.000001Z", "2026-01-15T17:05:00+05:00", "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00Z", "2026-01-14 10:00:00Z", "20260114T100000Z", " 2026-01-14T10:00:00Z",
        "2026-01-14T10:00Z", "x" * 20, "2026-01-14T10:00:00ZZ", 0, 5, True, [], {}, {"start": "2026-01-14"},
    ]),
    st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 2, 1),
                 timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-5)),
                                            timezone(timedelta(hours=5, minutes=30))])).map(
        lambda d: d.isoformat(timespec="seconds").replace("+00:00", "Z")),
    st.datetimes(min_value=datetime(2026, 1, 14, 23), max_value=datetime(2026, 1, 15, 13)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
)
STATUSES = st.sampled_from(["final"] * 10 + ["amended", "corrected", "preliminary", "registered", "cancelled",
                            "entered-in-error", "unknown", "Final", " final", "", None, 0, 1, True, 1.5,
                            ("final",), [], ["final"], {}])
SYSTEMS = st.sampled_from([None, "", codes.LOINC, "http://loinc.org/", "http://snomed.info/sct", 5, [], {}])
CODING = st.one_of(
    st.fixed_dictionaries({}, optional={"system": SYSTEMS, "code": st.sampled_from(OURS + ["2598-1", "718-7", "",
                                                                                            None, 2601, True]),
                                        "display": st.sampled_from(["Magnesium", None])}),
    st.sampled_from([None, "2601-3", 5, []]),
)
USUAL_CODING = st.fixed_dictionaries({"code": st.sampled_from(OURS + ["2598-1", "718-7"]),
                                      "system": st.one_of(st.just(codes.LOINC), SYSTEMS)})
GOOD_CODE = st.builds(lambda cs: {"coding": cs}, st.lists(USUAL_CODING, min_size=1, max_size=3))
CODE = st.one_of(
    GOOD_CODE, GOOD_CODE, GOOD_CODE,
    st.fixed_dictionaries({}, optional={"coding": st.one_of(st.lists(CODING, max_size=3),
                                                            st.sampled_from([None, "", {}, "2601-3"])),
                                        "text": st.just("Magnesium")}),
    st.sampled_from([None, "2601-3", [], [{"coding": []}]]),
)
SPECIMEN_TYPES = st.fixed_dictionaries({}, optional={
    "text": st.sampled_from(["Serum", "Urine", "Dialysate", None, 5]),
    "coding": st.lists(st.fixed_dictionaries({}, optional={
        "code": st.sampled_from(["122575003", "119364003", 122575003, None]),
        "display": st.sampled_from(["Urine specimen", "Serum specimen", "Peritoneal fluid", None])}), max_size=2)})
SPECIMEN = st.one_of(
    st.none(), st.none(), st.just({"display": "Urine"}), st.just({"reference": "#s1"}),
    st.fixed_dictionaries({}, optional={"display": st.sampled_from(["serum", "URINE", "dialysate", "CSF", "", 3]),
                                        "reference": st.sampled_from(["#s1", "#s2", "Specimen/s1", "#", 5])}),
    st.sampled_from(["urine", [], 0]),
)
CONTAINED = st.lists(st.fixed_dictionaries({"resourceType": st.sampled_from(["Specimen", "Patient"]),
                                            "id": st.sampled_from(["s1", "s2", None])},
                                           optional={"type": st.one_of(SPECIMEN_TYPES, st.just("urine"))}),
                     max_size=2)
PERIOD = st.one_of(st.fixed_dictionaries({}, optional={"start": DATES, "end": DATES}), st.sampled_from([None, "x", []]))
OBSERVATION = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Observation"] * 8 + ["Condition", "observation", None]),
     "status": STATUSES, "code": CODE},
    optional={"id": st.sampled_from(["a", "b", "c", "", None, 7, "lab-1"]),
              "effectiveDateTime": DATES, "effectiveInstant": DATES, "effectivePeriod": PERIOD, "issued": DATES,
              "specimen": SPECIMEN, "contained": st.one_of(CONTAINED, st.just("x"))},
)
ITEM = st.one_of(OBSERVATION, OBSERVATION, OBSERVATION, st.sampled_from([None, "Observation", [], 3]))
NOWS = st.sampled_from([NOW, None, NOW - timedelta(hours=13), datetime(9999, 12, 31, 23, 58, tzinfo=timezone.utc),
                        datetime(2026, 1, 15, 17, 0, tzinfo=timezone(timedelta(hours=5)))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(ITEM, max_size=12), now=NOWS, data=st.data())
def test_generated_observations(raws, now, data):
    # repeat some of them (the same dict twice, or a copy): equal keys keep their input order
    if raws:
        raws = raws + data.draw(st.lists(st.sampled_from(raws), max_size=3))
    assert_same(raws, now)


@settings(max_examples=300, deadline=None)
@given(times=st.lists(st.tuples(DATES, DATES, st.sampled_from(["a", "b", None])), min_size=1, max_size=15),
       now=NOWS)
def test_generated_histories_of_one_analyte(times, now):
    """Many results of one analyte: ties on time, issued and id, and every date fallback."""
    raws = []
    for i, (when, issued, rid) in enumerate(times):
        raw = {"resourceType": "Observation", "status": "final", "id": rid,
               "code": {"coding": [{"system": codes.LOINC, "code": "2601-3"}]}}
        key = ("effectiveDateTime", "effectiveInstant", "effectivePeriod")[i % 3]
        raw[key] = {"end": when} if key == "effectivePeriod" else when
        if issued is not None:
            raw["issued"] = issued
        raws.append(raw)
    assert_same(raws, now)


def test_a_status_that_is_not_a_string_is_never_counted():
    raw = {"resourceType": "Observation", "code": {"coding": [{"system": codes.LOINC, "code": "2601-3"}]},
           "effectiveDateTime": "2026-01-15T10:00:00Z"}
    assert labs.candidates([dict(raw, status="final")], NOW)
    for status in (["final"], {"final": 1}, 1, None):
        assert labs.candidates([dict(raw, status=status)], NOW) == {}


def test_the_five_minute_boundary_and_every_date_fallback():
    dates = ["2026-01-15T12:04:59Z", "2026-01-15T12:05:00Z", "2026-01-15T12:05:00.000001Z", "2026-01-15T17:05:00+05:00",
             "2026-01-15T17:05:01+05:00", "2026-01-15", "2026-01", "2026", "2026-01-15T12:05:01", "9999-12-31T23:59:00Z", "bad", None]
    raws = []
    for i, when in enumerate(dates):
        for j, key in enumerate(("effectiveDateTime", "effectiveInstant", "end", "start", "issued")):
            raw = {"resourceType": "Observation", "id": f"o{i}-{j}", "status": "final",
                   "code": {"coding": [{"system": codes.LOINC, "code": "2823-3"}]}, "effectiveDateTime": "bad"}
            if key in ("end", "start"):
                raw["effectivePeriod"] = {key: when, "start" if key == "end" else "end": "2026-01-01T00:00:00Z"}
            else:
                raw[key] = when
            raws.append(raw)
    assert_same(raws, NOW)
    assert_same(raws, datetime(9999, 12, 31, 23, 58, tzinfo=timezone.utc))
    dropped: list[str] = []
    kept = labs.candidates(raws, NOW, dropped)["k"]
    assert any("dated in the future" in why for why in dropped)
    assert {"o0-0", "o1-0"} <= {t[2]["id"] for t in kept}


@pytest.mark.parametrize("coding", [
    [{"system": codes.LOINC, "code": "2601-3"}],
    [{"system": "http://snomed.info/sct", "code": "2601-3"}],
    [{"code": "2601-3"}], [{"system": "", "code": "2601-3"}], [{"system": None, "code": "2601-3"}],
    [{"system": codes.LOINC, "code": "718-7"}, {"system": codes.LOINC, "code": "2601-3"}],
    [{"system": "http://snomed.info/sct", "code": "2601-3"}, {"system": codes.LOINC, "code": "2823-3"}],
    [{"system": codes.LOINC}, {"system": codes.LOINC, "code": "2823-3"}],
    ["2601-3", {"system": codes.LOINC, "code": "2823-3"}],
    [{"system": codes.LOINC, "code": "2598-1"}], [], {"system": codes.LOINC, "code": "2601-3"}, "2601-3", None,
])
@pytest.mark.parametrize("when", ["2026-01-14T10:00:00Z", "2026-01-14T10:00:00.000+00:00", "2026-01-14", None])
def test_codings_and_times_of_every_shape(coding, when):
    raw = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"coding": coding},
           "effectivePeriod": {"start": "2026-01-13T10:00:00Z"}}
    if when is not None:
        raw["effectiveDateTime"] = when
    assert_same([raw, dict(raw, id="p"), raw])


RESOURCE = st.one_of(st.fixed_dictionaries({"resourceType": st.sampled_from(
    ["Observation", "OperationOutcome", "Patient", None, 5])}), st.sampled_from([None, "x", [], {}]))
ENTRY = st.one_of(st.fixed_dictionaries({}, optional={"resource": RESOURCE, "fullUrl": st.just("urn:x")}),
                  st.sampled_from([None, "entry", [], 3]))
BUNDLE = st.one_of(
    st.fixed_dictionaries({"resourceType": st.just("Bundle")},
                          optional={"entry": st.one_of(st.lists(ENTRY, max_size=6), st.sampled_from([None, "", {}]))}),
    RESOURCE, st.sampled_from([None, "Bundle", [], 0]))


@settings(max_examples=300, deadline=None)
@given(bundle=BUNDLE, rtype=st.sampled_from([None, "Observation", "OperationOutcome", "Patient"]))
def test_bundle_resources_as_before(bundle, rtype):
    got = bundle_resources(bundle, rtype)
    assert [id(r) for r in got] == [id(r) for r in reference.bundle_resources(bundle, rtype)]
