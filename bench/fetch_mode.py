"""Benchmark 3: fetch mode against a loopback FHIR stub that adds 50 ms to every request.

The stub (cds_service/devtools/fhir_stubs.py, a real socket server in its own process) answers the service's
eight queries from a 50-observation history, each after a 50 ms delay. First each query is
timed alone (the service's own FHIR client, sequentially, warm connections); then whole
patient-view calls with nothing prefetched, through the Flask app in-process (test client).

Target: hook wall time <= 1.1 x the slowest single query -- i.e. one concurrent wave,
not eight round trips. Writes bench/results/fetch_mode.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cds_service.hooks.topics import topic_code  # noqa: E402
from common import StubProcess, write_result  # noqa: E402
from history import patient_history  # noqa: E402

SERVICE_ID = "dialysis-electrolytes-patient-view"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)

    from cds_service import create_app
    from cds_service.hooks.prefetch import fetch_url, render_template, token_values
    from cds_service.services import SERVICES
    from cds_service.timing import Deadline

    now = datetime.now(timezone.utc)
    prefetch = patient_history(50, now)
    service = SERVICES[SERVICE_ID]
    context = {"userId": "Practitioner/bench", "patientId": "bench-1"}
    with StubProcess(prefetch, delay_ms=args.delay_ms) as stub:
        app = create_app({"CDS_REQUIRE_JWT": "false", "CDS_ALLOWED_FHIR_SERVERS": stub.base_url,
                          "CDS_FEEDBACK_DB": str(Path(tempfile.mkdtemp()) / "fb.sqlite3"),
                          "CDS_LOG_LEVEL": "WARNING"})
        client = app.extensions["cds"].fhir
        urls = {name: fetch_url(stub.base_url, render_template(key.template, token_values(context)), key, now)
                for name, key in service.prefetch.items()}
        single: dict[str, list[float]] = {k: [] for k in urls}
        for _ in range(5):
            for name, url in urls.items():
                t0 = time.perf_counter()
                res = client.fetch(name, url, "tok", Deadline(10_000))
                assert res.error is None, (name, res.error)
                single[name].append((time.perf_counter() - t0) * 1000.0)
        single_median = {k: round(statistics.median(v), 2) for k, v in single.items()}
        slowest = max(single_median.values())

        test_client = app.test_client()
        body = {"hook": "patient-view", "hookInstance": "bench", "context": context, "fhirServer": stub.base_url,
                "fhirAuthorization": {"access_token": "tok", "token_type": "Bearer", "expires_in": 300,
                                      "scope": "patient/*.read", "subject": "bench"}}
        walls, fetch_stage = [], []
        for i in range(args.calls):
            body["hookInstance"] = f"bench-{i}"
            t0 = time.perf_counter()
            resp = test_client.post(f"/cds-services/{SERVICE_ID}", json=body)
            walls.append((time.perf_counter() - t0) * 1000.0)
            assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
            topics = [c["source"]["topic"]["code"] for c in resp.get_json()["cards"]]
            assert topic_code("electrolyte-review") in topics and topic_code("data-unavailable") not in topics, topics
            stages = dict(p.strip().split(";dur=") for p in resp.headers["Server-Timing"].split(","))
            fetch_stage.append(float(stages["fetch"]))
    wall = statistics.median(walls)
    result = {
        "method": f"stub adds {args.delay_ms:g} ms per request; single queries timed alone with the service's "
                  f"client (median of 5 each); {args.calls} hook calls in fetch mode via the Flask test client",
        "single_query_median_ms": single_median,
        "slowest_single_ms": slowest,
        "sum_of_single_ms": round(sum(single_median.values()), 1),
        "hook_wall_median_ms": round(wall, 2),
        "hook_wall_max_ms": round(max(walls), 2),
        "fetch_stage_median_ms": round(statistics.median(fetch_stage), 2),
        "ratio": round(wall / slowest, 3),
        "target_ratio": 1.1,
    }
    result["passed"] = result["ratio"] <= 1.1
    write_result("fetch_mode", result)
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
