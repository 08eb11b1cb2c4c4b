"""A 10-second soak: mixed hooks at a steady rate against the service under gunicorn (bench/soak.py runs 60 s).

Patient-view with short and long prefetch, fetch mode against a loopback FHIR stub, order-sign,
order-select, feedback and invalid requests: every answer as expected, no transport error, and
worker memory not climbing.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from cds_service.devtools.fhir_stubs import StubServer, prefetch_router
from support.live import start_service, stop_service

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import gunicorn_workers  # noqa: E402
from history import patient_history  # noqa: E402
from soak import soak  # noqa: E402


def test_ten_second_soak_has_no_errors_and_flat_memory(tmp_path):
    history = patient_history(50, datetime.now(timezone.utc))
    with StubServer(prefetch_router(history, delay=0.005)) as stub:
        service = start_service(tmp_path, {"CDS_ALLOWED_FHIR_SERVERS": stub.base_url, "CDS_LOG_LEVEL": "WARNING"})
        try:
            result = soak(service.base_url, stub.base_url, seconds=10, rate=20,
                          worker_pids=lambda: gunicorn_workers(service.process.pid))
        finally:
            stop_service(service)
    assert result["errors"] == 0, result["error_samples"]
    assert result["answered"] == result["sent"] >= 190
    assert set(result["by_kind"]) == {"pv-prefetch-50", "pv-fetch", "order-sign", "order-select", "feedback",
                                      "invalid", "pv-prefetch-1500"}
    assert len(result["peak_rss_mb"]) == 2
    assert all(abs(growth) <= 20 for growth in result["rss_growth_mb"].values()), result["rss_growth_mb"]
