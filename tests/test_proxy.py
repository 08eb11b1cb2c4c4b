"""`cds-service serve` runs nginx in front of gunicorn: what nginx refuses reaches the client as an OperationOutcome,
and the documented limits (16 KB bearer token, CDS_MAX_BODY_BYTES) are the ones enforced.

Everything goes over raw loopback sockets, so that malformed and oversized requests are sent exactly as written.
Needs nginx (Debian: nginx-light or nginx); skipped without it, a failure under CI=true (.ci/run installs it).
"""
from __future__ import annotations

import json
import os
import socket
import time

import pytest

from cds_service.proxy import HEADER_LINE_BYTES, NginxProxy, ProxyError, ProxySettings, find_nginx, make_runtime_dir
from cds_service.security.auth import MAX_TOKEN_CHARS
from cds_service.devtools.fhir_server import free_port
from support.helpers import topics
from support.live import start_service, stop_service
from support.replay import jwt_env
from support.security import DISCOVERY_URL, SERVICE, SERVICE_URL, Keys, hook_request, mint

PATH = f"/cds-services/{SERVICE}"


def _require_nginx():
    if find_nginx() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("nginx is not installed (required in CI; Debian: apt-get install nginx)")
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")


@pytest.fixture(scope="module")
def keys():
    return Keys()


@pytest.fixture(scope="module")
def service(tmp_path_factory, keys):
    _require_nginx()
    tmp = tmp_path_factory.mktemp("proxy")
    svc = start_service(tmp, {**jwt_env(tmp, keys), "CDS_MAX_BODY_BYTES": "200000"}, workers=1)
    yield svc
    stop_service(svc)


def raw_request(base_url: str, data: bytes, wait: float = 10.0) -> tuple[int, dict, bytes]:
    """Send bytes, read the answer until the server closes; (status, headers, body)."""
    host, port = base_url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(data)
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out:
                    head, _, body = out.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), None)
                    if length is not None and len(body) >= length:
                        break
        except socket.timeout:
            pass
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def assert_outcome(headers: dict, body: bytes, code: str) -> str:
    assert headers["content-type"].startswith("application/fhir+json"), headers
    assert headers.get("cache-control") == "no-store"
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    return outcome["issue"][0]["diagnostics"]


def _get(path: str, *headers: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: cds.example.org\r\nConnection: close\r\n"
            + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode()


def _post(body: bytes, *headers: str) -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: cds.example.org\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode() + body


def test_a_signed_call_goes_through_nginx(service, keys):
    token = mint(keys, jku=None, aud=SERVICE_URL)
    status, headers, body = raw_request(service.base_url, _post(json.dumps(hook_request(with_fhir=False)).encode(),
                                                                f"Authorization: Bearer {token}"))
    assert status == 200, body[:300]
    assert headers["cache-control"] == "no-store"
    assert topics(json.loads(body)) == ["electrolyte-review"]


@pytest.mark.parametrize("name, request_bytes, status, code, words", [
    ("header line over 32 KB", _get("/health", "X-Big: " + "a" * (HEADER_LINE_BYTES + 10)), 431, "too-costly",
     "header line is longer than 32768 bytes"),
    ("headers over 128 KB in all", _get("/health", *[f"X-H{i}: {'a' * 8000}" for i in range(20)]), 431,
     "too-costly", "headers are too large"),
    ("request line over 32 KB", _get("/" + "a" * (HEADER_LINE_BYTES + 10)), 414, "too-costly",
     "request line is longer"),
    ("malformed request line", b"GARBAGE\x01 / HTTP/1.1\r\n\r\n", 400, "invalid", "Malformed HTTP request"),
    ("header without a colon", b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "invalid",
     "Malformed"),
    ("body over CDS_MAX_BODY_BYTES", _post(b"[" + b"1," * 100_001 + b"1]"), 413, "too-costly",
     "larger than 200000 bytes"),
    ("announced body over CDS_MAX_BODY_BYTES", (f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                                "\r\nContent-Length: 900000\r\n\r\n").encode(), 413, "too-costly",
     "larger than 200000 bytes"),
    ("nginx's internal error page asked for directly", _get("/.cds-error/400"), 404, "not-found", "No such endpoint"),
])
def test_what_nginx_refuses_is_an_operation_outcome(service, name, request_bytes, status, code, words):
    got, headers, body = raw_request(service.base_url, request_bytes)
    assert got == status, (name, body[:300])
    assert words in assert_outcome(headers, body, code), name


@pytest.mark.parametrize("size", [MAX_TOKEN_CHARS, MAX_TOKEN_CHARS + 1, 30 * 1024])
def test_tokens_up_to_the_header_limit_reach_the_app_which_enforces_16_kb(service, size):
    """The app's 401 (WWW-Authenticate, its OperationOutcome) proves the request got past nginx and gunicorn."""
    token = "a" * (size - 4) + ".b.c"
    status, headers, body = raw_request(service.base_url, _get("/cds-services", f"Authorization: Bearer {token}"))
    assert status == 401, body[:300]
    assert headers["www-authenticate"].startswith("Bearer ")
    assert assert_outcome(headers, body, "security") == "Authentication required."
    reasons = [json.loads(line)["msg"] for line in service.log_text().splitlines()
               if line.startswith("{") and "auth-refused" in line]
    expected = "too long" if size > MAX_TOKEN_CHARS else "malformed JWT"
    assert expected in reasons[-1]


def test_a_valid_token_padded_with_claims_to_near_16_kb_is_accepted(service, keys):
    token = mint(keys, jku=None, aud=DISCOVERY_URL, padding="p" * 11_000)
    assert 15_000 < len(token) <= MAX_TOKEN_CHARS
    status, _, body = raw_request(service.base_url, _get("/cds-services", f"Authorization: Bearer {token}"))
    assert status == 200, body[:300]


def test_the_app_own_errors_pass_through_untouched(service):
    status, headers, body = raw_request(service.base_url, _get("/no-such-path"))
    assert status == 404 and "No such endpoint" in assert_outcome(headers, body, "not-found")
    status, headers, body = raw_request(service.base_url, _post(b"{"))
    assert status == 401  # authentication first: the app, not nginx, answered


def test_502_from_nginx_when_gunicorn_is_not_there_is_an_operation_outcome(tmp_path):
    _require_nginx()
    proxy = NginxProxy(ProxySettings("127.0.0.1", free_port(), 1000, make_runtime_dir()))
    try:
        proxy.write_and_check()
        proxy.start()
        base = f"http://127.0.0.1:{proxy.settings.port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                status, headers, body = raw_request(base, _get("/health"))
                break
            except (ConnectionRefusedError, IndexError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status == 502
        assert "not reachable" in assert_outcome(headers, body, "transient")
    finally:
        proxy.stop()
        proxy.cleanup()
    assert proxy.process.poll() is not None


def test_missing_nginx_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr("cds_service.proxy.find_nginx", lambda: None)
    with pytest.raises(ProxyError, match="apt-get install nginx.*--no-proxy"):
        NginxProxy(ProxySettings("127.0.0.1", 1, 1000, tmp_path))


def test_gunicorn_alone_lets_a_16_kb_token_reach_the_app(tmp_path, keys):
    """--no-proxy (development): gunicorn's header-line limit is raised above the token limit too."""
    svc = start_service(tmp_path, jwt_env(tmp_path, keys), workers=1, args=("--no-proxy",))
    try:
        token = "a" * (MAX_TOKEN_CHARS - 4) + ".b.c"
        status, headers, body = raw_request(svc.base_url, _get("/cds-services", f"Authorization: Bearer {token}"))
        assert status == 401 and headers["www-authenticate"].startswith("Bearer ")
        assert "server" not in headers or "nginx" not in headers["server"]
    finally:
        stop_service(svc)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it is not)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _nginx_children(pid: int) -> list[int]:
    return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()
            if open(f"/proc/{p}/comm").read().strip() == "nginx"]


def test_the_service_stops_when_nginx_dies(tmp_path, keys):
    """Without its front the service cannot be reached: it exits non-zero so that it is restarted."""
    import signal

    _require_nginx()
    svc = start_service(tmp_path, jwt_env(tmp_path, keys), workers=1)
    try:
        (nginx,) = _nginx_children(svc.process.pid)
        workers = _nginx_children(nginx)
        assert workers
        os.kill(nginx, signal.SIGKILL)
        assert svc.process.wait(timeout=30) != 0
        assert "nginx exited" in svc.log_text()
        deadline = time.monotonic() + 10
        while [w for w in workers if _alive(w)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "nginx workers left behind"
    finally:
        stop_service(svc)


def test_stopping_the_service_stops_nginx(tmp_path, keys):
    _require_nginx()
    svc = start_service(tmp_path, jwt_env(tmp_path, keys), workers=1)
    nginx_pids = _nginx_children(svc.process.pid)
    assert len(nginx_pids) == 1
    stop_service(svc)
    deadline = time.monotonic() + 10
    while _alive(nginx_pids[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(nginx_pids[0])
