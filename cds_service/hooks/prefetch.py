"""Prefetch templates and their resolution, per CDS Hooks 2.0.

- A key present in ``prefetch`` is used as it is.
- A key present with ``null`` means "no data".
- A key that is absent, or holds an OperationOutcome, is fetched by the service from
  ``fhirServer`` with the ``fhirAuthorization`` token, the template's tokens substituted.
- Data that can be had neither way is reported as unavailable, with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping
from urllib.parse import quote

from .errors import HookError

TOKEN = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_.]*)\s*\}\}")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}

# Reasons that mean "the service cannot access the FHIR server": with required data missing, these give 412.
ACCESS_FAILURES = frozenset({"no-fhir-server", "refused", "unauthorized", "connect", "unresolved-token"})


@dataclass(frozen=True)
class PrefetchKey:
    """One prefetch template and how the service narrows it when it fetches itself."""
    template: str
    since_days: int | None = None  # fetch mode adds date=ge<now - since_days>
    date_param: str = "date"
    required: bool = False  # without it the service cannot answer (412 when it cannot be had)
    # False: offered to EHRs in discovery, but never fetched by the service itself because no rule
    # reads it (data minimisation: the service does not pull PHI it does not use).
    fetch: bool = True


@dataclass
class Resolved:
    data: dict[str, Any] = field(default_factory=dict)  # key -> resource/Bundle, or None for "no data"
    source: dict[str, str] = field(default_factory=dict)  # key -> "prefetch" | "null" | "fetch"
    unavailable: dict[str, str] = field(default_factory=dict)  # key -> reason kind
    details: dict[str, str] = field(default_factory=dict)  # key -> human detail (no secrets)
    fetch_ms: dict[str, float] = field(default_factory=dict)


def token_values(context: Mapping[str, Any]) -> dict[str, str]:
    """Values for prefetch tokens: root-level primitive context fields and the user identifiers."""
    values: dict[str, str] = {}
    for name, value in context.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            values[f"context.{name}"] = str(value)
    user = context.get("userId")
    if isinstance(user, str) and "/" in user:
        rtype, rid = user.split("/", 1)
        for token, wanted in USER_TOKENS.items():
            if rtype == wanted:
                values[token] = rid
    return values


def render_template(template: str, values: Mapping[str, str]) -> str | None:
    """Substitute tokens (URL-encoded). None when a token has no value."""
    missing = False

    def sub(match: re.Match) -> str:
        nonlocal missing
        name = match.group(1)
        if name not in values:
            missing = True
            return ""
        return quote(values[name], safe="")

    out = TOKEN.sub(sub, template)
    return None if missing else out


def _is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def fetch_url(base: str, relative: str, key: PrefetchKey, now: datetime, lookback: timedelta | None = None) -> str:
    """The URL the service queries itself: the template's narrowing (codes, _sort, _count) plus a date lower bound.

    The bound is the key's own window, widened to the lab lookback (plus a day) when that is longer, so a
    configured lookback is never cut short by the query.
    """
    url = base.rstrip("/") + "/" + relative.lstrip("/")
    if key.since_days is not None and "?" in url:
        days = key.since_days
        if lookback is not None:
            days = max(days, lookback.days + 1)
        since = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        url += f"&{key.date_param}=ge{quote(since, safe='')}"
    return url


Fetcher = Callable[[Mapping[str, str], str | None], Mapping[str, Any]]  # (urls by key, token) -> FetchResults


def resolve(keys: Mapping[str, PrefetchKey], request: Mapping[str, Any], now: datetime,
            fetcher: Fetcher | None, allowed: Callable[[str], bool], lookback: timedelta | None = None) -> Resolved:
    res = Resolved()
    prefetch = request.get("prefetch") or {}
    context = request.get("context") or {}
    to_fetch: dict[str, str] = {}
    values = token_values(context)
    server = request.get("fhirServer")
    for name, key in keys.items():
        if name in prefetch and not _is_outcome(prefetch[name]):
            if prefetch[name] is None:
                res.data[name] = None
                res.source[name] = "null"
            else:
                res.data[name] = prefetch[name]
                res.source[name] = "prefetch"
            continue
        if not key.fetch:
            res.data[name] = None
            res.source[name] = "not-fetched"
            continue
        relative = render_template(key.template, values)
        if relative is None:
            res.unavailable[name] = "unresolved-token"
            res.details[name] = "a prefetch token has no value in this context"
            continue
        if not server:
            res.unavailable[name] = "no-fhir-server"
            res.details[name] = "not in prefetch and no fhirServer given"
            continue
        url = fetch_url(server, relative, key, now, lookback)
        if not allowed(url):
            res.unavailable[name] = "refused"
            res.details[name] = "fhirServer is not on the allowlist; not contacted"
            continue
        to_fetch[name] = url
    if to_fetch and fetcher is not None:
        token = (request.get("fhirAuthorization") or {}).get("access_token")
        for name, result in fetcher(to_fetch, token).items():
            res.fetch_ms[name] = result.ms
            if result.error is not None:
                res.unavailable[name] = result.error.kind
                res.details[name] = result.error.detail
            else:
                res.data[name] = result.data
                res.source[name] = "fetch"
    return res


def require(keys: Mapping[str, PrefetchKey], resolved: Resolved) -> None:
    """412 when required data could not be had because the FHIR server could not be accessed."""
    blocked = {name: resolved.unavailable[name] for name, key in keys.items()
               if key.required and resolved.unavailable.get(name) in ACCESS_FAILURES}
    if blocked:
        details = [f"{name}: {resolved.details.get(name, reason)}" for name, reason in sorted(blocked.items())]
        raise HookError(412, "incomplete",
                        "Required data was neither prefetched nor retrievable from the FHIR server.", details)
