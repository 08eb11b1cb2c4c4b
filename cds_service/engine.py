"""The decision engine: card files, FHIR client, look-back and deadline behind one call.

``Engine.call(service, body, timings)`` answers one hook request (``hooks.invoke``) with the card
files in use, the FHIR client for fetch mode, the configured look-back and time budget. The web
edge (``app.py``) and the preview page (``preview.py``, prefetch only) both call it, so the two
never assemble the pipeline differently.

Card files are read at start-up; a folder the linter refuses stops the start. With the preview on
(``CDS_PREVIEW=true``, for authors) a changed card folder is read again on the next call: a folder
the linter refuses then keeps the last good cards serving, and ``CardSource.problem`` holds the
linter's message for the preview page to show.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from .clinical.rules import load_all
from .fhir.client import ClientSettings, FhirClient
from .fhir.urls import Allowlist
from .hooks.cards import CardFileError, CardLibrary
from .hooks.invoke import HookOutcome, invoke
from .timing import Deadline, Timings

log = logging.getLogger(__name__)


def _load(folder: Path) -> CardLibrary:
    library = CardLibrary(folder)
    library.require(load_all().keys())
    return library


class CardSource:
    """The card library in use; with ``reload``, read again when a card file changes (last good one kept)."""

    def __init__(self, folder: str | Path, reload: bool = False):
        self.folder = Path(folder)
        self.reload = reload
        self.library = _load(self.folder)  # at start-up a refused folder is fatal
        self.problem: str | None = None
        self._stamp = self._fingerprint()
        self._lock = threading.Lock()

    def _fingerprint(self) -> tuple:
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                                for p in [*self.folder.glob("*.yaml"), *self.folder.glob("*.yml")]))
        except OSError:
            return ()

    def current(self) -> CardLibrary:
        if self.reload:
            self.refresh()
        return self.library

    def refresh(self) -> None:
        stamp = self._fingerprint()
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                library = _load(self.folder)
            except CardFileError as exc:
                self.problem = str(exc)
                log.error("edited card files refused; the last good ones keep serving: %s", exc)
                return
            self.library, self.problem = library, None
            log.info("card files reloaded from %s", self.folder)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _nowhere(_url: str) -> bool:
    return False


class Engine:
    """Owns the card files, the FHIR client, the look-back and the deadline; answers hook calls."""

    def __init__(self, cfg: Mapping[str, Any], fhir_observer: Callable[[str], None] | None = None):
        self.cards = CardSource(cfg["CDS_CARDS_DIR"], reload=bool(cfg["CDS_PREVIEW"]))
        self.allowlist = Allowlist(cfg["CDS_ALLOWED_FHIR_SERVERS"])
        self.fhir = FhirClient(self.allowlist, ClientSettings(
            timeout_ms=cfg["CDS_FHIR_TIMEOUT_MS"], max_pages=cfg["CDS_FHIR_MAX_PAGES"],
            max_entries=cfg["CDS_FHIR_MAX_ENTRIES"], observer=fhir_observer))
        self.lookback = timedelta(days=cfg["CDS_LOOKBACK_DAYS"])
        self.deadline_ms: int = cfg["CDS_DEADLINE_MS"]
        self.strict = bool(cfg["CDS_STRICT_RULES"])
        self.now: Callable[[], datetime] = cfg.get("NOW_FN") or _utcnow

    def call(self, service: Any, body: Any, timings: Timings, *, fetch: bool = True,
             now: datetime | None = None, smart_launch_url: str | None = None) -> HookOutcome:
        """Answer one hook request; ``fetch=False`` uses the prefetch only and never contacts a FHIR server.

        Raises HookError for anything the client got wrong (and RuleError in strict mode)."""
        fetcher = None
        allowed: Callable[[str], bool] = _nowhere
        if fetch:
            deadline = Deadline(self.deadline_ms)
            allowed = self.allowlist.allows

            def fetcher(urls: Any, token: Any) -> Any:
                return self.fhir.fetch_wave(urls, token, deadline)
        return invoke(service, body, cards=self.cards.current(), now=now or self.now(), lookback=self.lookback,
                      fetcher=fetcher, allowed=allowed, timings=timings, strict=self.strict,
                      smart_launch_url=smart_launch_url)

    def close(self) -> None:
        self.fhir.close()
