"""Benchmark 4: a hung FHIR server (accepts connections, never answers).

The service runs under gunicorn (2 workers) with CDS_DEADLINE_MS=2000 and a per-call FHIR
timeout longer than the budget (CDS_FHIR_TIMEOUT_MS=5000), so only the overall deadline
can end the wait. 100 patient-view calls in fetch mode (nothing prefetched), 4 at a time,
over real HTTP. Every answer must come within CDS_DEADLINE_MS + 50 ms, as a 200 carrying
the data-unavailable card. The stub runs in its own process.

Writes bench/results/hung.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cds_service.hooks.topics import topic_code  # noqa: E402
from common import ServiceProcess, StubProcess, percentile, write_result  # noqa: E402

SERVICE_ID = "dialysis-electrolytes-patient-view"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--deadline-ms", type=int, default=2000)
    parser.add_argument("--fhir-timeout-ms", type=int, default=5000)
    args = parser.parse_args(argv)
    limit_ms = args.deadline_ms + 50

    with StubProcess(hang=True) as stub, ServiceProcess(workers=2, env={
            "CDS_ALLOWED_FHIR_SERVERS": stub.base_url, "CDS_DEADLINE_MS": str(args.deadline_ms),
            "CDS_FHIR_TIMEOUT_MS": str(args.fhir_timeout_ms)}) as service:
        def call(i: int):
            body = {"hook": "patient-view", "hookInstance": f"hung-{i}",
                    "context": {"userId": "Practitioner/bench", "patientId": f"p{i}"},
                    "fhirServer": stub.base_url,
                    "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                          "scope": "patient/*.read", "subject": "bench"}}
            t0 = time.perf_counter()
            resp = requests.post(f"{service.base_url}/cds-services/{SERVICE_ID}", json=body, timeout=30)
            ms = (time.perf_counter() - t0) * 1000.0
            topics = [c["source"]["topic"]["code"] for c in resp.json().get("cards", [])] \
                if resp.status_code == 200 else []
            return ms, resp.status_code, topics

        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(call, range(args.calls)))
        rss = service.worker_rss()
    times = [r[0] for r in results]
    statuses = {}
    for _ms, status, _t in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    notice = sum(1 for r in results if r[2] == [topic_code("data-unavailable")])  # the released (Epic) form
    result = {
        "method": f"{args.calls} patient-view calls in fetch mode, {args.concurrency} concurrent, over HTTP to "
                  f"gunicorn (2 workers); FHIR stub accepts and never answers; CDS_DEADLINE_MS={args.deadline_ms}, "
                  f"CDS_FHIR_TIMEOUT_MS={args.fhir_timeout_ms}",
        "limit_ms": limit_ms,
        "max_ms": round(max(times), 1),
        "p50_ms": round(percentile(times, 50), 1),
        "p99_ms": round(percentile(times, 99), 1),
        "over_limit": sum(1 for t in times if t > limit_ms),
        "statuses": statuses,
        "with_data_unavailable_card": notice,
        "worker_rss_mb": {str(pid): {"rss": v[0], "peak": v[1]} for pid, v in rss.items()},
    }
    result["passed"] = result["over_limit"] == 0 and statuses.get("200") == args.calls and notice == args.calls
    write_result("hung", result)
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
