"""Verification of the EHR's signed JWT (CDS Hooks 2.0 "Trusting CDS Clients").

Interface used by the web edge: ``Authenticator(config).verify(header, audiences)``
returns the verified claims or raises ``AuthError`` (answered with 401, no details).

What a token must satisfy, in the order it is checked:

1. ``Authorization: Bearer <compact JWS>`` (one token, base64url segments, size-capped).
2. ``alg`` is one of ``CDS_JWT_ALGORITHMS`` after every symmetric algorithm and ``none``
   have been removed from that list (they are refused whatever the configuration says).
3. ``iss`` is a key of ``CDS_TRUSTED_ISSUERS``; ``jku``, when present, is exactly the JWKS
   location configured for that ``iss`` (the configuration is the jku allowlist: a jku is
   never fetched because a token names it).
4. ``kid`` names a signing key of that issuer's JWKS whose type and curve fit ``alg``.
5. Signature, then claims: ``exp``/``iat``/``jti``/``aud`` required; ``aud`` is one of the
   endpoint URLs the edge passes; ``iat`` not in the future and ``exp`` not past (both with
   ``CDS_JWT_LEEWAY_S``); lifetime ``exp - iat`` at most ``CDS_JWT_MAX_LIFETIME_S``; ``nbf``
   honoured when present; ``tenant`` in ``CDS_ALLOWED_TENANTS`` when that list is set.
6. ``jti`` not seen before from this issuer within the token's lifetime (replay cache).

The crypto is PyJWT's; this module only decides which keys and claims are acceptable.
"""
from __future__ import annotations

import heapq
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jwt
import requests

from ..config import ConfigError
from ..fhir.urls import UrlRefused, is_loopback, parse_base

log = logging.getLogger(__name__)


class AuthError(Exception):
    """Why a token was refused. Logged, never sent to the client."""


# Asymmetric JWS algorithms PyJWT implements, with the key type (and curve) each needs.
# Anything not listed here (none, HS256/384/512, unknown names) is never accepted.
ASYMMETRIC_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}

MAX_TOKEN_CHARS = 16 * 1024
JWKS_MAX_BYTES = 512 * 1024
JWKS_TIMEOUT_S = (3.0, 5.0)  # connect, read
JWKS_TTL_S = 3600.0  # keys are re-read after this long even when every kid is known
JWKS_MIN_REFETCH_S = 60.0  # at most one fetch per issuer per this many seconds, whatever tokens arrive
REPLAY_CACHE_MAX = 100_000

_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def _safe(value: Any, limit: int = 120) -> str:
    """A token-supplied value made fit for a log line (printable, short)."""
    text = value if isinstance(value, str) else repr(value)
    text = _PRINTABLE.sub("?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def accepted_algorithms(configured: list[str]) -> list[str]:
    """The configured algorithms that may be accepted: asymmetric ones only."""
    out = []
    for name in configured:
        if name in ASYMMETRIC_ALGORITHMS:
            if name not in out:
                out.append(name)
        else:
            log.warning("CDS_JWT_ALGORITHMS: %r is not an asymmetric JWS algorithm; it will never be accepted",
                        _safe(name))
    return out


# ------------------------------------------------------------------ replay cache

class ReplayCache:
    """Remembers (iss, jti) until the token it came from has expired. Thread-safe and bounded.

    When full, the entry whose token expires soonest is dropped first (its replay window
    is the nearest to closing anyway) and a warning is logged.
    """

    def __init__(self, max_entries: int = REPLAY_CACHE_MAX, clock: Callable[[], float] = time.time):
        self.max_entries = max_entries
        self.clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def check_and_add(self, iss: str, jti: str, forget_after: float) -> bool:
        """True when (iss, jti) is new (and is now remembered); False for a replay."""
        key = (iss, jti)
        with self._lock:
            now = self.clock()
            self._expire(now)
            if key in self._seen:
                return False
            while len(self._seen) >= self.max_entries and self._heap:
                _, old = heapq.heappop(self._heap)
                if self._seen.pop(old, None) is not None:
                    log.warning("JWT replay cache full (%d entries); forgetting the soonest-expiring jti",
                                self.max_entries)
            self._seen[key] = forget_after
            heapq.heappush(self._heap, (forget_after, key))
            return True

    def _expire(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            when, key = heapq.heappop(self._heap)
            if self._seen.get(key) == when:
                del self._seen[key]


# ------------------------------------------------------------------ JWKS

def _jwks_location(iss: str, location: Any) -> tuple[str, str]:
    """("url", url) or ("file", path) for a CDS_TRUSTED_ISSUERS value; ConfigError when unusable."""
    if not isinstance(location, str) or not location.strip():
        raise ConfigError(f"CDS_TRUSTED_ISSUERS[{iss!r}]: expected a JWKS URL or file path")
    location = location.strip()
    lowered = location.lower()
    if lowered.startswith("file://"):
        return "file", location[len("file://"):]
    if "://" not in location:
        return "file", location
    try:
        base = parse_base(location)
    except UrlRefused as exc:
        raise ConfigError(f"CDS_TRUSTED_ISSUERS[{iss!r}]: JWKS URL refused: {exc}") from None
    if base.scheme != "https" and not is_loopback(base.host):
        raise ConfigError(f"CDS_TRUSTED_ISSUERS[{iss!r}]: JWKS URL must be https (http only for loopback)")
    return "url", location


def _issuer_entry(iss: str, value: Any) -> tuple[Any, str | None]:
    """(JWKS location, jku a token may name) for one CDS_TRUSTED_ISSUERS value.

    A value is either the JWKS location (URL or file path) or an object
    ``{"jwks": <URL or path>, "jku": <URL>}``; the object form lets an offline copy of an
    issuer's JWKS serve tokens whose ``jku`` names the issuer's public URL (never fetched).
    """
    if isinstance(value, Mapping):
        unknown = set(value) - {"jwks", "jku"}
        if unknown:
            raise ConfigError(f"CDS_TRUSTED_ISSUERS[{iss!r}]: unknown field(s) {', '.join(sorted(unknown))}")
        jku = value.get("jku")
        if jku is not None and (not isinstance(jku, str) or not jku.strip()):
            raise ConfigError(f"CDS_TRUSTED_ISSUERS[{iss!r}]: jku must be a URL")
        return value.get("jwks"), (jku.strip() if jku else None)
    return value, None


class JwksSource:
    """One issuer's key set: read from its configured location only, cached, refetched sparingly."""

    def __init__(self, iss: str, value: Any, session: requests.Session, clock: Callable[[], float]):
        self.iss = iss
        location, extra_jku = _issuer_entry(iss, value)
        self.kind, self.target = _jwks_location(iss, location)
        self.location = location.strip()
        # the jku values a token may carry: the configured JWKS URL, and the declared jku if any
        self.jkus = {j for j in (self.location if self.kind == "url" else None, extra_jku) if j}
        self.session = session
        self.clock = clock
        self._keys: dict[str, dict] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # how many times the set was read (tests and metrics)

    def key(self, kid: str) -> dict | None:
        """The JWK for ``kid``; reads the set when it is stale or does not know ``kid`` (rate-limited)."""
        with self._lock:
            now = self.clock()
            stale = self._loaded_at is None or now - self._loaded_at > JWKS_TTL_S
            if (stale or kid not in self._keys) and self._may_fetch(now):
                self._refresh(now)
            return self._keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= JWKS_MIN_REFETCH_S

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        self.fetches += 1
        try:
            document = self._read()
            keys = _signing_keys(document, self.iss)
        except (OSError, ValueError, requests.RequestException) as exc:
            # keep whatever keys we had: an unreachable issuer must not revoke keys already trusted
            log.warning("JWKS for issuer %s could not be read: %s", _safe(self.iss), _safe(str(exc), 200))
            return
        self._keys = keys
        self._loaded_at = now
        log.info("JWKS for issuer %s loaded: %d signing key(s)", _safe(self.iss), len(keys))

    def _read(self) -> Any:
        if self.kind == "file":
            raw = Path(self.target).read_bytes()
            if len(raw) > JWKS_MAX_BYTES:
                raise ValueError("JWKS file too large")
            return json.loads(raw)
        resp = self.session.get(self.target, timeout=JWKS_TIMEOUT_S, allow_redirects=False, stream=True,
                                headers={"Accept": "application/json, application/jwk-set+json"})
        try:
            if resp.status_code != 200:
                raise ValueError(f"JWKS URL answered {resp.status_code}")
            body = b""
            for chunk in resp.iter_content(64 * 1024):
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise ValueError("JWKS response too large")
        finally:
            resp.close()
        return json.loads(body)


def _signing_keys(document: Any, iss: str) -> dict[str, dict]:
    """kid -> JWK for each usable public signing key of a JWK Set. Raises ValueError if it is not a JWK Set."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: dict[str, dict] = {}
    for jwk_ in document["keys"]:
        if not isinstance(jwk_, dict):
            continue
        kid, kty = jwk_.get("kid"), jwk_.get("kty")
        if not isinstance(kid, str) or not kid:
            continue  # we look keys up by kid only
        if kty not in ("RSA", "EC", "OKP"):
            continue  # symmetric ("oct") or unknown key types are never used
        if jwk_.get("use") not in (None, "sig"):
            continue
        if any(name in jwk_ for name in ("d", "p", "q")):
            log.warning("JWKS of issuer %s publishes a private key (kid %s); ignored", _safe(iss), _safe(kid))
            continue
        keys[kid] = jwk_
    return keys


# ------------------------------------------------------------------ authenticator

class Authenticator:
    def __init__(self, config: Mapping[str, Any], session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.algorithms = accepted_algorithms(list(config.get("CDS_JWT_ALGORITHMS") or []))
        self.leeway = max(0, int(config.get("CDS_JWT_LEEWAY_S") or 0))
        self.max_lifetime = int(config.get("CDS_JWT_MAX_LIFETIME_S") or 0)
        self.tenants = set(config.get("CDS_ALLOWED_TENANTS") or [])
        self.public_base = str(config.get("CDS_PUBLIC_BASE_URL") or "").strip()
        self.session = session or requests.Session()
        self.session.trust_env = False  # key material is never fetched through an ambient proxy
        self.replay = ReplayCache(clock=clock)
        issuers = config.get("CDS_TRUSTED_ISSUERS") or {}
        self.sources: dict[str, JwksSource] = {
            str(iss): JwksSource(str(iss), location, self.session, clock) for iss, location in issuers.items()
        }
        if config.get("CDS_REQUIRE_JWT", True):
            if not self.sources:
                log.warning("CDS_TRUSTED_ISSUERS is empty: every call will be refused with 401.")
            if not self.public_base:
                log.warning("CDS_PUBLIC_BASE_URL is empty: every call will be refused with 401 "
                            "(the JWT audience cannot be checked without it).")
            if not self.algorithms:
                log.warning("CDS_JWT_ALGORITHMS has no usable algorithm: every call will be refused with 401.")

    # -------------------------------------------------------------- entry point
    def verify(self, header: str | None, audiences: list[str]) -> dict:
        token = self._bearer(header)
        if not self.public_base:
            raise AuthError("CDS_PUBLIC_BASE_URL is not set; audience cannot be checked")
        try:
            jose = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed JWT ({type(exc).__name__})") from None
        alg = jose.get("alg")
        if alg not in self.algorithms:
            raise AuthError(f"alg {_safe(alg)} not accepted")
        if "crit" in jose:
            raise AuthError("JWT has critical header extensions; none are supported")

        iss = unverified.get("iss")
        if not isinstance(iss, str) or iss not in self.sources:
            raise AuthError(f"iss {_safe(iss)} is not a trusted issuer")
        source = self.sources[iss]
        jku = jose.get("jku")
        if jku is not None and jku not in source.jkus:
            raise AuthError(f"jku {_safe(jku)} is not the JWKS configured for iss {_safe(iss)}")

        kid = jose.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("JWT has no kid")
        jwk_ = source.key(kid)
        if jwk_ is None:
            raise AuthError(f"kid {_safe(kid)} is not in the JWKS of iss {_safe(iss)}")
        key = self._key_for(jwk_, alg, kid)

        claims = self._decode(token, key, alg, iss, audiences)
        self._check_claims(claims)
        forget_after = float(claims["exp"]) + self.leeway + 1
        if not self.replay.check_and_add(iss, claims["jti"], forget_after):
            raise AuthError(f"jti replayed (iss {_safe(iss)})")
        return claims

    # -------------------------------------------------------------- steps
    @staticmethod
    def _bearer(header: str | None) -> str:
        if not header:
            raise AuthError("missing Authorization header")
        parts = header.strip().split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise AuthError("malformed Authorization header (expected 'Bearer <JWT>')")
        token = parts[1]
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("bearer token too long")
        if not _COMPACT_JWS.match(token):
            raise AuthError("bearer token is not a compact JWS")
        return token

    @staticmethod
    def _key_for(jwk_: dict, alg: str, kid: str) -> jwt.PyJWK:
        want_kty, want_crv = ASYMMETRIC_ALGORITHMS[alg]
        if jwk_.get("kty") != want_kty or (want_crv and jwk_.get("crv") != want_crv):
            raise AuthError(f"key {_safe(kid)} ({_safe(jwk_.get('kty'))} {_safe(jwk_.get('crv', ''))}) "
                            f"does not fit alg {alg}")
        if "alg" in jwk_ and jwk_["alg"] != alg:
            raise AuthError(f"key {_safe(kid)} is for alg {_safe(jwk_['alg'])}, token says {alg}")
        try:
            return jwt.PyJWK(jwk_, algorithm=alg)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise AuthError(f"key {_safe(kid)} is unusable ({type(exc).__name__})") from None

    def _decode(self, token: str, key: jwt.PyJWK, alg: str, iss: str, audiences: list[str]) -> dict:
        try:
            return jwt.decode(
                token, key=key, algorithms=[alg], audience=list(audiences), issuer=iss,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"], "verify_signature": True,
                         "verify_exp": True, "verify_iat": True, "verify_nbf": True, "verify_aud": True,
                         "verify_iss": True, "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("JWT expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("JWT iat or nbf is in the future") from None
        except jwt.InvalidAudienceError:
            raise AuthError("JWT aud is not this endpoint") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"JWT lacks the {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthError("JWT signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"JWT refused ({type(exc).__name__}: {_safe(str(exc))})") from None

    def _check_claims(self, claims: dict) -> None:
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise AuthError("jti must be a non-empty string")
        try:
            exp, iat = float(claims["exp"]), float(claims["iat"])
        except (TypeError, ValueError):
            raise AuthError("exp and iat must be numbers") from None
        if self.max_lifetime > 0 and exp - iat > self.max_lifetime:
            raise AuthError(f"JWT lifetime {int(exp - iat)} s exceeds CDS_JWT_MAX_LIFETIME_S")
        if exp <= iat:
            raise AuthError("JWT exp is not after iat")
        if self.tenants:
            tenant = claims.get("tenant")
            if not isinstance(tenant, str) or tenant not in self.tenants:
                raise AuthError(f"tenant {_safe(tenant)} is not allowed")
