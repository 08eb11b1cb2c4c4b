"""Shared test fixtures.

- ``make_app`` / ``client``: the Flask app in-process, JWT off, feedback DB in tmp, clock pinned to ``NOW``,
  strict rules (a rule that fails makes the call fail, so no test passes over a broken rule).
- ``fhir_server``: the real sekmet-fhir server (session-wide), loaded with every patient fixture shifted to
  the real clock. Needs .venv-fhir (scripts/test.sh installs it). Without it the integration tests are
  skipped with a message, except under CI=true, where they fail.
- ``live_service``: the service itself under gunicorn on a free port, allowlisting that FHIR server, strict rules.
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import pytest

from cds_service import fixtures
from cds_service.devtools import fhir_server as fhir_dev
from support.helpers import NOW
from support.live import start_service, stop_service
from support.smart import env  # noqa: F401 (the trend-app fixture: EHR double, FHIR server and service)


@pytest.fixture
def make_app(tmp_path):
    from cds_service import create_app

    apps = []

    def _make(**overrides):
        config = {"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"),
                  "CDS_LOG_FORMAT": "text", "CDS_STRICT_RULES": "true", "NOW_FN": lambda: NOW}
        config.update(overrides)
        app = create_app(config)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield _make
    for app in apps:
        app.extensions["cds"].fhir.close()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


# ----------------------------------------------------------------------------- real servers

def _require_or_skip(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory):
    exe = fhir_dev.sekmet_executable()
    if not exe.exists():
        _require_or_skip("sekmet-fhir is not installed in .venv-fhir; run scripts/test.sh")
    workdir = tmp_path_factory.mktemp("fhir-server")
    server = fhir_dev.start(workdir, token=f"test-{uuid.uuid4().hex}")
    now = datetime.now(timezone.utc)
    server.loaded_at = now
    for _path, bundle in fixtures.patient_bundles():  # .json and .json.gz
        server.load(fixtures.at(bundle, now))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_service(fhir_server, tmp_path_factory):
    service = start_service(tmp_path_factory.mktemp("service"),
                            {"CDS_ALLOWED_FHIR_SERVERS": fhir_server.base_url, "CDS_STRICT_RULES": "true"})
    yield service
    stop_service(service)


