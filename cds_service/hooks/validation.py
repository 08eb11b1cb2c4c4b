"""JSON Schema validation of requests (common fields and each hook's context) and of feedback.

Each instance is first checked by jsonschema-rs (compiled, ~1 us for a 49 KB request against ~250 us for
jsonschema), built from the same schema files and at least as strict: it also checks ``format: uri``, and its
regular expressions' ``$`` does not match before a final newline as Python's does. Only what it refuses is
validated again by jsonschema, whose errors (and their wording) are the ones reported; when jsonschema finds
none the instance is valid after all. So the answer is jsonschema's in every case, and the common, valid
case is fast. tests/test_validation_fast.py checks that jsonschema-rs never accepts what jsonschema refuses.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import jsonschema
import jsonschema_rs

from .cards import load_schema
from .errors import HookError

CONTEXT_SCHEMAS = {
    "patient-view": "context-patient-view.schema.json",
    "order-select": "context-order-select.schema.json",
    "order-sign": "context-order-sign.schema.json",
}


@lru_cache(maxsize=None)
def validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@lru_cache(maxsize=None)
def fast_accepts(name: str) -> Callable[[Any], bool]:
    """True only for instances the schema accepts; False may be a false alarm (jsonschema then decides)."""
    is_valid = jsonschema_rs.validator_for(load_schema(name), validate_formats=True).is_valid

    def accepts(instance: Any) -> bool:
        try:
            return bool(is_valid(instance))
        except Exception:  # a value it cannot convert (e.g. an int past 64 bits in some versions): ask jsonschema
            return False

    return accepts


def warm_up() -> None:
    """Build the validators of every request and feedback schema now (start-up), not in the first calls."""
    for name in ("request.schema.json", "feedback.schema.json", *CONTEXT_SCHEMAS.values()):
        validator(name)
        fast_accepts(name)


def _messages(name: str, instance: Any, prefix: str = "") -> list[str]:
    return [] if fast_accepts(name)(instance) else schema_messages(name, instance, prefix)


def schema_messages(name: str, instance: Any, prefix: str = "") -> list[str]:
    """jsonschema's first ten errors, sorted by place, as ``path: message`` lines."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: (list(e.absolute_path), e.message))
    out = []
    for err in errors[:10]:
        where = "/".join(str(p) for p in err.absolute_path)
        path = f"{prefix}{'/' if prefix and where else ''}{where}" or "(request)"
        out.append(f"{path}: {_short(err.message)}")
    return out


def _short(message: str) -> str:
    return message if len(message) < 200 else message[:197] + "..."


def validate_request(body: Any, hook: str) -> None:
    """Raise HookError(400) naming every problem with the request, or return quietly."""
    if not isinstance(body, dict):
        raise HookError(400, "invalid", "The request body must be a JSON object.")
    problems = _messages("request.schema.json", body)
    if problems:
        raise HookError(400, "invalid", "The request does not conform to CDS Hooks 2.0.", problems)
    if body["hook"] != hook:
        raise HookError(400, "invalid", f"This service answers the '{hook}' hook, not '{body['hook']}'.")
    problems = _messages(CONTEXT_SCHEMAS[hook], body["context"], "context")
    if problems:
        raise HookError(400, "invalid", f"The {hook} context is invalid.", problems)


def validate_feedback(body: Any) -> None:
    if not isinstance(body, dict):
        raise HookError(400, "invalid", "The feedback body must be a JSON object.")
    problems = _messages("feedback.schema.json", body)
    if problems:
        raise HookError(400, "invalid", "The feedback does not conform to CDS Hooks 2.0.", problems)


def response_problems(body: Any) -> list[str]:
    """Problems with a response this service is about to send (used by tests and a debug check)."""
    problems = _messages("response.schema.json", body)
    problems += [f"null or empty value at {p}" for p in _empty_paths(body)]
    return problems


def _empty_paths(node: Any, path: str = "") -> list[str]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}/{k}"
            if v is None or v == "" or v == {} or (v == [] and p != "/cards"):
                out.append(p)
            else:
                out.extend(_empty_paths(v, p))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_empty_paths(v, f"{path}/{i}"))
    return out
