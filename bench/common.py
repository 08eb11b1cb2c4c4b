"""Shared benchmark plumbing: start the service under gunicorn, measure RSS, write results."""
from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def machine() -> dict:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_end": [round(x, 2) for x in load]}


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    result = dict(result)
    result.setdefault("benchmark", name)
    result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result["machine"] = machine()
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


# ---------------------------------------------------------------------- processes and memory

def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def gunicorn_workers(master: int) -> list[int]:
    """gunicorn's workers: the master's children, less the nginx front that `cds-service serve` also starts."""
    return [p for p in children(master) if _comm(p) != "nginx"]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc."""
    cur = peak = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return round(cur, 1), round(peak, 1)


class ServiceProcess:
    """The service under gunicorn (cds-service serve) on a free loopback port, in its own session."""

    def __init__(self, workers: int = 2, env: dict | None = None, wsgi: str | None = None):
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.tmp = tempfile.TemporaryDirectory(prefix="cds-bench-")
        self.log_path = Path(self.tmp.name) / "service.log"
        self.env = dict(os.environ)
        self.env.update({"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(Path(self.tmp.name) / "fb.sqlite3"),
                         "CDS_LOG_LEVEL": "WARNING", "CDS_LOG_FORMAT": "json"})
        self.env.update(env or {})
        self.wsgi = wsgi
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.wsgi:  # any WSGI app under the same gunicorn settings as the service
            return [sys.executable, "-m", "gunicorn", "-c", str(REPO / "cds_service" / "gunicorn_conf.py"),
                    "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), self.wsgi]
        return [sys.executable, "-m", "cds_service.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers)]

    def __enter__(self) -> "ServiceProcess":
        self.proc = subprocess.Popen(self.command(), stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                     env=self.env, cwd=str(REPO), start_new_session=True)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.base_url + "/health", timeout=2).status_code in (200, 404):
                    if len(self.worker_pids()) >= self.workers:
                        return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("service did not start")

    def worker_pids(self) -> list[int]:
        return gunicorn_workers(self.proc.pid) if self.proc else []

    def worker_rss(self) -> dict[int, tuple[float, float]]:
        return {pid: rss_mb(pid) for pid in self.worker_pids()}

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.tmp.cleanup()


class StubProcess:
    """A FHIR stub (cds_service.devtools.fhir_stubs) in its own process, so it does not share our GIL."""

    def __init__(self, prefetch: dict | None = None, delay_ms: float = 0.0, hang: bool = False):
        self.tmp = tempfile.TemporaryDirectory(prefix="cds-stub-")
        self.data = Path(self.tmp.name) / "prefetch.json"
        self.data.write_text(json.dumps(prefetch or {}))
        self.args = [sys.executable, "-m", "cds_service.devtools.fhir_stubs", str(self.data),
                     "--delay-ms", str(delay_ms)] + (["--hang"] if hang else [])
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> "StubProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True, cwd=str(REPO),
                                     start_new_session=True)
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError("stub did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.tmp.cleanup()
