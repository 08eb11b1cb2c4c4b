"""Shared set-up for the trend app tests: the real FHIR server, the EHR test double in front of it, and the
service under gunicorn (two workers, so the launch's requests land on different processes)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import unescape

import pytest
import requests

from cds_service import fixtures
from cds_service.clinical import codes
from cds_service.devtools.smart_ehr import EhrDouble
from support.helpers import fixture_bundle
from support.live import LiveService, start_service, stop_service

CLIENT_ID = "dialysis-electrolyte-trends"
TREND = "dx-low-mg-trend"
NO_LABS = "smart-no-labs"


@dataclass
class SmartEnv:
    service: LiveService
    double: EhrDouble
    fhir: object

    def launch(self, patient: str, app_context: str | None = None, session: requests.Session | None = None
               ) -> requests.Response:
        """An EHR launch followed to the end (authorize, callback, page), as a browser would."""
        session = session or requests.Session()
        return session.get(self.double.launch_url(patient, app_context), timeout=30)


def start_smart_env(fhir_server, workdir) -> SmartEnv:
    fhir_server.load({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Patient", "id": NO_LABS, "name": [{"family": "Empty", "given": ["Noel"]}]},
        "request": {"method": "PUT", "url": f"Patient/{NO_LABS}"}}]})
    double = EhrDouble(fhir_server.base_url, fhir_server.token, CLIENT_ID, [], "", standalone_patient=TREND)
    service = start_service(workdir, {"CDS_ALLOWED_FHIR_SERVERS": f"{fhir_server.base_url},{double.fhir_base}",
                                      "CDS_SMART_SECRET": "test-secret-shared-by-the-workers"})
    double.client.redirect_uris.append(f"{service.base_url}/smart/callback")
    double.app_launch_url = f"{service.base_url}/smart/launch"
    double.cds_service_url = service.base_url
    double.start()
    return SmartEnv(service, double, fhir_server)


@pytest.fixture(scope="module")
def env(fhir_server, tmp_path_factory):
    """The trend app's world for one test module (import this fixture into the module)."""
    env = start_smart_env(fhir_server, tmp_path_factory.mktemp("smart-service"))
    yield env
    env.double.stop()
    stop_service(env.service)


def fixture_results(patient: str, analyte: str, loaded_at: datetime, days: int = 90) -> list[tuple[datetime, dict]]:
    """The fixture's own results of ``analyte`` in the last ``days`` (as loaded), oldest first: what the page must show."""
    bundle = fixtures.at(fixture_bundle(patient), loaded_at)
    wanted = set(codes.ANALYTE_LOINC[analyte])
    out = []
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] != "Observation" or not {c["code"] for c in res["code"]["coding"]} & wanted:
            continue
        when = datetime.fromisoformat(res["effectiveDateTime"].replace("Z", "+00:00"))
        if loaded_at - timedelta(days=days) <= when <= loaded_at:
            out.append((when, res))
    return sorted(out, key=lambda t: t[0])


def data_attr(page: str, name: str) -> str:
    return unescape(re.search(rf'{name}="([^"]*)"', page).group(1))
