"""The command line as a newcomer meets it: --help for every option, CDS_BIND, the demo's port check and
`cds-service demo call`."""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
import requests

from cds_service.cli import build_parser, serve_bind
from cds_service.devtools import demo
from cds_service.devtools.fhir_server import free_port
from support.helpers import PV, REPO, fixture_bundle, hook_request, prefetch_from_fixture
from support.live import start_service, stop_service


def _parsers(parser: argparse.ArgumentParser, name: str = "cds-service"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_cli_option_and_command_is_described():
    seen = 0
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{name} {choice.dest}: subcommand without help"
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings or action.dest}"
            seen += 1
    assert seen > 15  # serve, demo, demo call, cards lint, feedback report


def test_serve_bind_comes_from_flags_then_cds_bind_then_the_default():
    assert serve_bind(None, None, {}) == "0.0.0.0:8080"
    assert serve_bind(None, None, {"CDS_BIND": "127.0.0.1:9000"}) == "127.0.0.1:9000"
    assert serve_bind(None, 9100, {"CDS_BIND": "127.0.0.1:9000"}) == "127.0.0.1:9100"
    assert serve_bind("::1", None, {"CDS_BIND": "127.0.0.1:9000"}) == "::1:9000"
    with pytest.raises(SystemExit, match="HOST:PORT"):
        serve_bind(None, None, {"CDS_BIND": "no-port"})


def test_serve_listens_where_cds_bind_says(tmp_path):
    port = free_port()
    env = {**os.environ, "CDS_BIND": f"127.0.0.1:{port}", "CDS_REQUIRE_JWT": "false", "CDS_WORKERS": "1",
           "CDS_FEEDBACK_DB": str(tmp_path / "fb.sqlite3")}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cds_service.cli", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            pytest.fail((tmp_path / "serve.log").read_text()[-2000:])
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_demo_refuses_taken_ports_before_loading_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "cds_service.cli", "demo", "--port", str(taken),
                               "--fhir-port", str(free_port())], capture_output=True, text=True, timeout=60,
                              cwd=tmp_path)
    assert done.returncode == 2
    assert f"port {taken} (the CDS service) on 127.0.0.1 already in use" in done.stderr
    assert "--port" in done.stderr and "--fhir-port" in done.stderr
    assert "[1/4]" not in done.stdout and "loaded" not in done.stdout  # nothing was started or loaded


def test_demo_call_sends_a_demo_request_from_any_directory(tmp_path, monkeypatch, capsys):
    service = start_service(tmp_path, {})
    try:
        var = tmp_path / "var-demo"
        (var / "requests").mkdir(parents=True)
        body = hook_request(PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"),
                                                                    now=datetime.now(timezone.utc)))
        (var / "requests" / "patient-view-low-mg.json").write_text(json.dumps(body))
        monkeypatch.setattr(demo, "VAR", var)
        monkeypatch.setattr(demo, "STATE_FILE", var / "state.json")
        assert demo.call_demo("patient-view-low-mg") == 2  # not running yet: a clear message
        assert "no demo is running" in capsys.readouterr().err
        (var / "state.json").write_text(json.dumps({"base": service.base_url}))
        monkeypatch.chdir(tmp_path)
        assert demo.call_demo("patient-view-low-mg") == 0
        out = capsys.readouterr().out
        # the rule as source.topic names it: its id, or the same words without hyphens (EHR-safe topic codes)
        assert "HTTP 200" in out and re.search(r"\(rule: electrolyte-review\)", out)
        assert demo.call_demo("patient-view-low-mg", raw=True) == 0
        assert json.loads(capsys.readouterr().out)["cards"]
        assert demo.call_demo("no-such-request") == 2
        assert "patient-view-low-mg" in capsys.readouterr().err
    finally:
        stop_service(service)


def test_demo_instructions_use_absolute_paths_and_name_the_feedback_store(tmp_path, monkeypatch, capsys):
    path = tmp_path / "patient-view-low-mg.json"
    path.write_text(json.dumps(hook_request(PV, "dx-low-mg")))
    demo._print_instructions("http://127.0.0.1:8080", [path])
    out = capsys.readouterr().out
    assert f"-d @{path}" in out and path.is_absolute()
    assert "demo call patient-view-low-mg" in out
    assert f"feedback report --db {demo.FEEDBACK_DB}" in out and demo.FEEDBACK_DB.is_absolute()
    assert str(REPO) in demo._command() or demo._command().startswith(sys.executable)
