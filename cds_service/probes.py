"""Liveness and readiness probes for orchestrators (Kubernetes, Docker health checks, load balancers).

- ``GET /health/live``: the process answers HTTP. No I/O, so a slow database or a bad setting never
  gets a working process restarted.
- ``GET /health/ready``: 200 only while the service can actually answer hook calls; otherwise 503
  with the list of problems, so that traffic is held back and the operator is told why:

  * JWTs required (``CDS_REQUIRE_JWT``) but no trusted issuer (``CDS_TRUSTED_ISSUERS``) or no public
    base URL (``CDS_PUBLIC_BASE_URL``): every call would get 401;
  * card files refused: the folder no longer passes the checks it passed at start-up (or a rule
    has no card file), so a restart or reload would fail;
  * the feedback store does not answer: feedback would be lost and issued cards not recorded.

``GET /health`` (app.py) stays the summary it always was.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import Blueprint, current_app, jsonify

log = logging.getLogger(__name__)

bp = Blueprint("probes", __name__)


@bp.get("/health/live")
def live():
    return jsonify({"status": "alive"})


@bp.get("/health/ready")
def ready():
    body = readiness()
    resp = jsonify(body)
    if body["problems"]:
        resp.status_code = 503
        resp.headers["Retry-After"] = "10"
    return resp


def readiness() -> dict:
    """{"status": "ready" | "not-ready", "problems": [...], "checks": {...}} for the current app."""
    ext = current_app.extensions["cds"]
    settings_problems = configuration_problems(ext.cfg)
    cards_problem = _card_checker(current_app).problem(ext.cfg["CDS_CARDS_DIR"])
    store_ok = ext.feedback.ping()
    problems = list(settings_problems)
    if cards_problem:
        problems.append(cards_problem)
    if not store_ok:
        problems.append("the feedback store (CDS_FEEDBACK_DB) does not answer")
    return {"status": "not-ready" if problems else "ready", "problems": problems,
            "checks": {"jwtSettings": not settings_problems, "cardFiles": cards_problem is None,
                       "feedbackStore": store_ok}}


def configuration_problems(cfg) -> list[str]:
    """Settings with which every hook call would be refused."""
    problems = []
    if cfg["CDS_REQUIRE_JWT"]:
        if not cfg["CDS_TRUSTED_ISSUERS"]:
            problems.append("CDS_REQUIRE_JWT is true but CDS_TRUSTED_ISSUERS is empty: every call would get 401")
        if not str(cfg["CDS_PUBLIC_BASE_URL"]).strip():
            problems.append("CDS_REQUIRE_JWT is true but CDS_PUBLIC_BASE_URL is empty: every call would get 401")
    return problems


def tree_signature(folder: Path) -> tuple:
    """(name, size, mtime) of every file under ``folder``: changes whenever a file is added, edited or removed."""
    if not folder.is_dir():
        return ("missing",)
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class _CardFolderCheck:
    """Re-validates the card folder only when its files change (name, size or modification time)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._problem: str | None = None

    def problem(self, folder: str | Path) -> str | None:
        from .clinical.rules import load_all
        from .hooks.cards import CardFileError, CardLibrary

        folder = Path(folder)
        with self._lock:
            signature = tree_signature(folder)
            if signature != self._signature:
                try:
                    CardLibrary(folder).require(load_all().keys())
                    self._problem = None
                except CardFileError as exc:
                    text = " ".join(str(exc).split())  # one line, whatever the loader's layout
                    self._problem = text if text.startswith("card files refused") else f"card files refused: {text}"
                    log.error("readiness: %s", self._problem, extra={"event": "readiness"})
                self._signature = signature
            return self._problem


def _card_checker(app) -> _CardFolderCheck:
    return app.extensions.setdefault("cds_card_check", _CardFolderCheck())
