"""Benchmark 2: HTTP throughput under gunicorn against a bare Flask endpoint, same server settings, same run.

Both apps run under gunicorn with the service's own settings (cds_service/gunicorn_conf.py:
gthread workers, 4 threads each) and 2 workers, on loopback. Load comes from wrk (Debian
package; installed with apt-get when missing) POSTing the same patient-view request -- a
full prefetch with a 50-observation history -- for a fixed time. The bare endpoint returns
JSON of the same size as the service's answer. The two are measured alternately (bare,
service, bare, service) so that other load on the machine hits both alike.

Target: service >= 0.6 x bare. Also records peak RSS of the service's workers after the load.
Writes bench/results/throughput.json.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, ServiceProcess, write_result  # noqa: E402
from history import hook_request, patient_history  # noqa: E402

SERVICE_ID = "dialysis-electrolytes-patient-view"


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def wrk(url: str, body_path: Path, seconds: int, connections: int, threads: int) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'local f = io.open("%s", "rb")\nlocal body = f:read("*a")\nf:close()\n'
        'wrk.method = "POST"\nwrk.body = body\nwrk.headers["Content-Type"] = "application/json"\n'
        % body_path)
    out = subprocess.run([ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 60).stdout
    script.unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    lat = {m.group(1): m.group(2) for m in re.finditer(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)}
    return {"rps": rps, "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(0) if socket_errors else None, "latency": lat}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    now = datetime.now(timezone.utc)
    body = hook_request(SERVICE_ID, "patient-view", patient_history(50, now))
    body_path = Path(tempfile.mkstemp(suffix=".json")[1])
    body_path.write_text(json.dumps(body))
    runs = {"service": [], "bare": []}
    with ServiceProcess(workers=2, wsgi="cds_service.wsgi:app") as service:
        answer = requests.post(f"{service.base_url}/cds-services/{SERVICE_ID}", json=body, timeout=10)
        assert answer.status_code == 200 and answer.json()["cards"], answer.text[:300]
        size = len(answer.content)
        env = {"PYTHONPATH": str(BENCH), "BARE_RESPONSE_BYTES": str(size)}
        with ServiceProcess(workers=2, wsgi="bare_app:app", env=env) as bare:
            bare_size = len(requests.post(f"{bare.base_url}/cds-services/x", json=body, timeout=10).content)
            for _ in range(args.rounds):
                for name, proc in (("bare", bare), ("service", service)):
                    runs[name].append(wrk(f"{proc.base_url}/cds-services/{SERVICE_ID}", body_path, args.seconds,
                                          args.connections, args.threads))
        rss = service.worker_rss()
    body_path.unlink()
    service_rps = sum(r["rps"] for r in runs["service"]) / len(runs["service"])
    bare_rps = sum(r["rps"] for r in runs["bare"]) / len(runs["bare"])
    ratio = service_rps / bare_rps
    result = {
        "method": f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, POST with a full prefetch "
                  f"(50 observations, {body_path.stat().st_size if body_path.exists() else len(json.dumps(body))} "
                  f"bytes), gunicorn gthread 2 workers x 4 threads, loopback, alternating rounds",
        "response_bytes": {"service": size, "bare": bare_size},
        "service_rps": round(service_rps, 1),
        "bare_rps": round(bare_rps, 1),
        "ratio": round(ratio, 3),
        "target_ratio": 0.6,
        "runs": runs,
        "service_worker_rss_mb": {str(pid): {"rss": v[0], "peak": v[1]} for pid, v in rss.items()},
        "errors": sum(r["non_2xx"] for r in runs["service"] + runs["bare"]),
    }
    result["passed"] = ratio >= 0.6 and result["errors"] == 0
    write_result("throughput", result)
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
