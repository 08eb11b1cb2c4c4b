"""Benchmark 2: HTTP throughput under gunicorn against a bare Flask endpoint, same server settings, same run.

Both apps run under gunicorn with the service's own settings (cds_service/gunicorn_conf.py:
gthread workers, 4 threads each) and 2 workers, on loopback. Load comes from wrk (Debian
package; installed with apt-get when missing) POSTing the same patient-view request -- a
full prefetch with a 50-observation history -- for a fixed time. The bare endpoint returns
JSON of the same size as the service's answer. The two are measured alternately (bare,
service, bare, service) so that other load on the machine hits both alike.

HealthChain 0.16.1 (``--healthchain``, on by default) is installed from PyPI into a throwaway virtualenv
inside the run, with gunicorn; its version of the same low-Mg check (``healthchain_app.py``) runs under
gunicorn with 2 uvicorn workers (it is an ASGI app) and gets the same request in the same alternating rounds.
If it cannot be installed, the result says exactly what pip printed.

Latency at one connection (wrk -t1 -c1) is measured for the service too: p50 and p99 beside the p50/p99
at 8 connections from the throughput rounds.

Targets: service >= 0.6 x bare, >= 10 x HealthChain, p99 <= 2 x p50 at one connection. Also records peak
RSS of the service's workers after the load. Writes bench/results/throughput.json.
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
HEALTHCHAIN = "healthchain==0.16.1"


class HealthChainProcess(ServiceProcess):
    """bench/healthchain_app.py under gunicorn with uvicorn workers, from the throwaway virtualenv."""

    def __init__(self, python: str, workers: int = 2):
        super().__init__(workers=workers, env={"PYTHONPATH": str(BENCH)})
        self.python = python

    def command(self) -> list[str]:
        return [self.python, "-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker", "--workers", str(self.workers),
                "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "healthchain_app:app"]


def healthchain_python(folder: Path) -> tuple[str | None, str]:
    """(python of a fresh virtualenv with HealthChain and gunicorn, or None; what pip said)."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = str(folder / "bin" / "python")
    done = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", HEALTHCHAIN,
                           "gunicorn"], capture_output=True, text=True, timeout=900)
    said = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if "is ignored" not in line)
    return (python if done.returncode == 0 else None), said[-2000:]


def ms(text: str) -> float:
    """wrk's latency figure ("812.00us", "1.23ms", "1.02s") in ms."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


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


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-healthchain", dest="healthchain", action="store_false",
                        help="skip the HealthChain comparison (it installs HealthChain from PyPI)")
    parser.add_argument("--healthchain-python", default=None,
                        help="python of a virtualenv that already holds healthchain==0.16.1 and gunicorn "
                             "(default: install them into a throwaway one)")
    args = parser.parse_args(argv)

    now = datetime.now(timezone.utc)
    body = hook_request(SERVICE_ID, "patient-view", patient_history(50, now))
    body_path = Path(tempfile.mkstemp(suffix=".json")[1])
    body_path.write_text(json.dumps(body))
    runs: dict[str, list] = {"service": [], "bare": [], "healthchain": []}
    healthchain: dict = {"package": HEALTHCHAIN, "installed": False}
    venv = tempfile.TemporaryDirectory(prefix="healthchain-venv-")
    hc_python = None
    if args.healthchain and args.healthchain_python:
        hc_python = args.healthchain_python
        healthchain.update(installed=True, virtualenv="given (--healthchain-python)")
    elif args.healthchain:
        hc_python, said = healthchain_python(Path(venv.name))
        healthchain.update(installed=hc_python is not None, pip_output=said, virtualenv="throwaway, made by this run")
    one_connection: list[dict] = []
    bare_one_connection: list[dict] = []
    with ServiceProcess(workers=2, wsgi="cds_service.wsgi:app") as service:
        url = f"{service.base_url}/cds-services/{SERVICE_ID}"
        answer = requests.post(url, json=body, timeout=10)
        assert answer.status_code == 200 and answer.json()["cards"], answer.text[:300]
        size = len(answer.content)
        env = {"PYTHONPATH": str(BENCH), "BARE_RESPONSE_BYTES": str(size)}
        with ServiceProcess(workers=2, wsgi="bare_app:app", env=env) as bare, \
                (HealthChainProcess(hc_python) if hc_python else _Nothing()) as hc:
            bare_size = len(requests.post(f"{bare.base_url}/cds-services/x", json=body, timeout=10).content)
            targets = [("bare", f"{bare.base_url}/cds-services/{SERVICE_ID}"), ("service", url)]
            if hc is not None:
                hc_url = f"{hc.base_url}/cds/cds-services/{SERVICE_ID}"
                hc_answer = requests.post(hc_url, json=body, timeout=30)
                healthchain["cards"] = [c.get("summary") for c in hc_answer.json().get("cards") or []]
                assert hc_answer.status_code == 200 and healthchain["cards"], hc_answer.text[:300]
                targets.append(("healthchain", hc_url))
            for _ in range(args.rounds):
                for name, target in targets:
                    runs[name].append(wrk(target, body_path, args.seconds, args.connections, args.threads))
            # The same at one connection, alternating with the bare endpoint: the bare endpoint's own p99/p50 is
            # the tail the machine and the HTTP stack add, whatever the handler does.
            for _ in range(args.rounds):
                one_connection.append(wrk(url, body_path, args.seconds, 1, 1))
                bare_one_connection.append(wrk(targets[0][1], body_path, args.seconds, 1, 1))
        rss = service.worker_rss()
    venv.cleanup()
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
        "errors": sum(r["non_2xx"] for r in runs["service"] + runs["bare"] + runs["healthchain"]),
    }
    p50_1 = max(ms(r["latency"]["50"]) for r in one_connection)
    p99_1 = max(ms(r["latency"]["99"]) for r in one_connection)
    result["one_connection"] = {"runs": one_connection, "p50_ms": p50_1, "p99_ms": p99_1,
                                "p99_over_p50": round(p99_1 / p50_1, 2), "target": "p99 <= 2 x p50"}
    bare_p50 = max(ms(r["latency"]["50"]) for r in bare_one_connection)
    bare_p99 = max(ms(r["latency"]["99"]) for r in bare_one_connection)
    result["bare_one_connection"] = {"runs": bare_one_connection, "p50_ms": bare_p50, "p99_ms": bare_p99,
                                     "p99_over_p50": round(bare_p99 / bare_p50, 2)}
    result["eight_connections"] = {"p50_ms": max(ms(r["latency"]["50"]) for r in runs["service"]),
                                   "p99_ms": max(ms(r["latency"]["99"]) for r in runs["service"])}
    if runs["healthchain"]:
        hc_rps = sum(r["rps"] for r in runs["healthchain"]) / len(runs["healthchain"])
        healthchain.update(rps=round(hc_rps, 1), service_over_healthchain=round(service_rps / hc_rps, 2),
                           target_ratio=10.0)
    result["healthchain"] = healthchain
    result["passed"] = (ratio >= 0.6 and result["errors"] == 0 and p99_1 <= 2 * p50_1
                        and healthchain.get("service_over_healthchain", 0) >= 10)
    write_result("throughput", result)
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
