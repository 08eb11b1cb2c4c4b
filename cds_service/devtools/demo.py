"""`cds-service demo`: a real FHIR server with the demo patients, the service against it, and requests to paste."""
from __future__ import annotations

import json
import os
import signal
import socket
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
FEEDBACK_DB = VAR / "feedback.sqlite3"
STATE_FILE = VAR / "state.json"  # where the running demo's service is, for `cds-service demo call`

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


def ports_in_use(host: str, port: int, fhir_port: int) -> list[str]:
    """Which of the demo's ports (service, FHIR server, EHR test double) are taken, checked before anything starts."""
    taken = []
    for label, bind_host, number in (("the CDS service", host, port), ("the FHIR server", "127.0.0.1", fhir_port),
                                     ("the EHR test double", "127.0.0.1", fhir_port + 1)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no clash
            try:
                sock.bind((bind_host or "0.0.0.0", number))
            except OSError:
                taken.append(f"port {number} ({label}) on {bind_host or '0.0.0.0'}")
    return taken


def run_demo(host: str = "127.0.0.1", port: int = 8080, fhir_port: int = 8090, synthea: bool = True,
             workers: int = 2) -> int:
    taken = ports_in_use(host, port, fhir_port)
    if taken:
        print(f"cds-service demo: {' and '.join(taken)} already in use.\n"
              "Another demo may still be running: stop it with Ctrl-C in its terminal, or pick free ports, e.g.\n"
              f"  {_command()} demo --port {fhir_server.free_port()} --fhir-port {fhir_server.free_port()}",
              file=sys.stderr)
        return 2
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
            "CDS_FEEDBACK_DB": str(FEEDBACK_DB),
            "CDS_LOG_FORMAT": env.get("CDS_LOG_FORMAT", "text"),
            "CDS_DEMO_FHIR_SERVER": server.base_url,
            "CDS_DEMO_FHIR_TOKEN": server.token,
        })
        from ..proxy import find_nginx

        front = [] if find_nginx() else ["--no-proxy"]  # the demo needs only Python; nginx when it is there
        if front:
            _say("      (nginx not installed: the service runs under gunicorn alone, fine for a local demo)")
        service = subprocess.Popen([sys.executable, "-m", "cds_service.cli", "serve", "--host", host, "--port",
                                    str(port), "--workers", str(workers), *front], env=env, start_new_session=True)
        _wait_healthy(base, service)
        files = write_requests(base, server.base_url, server.token, now)
        STATE_FILE.write_text(json.dumps({"base": base, "pid": os.getpid()}))
        _print_instructions(base, files, ehr)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while service.poll() is None:
            time.sleep(0.5)
        return service.returncode or 0
    except KeyboardInterrupt:
        _say("\nStopping ...")
        return 0
    finally:
        STATE_FILE.unlink(missing_ok=True)
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


def _command() -> str:
    """The absolute path of this cds-service command, so printed commands work from any directory."""
    exe = Path(sys.executable).with_name("cds-service")
    return str(exe) if exe.exists() else f"{sys.executable} -m cds_service.cli"


def _service_for_hook(hook: str) -> str:
    from ..services import SERVICES

    return next(s.id for s in SERVICES.values() if s.hook == hook)


def _print_instructions(base: str, files: list[Path], ehr=None) -> None:
    cmd = _command()
    lines = [
        "",
        "=" * 78,
        f"Ready. The CDS service is at {base}  (JWT checks are OFF in demo mode)",
        "",
        "Discover the services:",
        f"  curl -s {base}/cds-services | python3 -m json.tool",
        "",
        "Call them (the service fetches the patient's data from the demo FHIR server); each works from any folder:",
    ]
    for path in files:
        body = json.loads(path.read_text())
        lines.append(f"  # {body['hook']} for patient {body['context']['patientId']}")
        lines.append(f"  {cmd} demo call {path.stem}")
        lines.append(f"  curl -s -H 'Content-Type: application/json' -d @{path.resolve()} "
                     f"{base}/cds-services/{_service_for_hook(body['hook'])} | python3 -m json.tool")
    lines += [
        "",
        f"Card preview in a browser:  {base}/preview      About this service:  {base}/",
        *([
            "",
            "Electrolyte trend app (SMART on FHIR) through the EHR test double: open a patient's cards and follow",
            "'Open the electrolyte trends' (EHR launch, PKCE, token exchange, then the app reads FHIR):",
            f"  {ehr.base_url}/ehr/patient/dx-low-mg-trend    (a year of history)",
            f"  {ehr.base_url}/ehr/patient/dx-low-mg",
            f"  standalone launch: {base}/smart/launch?iss={ehr.fhir_base}",
        ] if ehr is not None else []),
        f"Health: {base}/health/ready    Metrics: {base}/metrics",
        f"Feedback report (after Ctrl-C too):  {cmd} feedback report --db {FEEDBACK_DB}",
        "Press Ctrl-C to stop the service and the FHIR server.",
        "=" * 78,
    ]
    _say("\n".join(lines))


def request_names() -> list[str]:
    return [name.removesuffix(".json") for name, *_rest in DEMO_REQUESTS]


def call_demo(name: str, raw: bool = False) -> int:
    """`cds-service demo call NAME`: send one of the demo's requests to the running demo and show the cards."""
    names = request_names()
    if name not in names:
        print(f"cds-service demo call: no demo request {name!r}; one of:\n  " + "\n  ".join(names), file=sys.stderr)
        return 2
    path = VAR / "requests" / f"{name}.json"
    if not STATE_FILE.exists() or not path.exists():
        print("cds-service demo call: no demo is running; start it first with ./scripts/demo.sh "
              f"(or {_command()} demo)", file=sys.stderr)
        return 2
    base = json.loads(STATE_FILE.read_text())["base"]
    body = json.loads(path.read_text())
    url = f"{base}/cds-services/{_service_for_hook(body['hook'])}"
    try:
        resp = requests.post(url, json=body, timeout=30)
    except requests.RequestException as exc:
        print(f"cds-service demo call: the demo at {base} does not answer ({exc.__class__.__name__}); "
              "is it still running?", file=sys.stderr)
        return 2
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if raw or not isinstance(answer, dict) or "cards" not in answer:
        print(json.dumps(answer, indent=2, ensure_ascii=False) if answer is not None else resp.text)
        return 0 if resp.ok else 1
    cards = answer["cards"]
    print(f"POST {url} -> HTTP {resp.status_code}, {len(cards)} card(s) for patient {body['context']['patientId']}")
    from ..clinical.rules import load_all
    from ..hooks.topics import rule_for_code

    for card in cards:
        topic = ((card.get("source") or {}).get("topic") or {}).get("code", "")
        print(f"  [{card.get('indicator', '?')}] {card.get('summary', '')}  (rule: {rule_for_code(topic, load_all()) or topic})")
        for suggestion in card.get("suggestions") or []:
            print(f"      suggestion: {suggestion.get('label', '')}")
    print(f"Full JSON: {_command()} demo call {name} --json")
    return 0
