"""Soak (and benchmark 5, peak RSS per worker): mixed hooks at a steady rate against gunicorn on loopback.

The service runs under gunicorn (2 workers, the service's gunicorn settings) with a FHIR
stub in its own process allowlisted. A fixed-rate schedule sends a mix of:

- patient-view with a full prefetch (50 observations; a low-Mg card),
- patient-view with a long prefetch (2,000 observations, ~1.2 MB),
- patient-view in fetch mode against the stub (eight queries),
- order-sign and order-select with an IV magnesium draft order,
- feedback on a card just issued,
- invalid requests (expected 400s),

and samples every worker's RSS each second. Errors = any unexpected status or transport
error. "Flat" RSS: the mean over the last 10 s is within 10 MB of the mean over seconds
10-20 (after warm-up), for each worker. Peak RSS (VmHWM) per worker must stay <= 120 MB.

``python bench/soak.py --seconds 60`` writes bench/results/soak.json; tests run 10 s of it.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ServiceProcess, StubProcess, rss_mb, write_result  # noqa: E402
from history import patient_history  # noqa: E402

PV = "dialysis-electrolytes-patient-view"
OSEL = "dialysis-electrolytes-order-select"
OSIGN = "dialysis-electrolytes-order-sign"
RSS_LIMIT_MB = 120.0
FLAT_TOLERANCE_MB = 10.0

IV_MG = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
    "resourceType": "MedicationRequest", "id": "draft-iv-mg", "status": "draft", "intent": "order",
    "subject": {"reference": "Patient/bench-1"},
    "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                              "code": "6585", "display": "magnesium sulfate"}],
                                  "text": "Magnesium sulfate 2 g IV"},
    "dosageInstruction": [{"text": "2 g IV over 2 h",
                           "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008",
                                                 "display": "Intravenous route"}]}}]}}]}


def _ctx(pid="bench-1"):
    return {"userId": "Practitioner/bench", "patientId": pid}


def build_mix(stub_base: str) -> list[tuple[str, str, dict | bytes, tuple[int, ...]]]:
    """(name, path, body, accepted statuses), in the proportions sent."""
    now = datetime.now(timezone.utc)
    small = patient_history(50, now)
    large = patient_history(1500, now)  # about 0.94 MB: the largest round size under the 1 MiB body cap
    auth = {"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
            "subject": "bench"}
    pv_small = {"hook": "patient-view", "context": _ctx(), "prefetch": small}
    pv_large = {"hook": "patient-view", "context": _ctx(), "prefetch": large}
    pv_fetch = {"hook": "patient-view", "context": _ctx(), "fhirServer": stub_base, "fhirAuthorization": auth}
    sign = {"hook": "order-sign", "context": dict(_ctx(), draftOrders=IV_MG), "prefetch": small}
    select = {"hook": "order-select", "context": dict(_ctx(), draftOrders=IV_MG,
                                                      selections=["MedicationRequest/draft-iv-mg"]),
              "prefetch": small}
    bad = {"hook": "patient-view", "context": {"patientId": "no user"}}
    return [
        ("pv-prefetch-50", f"/cds-services/{PV}", pv_small, (200,)),
        ("pv-prefetch-50", f"/cds-services/{PV}", pv_small, (200,)),
        ("pv-prefetch-50", f"/cds-services/{PV}", pv_small, (200,)),
        ("pv-fetch", f"/cds-services/{PV}", pv_fetch, (200,)),
        ("pv-fetch", f"/cds-services/{PV}", pv_fetch, (200,)),
        ("order-sign", f"/cds-services/{OSIGN}", sign, (200,)),
        ("order-select", f"/cds-services/{OSEL}", select, (200,)),
        ("feedback", f"/cds-services/{PV}/feedback", b"", (200,)),
        ("invalid", f"/cds-services/{PV}", bad, (400,)),
        ("pv-prefetch-1500", f"/cds-services/{PV}", pv_large, (200,)),
    ]


def soak(base_url: str, stub_base: str, seconds: float, rate: float, worker_pids, concurrency: int = 8) -> dict:
    mix = build_mix(stub_base)
    encoded = [(name, path, json.dumps(body).encode() if isinstance(body, dict) else body, ok)
               for name, path, body, ok in mix]
    errors: list[str] = []
    counts: dict[str, int] = {}
    latencies: dict[str, list[float]] = {}
    last_card = {"uuid": None}
    lock = threading.Lock()
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def send(i: int):
        name, path, body, ok = encoded[i % len(encoded)]
        if name == "feedback":
            card = last_card["uuid"] or str(uuid.uuid4())
            body = json.dumps({"feedback": [{"card": card, "outcome": "accepted",
                                             "outcomeTimestamp": "2026-01-15T12:00:00Z"}]}).encode()
        else:
            doc = json.loads(body)
            doc["hookInstance"] = str(uuid.uuid4())
            body = json.dumps(doc).encode()
        t0 = time.perf_counter()
        try:
            resp = session().post(base_url + path, data=body, headers={"Content-Type": "application/json"},
                                  timeout=15)
        except requests.RequestException as exc:
            with lock:
                errors.append(f"{name}: {type(exc).__name__}")
            return
        ms = (time.perf_counter() - t0) * 1000.0
        with lock:
            counts[name] = counts.get(name, 0) + 1
            latencies.setdefault(name, []).append(ms)
            if resp.status_code not in ok:
                errors.append(f"{name}: HTTP {resp.status_code} {resp.text[:200]}")
            elif name.startswith("pv-prefetch-50"):
                cards = resp.json().get("cards") or []
                if not cards:
                    errors.append(f"{name}: no card")
                else:
                    last_card["uuid"] = cards[0]["uuid"]

    samples: list[dict] = []
    stop = threading.Event()

    def sample_rss():
        t0 = time.monotonic()
        while not stop.wait(1.0):
            samples.append({"t": round(time.monotonic() - t0, 1),
                            "rss": {str(pid): rss_mb(pid)[0] for pid in worker_pids()}})

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    started = time.monotonic()
    sent = 0
    with ThreadPoolExecutor(concurrency) as pool:
        while True:
            due = started + sent / rate
            now = time.monotonic()
            if due - started >= seconds:
                break
            if due > now:
                time.sleep(due - now)
            pool.submit(send, sent)
            sent += 1
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    peaks = {str(pid): rss_mb(pid)[1] for pid in worker_pids()}

    def mean(window):
        lo, hi = window
        per = {}
        for s in samples:
            if lo <= s["t"] < hi:
                for pid, v in s["rss"].items():
                    per.setdefault(pid, []).append(v)
        return {pid: round(sum(v) / len(v), 1) for pid, v in per.items()}

    warm = mean((min(10, seconds / 3), min(20, 2 * seconds / 3)))
    last = mean((seconds - min(10, seconds / 3), seconds + 5))
    growth = {pid: round(last.get(pid, 0) - warm.get(pid, 0), 1) for pid in warm}
    lat = {k: round(sorted(v)[len(v) // 2], 1) for k, v in latencies.items()}
    return {
        "seconds": round(elapsed, 1), "rate_per_s": rate, "sent": sent, "answered": sum(counts.values()),
        "by_kind": counts, "median_ms_by_kind": lat, "errors": len(errors), "error_samples": errors[:10],
        "rss_warm_mean_mb": warm, "rss_last_mean_mb": last, "rss_growth_mb": growth,
        "rss_flat": all(abs(g) <= FLAT_TOLERANCE_MB for g in growth.values()),
        "peak_rss_mb": peaks, "peak_rss_ok": all(v <= RSS_LIMIT_MB for v in peaks.values()),
        "rss_samples": samples,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=40, help="requests per second, steady")
    args = parser.parse_args(argv)
    history = patient_history(50, datetime.now(timezone.utc))
    with StubProcess(history, delay_ms=5) as stub, ServiceProcess(
            workers=2, env={"CDS_ALLOWED_FHIR_SERVERS": stub.base_url}) as service:
        result = soak(service.base_url, stub.base_url, args.seconds, args.rate, service.worker_pids)
    result["method"] = (f"{args.rate:g} req/s steady for {args.seconds:g} s, mixed hooks (see by_kind), gunicorn "
                        f"2 workers, FHIR stub (5 ms per request) in its own process, loopback")
    result["targets"] = {"errors": 0, "rss_flat_within_mb": FLAT_TOLERANCE_MB, "peak_rss_per_worker_mb": RSS_LIMIT_MB}
    result["passed"] = result["errors"] == 0 and result["rss_flat"] and result["peak_rss_ok"]
    write_result("soak", result)
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
