"""nginx as a buffering reverse proxy in front of gunicorn (what `cds-service serve` runs by default).

Why: gunicorn's gthread workers give each connection a thread until its request has arrived, so a
dozen clients trickling header lines occupy every thread and the service stops answering. nginx reads
every request (headers and body) on its event loop, with read timeouts, before it opens a connection to
gunicorn; gunicorn then only ever sees complete requests, over a unix socket in a private folder.

nginx also answers what it refuses itself (malformed or oversized requests, timeouts, gunicorn down) with
FHIR OperationOutcome JSON rather than its HTML pages. Its limits sit at or above the service's own, so the
service's documented limits are the ones enforced: a body over ``CDS_MAX_BODY_BYTES`` gets 413 from nginx,
a header line up to 32 KB (a 16 KB token with room to spare) reaches the app, which refuses tokens over
16 KB with 401; a longer header line gets 431.

nginx runs unprivileged: its pid file, temporary folders and configuration live in a private runtime folder
(``CDS_RUNTIME_DIR``, or a new folder under the system temporary folder), it logs errors to stderr and
writes no access log (the app logs each call).
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
HEADER_LINE_BYTES = 32 * 1024  # one header line must fit in one nginx buffer: Authorization + 16 KB token fits
HEADER_BUFFERS = 4  # so at most 128 KB of request line and headers in all
CLIENT_TIMEOUT_S = 10  # between two reads of the headers or the body, and for sending the answer
UPSTREAM_READ_TIMEOUT_S = 35  # above gunicorn's 30 s worker timeout; hook calls end at CDS_DEADLINE_MS anyway

# status -> (OperationOutcome issue code, diagnostics); the bodies nginx returns for what it refuses itself
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid", "Malformed HTTP request."),
    404: ("not-found", "No such endpoint."),
    408: ("timeout", "The request was not received in time."),
    413: ("too-costly", "The request body is larger than {max_body} bytes."),
    414: ("too-costly", "The request line is longer than {line} bytes."),
    431: ("too-costly", "A request header line is longer than {line} bytes, or the headers are too large "
                        "(bearer tokens may be up to 16 KB)."),
    500: ("exception", "Internal error in the front proxy."),
    502: ("transient", "The service is not reachable; please retry."),
    504: ("timeout", "The service did not answer in time; please retry."),
}


class ProxyError(Exception):
    """nginx is missing or refused its configuration."""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((c for c in NGINX_CANDIDATES if os.access(c, os.X_OK)), None)


def outcome_json(code: str, diagnostics: str) -> str:
    return json.dumps({"resourceType": "OperationOutcome",
                       "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]},
                      separators=(",", ":"))


@dataclass
class ProxySettings:
    host: str
    port: int
    max_body_bytes: int
    runtime: Path
    worker_processes: int = 1

    @property
    def upstream_socket(self) -> Path:
        return self.runtime / "gunicorn.sock"

    @property
    def config_path(self) -> Path:
        return self.runtime / "nginx.conf"


def _nginx_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _connections() -> tuple[int, int]:
    """(worker_connections, worker_rlimit_nofile): up to 4096 connections, within the hard open-file limit
    (an unprivileged nginx may raise its soft limit only that far)."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = hard if hard != resource.RLIM_INFINITY else 1 << 20
    connections = max(256, min(4096, hard - 64))
    return connections, min(hard, connections + 64)


def render_config(s: ProxySettings) -> str:
    connections, nofile = _connections()
    listen = f"[{s.host}]:{s.port}" if ":" in s.host else f"{s.host}:{s.port}"
    rt = s.runtime
    error_pages, error_locations = [], []
    for status, (code, text) in ERRORS.items():
        body = outcome_json(code, text.format(max_body=s.max_body_bytes, line=HEADER_LINE_BYTES))
        # a URI, not a named location: nginx cannot redirect a request whose request line it could not read
        # to a named location ("empty URI")
        error_pages.append(f"        error_page {status} /.cds-error/{status};")
        error_locations.append(
            f"        location = /.cds-error/{status} {{\n"
            f"            internal;\n"
            f"            default_type application/fhir+json;\n"
            f"            add_header Cache-Control no-store always;\n"
            f"            return {status} {_nginx_string(body)};\n"
            f"        }}")
    # nginx reports "request header too large" as its own 494; clients get the standard 431
    error_pages.append("        error_page 494 =431 /.cds-error/431;")
    return f"""# Generated by `cds-service serve` for this run; edits are lost. See cds_service/proxy.py.
daemon off;
master_process on;
worker_processes {s.worker_processes};
worker_rlimit_nofile {nofile};
pid {rt}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections {connections};
}}

http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {rt}/client_body;
    proxy_temp_path {rt}/proxy;
    fastcgi_temp_path {rt}/fastcgi;
    uwsgi_temp_path {rt}/uwsgi;
    scgi_temp_path {rt}/scgi;

    # slow clients: every read of headers or body must make progress within the timeout
    client_header_timeout {CLIENT_TIMEOUT_S}s;
    client_body_timeout {CLIENT_TIMEOUT_S}s;
    send_timeout {CLIENT_TIMEOUT_S}s;
    keepalive_timeout 5s;
    reset_timedout_connection on;

    client_header_buffer_size 4k;
    large_client_header_buffers {HEADER_BUFFERS} {HEADER_LINE_BYTES // 1024}k;
    client_max_body_size {s.max_body_bytes};
    client_body_buffer_size 1m;

    map $http_host $upstream_host {{
        ""      $host;
        default $http_host;
    }}

    upstream cds_service {{
        server unix:{s.upstream_socket};
    }}

    server {{
        listen {listen} backlog=4096;

        location / {{
            proxy_pass http://cds_service;
            proxy_request_buffering on;   # the whole body is read here before gunicorn sees the request
            proxy_buffering on;           # and the answer is taken off gunicorn's hands at once
            proxy_set_header Host $upstream_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 5s;
            proxy_send_timeout {CLIENT_TIMEOUT_S}s;
            proxy_read_timeout {UPSTREAM_READ_TIMEOUT_S}s;
            proxy_next_upstream off;      # never send a POST twice
        }}

{chr(10).join(error_pages)}

{chr(10).join(error_locations)}
    }}
}}
"""


def make_runtime_dir() -> Path:
    """A private folder for the socket, nginx's pid file, temporary files and configuration."""
    base = os.environ.get("CDS_RUNTIME_DIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="cds-serve-", dir=base))
    else:
        path = Path(tempfile.mkdtemp(prefix="cds-serve-"))
    if os.geteuid() == 0:
        # nginx's master runs as root but its workers as nobody: they must reach the socket and the temporary
        # folders (which nginx creates and hands to them). No one can list the folder.
        path.chmod(0o711)
    return path


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: nginx goes when the service's master goes
    except (OSError, AttributeError):
        pass


class NginxProxy:
    def __init__(self, settings: ProxySettings, binary: str | None = None):
        self.settings = settings
        self.binary = binary or find_nginx()
        if not self.binary:
            raise ProxyError("nginx is not installed (Debian: apt-get install nginx, or nginx-light). "
                             "Install it, or run `cds-service serve --no-proxy` (development only: no protection "
                             "against slow clients).")
        self.process: subprocess.Popen | None = None

    def _command(self, *extra: str) -> list[str]:
        s = self.settings
        return [str(self.binary), "-p", f"{s.runtime}/", "-c", str(s.config_path), "-e", "stderr", *extra]

    def write_and_check(self) -> None:
        """Write the configuration and have nginx check it (syntax, listen address) before anything forks."""
        self.settings.config_path.write_text(render_config(self.settings))
        proc = subprocess.run(self._command("-t", "-q"), capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise ProxyError(f"nginx refused its configuration: {proc.stderr.strip()[-2000:]}")

    def start(self) -> int:
        # its own process group: nginx's workers outlive a master that is killed outright, and the group
        # lets us end them too (see exited)
        self.process = subprocess.Popen(self._command(), preexec_fn=_die_with_parent, process_group=0)
        return self.process.pid

    def _kill_group(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.process
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._kill_group()
                    proc.wait(timeout=5)
        except ChildProcessError:
            pass  # already reaped by gunicorn's arbiter
        self._kill_group()  # any worker left behind by a master that died first

    def exited(self) -> bool:
        """True once nginx has exited (reaping it if it has)."""
        if self.process is None:
            return False
        try:
            pid, _ = os.waitpid(self.process.pid, os.WNOHANG)
        except ChildProcessError:
            pid = self.process.pid  # reaped already (by the arbiter's waitpid(-1))
        if pid:
            self.process.returncode = -1
            self._kill_group()  # its workers would otherwise keep the port, answering 502
            return True
        return False

    def cleanup(self) -> None:
        shutil.rmtree(self.settings.runtime, ignore_errors=True)
