"""Mistakes in rules and card files are refused or loud, never a silently missing alert.

- start-up (`cds-service serve`, `create_app`) refuses every card file the linter refuses, naming it;
- `status: silent` runs a rule and records its firings without returning its card;
- a rule that fails is counted, makes /health degraded, and fails the call in strict mode;
- with the preview on, an edited card file is served on the next load, a refused edit is shown and the
  last good cards keep serving.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from cds_service import create_app
from cds_service.clinical.rules import REGISTRY
from cds_service.devtools import fhir_server as fhir_dev
from cds_service.hooks.cards import CardFileError
from cds_service.reporting.report import collect, to_markdown
from support.helpers import NOW, PV, REPO, fixture_bundle, hook_request, prefetch_from_fixture, topics

# The five mistakes of the issue, each made in one card file.
MISTAKES = {
    "threshold typo": ("electrolyte-review", "mg_low: {value: 0.70,", "mg_low: {value: 0.7O,",
                       "thresholds.mg_low: value must be a number, got '0.7O'"),
    "implausible threshold": ("electrolyte-review", "mg_low: {value: 0.70,", "mg_low: {value: 7.0,",
                              "thresholds.mg_low: value 7 mmol/L is outside the plausible range"),
    "unknown placeholder": ("electrolyte-review", "{findings} {cramps}", "{findings} {cramps} {mg_unit}",
                            "placeholder {mg_unit} is not declared"),
    "internal wording": ("hypokalemia-severe", "- **Recheck potassium now** (order below) and treat",
                         "- As the seed says, **recheck potassium now** (order below) and treat",
                         "detail: internal wording 'seed'"),
    "search-results source": ("hypocalcemia-severe", "url: https://doi.org/10.1016/j.kisu.2017.04.001",
                              "url: https://pubmed.ncbi.nlm.nih.gov/?term=ionized+calcium+dialysis",
                              "source.url is a search-results page"),
}


def _cards_with(tmp_path, rule: str, old: str, new: str):
    folder = tmp_path / "cards"
    if not folder.exists():
        shutil.copytree(REPO / "cards", folder)
    path = folder / f"{rule}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, (rule, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder, path


def _config(tmp_path, **extra):
    return {"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"), "CDS_LOG_FORMAT": "text",
            "NOW_FN": lambda: NOW, **extra}


def _dx_low_mg(client):
    prefetch = prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))
    return client.post(f"/cds-services/{PV}", json=hook_request(PV, "dx-low-mg", prefetch=prefetch))


# ------------------------------------------------------------------------------------------ refused at start-up

@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_lint_and_create_app_refuse_the_mistake_naming_the_file(tmp_path, mistake):
    rule, old, new, message = MISTAKES[mistake]
    folder, path = _cards_with(tmp_path, rule, old, new)
    lint = subprocess.run([sys.executable, "-m", "cds_service.cli", "cards", "lint", str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert lint.returncode == 1 and f"{path}:" in lint.stdout and message in lint.stdout, lint.stdout
    with pytest.raises(CardFileError) as err:
        create_app(_config(tmp_path, CDS_CARDS_DIR=str(folder)))
    assert f"{path}:" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("mistake", ["threshold typo", "internal wording"])
def test_serve_refuses_before_forking_workers(tmp_path, mistake):
    rule, old, new, message = MISTAKES[mistake]
    folder, path = _cards_with(tmp_path, rule, old, new)
    env = {**os.environ, "CDS_CARDS_DIR": str(folder), "CDS_REQUIRE_JWT": "false",
           "CDS_FEEDBACK_DB": str(tmp_path / "fb.sqlite3")}
    proc = subprocess.run([sys.executable, "-m", "cds_service.cli", "serve", "--host", "127.0.0.1", "--port",
                           str(fhir_dev.free_port()), "--workers", "2"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 2
    assert f"cds-service: not starting: card files refused:\n{path}:" in proc.stderr and message in proc.stderr
    assert "Booting worker" not in proc.stderr + proc.stdout


# ------------------------------------------------------------------------------------------ silent mode

def test_a_silent_rule_returns_no_card_and_its_firings_are_counted_and_reported(tmp_path):
    folder, _ = _cards_with(tmp_path, "electrolyte-review", "status: active", "status: silent")
    app = create_app(_config(tmp_path, CDS_CARDS_DIR=str(folder), CDS_STRICT_RULES="true"))
    client = app.test_client()
    for _ in range(2):
        resp = _dx_low_mg(client)
        assert resp.status_code == 200
        # no review card: the low Mg is the only finding for this patient
        assert topics(resp.get_json()) == []
    assert 'cds_rule_silent_fired_total{rule="electrolyte-review",service="dialysis-electrolytes-patient-view"} 2.0' \
        in client.get("/metrics").get_data(as_text=True)
    assert client.get("/health").get_json()["silentRules"] == ["electrolyte-review"]
    store = app.extensions["cds"].feedback
    store.flush()
    report = collect(store.engine)
    [row] = [r for r in report.rows if r.rule == "electrolyte-review"]
    assert (row.silent, row.issued) == (2, 0)
    assert "- `electrolyte-review` silent: would have fired 2 times" in to_markdown(report)


def test_status_off_does_not_run_the_rule(tmp_path):
    folder, _ = _cards_with(tmp_path, "electrolyte-review", "status: active", "status: off")
    client = create_app(_config(tmp_path, CDS_CARDS_DIR=str(folder))).test_client()
    assert topics(_dx_low_mg(client).get_json()) == []
    assert client.get("/health").get_json()["offRules"] == ["electrolyte-review"]


# ------------------------------------------------------------------------------------------ loud failures

@pytest.fixture
def broken_electrolyte_review(monkeypatch):
    def boom(ctx):
        raise ZeroDivisionError("simulated bug")
    monkeypatch.setattr(REGISTRY["electrolyte-review"], "fn", boom)


def test_a_failing_rule_keeps_the_other_cards_is_counted_and_degrades_health(tmp_path, broken_electrolyte_review):
    client = create_app(_config(tmp_path)).test_client()
    assert client.get("/health").get_json()["status"] == "ok"
    resp = _dx_low_mg(client)
    assert resp.status_code == 200
    assert "electrolyte-review" not in topics(resp.get_json())
    assert 'cds_rule_errors_total{rule="electrolyte-review"} 1.0' in client.get("/metrics").get_data(as_text=True)
    health = client.get("/health")
    assert health.status_code == 200  # the service still answers; restarting it would not mend the rule
    assert health.get_json()["status"] == "degraded"
    assert list(health.get_json()["failingRules"]) == ["electrolyte-review"]


def test_strict_mode_fails_the_call(tmp_path, broken_electrolyte_review):
    client = create_app(_config(tmp_path, CDS_STRICT_RULES="true")).test_client()
    assert _dx_low_mg(client).status_code == 500


def test_a_finding_that_breaks_the_placeholder_contract_is_a_rule_error(tmp_path, monkeypatch):
    original = REGISTRY["electrolyte-review"].fn

    def without_context(ctx):
        findings = original(ctx)
        for f in findings:
            f.values.pop("advice")
        return findings
    monkeypatch.setattr(REGISTRY["electrolyte-review"], "fn", without_context)
    client = create_app(_config(tmp_path)).test_client()
    assert "electrolyte-review" not in topics(_dx_low_mg(client).get_json())
    assert 'cds_rule_errors_total{rule="electrolyte-review"} 1.0' in client.get("/metrics").get_data(as_text=True)


# ------------------------------------------------------------------------------------------ live reload (preview)

def test_preview_serves_an_edited_card_file_and_keeps_the_last_good_one_on_a_refused_edit(tmp_path):
    folder, path = _cards_with(tmp_path, "electrolyte-review", "", "")
    client = create_app(_config(tmp_path, CDS_CARDS_DIR=str(folder), CDS_PREVIEW="true")).test_client()
    assert "on dialysis: replace Mg and find the cause" in client.get("/preview?s=dx-low-mg").get_data(as_text=True)

    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("on dialysis: {action}", "on dialysis: recheck, then correct Mg"), encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    page = client.get("/preview?s=dx-low-mg").get_data(as_text=True)
    assert "on dialysis: recheck, then correct Mg" in page and "card-problem" not in page
    assert "recheck, then correct Mg" in _dx_low_mg(client).get_json()["cards"][0]["summary"]

    path.write_text(text.replace("mg_low: {value: 0.70,", "mg_low: {value: 0.7O,"), encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    page = client.get("/preview?s=dx-low-mg").get_data(as_text=True)
    assert "card-problem" in page and "thresholds.mg_low: value must be a number, got &#39;0.7O&#39;" in page
    assert "on dialysis: recheck, then correct Mg" in page  # the last good version keeps serving
    assert "recheck, then correct Mg" in _dx_low_mg(client).get_json()["cards"][0]["summary"]


def test_without_the_preview_card_files_are_read_once(tmp_path):
    folder, path = _cards_with(tmp_path, "electrolyte-review", "", "")
    client = create_app(_config(tmp_path, CDS_CARDS_DIR=str(folder))).test_client()
    path.write_text(path.read_text(encoding="utf-8").replace("on dialysis: {action}", "edited"), encoding="utf-8")
    assert "on dialysis: replace Mg and find the cause" in _dx_low_mg(client).get_json()["cards"][0]["summary"]
