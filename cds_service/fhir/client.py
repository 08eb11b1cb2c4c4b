"""FHIR HTTP client: pooled session, Bearer auth, allowlist, deadline, paging caps, fault handling.

Every failure becomes a ``FhirError`` with a short machine-readable ``kind``; nothing
here raises anything else to the caller. Each call is bounded as a whole (not only per
socket read): a watchdog shuts the call's socket when its time is up, so a server that
trickles bytes cannot keep it alive. The fetch wave sends all of a hook's queries at
once and returns when the overall deadline (less a small reserve for building the cards)
passes, whatever is still in flight.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import re
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..timing import Deadline
from .urls import Allowlist, UrlRefused

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
_CHUNK = 64 * 1024
# One FHIR response may not exceed this. 5,000 rich Observations are about 10 MB; anything far larger is not an
# answer to our narrowed queries, and parsing it would cost more time and memory than the deadline allows.
MAX_RESPONSE_BYTES = 24 * 1024 * 1024
# The part of the overall budget kept back from the fetch wave for building the snapshot, rules and rendering.
RESERVE_FRACTION = 0.05
RESERVE_MAX_S = 0.1


# ---------------------------------------------------------------------- hard stop for in-flight calls
#
# requests' timeouts apply to each socket operation, not to the call: a server that sends a byte now and then
# (headers or body) keeps a call alive for ever. Every call therefore registers the socket it uses, and a
# watchdog shuts that socket down when the call's time is up, which makes any blocked read return at once.

_current = threading.local()


def _register_socket(sock) -> None:
    call = getattr(_current, "call", None)
    if call is not None and sock is not None:
        call.attach(sock)


class _TrackedHTTPConnection(HTTPConnection):
    def request(self, *args, **kwargs):  # the socket exists (connected or reused) once the request is sent
        try:
            return super().request(*args, **kwargs)
        finally:
            _register_socket(getattr(self, "sock", None))


class _TrackedHTTPSConnection(HTTPSConnection):
    def request(self, *args, **kwargs):
        try:
            return super().request(*args, **kwargs)
        finally:
            _register_socket(getattr(self, "sock", None))


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


class _Call:
    """One HTTP call's socket, and whether the watchdog cut it off."""

    def __init__(self):
        self._lock = threading.Lock()
        self.sock = None
        self.killed = False

    def attach(self, sock) -> None:
        with self._lock:
            self.sock = sock
            if self.killed:
                _shutdown(sock)

    def kill(self) -> None:
        with self._lock:
            self.killed = True
            if self.sock is not None:
                _shutdown(self.sock)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """One daemon thread running callbacks at given monotonic times (cheaper than a Timer thread per call)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, at: float, callback: Callable[[], None]) -> int:
        with self._cond:
            token = next(self._ids)
            heapq.heappush(self._heap, (at, token, callback))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fhir-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:
                # the watchdog sleeps until the earliest time it holds: it need only wake when that changes (a
                # wave of queries with the same budget wakes it once, not once per query)
                self._cond.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._cancelled.add(token)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, token, callback = self._heap[0]
                wait_s = at - time.monotonic()
                if wait_s > 0:
                    self._cond.wait(wait_s)
                    continue
                heapq.heappop(self._heap)
                if token in self._cancelled:
                    self._cancelled.discard(token)
                    continue
            try:
                callback()
            except Exception:  # pragma: no cover - a callback only shuts a socket down
                log.exception("watchdog callback failed")


_WATCHDOG = Watchdog()


class FhirError(Exception):
    """kind: refused | connect | timeout | deadline | http-4xx | unauthorized | server | not-json |
    not-bundle | operation-outcome | paging-loop | too-large"""

    def __init__(self, kind: str, detail: str, status: int | None = None):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status


@dataclass
class FetchResult:
    key: str
    url: str
    data: dict | None = None  # a Bundle (paged results merged) or a single resource
    error: FhirError | None = None
    pages: int = 0
    ms: float = 0.0
    truncated: bool = False


@dataclass
class ClientSettings:
    timeout_ms: int = 1500
    max_pages: int = 5
    max_entries: int = 5000
    retries_5xx: int = 1
    observer: Callable[[str], None] | None = None  # called with each call's outcome kind ("ok", "timeout", ...)


class FhirClient:
    """One per app. Thread-safe; the session's pool is shared by the fetch wave."""

    def __init__(self, allowlist: Allowlist, settings: ClientSettings, session: requests.Session | None = None,
                 max_workers: int = 32):
        self.allowlist = allowlist
        self.settings = settings
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
        adapter.poolmanager.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # never route PHI through an ambient proxy
        self._default_headers = {k: str(v) for k, v in self.session.headers.items()}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fhir-fetch")
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ single call
    def get_json(self, url: str, token: str | None, deadline: Deadline) -> dict:
        try:
            self.allowlist.check(url)
        except UrlRefused as exc:
            self._observe("refused")
            raise FhirError("refused", str(exc)) from None
        attempts = 1 + max(0, self.settings.retries_5xx)
        for attempt in range(attempts):
            try:
                result = self._get_once(url, token, deadline)
                self._observe("ok")
                return result
            except FhirError as exc:
                self._observe(exc.kind)
                retryable = exc.kind == "server" and attempt + 1 < attempts
                # retry only when at least half a timeout slice of budget is left
                if not retryable or deadline.remaining() < self.settings.timeout_ms / 2000.0:
                    raise
                log.info("FHIR %s; retrying once", exc.kind)
        raise FhirError("server", "retries exhausted")  # pragma: no cover - loop always returns or raises

    def _get_once(self, url: str, token: str | None, deadline: Deadline) -> dict:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise FhirError("deadline", "no time left for the FHIR call")
        timeout = min(self.settings.timeout_ms / 1000.0, remaining)
        try:
            return self._get_within(url, token, timeout)
        except FhirError as exc:
            if exc.kind == "timeout" and timeout < self.settings.timeout_ms / 1000.0:
                # the overall budget, not the per-call timeout, is what ran out
                raise FhirError("deadline", "the time budget ran out during the FHIR call") from None
            raise

    def _get_within(self, url: str, token: str | None, timeout: float) -> dict:
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        call = _Call()
        _current.call = call
        alarm = _WATCHDOG.arm(started + timeout, call.kill)
        try:
            try:
                resp = self.session.send(self._prepare(url, headers), timeout=(min(timeout, 3.0), timeout),
                                         allow_redirects=False, stream=True)
            except requests.exceptions.ConnectTimeout:
                raise FhirError("timeout", "connect timed out") from None
            except requests.exceptions.ReadTimeout:
                raise FhirError("timeout", "read timed out") from None
            except requests.exceptions.RequestException as exc:
                if call.killed:
                    raise FhirError("timeout", "no complete answer within the timeout") from None
                raise FhirError("connect", type(exc).__name__) from None
            try:
                status = resp.status_code
                if 300 <= status < 400:
                    raise FhirError("refused", f"redirect ({status}) not followed", status)
                body = self._read_body(resp, started, timeout, call)
            finally:
                resp.close()
        finally:
            _WATCHDOG.disarm(alarm)
            _current.call = None
        if status in (401, 403):
            raise FhirError("unauthorized", f"FHIR server answered {status}", status)
        if status >= 500:
            raise FhirError("server", f"FHIR server answered {status}", status)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise FhirError("not-json", f"response ({status}) is not JSON", status) from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FhirError("not-bundle", "response is not a FHIR resource", status)
        if data["resourceType"] == "OperationOutcome":
            # the server's words can end up in a 412 body: never let them echo the access token back
            raise FhirError("operation-outcome", _without(_outcome_text(data), token), status)
        if status >= 400:
            raise FhirError("http-4xx", f"FHIR server answered {status}", status)
        return data

    def _prepare(self, url: str, headers: Mapping[str, str]) -> requests.PreparedRequest:
        """The GET that ``session.get`` would send, without its per-call work that does not apply here.

        ``Session.prepare_request`` re-parses the URL with urllib3 one character at a time (about 0.3 ms for a
        1,000-character query of the prefetch templates, and a fetch wave sends about 4,000 characters), merges
        environment settings (off: ``trust_env`` is False) and the session's cookie jar (a FHIR server's cookies
        are not sent back: one session serves every patient and EHR). Every URL reaching this point has passed
        the allowlist (http or https, ASCII only, no userinfo, no whitespace); ``wire_url`` gives the form
        ``prepare_url`` would, in one requote for the URLs built from the templates (a test compares them).
        """
        prep = requests.PreparedRequest()
        prep.method = "GET"
        prep.url = wire_url(url)
        prep.headers = CaseInsensitiveDict({**self._default_headers, **headers})
        prep.body = None
        prep.hooks = default_hooks()
        # an empty jar: read only when a redirect is looked at (redirects are never followed)
        prep._cookies = RequestsCookieJar()  # type: ignore[attr-defined]
        return prep

    def _read_body(self, resp: requests.Response, started: float, timeout: float, call: _Call) -> bytes:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            raise FhirError("too-large", "response over the size cap")
        chunks = []
        size = 0
        try:
            for chunk in resp.iter_content(_CHUNK):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise FhirError("too-large", "response over the size cap")
                if time.monotonic() - started > timeout:
                    raise FhirError("timeout", "response trickled past the timeout")
        except requests.exceptions.RequestException:
            raise FhirError("timeout", "read failed or timed out") from None
        if call.killed or time.monotonic() - started > timeout:
            # the watchdog cut the socket: what was read is incomplete
            raise FhirError("timeout", "response trickled past the timeout")
        return b"".join(chunks)

    # ------------------------------------------------------------------ paging
    def fetch(self, key: str, url: str, token: str | None, deadline: Deadline) -> FetchResult:
        t0 = time.perf_counter()
        result = FetchResult(key=key, url=url)
        try:
            first = self.get_json(url, token, deadline)
            result.pages = 1
            expected = _expected_type(url)
            if first.get("resourceType") != "Bundle":
                if expected == "Bundle":
                    raise FhirError("not-bundle", f"a search answered with a {first['resourceType'][:40]}")
                if expected is not None and first["resourceType"] != expected:
                    raise FhirError("not-bundle", f"a read of {expected} answered with a {first['resourceType'][:40]}")
                result.data = first
                return result
            entries = _entries(first)
            seen = {url}
            nxt = _next_link(first)
            while nxt:
                nxt = urljoin(url, nxt)
                if nxt in seen:
                    raise FhirError("paging-loop", "a next link repeats")
                if result.pages >= self.settings.max_pages or len(entries) >= self.settings.max_entries:
                    result.truncated = True
                    break
                seen.add(nxt)
                page = self.get_json(nxt, token, deadline)
                if page.get("resourceType") != "Bundle":
                    raise FhirError("not-bundle", "a next page is not a Bundle")
                entries.extend(_entries(page))
                result.pages += 1
                nxt = _next_link(page)
            if len(entries) > self.settings.max_entries:
                entries = entries[: self.settings.max_entries]
                result.truncated = True
            merged = {k: v for k, v in first.items() if k not in ("entry", "link")}
            merged["entry"] = entries
            result.data = merged
        except FhirError as exc:
            result.error = exc
        finally:
            result.ms = (time.perf_counter() - t0) * 1000.0
        return result

    def fetch_wave(self, urls: Mapping[str, str], token: str | None, deadline: Deadline) -> dict[str, FetchResult]:
        """All queries at once; whatever is not back when the deadline passes is reported as 'deadline'.

        The wave ends a little before the overall deadline (``RESERVE_FRACTION`` of the budget, at most
        ``RESERVE_MAX_S``), so that the cards can still be built and sent inside the budget.
        """
        deadline = deadline.reserve(min(RESERVE_MAX_S, deadline.budget * RESERVE_FRACTION))
        futures: dict[Future, tuple[str, str]] = {
            self._pool.submit(self.fetch, key, url, token, deadline): (key, url) for key, url in urls.items()
        }
        results: dict[str, FetchResult] = {}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=deadline.remaining(), return_when=FIRST_COMPLETED)
            for fut in done:
                res = fut.result()
                results[res.key] = res
            if not done and deadline.expired():
                break
        for fut in pending:
            key, url = futures[fut]
            fut.cancel()
            results[key] = FetchResult(key=key, url=url, error=FhirError("deadline", "not back before the deadline"))
        return results

    def _observe(self, kind: str) -> None:
        if self.settings.observer is not None:
            try:
                self.settings.observer(kind)
            except Exception:  # metrics must never break a call
                log.exception("FHIR call observer failed")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()


# A URL already in the form requests sends: lower-case scheme and host, a path, and a query of characters that
# requests and urllib3 leave as they are (or both encode alike: "|"), with upper-case escapes only.
_PLAIN_URL = re.compile(r"https?://[a-z0-9.\-]+(?::[0-9]+)?/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*"
                        r"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?|]|%[0-9A-F]{2})+)?")


def wire_url(url: str) -> str:
    """``url`` exactly as requests' ``prepare_url`` sends it (see ``FhirClient._prepare``; a test compares them).

    The URLs the service builds from its templates have the plain form: for them the answer is one C-speed
    requote. Anything else goes through ``prepare_url`` itself.
    """
    if _PLAIN_URL.fullmatch(url) and "/." not in url.partition("?")[0]:  # dot segments: urllib3 removes them
        return requote_uri(url)
    prep = requests.PreparedRequest()
    prep.prepare_url(url, None)
    return str(prep.url)


def _expected_type(url: str) -> str | None:
    """'Bundle' for a search (a query string), the resource type for a read (.../Type/id), else None."""
    parts = urlsplit(url)
    if parts.query:
        return "Bundle"
    segments = [seg for seg in parts.path.split("/") if seg]
    if len(segments) >= 2 and segments[-2].isalpha() and segments[-2][:1].isupper():
        return segments[-2]
    return None


def _entries(bundle: dict) -> list:
    entries = bundle.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise FhirError("not-bundle", "Bundle.entry is not a list")
    return entries


def _next_link(bundle: dict) -> str | None:
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _without(text: str, secret: str | None) -> str:
    return text.replace(secret, "[redacted]") if secret and len(secret) >= 4 else text


def _outcome_text(outcome: dict) -> str:
    texts = []
    for issue in outcome.get("issue") or []:
        if isinstance(issue, dict):
            texts.append(str(issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")))
    return "; ".join(texts)[:300] or "OperationOutcome"
