"""Benchmark: the per-request work at the web edge, outside the snapshot, rules and rendering.

For the 50-observation patient-view request (the body ``throughput.py`` posts, about 49 KB):

- ``parse``: ``strict_json.parse`` of the raw bytes (depth check, NaN/Infinity and duplicate-key refusal);
- ``validate``: ``validate_request`` (the CDS Hooks envelope and the patient-view context, JSON Schema);
- ``http_overhead``: one POST through the Flask test client minus the in-process ``invoke()`` of the same
  body (what Flask, auth, logging, metrics, Server-Timing, issued-card recording and encoding add).

Each figure is the median of ``--rounds`` rounds of ``--calls`` calls (microseconds of process CPU time per
call); the rounds of the different measurements alternate so that other load on the machine hits them alike.
No target of its own: it splits the budget of ``latency.py`` and ``throughput.py``. Writes
bench/results/edge.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from history import hook_request, patient_history  # noqa: E402

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
SERVICE_ID = "dialysis-electrolytes-patient-view"


def per_call_us(fn, calls: int) -> float:
    """Process CPU time per call (all threads: the issued-card writer counts), less sensitive than wall time to
    the other processes on a shared machine."""
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)

    from cds_service.app import create_app
    from cds_service.config import REPO_ROOT
    from cds_service.hooks.cards import CardLibrary
    from cds_service.hooks.invoke import invoke
    from cds_service.hooks.strict_json import parse
    from cds_service.hooks.validation import validate_request
    from cds_service.services import SERVICES
    from cds_service.timing import Timings

    service = SERVICES[SERVICE_ID]
    body = hook_request(service.id, service.hook, patient_history(50, NOW))
    raw = json.dumps(body).encode()
    assert parse(raw, 64) == body
    folder = tempfile.TemporaryDirectory(prefix="bench-edge-")
    # As served (JSON logs at INFO on stderr: run with 2>/dev/null), without a token to check.
    app = create_app({"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(Path(folder.name) / "feedback.sqlite3"),
                      "NOW_FN": lambda: NOW})
    client = app.test_client()
    cards = CardLibrary(REPO_ROOT / "cards")

    def http():
        answer = client.post(f"/cds-services/{SERVICE_ID}", data=raw, content_type="application/json")
        assert answer.status_code == 200

    def in_process():
        invoke(service, parse(raw, 64), cards=cards, now=NOW, lookback=timedelta(days=30), fetcher=None,
               allowed=lambda _u: False, timings=Timings())

    measured = {"parse": lambda: parse(raw, 64), "validate": lambda: validate_request(body, service.hook),
                "http": http, "in_process": in_process}
    for fn in measured.values():
        for _ in range(20):
            fn()
    rounds: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(args.rounds):
        for name, fn in measured.items():
            rounds[name].append(per_call_us(fn, args.calls))
    median = {name: round(statistics.median(v), 1) for name, v in rounds.items()}
    median["http_overhead"] = round(median["http"] - median["in_process"], 1)
    result = {"body_bytes": len(raw), "median_us": median,
              "rounds_us": {k: [round(x, 1) for x in v] for k, v in rounds.items()},
              "method": f"process CPU time, {args.rounds} alternating rounds of {args.calls} calls; http = Flask test client POST, "
                        "in_process = strict_json.parse + invoke(); http_overhead = http - in_process"}
    app.extensions["cds"].fhir.close()
    folder.cleanup()
    write_result("edge", result)
    print(json.dumps(median, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
