"""SMART App Launch 2.x, app side: discovery, authorization request with PKCE (S256) and state, code exchange.

PKCE pieces come from Authlib (RFC 7636 S256 challenge, random tokens); the two HTTP calls are
plain requests with timeouts. Every failure is a LaunchError with a message fit for the page.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ..fhir.urls import is_loopback

EHR_SCOPES = ("launch patient/Patient.r patient/Observation.rs patient/Procedure.rs "
              "patient/MedicationRequest.rs patient/Condition.rs")
STANDALONE_SCOPES = EHR_SCOPES.replace("launch ", "launch/patient ", 1)
TIMEOUT_S = 8.0


class LaunchError(Exception):
    def __init__(self, title: str, message: str, status: int = 400):
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ServerConfig:
    authorization_endpoint: str
    token_endpoint: str
    capabilities: tuple[str, ...]


def _safe_endpoint(url: object, what: str) -> str:
    if not isinstance(url, str):
        raise LaunchError("The EHR's SMART configuration is incomplete", f"It names no {what}.", 502)
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        return url
    raise LaunchError("The EHR's SMART configuration is not safe",
                      f"Its {what} is not an https URL, so the app will not send credentials to it.", 502)


def discover(session: requests.Session, iss: str) -> ServerConfig:
    """GET {iss}/.well-known/smart-configuration and check it supports this app's launch."""
    url = iss.rstrip("/") + "/.well-known/smart-configuration"
    try:
        resp = session.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT_S, allow_redirects=False)
    except requests.RequestException:
        raise LaunchError("The EHR's FHIR server could not be reached",
                          "Its SMART configuration did not arrive; try again, or ask the EHR team.", 502) from None
    if resp.status_code != 200:
        raise LaunchError("The EHR's FHIR server offers no SMART configuration",
                          f"{url} answered HTTP {resp.status_code}.", 502)
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise LaunchError("The EHR's SMART configuration is not readable", "It is not a JSON object.", 502)
    methods = doc.get("code_challenge_methods_supported") or []
    grants = doc.get("grant_types_supported")
    if isinstance(grants, list) and "authorization_code" not in grants:
        raise LaunchError("This FHIR server does not support app launch",
                          "Its SMART configuration offers no authorization_code grant (only "
                          f"{', '.join(map(str, grants))[:80]}), so no user can authorize the app.", 502)
    if "S256" not in methods:
        raise LaunchError("This FHIR server does not support PKCE (S256)",
                          "SMART App Launch 2 requires it; the app will not launch without it.", 502)
    caps = doc.get("capabilities")
    return ServerConfig(_safe_endpoint(doc.get("authorization_endpoint"), "authorization endpoint"),
                        _safe_endpoint(doc.get("token_endpoint"), "token endpoint"),
                        tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else ())


def new_pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge): 64 random characters, RFC 7636 section 4.1."""
    verifier = generate_token(64)
    return verifier, create_s256_code_challenge(verifier)


def new_state() -> str:
    return generate_token(32)


def authorization_url(config: ServerConfig, *, client_id: str, redirect_uri: str, scope: str, state: str,
                      challenge: str, aud: str, launch: str | None) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "state": state, "aud": aud, "code_challenge": challenge, "code_challenge_method": "S256"}
    if launch:
        params["launch"] = launch
    sep = "&" if urlsplit(config.authorization_endpoint).query else "?"
    return config.authorization_endpoint + sep + urlencode(params)


def exchange(session: requests.Session, token_endpoint: str, *, code: str, redirect_uri: str, client_id: str,
             verifier: str) -> dict:
    """POST the code and verifier (public client: no secret). Returns the token response."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
            "code_verifier": verifier}
    try:
        resp = session.post(token_endpoint, data=form, headers={"Accept": "application/json"}, timeout=TIMEOUT_S,
                            allow_redirects=False)
    except requests.RequestException:
        raise LaunchError("The EHR's authorization server could not be reached",
                          "The sign-in could not be completed; launch the app again from the EHR.", 502) from None
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        error = body.get("error") if isinstance(body, dict) else None
        if error == "invalid_grant":
            raise LaunchError("The sign-in expired", "The EHR refused the authorization code (expired or already "
                              "used). Launch the app again from the EHR.", 400)
        raise LaunchError("The EHR refused the sign-in",
                          f"Its token endpoint answered HTTP {resp.status_code}"
                          + (f" ({str(error)[:60]})" if error else "") + ". Launch the app again from the EHR.", 502)
    if str(body.get("token_type", "")).lower() != "bearer":
        raise LaunchError("The EHR's token is not usable", "The token type is not Bearer.", 502)
    if not isinstance(body.get("patient"), str) or not body["patient"]:
        raise LaunchError("No patient in context", "The EHR did not say which patient the app is for. "
                          "Open the app from a patient's chart.", 400)
    return body
