"""Slow clients against a loopback service, with probes timing ordinary requests meanwhile.

For the slow-client test and benchmark. Every slow client keeps one connection open and sends its
request a byte at a time, half of them trickling header lines (a request whose headers never end),
half trickling a body (complete headers announcing a body that arrives a byte at a time). A client
whose connection is closed (by a read timeout) reconnects and starts again, so the pressure lasts
the whole run. Loopback only; every loop is bounded by the run's duration and stops by itself.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import requests

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class ProbeResult:
    sent: int = 0
    answered_in_time: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.answered_in_time / self.sent if self.sent else 0.0


@dataclass
class SlowRun:
    clients: int
    seconds: float
    reconnects: int
    probes: ProbeResult

    def as_dict(self) -> dict:
        lat = sorted(self.probes.latencies_ms)
        return {"slow_clients": self.clients, "seconds": self.seconds, "probes_sent": self.probes.sent,
                "probes_answered_within_limit": self.probes.answered_in_time,
                "share_answered": round(self.probes.share, 4), "slow_client_reconnects": self.reconnects,
                "probe_median_ms": round(lat[len(lat) // 2], 1) if lat else None,
                "probe_max_ms": round(lat[-1], 1) if lat else None, "failures": self.probes.failures[:10]}


class _Trickler:
    def __init__(self, host: str, port: int, index: int, path: str):
        self.host, self.port, self.index, self.path = host, port, index, path
        self.sock: socket.socket | None = None
        self.pending = b""
        self.reconnects = -1

    def _request(self) -> bytes:
        if self.index % 2 == 0:  # headers that never end
            return (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                    + "".join(f"X-Slow-{i}: {'a' * 20}\r\n" for i in range(2000))).encode()
        body = b'{"hook": "patient-view", "padding": "' + b"a" * 100_000 + b'"}'
        head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return head + body

    def step(self, chunk: int) -> None:
        if self.sock is None or not self.pending:
            self._connect()
        assert self.sock is not None  # _connect opened it
        try:
            sent = self.sock.send(self.pending[:chunk])
            self.pending = self.pending[sent:]
        except OSError:
            self._close()

    def _connect(self) -> None:
        self._close()
        self.reconnects += 1
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=2)
            self.sock.setblocking(False)
            self.pending = self._request()
        except OSError:
            self.sock = None
            self.pending = b""

    def _close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None


def run(base_url: str, clients: int, seconds: float, probe_timeout_s: float = 2.0, probe_every_s: float = 0.25,
        trickle_every_s: float = 0.5, chunk: int = 1,
        path: str = "/cds-services/dialysis-electrolytes-patient-view") -> SlowRun:
    """``clients`` slow clients for ``seconds``; meanwhile GET /health and discovery, one after the other,
    each counted as answered when a 200 arrives within ``probe_timeout_s``."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    if parts.hostname not in LOOPBACK:
        raise ValueError("slow-client runs target loopback addresses only")
    host, port = parts.hostname, parts.port or 80
    tricklers = [_Trickler(host, port, i, path) for i in range(clients)]
    stop = threading.Event()
    end = time.monotonic() + seconds

    def trickle():
        while not stop.is_set() and time.monotonic() < end:
            for t in tricklers:
                t.step(chunk)
            stop.wait(trickle_every_s)
        for t in tricklers:
            t._close()

    thread = threading.Thread(target=trickle, name="slow-clients", daemon=True)
    thread.start()
    time.sleep(min(1.0, seconds / 4))  # let every slow client connect first
    probes = ProbeResult()
    targets = ["/health", "/cds-services"]
    session_free = requests.Session  # a new connection per probe: a fresh client, as an EHR would open
    while time.monotonic() < end - probe_timeout_s:
        target = targets[probes.sent % len(targets)]
        probes.sent += 1
        t0 = time.perf_counter()
        try:
            with session_free() as s:
                s.trust_env = False
                resp = s.get(base_url + target, timeout=probe_timeout_s)
            elapsed = (time.perf_counter() - t0) * 1000.0
            if resp.status_code == 200 and elapsed <= probe_timeout_s * 1000.0:
                probes.answered_in_time += 1
                probes.latencies_ms.append(elapsed)
            else:
                probes.failures.append(f"{target}: {resp.status_code} after {elapsed:.0f} ms")
        except requests.RequestException as exc:
            probes.failures.append(f"{target}: {type(exc).__name__}")
        time.sleep(probe_every_s)
    stop.set()
    thread.join(timeout=10)
    return SlowRun(clients, seconds, sum(max(0, t.reconnects) for t in tricklers), probes)
