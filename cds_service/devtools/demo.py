"""`cds-service demo`: a real FHIR server with the demo patients, the service against it, and requests to paste."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests

from .. import fixtures
from . import fhir_server

REPO = fhir_server.REPO_ROOT
VAR = REPO / "var" / "demo"

# (file name, service id, patient id, draft-orders fixture or None, selections)
DEMO_REQUESTS = [
    ("patient-view-low-mg.json", "dialysis-electrolytes-patient-view", "dx-low-mg", None, None),
    ("patient-view-cramp-after-session.json", "dialysis-electrolytes-patient-view", "dx-cramp-post-session", None,
     None),
    ("patient-view-critical-potassium.json", "dialysis-electrolytes-patient-view", "dx-hyperkalemia-critical", None,
     None),
    ("patient-view-normal.json", "dialysis-electrolytes-patient-view", "dx-normal", None, None),
    ("patient-view-not-on-dialysis.json", "dialysis-electrolytes-patient-view", "no-dialysis", None, None),
    ("order-sign-iv-magnesium.json", "dialysis-electrolytes-order-sign", "dx-low-mg", "iv-magnesium-sulfate.json", None),
    ("order-select-iv-magnesium.json", "dialysis-electrolytes-order-select", "dx-low-mg", "iv-magnesium-sulfate.json",
     ["MedicationRequest/draft-iv-mg"]),
    ("order-sign-sandbox-mixed.json", "dialysis-electrolytes-order-sign", "ord-hd-low-mg", "sandbox-mixed.json", None),
]


def _say(text: str) -> None:
    print(text, flush=True)


def build_request(service_id: str, patient_id: str, fhir_base: str | None, token: str | None,
                  draft_orders: dict | None = None, selections: list[str] | None = None,
                  prefetch: dict | None = None) -> dict:
    hook = service_id.rsplit("-", 2)[-2] + "-" + service_id.rsplit("-", 1)[-1]
    context: dict = {"userId": "Practitioner/demo-nephrologist", "patientId": patient_id}
    if draft_orders is not None:
        context["draftOrders"] = draft_orders
    if selections is not None:
        context["selections"] = selections
    body: dict = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if fhir_base:
        body["fhirServer"] = fhir_base
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                                     "scope": "patient/*.read", "subject": "cds-service"}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def load_fixtures(server: fhir_server.FhirServer, now: datetime, include_large: bool = True) -> list[str]:
    loaded = []
    folder = fixtures.FIXTURES_DIR / "patients"
    for path in sorted(folder.glob("*.json")) + (sorted(folder.glob("*.json.gz")) if include_large else []):
        bundle = fixtures.at(fixtures.load_json(path), now)
        started = time.monotonic()
        server.load(bundle)
        loaded.append(path.name)
        _say(f"  loaded {path.name} ({len(bundle.get('entry') or [])} resources, {time.monotonic() - started:.1f} s)")
    return loaded


def write_requests(service_url: str, fhir_base: str, token: str, now: datetime) -> list[Path]:
    out_dir = VAR / "requests"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, service_id, patient_id, orders_file, selections in DEMO_REQUESTS:
        drafts = None
        if orders_file:
            path = fixtures.FIXTURES_DIR / "orders" / orders_file
            if not path.exists():
                continue
            drafts = fixtures.load_json(path)
        body = build_request(service_id, patient_id, fhir_base, token, drafts, selections)
        target = out_dir / name
        target.write_text(json.dumps(body, indent=2))
        written.append(target)
    return written


def run_demo(host: str = "127.0.0.1", port: int = 8080, fhir_port: int = 8090, synthea: bool = True,
             workers: int = 2) -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    _say("[1/4] Installing the FHIR server (sekmet-fhir, pinned) in .venv-fhir ...")
    fhir_server.ensure_installed()
    _say(f"[2/4] Starting the FHIR server on http://127.0.0.1:{fhir_port}/fhir ...")
    server = fhir_server.start(VAR / "fhir", port=fhir_port)
    service = ehr = None
    try:
        now = datetime.now(timezone.utc)
        _say("[3/4] Loading the demo patients (times shifted so that the scenarios happen now) ...")
        load_fixtures(server, now, include_large=synthea)
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        ehr = start_ehr_double(server, base, fhir_port + 1)
        _say(f"[4/4] Starting the CDS service on http://{host}:{port} ...")
        env = dict(os.environ)
        env.update({
            "CDS_ALLOWED_FHIR_SERVERS": f"{server.base_url},{ehr.fhir_base}",
            "CDS_REQUIRE_JWT": "false",
            "CDS_PREVIEW": "true",
            "CDS_FEEDBACK_DB": str(VAR / "feedback.sqlite3"),
            "CDS_LOG_FORMAT": env.get("CDS_LOG_FORMAT", "text"),
            "CDS_DEMO_FHIR_SERVER": server.base_url,
            "CDS_DEMO_FHIR_TOKEN": server.token,
        })
        service = subprocess.Popen([sys.executable, "-m", "cds_service.cli", "serve", "--host", host, "--port",
                                    str(port), "--workers", str(workers)], env=env, start_new_session=True)
        _wait_healthy(base, service)
        files = write_requests(base, server.base_url, server.token, now)
        _print_instructions(base, files, ehr)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while service.poll() is None:
            time.sleep(0.5)
        return service.returncode or 0
    except KeyboardInterrupt:
        _say("\nStopping ...")
        return 0
    finally:
        if service is not None and service.poll() is None:
            service.terminate()
            try:
                service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.kill()
        if ehr is not None:
            ehr.stop()
        server.stop()


def start_ehr_double(server: fhir_server.FhirServer, service_base: str, port: int):
    """The EHR side of the SMART trend app: authorization server, FHIR gateway to ``server``, card sidebar."""
    from .smart_ehr import EhrDouble

    return EhrDouble(server.base_url, server.token, client_id="dialysis-electrolyte-trends",
                     redirect_uris=[f"{service_base}/smart/callback"], app_launch_url=f"{service_base}/smart/launch",
                     cds_service_url=service_base, standalone_patient="dx-low-mg-trend", port=port).start()


def _wait_healthy(base: str, proc: subprocess.Popen, wait_s: float = 60.0) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the CDS service exited during start-up (see its log above)")
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the CDS service did not become healthy within {wait_s:.0f} s")


def _print_instructions(base: str, files: list[Path], ehr=None) -> None:
    rel = [f.relative_to(REPO) if f.is_relative_to(REPO) else f for f in files]
    lines = [
        "",
        "=" * 78,
        f"Ready. The CDS service is at {base}  (JWT checks are OFF in demo mode)",
        "",
        "Discover the services:",
        f"  curl -s {base}/cds-services | python3 -m json.tool",
        "",
        "Call them (the service fetches the patient's data from the demo FHIR server):",
    ]
    for path in rel:
        body = json.loads((REPO / path).read_text()) if not Path(path).is_absolute() else json.loads(Path(path).read_text())
        service_id = {"patient-view": "dialysis-electrolytes-patient-view",
                      "order-select": "dialysis-electrolytes-order-select",
                      "order-sign": "dialysis-electrolytes-order-sign"}[body["hook"]]
        lines.append(f"  # {path.name}: {body['hook']} for patient {body['context']['patientId']}")
        lines.append(f"  curl -s -H 'Content-Type: application/json' -d @{path} {base}/cds-services/{service_id} "
                     "| python3 -m json.tool")
    lines += [
        "",
        f"Card preview in a browser:  {base}/preview",
        *([
            "",
            "Electrolyte trend app (SMART on FHIR) through the EHR test double: open a patient's cards and follow",
            "'Open the electrolyte trends' (EHR launch, PKCE, token exchange, then the app reads FHIR):",
            f"  {ehr.base_url}/ehr/patient/dx-low-mg-trend    (a year of history)",
            f"  {ehr.base_url}/ehr/patient/dx-low-mg",
            f"  standalone launch: {base}/smart/launch?iss={ehr.fhir_base}",
        ] if ehr is not None else []),
        f"Health: {base}/health    Metrics: {base}/metrics",
        "Press Ctrl-C to stop the service and the FHIR server.",
        "=" * 78,
    ]
    _say("\n".join(lines))
