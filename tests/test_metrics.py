"""/metrics: in-process (per-app registry) and over live HTTP under gunicorn with several workers, where every
scrape, whichever worker answers it, must count the calls served by all workers."""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from support.helpers import PV, fixture_bundle, hook_request, prefetch_from_fixture
from support.live import start_service, stop_service


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def low_mg_request(now=None) -> dict:
    return hook_request(PV, "dx-low-mg", prefetch=prefetch_from_fixture(
        PV, "dx-low-mg", fixture_bundle("dx-low-mg"), **({"now": now} if now else {})))


# ------------------------------------------------------------------------------------------ in-process

def test_metrics_count_calls_rules_latency_and_feedback(make_app):
    client = make_app().test_client()
    for _ in range(2):
        assert client.post(f"/cds-services/{PV}", json=low_mg_request()).status_code == 200
    assert client.post(f"/cds-services/{PV}", json={"hook": "patient-view"}).status_code == 400
    assert client.post("/cds-services/nope", json={}).status_code == 404
    client.post(f"/cds-services/{PV}/feedback", json={"feedback": [
        {"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2026-01-15T12:05:00Z"}]})
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    assert value(text, "cds_hook_calls_total", service=PV, status="200") == 2
    assert value(text, "cds_hook_calls_total", service=PV, status="400") == 1
    assert value(text, "cds_hook_calls_total", service="unknown", status="404") == 1
    assert value(text, "cds_rule_fired_total", service=PV, rule="electrolyte-review") == 2
    assert value(text, "cds_hook_latency_seconds_count", service=PV) == 3
    assert value(text, "cds_hook_latency_seconds_bucket", service=PV, le="+Inf") == 3
    assert value(text, "cds_feedback_total", service=PV, outcome="accepted") == 1


def test_each_app_has_its_own_registry(make_app):
    first, second = make_app().test_client(), make_app().test_client()
    first.post(f"/cds-services/{PV}", json=low_mg_request())
    assert value(first.get("/metrics").get_data(as_text=True), "cds_hook_calls_total", service=PV, status="200") == 1
    assert value(second.get("/metrics").get_data(as_text=True), "cds_hook_calls_total", service=PV, status="200") == 0


def test_metrics_can_be_switched_off(make_app):
    assert make_app(CDS_METRICS="false").test_client().get("/metrics").status_code == 404


# ------------------------------------------------------------------------------------------ live, several workers

def _pids_with_samples(folder: Path) -> set[str]:
    return {m.group(1) for p in folder.glob("counter_*.db") if (m := re.match(r"counter_(\d+)\.db$", p.name))}


def _call_until_two_workers_served(service, folder: Path, body: dict) -> int:
    """Hook calls on fresh connections, concurrently, until at least two workers have served some."""
    calls = 0
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(max_workers=8) as pool:
        while True:
            codes = list(pool.map(lambda _: requests.post(f"{service.base_url}/cds-services/{PV}", json=body,
                                                          timeout=15).status_code, range(16)))
            assert codes == [200] * 16
            calls += 16
            if len(_pids_with_samples(folder)) >= 2 or time.monotonic() > deadline:
                return calls


def test_metrics_aggregate_every_gunicorn_worker(tmp_path):
    folder = tmp_path / "prometheus"
    service = start_service(tmp_path, {"PROMETHEUS_MULTIPROC_DIR": str(folder)}, workers=3)
    try:
        body = low_mg_request(now=datetime.now(timezone.utc))
        calls = _call_until_two_workers_served(service, folder, body)
        assert len(_pids_with_samples(folder)) >= 2, "all calls landed on one worker; the test proves nothing"
        feedback = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T12:05:00Z"}]}
        for _ in range(3):
            assert requests.post(f"{service.base_url}/cds-services/{PV}/feedback", json=feedback,
                                 timeout=15).status_code == 200
        # Every scrape, on a fresh connection (so any worker may answer), sees the total of all workers.
        for _ in range(10):
            text = requests.get(f"{service.base_url}/metrics", timeout=15).text
            assert value(text, "cds_hook_calls_total", service=PV, status="200") == calls
            assert value(text, "cds_rule_fired_total", service=PV, rule="electrolyte-review") == calls
            assert value(text, "cds_hook_latency_seconds_count", service=PV) == calls
            assert value(text, "cds_hook_latency_seconds_bucket", service=PV, le="+Inf") == calls
            assert value(text, "cds_feedback_total", service=PV, outcome="overridden") == 3
    finally:
        stop_service(service)


def test_serve_sets_up_a_private_multiprocess_folder_and_removes_it(tmp_path):
    service = start_service(tmp_path, {}, workers=2)
    try:
        match = re.search(r"Prometheus multiprocess folder: (\S+)", service.log_text())
        assert match, service.log_text()[-2000:]
        folder = Path(match.group(1))
        assert folder.is_dir() and folder.name.startswith("cds-prometheus-")
        calls = _call_until_two_workers_served(service, folder, low_mg_request(now=datetime.now(timezone.utc)))
        for _ in range(5):
            text = requests.get(f"{service.base_url}/metrics", timeout=15).text
            assert value(text, "cds_hook_calls_total", service=PV, status="200") == calls
    finally:
        stop_service(service)
    assert not folder.exists()


def test_stale_samples_of_a_previous_run_are_cleared(tmp_path):
    folder = tmp_path / "prometheus"
    (tmp_path / "run1").mkdir()
    first = start_service(tmp_path / "run1", {"PROMETHEUS_MULTIPROC_DIR": str(folder)}, workers=1)
    try:
        assert requests.post(f"{first.base_url}/cds-services/{PV}",
                             json=low_mg_request(now=datetime.now(timezone.utc)), timeout=15).status_code == 200
    finally:
        stop_service(first)
    assert _pids_with_samples(folder)
    (tmp_path / "run2").mkdir()
    second = start_service(tmp_path / "run2", {"PROMETHEUS_MULTIPROC_DIR": str(folder)}, workers=1)
    try:
        text = requests.get(f"{second.base_url}/metrics", timeout=15).text
        assert value(text, "cds_hook_calls_total", service=PV, status="200") == 0
    finally:
        stop_service(second)
