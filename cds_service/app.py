"""Flask app factory: the web edge only (HTTP, CORS, auth, limits, errors, metrics, logs)."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Mapping

import msgspec
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask_cors import CORS
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException

from . import landing, logs, probes
from .clinical.rules import check_registry
from .config import load_config
from .engine import Engine
from .fhir.parse import warm_up_models
from .hooks import strict_json
from .hooks.errors import HookError
from .hooks.extensions import log_fields as request_extensions
from .hooks.feedback import FeedbackStore, create_schema
from .hooks.invoke import unknown_service
from .hooks.validation import validate_feedback
from .hooks.validation import warm_up as warm_up_validators
from .http_body import decode_body
from .metrics import Metrics
from .security.auth import AuthError, Authenticator
from .security.replay import DbReplayCache, ReplayStoreError
from .security.replay import metadata as replay_tables
from .services import SERVICES
from .smart.web import launch_url as smart_launch_url
from .timing import Timings

log = logging.getLogger("cds_service")
bp = Blueprint("cds", __name__)

JSON_TYPES = ("application/json", "application/fhir+json")
# Request headers browsers may send: Epic's web clients add Epic-Client-ID; CDS_CORS_ALLOW_HEADERS adds more.
CORS_HEADERS = ["Authorization", "Content-Type", "Content-Encoding", "Epic-Client-ID"]
# /health reports a rule as failing for this long after its last failure (in any worker).
RULE_ERROR_WINDOW_S = 15 * 60
_ENCODER = msgspec.json.Encoder()


class _Ext:
    """Everything the views need, built once per app."""

    def __init__(self, app: Flask, cfg: Mapping[str, Any]):
        self.cfg = cfg
        check_registry()
        self.metrics = Metrics()
        self.engine = Engine(cfg, fhir_observer=lambda kind: self.metrics.child(self.metrics.fhir_calls, kind).inc())
        self.fhir = self.engine.fhir
        self.feedback = FeedbackStore(cfg["CDS_FEEDBACK_DB"],
                                      on_drop=lambda table: self.metrics.records_dropped.labels(table).inc())
        create_schema(self.feedback.engine, cfg["CDS_FEEDBACK_DB"], replay_tables)
        self.auth = Authenticator(cfg, replay=DbReplayCache(self.feedback.engine))
        self.now = self.engine.now
        warm_up_models()
        strict_json.warm_up(cfg["CDS_MAX_JSON_DEPTH"])  # else the first request compiles the depth patterns
        warm_up_validators()


def ext() -> _Ext:
    return current_app.extensions["cds"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    cfg = load_config(config)
    logs.configure(cfg["CDS_LOG_LEVEL"], cfg["CDS_LOG_FORMAT"])
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg["CDS_MAX_BODY_BYTES"]
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider settings
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["cds"] = _Ext(app, cfg)
    if not cfg["CDS_REQUIRE_JWT"]:
        log.warning("CDS_REQUIRE_JWT is false: any caller can invoke the services. Use only for demos and tests.")
    if not cfg["CDS_ALLOWED_FHIR_SERVERS"]:
        log.warning("CDS_ALLOWED_FHIR_SERVERS is empty: the service will only use prefetched data.")
    CORS(app, resources={r"/cds-services*": {"origins": cfg["CDS_CORS_ORIGINS"]}},
         allow_headers=CORS_HEADERS + cfg["CDS_CORS_ALLOW_HEADERS"], methods=["GET", "POST", "OPTIONS"], max_age=600)
    app.url_map.strict_slashes = False  # /cds-services/ and /cds-services/{id}/ answer like the canonical URLs
    app.register_blueprint(bp)
    app.register_blueprint(probes.bp)
    app.register_blueprint(landing.bp)
    app.after_request(_no_store)
    _register_errors(app)
    _register_optional(app, cfg)
    return app


def _register_optional(app: Flask, cfg: Mapping[str, Any]) -> None:
    """Blueprints other features add (preview page, ...) are registered here when present and enabled."""
    try:
        from .preview import register as register_preview  # optional feature
    except ImportError:
        pass
    else:
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
    if request.path.endswith("/"):  # a client calling the trailing-slash URL may have it in the token's aud too
        audiences = audiences + [a + "/" for a in audiences]
    try:
        g.jwt_claims = ext().auth.verify(request.headers.get("Authorization"), audiences)
    except AuthError as exc:
        log.warning("JWT refused: %s", exc, extra={"event": "auth-refused", "path": request.path})
        raise HookError(401, "security", "Authentication required.",
                        headers={"WWW-Authenticate": 'Bearer realm="cds-services", error="invalid_token"'}) from None
    except ReplayStoreError as exc:  # neither accept (it could be a replay) nor blame the token
        log.error("JWT not checked: %s", exc, extra={"event": "auth-unavailable", "path": request.path})
        raise HookError(503, "transient", "The service cannot verify tokens right now; please retry.",
                        headers={"Retry-After": "5"}) from None


def _public_url(path: str, url_root: str | None = None) -> str:
    base = ext().cfg["CDS_PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}{path}" if base else (url_root or request.url_root).rstrip("/") + path


def _hook_json(body: Any) -> Response:
    """The bytes jsonify writes outside debug mode (compact, UTF-8, keys in order, a final newline;
    tests/test_api_encoding.py compares them), encoded by msgspec in a tenth of the time."""
    if current_app.debug:  # jsonify indents there
        return jsonify(body)
    return current_app.response_class(_ENCODER.encode(body) + b"\n", mimetype="application/json")


def _json_body() -> Any:
    mimetype = (request.mimetype or "").lower()
    if mimetype not in JSON_TYPES:
        raise HookError(415, "not-supported", "Send the request as JSON (Content-Type: application/json).")
    raw = decode_body(request.get_data(cache=False), request.headers.get("Content-Encoding"),
                      ext().cfg["CDS_MAX_BODY_BYTES"])
    if not raw.strip():
        raise HookError(400, "invalid", "The request body is empty.")
    return strict_json.parse(raw, ext().cfg["CDS_MAX_JSON_DEPTH"])


def _no_store(resp: Response) -> Response:
    """Answers carry patient values (cards, 412 details): no cache, shared or private, may keep them."""
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


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
    vendor: dict = {}
    timings = Timings()
    url_root = request.url_root  # werkzeug builds it anew on each access
    try:
        # Authenticate first: an unauthenticated caller learns nothing, not even which service ids exist.
        _authenticate([_public_url(f"/cds-services/{service_id}", url_root)])
        if service is None:
            raise unknown_service(service_id, SERVICES)
        body = _json_body()
        if isinstance(body, dict) and isinstance(body.get("hookInstance"), str):
            hook_instance = body["hookInstance"][:200]
        vendor = request_extensions(body)  # e.g. Epic's trigger action: logged, never changes which rules run
        outcome = e.engine.call(service, body, timings,
                                smart_launch_url=smart_launch_url(e.cfg, url_root))
        e.feedback.record_issued(service.id, hook_instance, outcome.cards, silent=outcome.silent)
        for rule_id in outcome.fired:
            e.metrics.child(e.metrics.rules_fired, service.id, rule_id).inc()
        for rule_id in outcome.silent:
            e.metrics.child(e.metrics.silent_fired, service.id, rule_id).inc()
        for failure in outcome.rule_errors:
            e.metrics.rule_failed(failure.rule_id)
        status = 200
        resp = _hook_json(outcome.body)
        if log.isEnabledFor(logging.INFO):  # the fields are not gathered for nothing
            log.info("hook answered", extra={
                "event": "hook", "hookInstance": hook_instance, "service": service.id, "status": 200,
                "fired": outcome.fired, "silent": outcome.silent, "timings_ms": timings.as_dict(),
                "unavailable": outcome.unavailable, "sources": outcome.sources,
                "ruleErrors": [f.rule_id for f in outcome.rule_errors], "parseNotes": len(outcome.notes), **vendor})
    except HookError as err:
        status = err.status
        resp = _error(err)
        log.info("hook refused: %s", err.message, extra={
            "event": "hook", "hookInstance": hook_instance, "service": service_id if service else "-",
            "status": err.status, "timings_ms": timings.as_dict(), **vendor})
    elapsed = time.perf_counter() - started
    timings.add("total", elapsed * 1000.0)
    resp.headers["Server-Timing"] = timings.header()
    label = service.id if service else "unknown"
    e.metrics.child(e.metrics.hook_calls, label, str(status)).inc()
    e.metrics.child(e.metrics.latency, label).observe(elapsed)
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
            e.metrics.child(e.metrics.feedback, service.id, item["outcome"]).inc()
        log.info("feedback stored", extra={"event": "feedback", "service": service.id, "status": 200})
        return jsonify({"stored": stored})
    except HookError as err:
        return _error(err)


@bp.get("/health")
def health():
    """ok, or degraded: 503 when the feedback store is down (cards cannot be recorded), 200 with the rules named
    when a rule failed in the last RULE_ERROR_WINDOW_S (the service still answers, without that rule's cards;
    restarting would not mend it)."""
    e = ext()
    db_ok = e.feedback.ping()
    failing = e.metrics.recent_rule_errors(RULE_ERROR_WINDOW_S)
    cards = e.engine.cards.current()
    body = {"status": "ok" if db_ok and not failing else "degraded", "services": sorted(SERVICES),
            "feedbackStore": db_ok, "rules": sorted(cards.files),
            "silentRules": sorted(r for r, f in cards.files.items() if f.status == "silent"),
            "offRules": sorted(r for r, f in cards.files.items() if f.status == "off"),
            "jwtRequired": e.cfg["CDS_REQUIRE_JWT"]}
    if failing:
        body["failingRules"] = {rule: datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                                for rule, at in sorted(failing.items())}
    return jsonify(body), (200 if db_ok else 503)


@bp.get("/metrics")
def metrics():
    if not ext().cfg["CDS_METRICS"]:
        raise HookError(404, "not-found", "Metrics are disabled.")
    # content_type, not mimetype: CONTENT_TYPE_LATEST already carries its charset, and Flask would add another.
    return Response(generate_latest(ext().metrics.registry), content_type=CONTENT_TYPE_LATEST)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HookError)
    def _hook_error(err: HookError):
        return _error(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 400
        code = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}.get(status, "invalid")
        message = {413: "The request body is too large.",
                   404: "No such endpoint.",
                   405: "Method not allowed on this endpoint."}.get(status, err.description or err.name)
        resp = _error(HookError(status, code, message))
        allowed = getattr(err, "valid_methods", None)
        if status == 405 and allowed:
            resp.headers["Allow"] = ", ".join(allowed)
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unexpected error", extra={"event": "error", "path": request.path})
        return _error(HookError(500, "exception", "Internal error; the event was logged."))
