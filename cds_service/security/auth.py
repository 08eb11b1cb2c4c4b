"""Verification of the EHR's signed JWT (CDS Hooks 2.0 "Trusting CDS Clients").

Interface used by the web edge: ``Authenticator(config).verify(header, audiences)``
returns the verified claims or raises ``AuthError`` (answered with 401, no details).
"""
from __future__ import annotations

from typing import Any, Mapping


class AuthError(Exception):
    """Why a token was refused. Logged, never sent to the client."""


class Authenticator:
    def __init__(self, config: Mapping[str, Any]):
        self.config = config

    def verify(self, header: str | None, audiences: list[str]) -> dict:
        if not header:
            raise AuthError("missing Authorization header")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("malformed Authorization header")
        raise AuthError("JWT verification is not configured (CDS_TRUSTED_ISSUERS)")
