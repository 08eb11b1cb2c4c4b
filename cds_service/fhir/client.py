"""FHIR HTTP client: pooled session, Bearer auth, allowlist, deadline, paging caps, fault handling.

Every failure becomes a ``FhirError`` with a short machine-readable ``kind``; nothing
here raises anything else to the caller, and no call outlives the deadline by more
than one socket timeout slice.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter

from ..timing import Deadline
from .urls import Allowlist, UrlRefused

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
_CHUNK = 64 * 1024
MAX_RESPONSE_BYTES = 50 * 1024 * 1024


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
                 max_workers: int = 16):
        self.allowlist = allowlist
        self.settings = settings
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # never route PHI through an ambient proxy
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
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        try:
            resp = self.session.get(url, headers=headers, timeout=(min(timeout, 3.0), timeout),
                                    allow_redirects=False, stream=True)
        except requests.exceptions.ConnectTimeout:
            raise FhirError("timeout", "connect timed out") from None
        except requests.exceptions.ReadTimeout:
            raise FhirError("timeout", "read timed out") from None
        except requests.exceptions.ConnectionError as exc:
            raise FhirError("connect", type(exc).__name__) from None
        except requests.exceptions.RequestException as exc:
            raise FhirError("connect", type(exc).__name__) from None
        try:
            status = resp.status_code
            if 300 <= status < 400:
                raise FhirError("refused", f"redirect ({status}) not followed", status)
            body = self._read_body(resp, started, timeout)
        finally:
            resp.close()
        if status in (401, 403):
            raise FhirError("unauthorized", f"FHIR server answered {status}", status)
        if status >= 500:
            raise FhirError("server", f"FHIR server answered {status}", status)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise FhirError("not-json", f"response ({status}) is not JSON", status) from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FhirError("not-bundle", "response is not a FHIR resource", status)
        if data["resourceType"] == "OperationOutcome":
            # the server's words can end up in a 412 body: never let them echo the access token back
            raise FhirError("operation-outcome", _without(_outcome_text(data), token), status)
        if status >= 400:
            raise FhirError("http-4xx", f"FHIR server answered {status}", status)
        return data

    def _read_body(self, resp: requests.Response, started: float, timeout: float) -> bytes:
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
        return b"".join(chunks)

    # ------------------------------------------------------------------ paging
    def fetch(self, key: str, url: str, token: str | None, deadline: Deadline) -> FetchResult:
        t0 = time.perf_counter()
        result = FetchResult(key=key, url=url)
        try:
            first = self.get_json(url, token, deadline)
            result.pages = 1
            if first.get("resourceType") != "Bundle":
                result.data = first
                return result
            entries = list(first.get("entry") or [])
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
                entries.extend(page.get("entry") or [])
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
        """All queries at once; whatever is not back when the deadline passes is reported as 'deadline'."""
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


def _next_link(bundle: dict) -> str | None:
    for link in bundle.get("link") or []:
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
