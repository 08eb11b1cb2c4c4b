"""Misbehaving FHIR servers on a loopback socket, for the fault tests and the benchmarks.

A real listening socket (not a mocked transport), so that the client's timeouts, its
watchdog and its connection pool are exercised the way a real server would exercise
them. The behaviour of each request is decided by a handler:

    handler(request: StubRequest) -> Reply | None

``None`` means "accept, read the request, never answer" (a hung server). A Reply can
wait before answering, trickle its bytes slowly, stop halfway, or send anything at all.
Connections are kept alive (HTTP/1.1) unless the reply says otherwise.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

_REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class StubRequest:
    method: str
    target: str  # path and query as sent
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list = b""
    content_type: str = "application/fhir+json"
    delay: float = 0.0  # seconds before anything is sent
    trickle_interval: float = 0.0  # > 0: send one byte every interval (headers and body)
    trickle_from: int = 0  # bytes sent at once before the trickle starts (0: trickle the headers too)
    stop_after: int | None = None  # close the connection after this many bytes
    content_length: bool = True
    extra_headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        body = self.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        head = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}",
                f"Content-Type: {self.content_type}"]
        if self.content_length:
            head.append(f"Content-Length: {len(body)}")
        else:
            head.append("Connection: close")
        head += [f"{k}: {v}" for k, v in self.extra_headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Handler = Callable[[StubRequest], "Reply | None"]


class StubServer:
    """A threaded loopback HTTP/1.1 server driven by a handler. Use as a context manager."""

    def __init__(self, handler: Handler, backlog: int = 256):
        self.handler = handler
        self.requests: list[StubRequest] = []
        self.open_connections = 0
        self.trickling = 0  # replies currently being trickled
        self.abandoned = 0  # unanswered (hung) requests whose client gave up and closed the connection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(backlog)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, name="fhir-stub", daemon=True)

    def __enter__(self) -> "StubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "StubServer":
        return self.__enter__()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.close()
            except OSError:
                pass
        self._sock.close()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    # ------------------------------------------------------------------ internals
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self._conns.append(conn)
                self.open_connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.5)
        buffer = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except socket.timeout:
                        if self._stop.is_set():
                            return
                        continue
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = (lines[0].split(" ") + ["", "", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                request = StubRequest(method, target, headers)
                with self._lock:
                    self.requests.append(request)
                reply = self.handler(request)
                if reply is None:  # hung: hold the connection, never answer, until the client goes away
                    self._hold(conn)
                    return
                if not self._send(conn, reply) or not reply.content_length:
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self.open_connections -= 1

    def _hold(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                if not conn.recv(65536):
                    with self._lock:
                        self.abandoned += 1
                    return
            except socket.timeout:
                continue
            except OSError:
                with self._lock:
                    self.abandoned += 1
                return

    def _send(self, conn: socket.socket, reply: Reply) -> bool:
        if reply.delay and self._stop.wait(reply.delay):
            return False
        data = reply.payload()
        if reply.stop_after is not None:
            data = data[: reply.stop_after]
        if reply.trickle_interval <= 0:
            conn.sendall(data)
            return reply.stop_after is None
        conn.sendall(data[: reply.trickle_from])
        with self._lock:
            self.trickling += 1
        try:
            for i in range(reply.trickle_from, len(data)):
                if self._stop.wait(reply.trickle_interval):
                    return False
                conn.sendall(data[i:i + 1])
        except OSError:
            return False
        finally:
            with self._lock:
                self.trickling -= 1
        return reply.stop_after is None


def closed_port() -> int:
    """A loopback port with nothing listening on it (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def searchset(resources: list[dict], next_url: str | None = None) -> dict:
    bundle = {"resourceType": "Bundle", "type": "searchset",
              "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def prefetch_router(prefetch: dict, delay: float = 0.0) -> Handler:
    """A handler answering the service's queries from a prefetch dict (key -> Bundle/resource), like an EHR.

    The key is recognised from the resource type and, for Observations, the code list.
    """
    symptoms_codes = {"55300003", "45352006", "R25.2"}

    def key_for(request: StubRequest) -> str | None:
        parts = [p for p in request.path.split("/") if p]
        rtype = parts[1] if len(parts) > 1 else ""
        if rtype == "Patient":
            return "patient"
        if rtype == "Condition":
            return "conditions"
        if rtype == "Procedure":
            return "procedures"
        if rtype == "Encounter":
            return "encounters"
        if rtype == "MedicationRequest":
            return "medications"
        if rtype == "Observation":
            code = request.query.get("code", "")
            if "5574-9" in code and "," not in code:
                return "aluminum"
            if "8867-4" in code and "," not in code:
                return "heartRate"
            if any(c in code for c in symptoms_codes):
                return "symptoms"
            if "29463-7" in code:
                return "weights"
            return "labs"
        return None

    encoded = {k: json.dumps(v).encode() for k, v in prefetch.items() if v is not None}  # serialise once

    def handle(request: StubRequest) -> Reply:
        key = key_for(request)
        if key is None or key not in encoded:
            return Reply(404, {"resourceType": "OperationOutcome",
                               "issue": [{"severity": "error", "code": "not-found"}]}, delay=delay)
        return Reply(200, encoded[key], delay=delay)

    return handle


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def main(argv=None) -> int:
    """Serve a prefetch file (key -> Bundle/resource JSON) as a FHIR stub in its own process.

    Prints the base URL on the first line of stdout, then serves until terminated.
    """
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("prefetch", help="JSON file: {key: Bundle or resource}")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--hang", action="store_true", help="accept and never answer")
    args = parser.parse_args(argv)
    if args.hang:
        handler: Handler = lambda request: None  # noqa: E731
    else:
        with open(args.prefetch, encoding="utf-8") as fh:
            handler = prefetch_router(json.load(fh), delay=args.delay_ms / 1000.0)
    server = StubServer(handler, backlog=1024).start()
    print(server.base_url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
