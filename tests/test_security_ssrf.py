"""Outbound calls: a fhirServer that is not allowlisted is never contacted, whatever its spelling.

Connections are observed two ways: ``responses`` (which records every attempted request,
matched or not) and, for loopback, a real socket server that counts accepted connections.
"""
from __future__ import annotations

import logging
import re
import socket
import threading

import pytest
import responses

from cds_service.fhir.urls import Allowlist, UrlRefused, parse_base
from support.security import (SERVICE, SERVICE_URL, Keys, auth, hook_request, make_app, mint, write_jwks)
from support.helpers import rule_of

ALLOWED = "https://allowed.example/fhir"
REQUIRED = ("conditions", "procedures", "encounters", "labs")


@pytest.fixture(scope="module")
def keys():
    return Keys()


@pytest.fixture()
def app_factory(tmp_path, keys):
    path = write_jwks(tmp_path, keys)

    def build(allowed: str = ALLOWED):
        return make_app(tmp_path, str(path), CDS_ALLOWED_FHIR_SERVERS=allowed)
    return build


def invoke(app, keys, fhir_server: str, prefetch_keys: tuple[str, ...] | None):
    body = hook_request(prefetch_keys=prefetch_keys)
    body["fhirServer"] = fhir_server
    return app.test_client().post(f"/cds-services/{SERVICE}", json=body,
                                  headers=auth(mint(keys, jku=None, aud=SERVICE_URL)))


def topics(resp) -> list[str]:
    return [rule_of(c) for c in resp.get_json()["cards"]]


NEVER_CONTACTED = [
    "http://169.254.169.254/",
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:1/",
    "https://allowed.example@evil.example/",
    "https://allowed.example:443@evil.example/fhir",
    "https://allowed.example/fhirx",  # prefix must end at a path segment
    "https://allowed.example/fhir/../admin",
    "https://allowed.example/fhir/%2e%2e/admin",
    "https://allowed.example:8443/fhir",  # another port
    "http://allowed.example/fhir",  # http to a non-loopback host
    "https://allowed.example.evil.example/fhir",
    "https://evil.example/fhir",
    "http://[::ffff:169.254.169.254]/",
    "http://2852039166/",  # 169.254.169.254 as a decimal number
    "http://0xa9.0xfe.0xa9.0xfe/",
]


@pytest.mark.parametrize("fhir_server", NEVER_CONTACTED)
def test_refused_fhir_server_is_not_contacted_prefetch_used(app_factory, keys, fhir_server, caplog):
    """Required data prefetched, optional data missing: 200 from the prefetch, 'refused' for the rest."""
    app = app_factory()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps, caplog.at_level(logging.INFO):
        resp = invoke(app, keys, fhir_server, prefetch_keys=("patient",) + REQUIRED)
        assert len(rsps.calls) == 0, [c.request.url for c in rsps.calls]
    assert resp.status_code == 200
    assert topics(resp) == ["data-unavailable", "electrolyte-review"]  # the prefetch still served the rules
    notice = resp.get_json()["cards"][0]["detail"]
    assert "not on the allowlist" in notice
    answered = [r for r in caplog.records if r.getMessage() == "hook answered"]
    assert answered[0].unavailable == {"aluminum": "refused", "heartRate": "refused", "symptoms": "refused",
                                     "weights": "refused", "medications": "refused"}


@pytest.mark.parametrize("fhir_server", NEVER_CONTACTED)
def test_refused_fhir_server_without_prefetch_gives_412(app_factory, keys, fhir_server):
    app = app_factory()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        resp = invoke(app, keys, fhir_server, prefetch_keys=())
        assert len(rsps.calls) == 0, [c.request.url for c in rsps.calls]
    assert resp.status_code == 412
    details = " ".join(i["diagnostics"] for i in resp.get_json()["issue"])
    assert "not on the allowlist; not contacted" in details


def test_control_allowlisted_server_is_contacted_with_the_token(app_factory, keys):
    """Positive control for the tests above: the same harness does see a permitted call."""
    app = app_factory()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(re.compile(r"https://allowed\.example/fhir/(Observation|MedicationRequest)\?.*"),
                 json={"resourceType": "Bundle", "type": "searchset", "entry": []})
        resp = invoke(app, keys, ALLOWED, prefetch_keys=("patient",) + REQUIRED)
        assert resp.status_code == 200
        assert len(rsps.calls) == 5  # aluminum, weights, heartRate, symptoms, medications
        assert all(c.request.headers["Authorization"] == "Bearer opaque-fhir-token-1" for c in rsps.calls)
    assert topics(resp) == ["electrolyte-review"]


def test_redirect_to_another_host_not_followed(app_factory, keys):
    app = app_factory()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(re.compile(r"https://allowed\.example/fhir/.*"), status=302,
                 headers={"Location": "https://evil.example/steal"})
        resp = invoke(app, keys, ALLOWED, prefetch_keys=())
        hosts = {c.request.url.split("/")[2] for c in rsps.calls}
    assert hosts == {"allowed.example"}  # the allowlisted host only; evil.example never
    assert resp.status_code == 412
    assert "redirect (302) not followed" in " ".join(i["diagnostics"] for i in resp.get_json()["issue"])


def test_next_link_off_the_allowlist_not_followed(app_factory, keys):
    app = app_factory()
    page = {"resourceType": "Bundle", "type": "searchset", "entry": [],
            "link": [{"relation": "next", "url": "https://evil.example/fhir/Observation?page=2"}]}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(re.compile(r"https://allowed\.example/fhir/Observation\?.*"), json=page)
        resp = invoke(app, keys, ALLOWED, prefetch_keys=("patient",) + REQUIRED)
        hosts = {c.request.url.split("/")[2] for c in rsps.calls}
    assert hosts == {"allowed.example"}
    assert resp.status_code == 200
    assert topics(resp) == ["data-unavailable", "electrolyte-review"]


# ------------------------------------------------------------------ a real socket server counting connections

class CountingServer:
    """Accepts TCP connections on a random loopback port, counts them and closes them at once."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture()
def counting_server():
    server = CountingServer()
    yield server
    server.close()


def test_loopback_server_not_allowlisted_gets_no_connection(app_factory, keys, counting_server):
    app = app_factory(ALLOWED)
    resp = invoke(app, keys, f"http://127.0.0.1:{counting_server.port}/fhir", prefetch_keys=())
    assert resp.status_code == 412
    assert counting_server.connections == 0


def test_loopback_server_allowlisted_is_contacted(app_factory, keys, counting_server):
    """Control: allowlist that loopback server and the same request does connect."""
    app = app_factory(f"http://127.0.0.1:{counting_server.port}/fhir")
    resp = invoke(app, keys, f"http://127.0.0.1:{counting_server.port}/fhir", prefetch_keys=())
    assert resp.status_code == 412  # the server hangs up, so the data stays unavailable
    assert counting_server.connections >= 1


# ------------------------------------------------------------------ URL normalisation (unit)

@pytest.mark.parametrize("url", [
    "https://allowed.example/fhir",
    "https://allowed.example/fhir/",
    "https://ALLOWED.Example/fhir/Patient/1",
    "HTTPS://allowed.example./fhir/Observation?patient=1&date=ge2026-01-01",
    "https://allowed.example:443/fhir/Patient/1",
])
def test_allowlist_accepts_equivalent_spellings(url):
    Allowlist([ALLOWED]).check(url)


@pytest.mark.parametrize("url", NEVER_CONTACTED + [
    "https://allowed.example:0/fhir",
    "https://allowed.example:/fhir",
    "https://allowed.example:99999/fhir",
    "https://allowed%2Eexample/fhir",
    "https://allowed..example/fhir",
    "https://allowed.example/fhir/%2E%2E/admin",
    "https://allowed.example/fhir/..",
    "https://allowed.example/fhir/./Patient",
    "https://allowed.example/fhir%2F..%2Fadmin",
    "https://allowed.example/fhir\\..\\admin",
    "https://allowed.example/fhir/Patient 1",
    "https://allowed.example/fhir/Patient/1\r\nHost: evil.example",
    "https://alloẘed.example/fhir",
    "https://[fe80::1%25eth0]/fhir",
    "ftp://allowed.example/fhir",
    "file:///etc/passwd",
    "//allowed.example/fhir",
    "",
])
def test_allowlist_refuses(url):
    with pytest.raises(UrlRefused):
        Allowlist([ALLOWED]).check(url)


def test_ipv6_literals_are_compared_in_canonical_form():
    allow = Allowlist(["http://[::1]:9000/fhir"])
    allow.check("http://[0:0:0:0:0:0:0:1]:9000/fhir/Patient/1")
    with pytest.raises(UrlRefused):
        allow.check("http://[::2]:9000/fhir/Patient/1")
    assert parse_base("https://[2001:DB8::0001]/x").host == "2001:db8::1"


def test_allowlist_ignores_unsafe_entries(caplog):
    with caplog.at_level(logging.WARNING):
        allow = Allowlist(["http://fhir.example.org", "https://user:pw@fhir.example.org", "http://localhost:8080"])
    assert [(b.scheme, b.host) for b in allow.bases] == [("http", "localhost")]
    assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == 2
