"""Structured (JSON) logging with secret scrubbing.

Log lines identify a request by hookInstance only. Anything that looks like a
Bearer token or a JWT is replaced before a line is written, whatever logger
produced it.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

# Quote characters as they appear raw ("), in Python reprs (') and inside JSON strings (\").
_Q = r"""(?:\\?["'])?"""
_SECRET_PATTERNS = [  # order matters: a whole header value first, then what is left inside free text
    re.compile(r"(?i)(authorization" + _Q + r"\s*[:=]\s*" + _Q + r")[^\"'\n,}\]\\]+"),
    re.compile(r"(?i)((?:access_token|refresh_token|id_token|client_secret|client_assertion)" + _Q
               + r"\s*[:=]\s*" + _Q + r")[^\s\"',}\]\\]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    # JWS/JWE compact form: header and payload are base64url JSON objects, so they start with "ey" or "ew"
    re.compile(r"\be[wy][A-Za-z0-9_-]{6,}\.e[wy][A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}"),
]
_EXTRA_FIELDS = ("hookInstance", "service", "status", "fired", "silent", "ruleErrors", "parseNotes", "timings_ms",
                 "unavailable", "sources", "event", "reason", "duration_ms", "path", "method", "remote",
                 "extensions", "epicTriggerAction", "epicTrigger", "epicCriteriaId")  # hooks/extensions.py


# What each secret pattern needs to match: one of these words (any case; the first three patterns ignore it)
# or ".ew"/".ey" (the JWS seam, case as written). For ASCII text, where ignoring case is what str.lower()
# does, a text without any of them is returned as it is after a few substring scans. (Non-ASCII text always
# takes the patterns: with IGNORECASE they also match letters such as U+0131 dotless i that lower() keeps.)
_SECRET_WORDS = ("authorization", "access_token", "refresh_token", "id_token", "client_secret", "client_assertion",
                 "bearer")


def _may_hold_secret(text: str) -> bool:
    if not text.isascii():
        return True
    if ".ew" in text or ".ey" in text:
        return True
    lowered = text.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def scrub(text: str) -> str:
    if not _may_hold_secret(text):
        return text
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


def _scrub_value(value):
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # which gunicorn worker
            "msg": scrub(record.getMessage()),
        }
        for name in _EXTRA_FIELDS:
            if hasattr(record, name):
                payload[name] = _scrub_value(getattr(record, name))
        if record.exc_info or record.exc_text:
            payload["exc"] = scrub(record.exc_text or self.formatException(record.exc_info or (None, None, None)))
        # second pass over the serialised line: anything the field-wise pass missed
        return scrub(json.dumps(payload, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {n: _scrub_value(getattr(record, n)) for n in _EXTRA_FIELDS if hasattr(record, n)}
        if extras:
            base += " " + json.dumps(extras, default=str)
        return scrub(base)


class ScrubFilter(logging.Filter):
    """Scrub secrets from the record itself: message, traceback text and the structured extras.

    Handlers run in turn on the same record, so a handler added after ours (for example
    pytest's caplog) also sees the scrubbed record; our formatters scrub again regardless.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # malformed %-args: leave the message alone
            message = None
        if message is not None:
            cleaned = scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        for name in _EXTRA_FIELDS:
            if hasattr(record, name):
                setattr(record, name, _scrub_value(getattr(record, name)))
        return True


_configured = False


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    global _configured
    root = logging.getLogger()
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter())
    root.addHandler(handler)
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
