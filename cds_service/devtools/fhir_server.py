"""A real FHIR R4 server for the demo and the tests: the pinned sekmet-fhir, on 127.0.0.1.

sekmet-fhir lives in its own virtualenv (its dependencies must not mix with ours).
This module installs it there when missing, writes its YAML config, starts it,
waits until it answers, and loads transaction Bundles into it.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import requests

SEKMET_REQUIREMENT = "sekmet-fhir==0.1.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO_ROOT / ".venv-fhir"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sekmet_executable(venv: Path = DEFAULT_VENV) -> Path:
    return venv / "bin" / "sekmet"


def ensure_installed(venv: Path = DEFAULT_VENV, quiet: bool = True) -> Path:
    """Create the FHIR server's own virtualenv and install the pinned sekmet-fhir into it (idempotent)."""
    exe = sekmet_executable(venv)
    marker = venv / ".installed"
    if exe.exists() and marker.exists() and marker.read_text().strip() == SEKMET_REQUIREMENT:
        return exe
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
           SEKMET_REQUIREMENT]
    done = subprocess.run(cmd, capture_output=quiet, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"installing {SEKMET_REQUIREMENT} failed:\n{(done.stderr or '')[-3000:]}")
    marker.write_text(SEKMET_REQUIREMENT)
    return exe


@dataclass
class FhirServer:
    base_url: str
    token: str
    process: subprocess.Popen
    workdir: Path
    log_path: Path

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/fhir+json"}

    def load(self, bundle: dict, timeout: float = 120.0) -> dict:
        resp = requests.post(self.base_url, json=bundle, timeout=timeout,
                             headers={**self.headers(), "Content-Type": "application/fhir+json"})
        if resp.status_code >= 300:
            raise RuntimeError(f"FHIR server refused the bundle ({resp.status_code}): {resp.text[:500]}")
        return resp.json()

    def load_all(self, bundles: Iterable[dict]) -> int:
        n = 0
        for bundle in bundles:
            self.load(bundle)
            n += 1
        return n

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start(workdir: Path, port: int | None = None, token: str = "demo-fhir-token", venv: Path = DEFAULT_VENV,
          wait_s: float = 60.0, fresh: bool = True) -> FhirServer:
    """Start sekmet-fhir on 127.0.0.1 with a static Bearer token and the simulator off."""
    exe = sekmet_executable(venv)
    if not exe.exists():
        raise FileNotFoundError(f"{exe} not found: run ensure_installed() (scripts/test.sh does) first")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    settings = workdir / "settings.yaml"
    settings.write_text(
        f"base_url: http://127.0.0.1:{port}/fhir\n"
        f"host: 127.0.0.1\n"
        f"port: {port}\n"
        f"data_dir: {data_dir}\n"
        "simulator: {enabled: false}\n"
        "validation: {inbound: warn}\n"
        "log_inbound: false\n"
        f"server_auth: {{types: [bearer], tokens: [{token}]}}\n",
        encoding="utf-8",
    )
    log_path = workdir / "fhir-server.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - handed to the child process
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
    proc = subprocess.Popen([str(exe), "serve", "-c", str(settings)], cwd=str(workdir), stdout=log_file,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = FhirServer(f"http://127.0.0.1:{port}/fhir", token, proc, workdir, log_path)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"FHIR server exited early; see {log_path}:\n{log_path.read_text()[-2000:]}")
        try:
            if requests.get(f"{server.base_url}/metadata", headers=server.headers(), timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"FHIR server did not answer within {wait_s:.0f} s; see {log_path}")
