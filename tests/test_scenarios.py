"""Every scenario file of cards/scenarios/, run twice: in-process in prefetch mode (the Flask app, the
prefetch an EHR would send) and in fetch mode against the real FHIR server (the scenario's resources
loaded into sekmet under the scenario's own patient id, the service under gunicorn fetching them).

Adding a scenario file needs no test code. The expectations are checked by the same comparison
`cds-service cards test` prints, so a failure here shows the same expected-against-actual diff.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from cds_service import fixtures
from cds_service.authoring import scenarios
from cds_service.clinical.rules import load_all
from cds_service.services import SERVICES
from support.helpers import NOW, REPO, assert_valid_response

SCENARIO_FILES = scenarios.scenario_files([REPO / "cards" / "scenarios"])
SERVICE_FOR_HOOK = {s.hook: s for s in SERVICES.values()}
# A data notice, not a clinical rule: it needs a failing FHIR server (tests/test_fhir_faults.py).
NO_SCENARIO_NEEDED = {"data-unavailable"}


def _check(scenario: scenarios.Scenario, body: dict, mode: str) -> None:
    assert_valid_response(body)
    got = scenarios.actual_cards(body)
    problems = scenarios.compare(scenario, got)
    assert not problems, "\n" + scenarios.report(scenario, got, problems, mode)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_scenario_in_prefetch_mode(make_app, path):
    scenario = scenarios.load(path)
    service = SERVICE_FOR_HOOK[scenario.hook]
    body = scenarios.request_for(scenario, scenarios.materialise(scenario, NOW), service, prefetch=True)
    resp = make_app().test_client().post(f"/cds-services/{service.id}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    _check(scenario, resp.get_json(), "prefetch")


@pytest.mark.fhir_server
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_scenario_in_fetch_mode_against_the_fhir_server(live_service, fhir_server, path):
    scenario = scenarios.load(path)
    service = SERVICE_FOR_HOOK[scenario.hook]
    m = scenarios.materialise(scenario, datetime.now(timezone.utc))
    fhir_server.load(m.bundle)
    body = scenarios.request_for(scenario, m, service, prefetch=False, fhir_server=fhir_server.base_url,
                                 token=fhir_server.token)
    resp = live_service.post(f"/cds-services/{service.id}", body)
    assert resp.status_code == 200, resp.text
    _check(scenario, resp.json(), "fetch")


def test_scenarios_have_their_own_patients():
    loaded = [scenarios.load(p) for p in SCENARIO_FILES]
    ids = [s.patient_id for s in loaded]
    assert len(ids) == len(set(ids))
    fixture_patients = {fixtures.fixture_id(p) for p, _b in fixtures.patient_bundles()}
    assert not set(ids) & fixture_patients  # never the fixtures' own ids, which other tests load too
    for s in loaded:
        bundle = scenarios.materialise(s, NOW).bundle
        for entry in bundle["entry"]:
            res = entry["resource"]
            assert res["resourceType"] == "Patient" or res["id"].startswith(s.patient_id[:40]), (s.key, res["id"])
            subject = (res.get("subject") or {}).get("reference")
            assert subject in (None, f"Patient/{s.patient_id}"), (s.key, res["id"], subject)


def test_every_rule_and_every_patient_fixture_has_a_scenario():
    loaded = [scenarios.load(p) for p in SCENARIO_FILES]
    shown = {card.rule for s in loaded for card in s.cards}
    assert set(load_all()) - NO_SCENARIO_NEEDED <= shown, sorted(set(load_all()) - NO_SCENARIO_NEEDED - shown)
    used = {s.fixture for s in loaded if s.fixture}
    assert {fixtures.fixture_id(p) for p, _b in fixtures.patient_bundles()} <= used
    orders = {name for s in loaded for name in s.orders}
    assert {p.stem for p in (fixtures.FIXTURES_DIR / "orders").glob("*.json")} <= orders


def test_relative_times():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    got = scenarios.resolve_times({"a": "now", "b": ["now-2h", "now+10m", "now-3d", "now-1d6h30m"], "c": "nowhere",
                                   "d": "now - 1w"}, now)
    assert got == {"a": "2026-03-01T12:00:00Z", "b": ["2026-03-01T10:00:00Z", "2026-03-01T12:10:00Z",
                                                       "2026-02-26T12:00:00Z", "2026-02-28T05:30:00Z"],
                   "c": "nowhere", "d": "2026-02-22T12:00:00Z"}


def test_a_bad_scenario_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nhook: patient-view\nexpect: {cards: [{rule: hypomagnesemia, indicator: urgent}]}\n")
    with pytest.raises(scenarios.ScenarioError) as err:
        scenarios.load(path)
    assert str(err.value).startswith(f"{path}: expect.cards.0.indicator: 'urgent' is not one of")


def _cards_test(cards_dir, *args):
    env = {**os.environ, "CDS_CARDS_DIR": str(cards_dir)}
    return subprocess.run([sys.executable, "-m", "cds_service.cli", "cards", "test", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def test_cli_passes_on_the_shipped_scenarios():
    proc = _cards_test(REPO / "cards")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(SCENARIO_FILES)} scenario(s) run" in proc.stderr and "all passed" in proc.stderr


def test_cli_shows_which_scenarios_a_threshold_change_breaks(tmp_path):
    import shutil

    cards = tmp_path / "cards"
    shutil.copytree(REPO / "cards", cards)
    path = cards / "electrolyte-review.yaml"
    path.write_text(path.read_text().replace("mg_low: {value: 0.70,", "mg_low: {value: 0.50,"))
    proc = _cards_test(cards, "-q")
    assert proc.returncode == 1
    assert f"FAIL {cards / 'scenarios' / 'dx-low-mg.yaml'}" in proc.stdout
    assert "    expected: electrolyte-review (warning) [no suggestions]; (and no other card)" in proc.stdout
    assert "    - electrolyte-review (warning) [no suggestions]: expected, not given" in proc.stdout
    assert "dx-normal.yaml" not in proc.stdout  # -q: failures only
    one = _cards_test(cards, cards / "scenarios" / "dx-normal.yaml")
    assert one.returncode == 0 and "1 scenario(s) run" in one.stderr
