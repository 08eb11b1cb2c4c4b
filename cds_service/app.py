"""Flask app factory: the web edge only (HTTP, CORS, auth, limits, errors, metrics, logs)."""
from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any, Mapping

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask_cors import CORS
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException

from . import logs
from .clinical.rules import load_all
from .config import load_config
from .fhir.client import ClientSettings, FhirClient
from .fhir.parse import warm_up_models
from .fhir.urls import Allowlist
from .hooks.cards import CardLibrary
from .hooks.errors import HookError, operation_outcome
from .hooks.feedback import FeedbackStore
from .hooks.invoke import invoke, unknown_service
from .hooks.validation import validate_feedback
from .metrics import Metrics
from .security.auth import AuthError, Authenticator
from .services import SERVICES
from .smart.web import launch_url as smart_launch_url
from .timing import Deadline, Timings

log = logging.getLogger("cds_service")
bp = Blueprint("cds", __name__)

JSON_TYPES = ("application/json", "application/fhir+json")


class _Ext:
    """Everything the views need, built once per app."""

    def __init__(self, app: Flask, cfg: Mapping[str, Any]):
        self.cfg = cfg
        self.cards = CardLibrary(cfg["CDS_CARDS_DIR"])
        self.cards.require(load_all().keys())
        self.allowlist = Allowlist(cfg["CDS_ALLOWED_FHIR_SERVERS"])
        self.metrics = Metrics()
        self.fhir = FhirClient(self.allowlist, ClientSettings(
            timeout_ms=cfg["CDS_FHIR_TIMEOUT_MS"], max_pages=cfg["CDS_FHIR_MAX_PAGES"],
            max_entries=cfg["CDS_FHIR_MAX_ENTRIES"],
            observer=lambda kind: self.metrics.fhir_calls.labels(kind).inc()))
        self.feedback = FeedbackStore(cfg["CDS_FEEDBACK_DB"])
        self.auth = Authenticator(cfg)
        self.now = cfg.get("NOW_FN") or (lambda: datetime.now(timezone.utc))
        warm_up_models()


def ext() -> _Ext:
    return current_app.extensions["cds"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    cfg = load_config(config)
    logs.configure(cfg["CDS_LOG_LEVEL"], cfg["CDS_LOG_FORMAT"])
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg["CDS_MAX_BODY_BYTES"]
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.extensions["cds"] = _Ext(app, cfg)
    if not cfg["CDS_REQUIRE_JWT"]:
        log.warning("CDS_REQUIRE_JWT is false: any caller can invoke the services. Use only for demos and tests.")
    if not cfg["CDS_ALLOWED_FHIR_SERVERS"]:
        log.warning("CDS_ALLOWED_FHIR_SERVERS is empty: the service will only use prefetched data.")
    CORS(app, resources={r"/cds-services*": {"origins": cfg["CDS_CORS_ORIGINS"]}},
         allow_headers=["Authorization", "Content-Type"], methods=["GET", "POST", "OPTIONS"], max_age=600)
    app.register_blueprint(bp)
    _register_errors(app)
    _register_optional(app, cfg)
    return app


def _register_optional(app: Flask, cfg: Mapping[str, Any]) -> None:
    """Blueprints other features add (preview page, ...) are registered here when present and enabled."""
    try:
        from .preview import register as register_preview  # noqa: WPS433 (optional feature)
    except ImportError:
        register_preview = None
    if register_preview is not None:
        register_preview(app, cfg)
    from .smart.web import register as register_smart  # the electrolyte trend app (SMART on FHIR), /smart/
    register_smart(app, cfg)


# ---------------------------------------------------------------------- helpers

def _error(err: HookError) -> Response:
    resp = jsonify(err.outcome())
    resp.status_code = err.status
    resp.headers["Content-Type"] = "application/fhir+json"
    for k, v in err.headers.items():
        resp.headers[k] = v
    return resp


def _authenticate(audiences: list[str]) -> None:
    if not ext().cfg["CDS_REQUIRE_JWT"]:
        return
    try:
        g.jwt_claims = ext().auth.verify(request.headers.get("Authorization"), audiences)
    except AuthError as exc:
        log.warning("JWT refused: %s", exc, extra={"event": "auth-refused", "path": request.path})
        raise HookError(401, "security", "Authentication required.",
                        headers={"WWW-Authenticate": 'Bearer realm="cds-services", error="invalid_token"'}) from None


def _public_url(path: str) -> str:
    base = ext().cfg["CDS_PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}{path}" if base else request.url_root.rstrip("/") + path


def _json_body() -> Any:
    mimetype = (request.mimetype or "").lower()
    if mimetype not in JSON_TYPES:
        raise HookError(415, "not-supported", "Send the request as JSON (Content-Type: application/json).")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise HookError(400, "invalid", "The request body is empty.")
    depth_limit = ext().cfg["CDS_MAX_JSON_DEPTH"]
    if _nesting_depth(raw, depth_limit) > depth_limit:
        raise HookError(400, "invalid", f"The request body is nested deeper than {depth_limit} levels.")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HookError(400, "invalid", f"The request body is not valid JSON: {str(exc)[:120]}") from None


_KEEP_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
_INNERMOST_PAIRS = re.compile(rb"[\[{][\]}]")


def _nesting_depth(raw: bytes, limit: int = 1 << 30) -> int:
    """Deepest bracket nesting outside strings, without parsing (so it cannot blow the stack).

    Escapes are dropped first (escaped backslashes, then escaped quotes: JSON escapes pair up left to
    right), then everything but quotes and brackets is deleted, all in C and without large temporary
    lists. Strings are then just quotes around brackets and are removed; each later pass removes the innermost bracket pairs, so the
    number of passes is the depth. Stops counting past ``limit``. Unbalanced input is left for the
    JSON parser to report.
    """
    structure = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _KEEP_STRUCTURE)
    # Any two adjacent quotes are an empty string or the seam between two strings with nothing between
    # them: dropping them keeps what is outside strings intact, without building a list of matches.
    brackets = _STRING.sub(b"", structure.replace(b'""', b""))
    depth = 0
    while brackets and depth <= limit:
        shorter = _INNERMOST_PAIRS.sub(b"", brackets)
        if len(shorter) == len(brackets):
            break
        brackets = shorter
        depth += 1
    return depth


# ---------------------------------------------------------------------- views

@bp.get("/cds-services")
def discovery():
    _authenticate([_public_url("/cds-services")])
    return jsonify({"services": [s.discovery() for s in SERVICES.values()]})


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str):
    e = ext()
    started = time.perf_counter()
    service = SERVICES.get(service_id)
    status = 500
    hook_instance = "-"
    timings = Timings()
    try:
        # Authenticate first: an unauthenticated caller learns nothing, not even which service ids exist.
        _authenticate([_public_url(f"/cds-services/{service_id}")])
        if service is None:
            raise unknown_service(service_id, SERVICES)
        body = _json_body()
        if isinstance(body, dict) and isinstance(body.get("hookInstance"), str):
            hook_instance = body["hookInstance"][:200]
        deadline = Deadline(e.cfg["CDS_DEADLINE_MS"])
        outcome = invoke(
            service, body, cards=e.cards, now=e.now(),
            lookback=_days(e.cfg["CDS_LOOKBACK_DAYS"]),
            fetcher=lambda urls, token: e.fhir.fetch_wave(urls, token, deadline),
            allowed=e.allowlist.allows, timings=timings,
            smart_launch_url=smart_launch_url(e.cfg, request.url_root),
        )
        e.feedback.record_issued(service.id, hook_instance, outcome.cards)
        for rule_id in outcome.fired:
            e.metrics.rules_fired.labels(service.id, rule_id).inc()
        status = 200
        resp = jsonify(outcome.body)
        log.info("hook answered", extra={
            "event": "hook", "hookInstance": hook_instance, "service": service.id, "status": 200,
            "fired": outcome.fired, "timings_ms": timings.as_dict(), "unavailable": outcome.unavailable,
            "sources": outcome.sources})
    except HookError as err:
        status = err.status
        resp = _error(err)
        log.info("hook refused: %s", err.message, extra={
            "event": "hook", "hookInstance": hook_instance, "service": service_id if service else "-",
            "status": err.status, "timings_ms": timings.as_dict()})
    elapsed = time.perf_counter() - started
    timings.add("total", elapsed * 1000.0)
    resp.headers["Server-Timing"] = timings.header()
    label = service.id if service else "unknown"
    e.metrics.hook_calls.labels(label, str(status)).inc()
    e.metrics.latency.labels(label).observe(elapsed)
    return resp


@bp.post("/cds-services/<service_id>/feedback")
def call_feedback(service_id: str):
    e = ext()
    try:
        _authenticate([_public_url(f"/cds-services/{service_id}"), _public_url(f"/cds-services/{service_id}/feedback")])
        service = SERVICES.get(service_id)
        if service is None:
            raise unknown_service(service_id, SERVICES)
        body = _json_body()
        validate_feedback(body)
        try:
            stored = e.feedback.add_feedback(service.id, body["feedback"])
        except Exception:
            log.exception("feedback could not be stored", extra={"event": "feedback", "service": service.id})
            raise HookError(503, "transient", "Feedback could not be stored; please retry.",
                            headers={"Retry-After": "5"}) from None
        for item in body["feedback"]:
            e.metrics.feedback.labels(service.id, item["outcome"]).inc()
        log.info("feedback stored", extra={"event": "feedback", "service": service.id, "status": 200})
        return jsonify({"stored": stored})
    except HookError as err:
        return _error(err)


@bp.get("/health")
def health():
    e = ext()
    db_ok = e.feedback.ping()
    body = {"status": "ok" if db_ok else "degraded", "services": sorted(SERVICES), "feedbackStore": db_ok,
            "rules": sorted(e.cards.files), "jwtRequired": e.cfg["CDS_REQUIRE_JWT"]}
    return jsonify(body), (200 if db_ok else 503)


@bp.get("/metrics")
def metrics():
    if not ext().cfg["CDS_METRICS"]:
        raise HookError(404, "not-found", "Metrics are disabled.")
    return Response(generate_latest(ext().metrics.registry), mimetype=CONTENT_TYPE_LATEST)


def _days(n: int):
    from datetime import timedelta
    return timedelta(days=n)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HookError)
    def _hook_error(err: HookError):
        return _error(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}.get(err.code, "invalid")
        message = {413: "The request body is too large.",
                   404: "No such endpoint.",
                   405: "Method not allowed on this endpoint."}.get(err.code, err.description or err.name)
        resp = _error(HookError(err.code or 400, code, message))
        if err.code == 405 and getattr(err, "valid_methods", None):
            resp.headers["Allow"] = ", ".join(err.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unexpected error", extra={"event": "error", "path": request.path})
        return _error(HookError(500, "exception", "Internal error; the event was logged."))
