"""Running the service as a real process (gunicorn) for integration tests."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from cds_service.devtools import fhir_server as fhir_dev


class LiveService:
    def __init__(self, base_url: str, process: subprocess.Popen, log_path: Path, feedback_db: Path):
        self.base_url = base_url
        self.process = process
        self.log_path = log_path
        self.feedback_db = feedback_db

    def post(self, path: str, body, **kwargs):
        return requests.post(self.base_url + path, json=body, timeout=15, **kwargs)

    def get(self, path: str, **kwargs):
        return requests.get(self.base_url + path, timeout=15, **kwargs)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_service(workdir: Path, env_overrides: dict, workers: int = 2) -> LiveService:
    port = fhir_dev.free_port()
    log_path = workdir / "service.log"
    feedback_db = workdir / "feedback.sqlite3"
    env = dict(os.environ)
    env.update({"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(feedback_db), "CDS_LOG_FORMAT": "json"})
    env.update(env_overrides)
    proc = subprocess.Popen([sys.executable, "-m", "cds_service.cli", "serve", "--host", "127.0.0.1", "--port",
                             str(port), "--workers", str(workers)], stdout=open(log_path, "wb"),
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(base + "/health", timeout=2).status_code == 200:
                return LiveService(base, proc, log_path, feedback_db)
        except requests.RequestException:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"service did not start:\n{log_path.read_text()[-3000:]}")


def stop_service(service: LiveService) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        service.process.kill()




def ehr_prefetch(fhir_server, service_id: str, context: dict, timeout: float = 15) -> dict:
    """Play the EHR: run each of the service's prefetch templates against the FHIR server and return
    the results as the request's prefetch. A template the server cannot answer is a test failure."""
    from cds_service.hooks.prefetch import render_template, token_values
    from cds_service.services import SERVICES

    out = {}
    for name, key in SERVICES[service_id].prefetch.items():
        url = f"{fhir_server.base_url}/{render_template(key.template, token_values(context))}"
        resp = requests.get(url, headers=fhir_server.headers(), timeout=timeout)
        assert resp.status_code == 200, (name, url, resp.text[:300])
        out[name] = resp.json()
    return out
