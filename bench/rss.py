"""Benchmark 5: peak RSS per gunicorn worker.

gunicorn with 2 workers (4 threads each), requests sent 4 at a time (--concurrency), peak
RSS read as the kernel's high-water mark (VmHWM) of each worker. Two phases, each on a
fresh service:

- "templated": the largest answers an EHR or FHIR server honouring the service's prefetch
  templates can give (each key filled to its template's _count: 200 labs, 200 conditions,
  50 procedures, 50 encounters, ...), 100 calls in prefetch mode and 40 in fetch mode
  against a stub (own process) serving the same, plus 100 ordinary 50-observation calls;
- "worst-case": 20 calls with a prefetch just under the body cap (CDS_MAX_BODY_BYTES) and 20
  fetch-mode calls against a stub ignoring _count and serving as many entries per query as the
  entry cap allows (CDS_FHIR_MAX_ENTRIES), plus the ordinary calls. The caps are the defaults
  unless --max-body-bytes / --max-entries set others (they are then passed to the service).

Target <= 120 MB per worker. Writes bench/results/rss.json (or --name).
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ServiceProcess, StubProcess, write_result  # noqa: E402
from history import patient_history  # noqa: E402

PV = "dialysis-electrolytes-patient-view"
LIMIT_MB = 120.0


def templated(history: dict) -> dict:
    """Each key cut to its template's _count, as a conforming EHR would send it (newest first)."""
    from cds_service.services import SERVICES

    out = {}
    for name, key in SERVICES[PV].prefetch.items():
        value = history.get(name)
        count = parse_qs(key.template.partition("?")[2]).get("_count")
        if isinstance(value, dict) and value.get("resourceType") == "Bundle" and count:
            value = dict(value, entry=value["entry"][: int(count[0])])
        out[name] = value
    return out


def phase(name: str, prefetch_heavy: dict, stub_data: dict, heavy_calls: int, fetch_calls: int,
          concurrency: int, caps: dict | None = None) -> dict:
    now = datetime.now(timezone.utc)
    small = patient_history(50, now)
    ctx = {"userId": "Practitioner/bench", "patientId": "bench-1"}
    with StubProcess(stub_data) as stub, ServiceProcess(workers=2, env={
            "CDS_ALLOWED_FHIR_SERVERS": stub.base_url, "CDS_DEADLINE_MS": "10000",
            "CDS_FHIR_TIMEOUT_MS": "8000", **(caps or {})}) as service:
        idle = service.worker_rss()
        auth = {"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
                "subject": "bench"}
        bodies = [json.dumps({"hook": "patient-view", "hookInstance": "s", "context": ctx, "prefetch": small})] * 100
        heavy = json.dumps({"hook": "patient-view", "hookInstance": "h", "context": ctx, "prefetch": prefetch_heavy})
        bodies += [heavy] * heavy_calls
        bodies += [json.dumps({"hook": "patient-view", "hookInstance": "f", "context": ctx,
                               "fhirServer": stub.base_url, "fhirAuthorization": auth})] * fetch_calls

        def send(body: str):
            resp = requests.post(f"{service.base_url}/cds-services/{PV}", data=body,
                                 headers={"Content-Type": "application/json"}, timeout=60)
            return resp.status_code, [c["source"]["topic"]["code"] for c in resp.json().get("cards", [])]

        with ThreadPoolExecutor(concurrency) as pool:
            outcomes = list(pool.map(send, bodies))
        after = service.worker_rss()
    statuses = {}
    for status, _ in outcomes:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    peaks = {str(pid): v[1] for pid, v in after.items()}
    return {"phase": name, "heavy_body_bytes": len(heavy), "calls": len(bodies), "statuses": statuses,
            "idle_rss_mb": {str(pid): v[0] for pid, v in idle.items()}, "peak_rss_mb": peaks,
            "max_peak_rss_mb": max(peaks.values()),
            "mg_card_in_every_answer": all(any("ElectrolyteReview" in c or "electrolyte-review" in c for c in t) for _, t in outcomes),
            "passed": max(peaks.values()) <= LIMIT_MB and statuses.get("200") == len(bodies)}


def near_cap(max_body: int, now: datetime) -> int:
    """The most lab Observations whose 50-observation-style prefetch request stays under ``max_body`` bytes."""
    ctx = {"userId": "Practitioner/bench", "patientId": "bench-1"}
    low, high = 1, 20000
    while low < high:
        mid = (low + high + 1) // 2
        size = len(json.dumps({"hook": "patient-view", "hookInstance": "h", "context": ctx,
                               "prefetch": patient_history(mid, now)}))
        low, high = (mid, high) if size <= max_body else (low, mid - 1)
    return low


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--name", default="rss")
    parser.add_argument("--max-body-bytes", type=int, default=None, help="default: the service's default")
    parser.add_argument("--max-entries", type=int, default=None, help="default: the service's default")
    args = parser.parse_args(argv)
    from cds_service.config import load_config

    defaults = load_config({})
    max_body = args.max_body_bytes or defaults["CDS_MAX_BODY_BYTES"]
    max_entries = args.max_entries or defaults["CDS_FHIR_MAX_ENTRIES"]
    caps = {"CDS_MAX_BODY_BYTES": str(max_body), "CDS_FHIR_MAX_ENTRIES": str(max_entries)}
    now = datetime.now(timezone.utc)
    n_body = near_cap(max_body, now)
    long_history = patient_history(10000, now)
    capped = templated(long_history)
    phases = [
        phase("templated", capped, capped, heavy_calls=100, fetch_calls=40, concurrency=args.concurrency),
        phase("worst-case", patient_history(n_body, now), patient_history(max_entries, now), heavy_calls=20,
              fetch_calls=20, concurrency=args.concurrency, caps=caps),
    ]
    result = {"method": f"gunicorn 2 workers x 4 threads, {args.concurrency} concurrent requests, VmHWM per worker",
              "caps": {"CDS_MAX_BODY_BYTES": max_body, "CDS_FHIR_MAX_ENTRIES": max_entries,
                       "worst_case_observations_in_body": n_body},
              "target_mb": LIMIT_MB, "phases": phases,
              "templated_peak_mb": phases[0]["max_peak_rss_mb"], "worst_case_peak_mb": phases[1]["max_peak_rss_mb"],
              "passed": phases[0]["passed"]}
    write_result(args.name, result)
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
