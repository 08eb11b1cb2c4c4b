"""Settings: environment variables, overridable by a mapping passed to create_app.

Every setting has one name, used both in the environment and in the override
mapping. ``SETTINGS`` is the single source of truth: the README's configuration
table is checked against it by a test.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"expected true or false, got {value!r}")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"expected an integer, got {value!r}") from exc


def _list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def _json_object(value: Any) -> dict:
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value or "").strip()
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"expected a JSON object: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ConfigError("expected a JSON object")
    return parsed


def _str(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    doc: str


SETTINGS: list[Setting] = [
    Setting("CDS_ALLOWED_FHIR_SERVERS", "", _list,
            "Comma-separated FHIR base URLs the service may contact. A fhirServer that matches none is never contacted. "
            "https is required except for loopback http entries."),
    Setting("CDS_REQUIRE_JWT", "true", _bool,
            "Require and verify the EHR's signed JWT on discovery, service calls and feedback (docs/security.md). "
            "Turn off only for local demos."),
    Setting("CDS_TRUSTED_ISSUERS", "", _json_object,
            "JSON object mapping each trusted JWT `iss` to its JWKS: an https URL (http only for loopback), a local file "
            "path, or `{\"jwks\": <URL or path>, \"jku\": <URL>}`. Also the `jku` allowlist. Empty: every call is "
            "refused while JWTs are required."),
    Setting("CDS_PUBLIC_BASE_URL", "", _str,
            "The service's public base URL, e.g. https://cds.example.org. JWT `aud` must equal the endpoint URL under "
            "it. Required when JWTs are required (every call is refused without it)."),
    Setting("CDS_JWT_ALGORITHMS", "ES384,RS384", _list,
            "Accepted JWT signature algorithms (asymmetric only: RS/PS/ES 256-512, EdDSA). `none` and HS* are "
            "refused even if listed."),
    Setting("CDS_JWT_LEEWAY_S", "30", _int, "Clock leeway in seconds for `exp`, `iat` and `nbf`."),
    Setting("CDS_JWT_MAX_LIFETIME_S", "3600", _int, "Longest accepted token lifetime (`exp - iat`), in seconds; also the longest a `jti` is remembered."),
    Setting("CDS_ALLOWED_TENANTS", "", _list, "Optional comma-separated allowlist of the JWT `tenant` claim; when set, tokens without an allowed "
            "`tenant` are refused. Empty: not checked."),
    Setting("CDS_FEEDBACK_DB", "sqlite:///var/feedback.sqlite3", _str,
            "Where feedback is stored: an SQLAlchemy URL (sqlite:///path or postgresql+psycopg://...) or a plain file path for SQLite."),
    Setting("CDS_CARDS_DIR", str(REPO_ROOT / "cards"), _str, "Folder of card files (one YAML file per rule)."),
    Setting("CDS_LOOKBACK_DAYS", "45", _int, "How far back a lab result may be and still be used by a rule "
            "(the chronic look-back; acute rules use shorter windows from their card files)."),
    Setting("CDS_DEADLINE_MS", "2000", _int, "Overall time budget per hook call. When it runs out the service answers with what it has."),
    Setting("CDS_FHIR_TIMEOUT_MS", "1500", _int, "Cap on each FHIR HTTP call (connect and read)."),
    Setting("CDS_FHIR_MAX_PAGES", "5", _int, "Most `next` pages followed per FHIR query."),
    Setting("CDS_FHIR_MAX_ENTRIES", "1000", _int, "Most entries read per FHIR query across its pages (5 x the "
            "largest prefetch _count; with 1 MiB bodies it keeps a worker under 120 MB, docs/performance.md)."),
    Setting("CDS_MAX_BODY_BYTES", str(1024 * 1024), _int, "Largest accepted request body; larger bodies get 413. "
            "1 MiB: 3.5 x the largest prefetch the templates' _count allows (300 KB); see docs/performance.md."),
    Setting("CDS_MAX_JSON_DEPTH", "64", _int, "Deepest accepted JSON nesting in a request body."),
    Setting("CDS_CORS_ORIGINS", "*", _list, "Origins allowed by CORS (comma-separated, `*` for any)."),
    Setting("CDS_CORS_ALLOW_HEADERS", "", _list,
            "Request headers CORS allows besides `Authorization`, `Content-Type`, `Content-Encoding` and "
            "`Epic-Client-ID` (comma-separated)."),
    Setting("CDS_STRICT_RULES", "false", _bool, "Tests only: a rule that fails makes the call fail (500) instead of being counted and left out of the answer."),
    Setting("CDS_PREVIEW", "false", _bool, "Serve the card preview page at /preview. On in demo mode."),
    Setting("CDS_METRICS", "true", _bool, "Serve Prometheus metrics at /metrics."),
    Setting("CDS_SMART_CLIENT_ID", "dialysis-electrolyte-trends", _str,
            "OAuth client id of the electrolyte trend app (a SMART public client registered with the EHR; docs/smart-app.md)."),
    Setting("CDS_SMART_APP_URL", "", _str,
            "Launch URL that electrolyte cards link to (`type: smart`). Empty: this service's own app, "
            "`CDS_PUBLIC_BASE_URL` (or the request's host) + `/smart/launch`."),
    Setting("CDS_SMART_SECRET", "", _str,
            "Key for the trend app's encrypted cookies (OAuth state, access token). Empty: a random key kept in "
            "`var/smart-app.key`, shared by the workers of one host. Replicas must share one value."),
    Setting("CDS_SMART_FRAME_ANCESTORS", "'self'", _str,
            "CSP `frame-ancestors` of the trend app: the EHR origins allowed to embed it, e.g. `https://ehr.example.org`."),
    Setting("CDS_LOG_LEVEL", "INFO", _str, "Log level (DEBUG, INFO, WARNING, ERROR)."),
    Setting("CDS_LOG_FORMAT", "json", _str, "`json` for structured logs, `text` for human-readable ones."),
]

_BY_NAME = {s.name: s for s in SETTINGS}


class Config(dict):
    """A dict of parsed settings, keyed by setting name."""

    def __getattr__(self, item: str) -> Any:  # convenience: cfg.CDS_DEADLINE_MS
        try:
            return self[item]
        except KeyError as exc:
            raise AttributeError(item) from exc


def load_config(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration: defaults < environment < overrides.

    Unknown ``CDS_*`` names in the overrides are rejected so that a typo does not
    silently leave a safety setting at its default.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    cfg = Config()
    for setting in SETTINGS:
        raw = setting.default
        if setting.name in environ:
            raw = environ[setting.name]
        if setting.name in overrides:
            raw = overrides.pop(setting.name)
        try:
            cfg[setting.name] = setting.parse(raw)
        except ConfigError as exc:
            raise ConfigError(f"{setting.name}: {exc}") from exc
    unknown = [k for k in overrides if k.startswith("CDS_")]
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    # Non-CDS keys (e.g. TESTING) pass through for Flask.
    cfg.update(overrides)
    return cfg


def describe_settings() -> list[tuple[str, str, str]]:
    """(name, default, doc) rows for documentation."""
    return [(s.name, str(s.default), s.doc) for s in SETTINGS]
