"""Benchmark 5: peak RSS per gunicorn worker under the heaviest inputs the service accepts.

gunicorn with 2 workers (4 threads each). Sent, 4 at a time:
- 100 patient-view calls with a 50-observation prefetch;
- 20 with an 7,900-observation prefetch (just under the 5 MB body cap, CDS_MAX_BODY_BYTES);
- 20 in fetch mode against a stub (own process) whose labs query returns 5,000 Observations
  (the CDS_FHIR_MAX_ENTRIES cap) and whose other queries return long histories too.
Peak RSS is the kernel's high-water mark (VmHWM) of each worker. Target <= 120 MB.
Writes bench/results/rss.json.
"""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ServiceProcess, StubProcess, write_result  # noqa: E402
from history import patient_history  # noqa: E402

PV = "dialysis-electrolytes-patient-view"
LIMIT_MB = 120.0


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--name", default="rss")
    args = parser.parse_args(argv)
    now = datetime.now(timezone.utc)
    small = patient_history(50, now)
    big = patient_history(7900, now)
    stub_data = patient_history(5000, now)
    ctx = {"userId": "Practitioner/bench", "patientId": "bench-1"}
    with StubProcess(stub_data) as stub, ServiceProcess(workers=2, env={
            "CDS_ALLOWED_FHIR_SERVERS": stub.base_url, "CDS_DEADLINE_MS": "10000",
            "CDS_FHIR_TIMEOUT_MS": "8000"}) as service:
        idle = service.worker_rss()
        bodies = [json.dumps({"hook": "patient-view", "hookInstance": "s", "context": ctx, "prefetch": small})] * 100
        bodies += [json.dumps({"hook": "patient-view", "hookInstance": "b", "context": ctx, "prefetch": big})] * 20
        bodies += [json.dumps({"hook": "patient-view", "hookInstance": "f", "context": ctx,
                               "fhirServer": stub.base_url,
                               "fhirAuthorization": {"access_token": "t", "token_type": "Bearer",
                                                     "expires_in": 300, "scope": "patient/*.read",
                                                     "subject": "bench"}})] * 20
        big_size = len(bodies[100])

        def send(body: str):
            resp = requests.post(f"{service.base_url}/cds-services/{PV}", data=body,
                                 headers={"Content-Type": "application/json"}, timeout=60)
            return resp.status_code, [c["source"]["topic"]["code"] for c in resp.json().get("cards", [])]

        with ThreadPoolExecutor(args.concurrency) as pool:
            outcomes = list(pool.map(send, bodies))
        after = service.worker_rss()
    statuses = {}
    for status, _ in outcomes:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    peaks = {str(pid): v[1] for pid, v in after.items()}
    result = {
        "method": "gunicorn 2 workers x 4 threads; 100 small prefetch calls, 20 near-cap prefetch calls "
                  f"({big_size} bytes), 20 fetch-mode calls against 5,000-entry Bundles; {args.concurrency} concurrent; "
                  "VmHWM",
        "idle_rss_mb": {str(pid): v[0] for pid, v in idle.items()},
        "peak_rss_mb": peaks,
        "max_peak_rss_mb": max(peaks.values()),
        "target_mb": LIMIT_MB,
        "statuses": statuses,
        "mg_card_in_every_answer": all("hypomagnesemia" in t for _, t in outcomes),
    }
    result["passed"] = result["max_peak_rss_mb"] <= LIMIT_MB and statuses.get("200") == len(bodies)
    write_result(args.name, result)
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
