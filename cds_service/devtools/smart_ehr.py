"""An EHR test double for the SMART trend app: OAuth 2.0 authorization server, FHIR gateway, card sidebar.

The demo FHIR server (sekmet-fhir) answers ``.well-known/smart-configuration``, but for SMART Backend
Services only: ``grant_types_supported`` is ``client_credentials``, its authorize endpoint refuses every
request, and it advertises no PKCE. An EHR launch cannot run against it directly. This double stands
where Epic's or Oracle's FHIR gateway stands: it is the ``iss`` the app is launched with, serves the
SMART configuration at ``{iss}/.well-known/smart-configuration`` (so the app's real discovery code runs),
and forwards FHIR reads to sekmet after checking the access token it issued.

- ``/auth/authorize`` and ``/auth/token``: Authlib's AuthorizationServer, authorization-code grant with
  PKCE (S256 only, required) for one registered public client; the signed-in user is a fixed demo
  clinician who approves; the launch context (patient, appContext) travels with the code and comes back
  in the token response, as SMART and CDS Hooks say.
- ``/fhir/...``: Authlib's ResourceProtector checks the Bearer token; SMART scopes and the patient
  compartment are enforced; the request goes on to sekmet with sekmet's own static token.
- ``/ehr/patient/<id>``: plays the EHR's card sidebar: calls the CDS service's patient-view hook for the
  patient and draws the cards; a card's ``smart`` link goes through ``/ehr/launch``, which records a
  launch context and opens the app with ``launch`` and ``iss``.

Runs in a thread (``EhrDouble.start()``) in the demo and in the tests. Knobs for the tests:
``code_lifetime_s`` (an expired code) and ``fail_fhir`` (a FHIR server answering 500).
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import make_server

from .fhir_server import free_port

log = logging.getLogger(__name__)

SUPPORTED_SCOPES = ["launch", "launch/patient", "patient/*.rs", "patient/*.read", "patient/Patient.r",
                    "patient/Patient.rs", "patient/Observation.rs", "patient/Procedure.rs",
                    "patient/MedicationRequest.rs", "patient/Condition.rs", "patient/Encounter.rs"]


# ------------------------------------------------------------------------------ Authlib models

@dataclass
class Client(ClientMixin):
    client_id: str
    redirect_uris: list[str]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in SUPPORTED_SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return False  # a public client has no secret

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "none"

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str
    code_challenge_method: str
    patient: str | None
    app_context: str | None
    lifetime_s: float
    auth_time: float = field(default_factory=time.time)

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def is_expired(self):
        return time.time() > self.auth_time + self.lifetime_s


@dataclass
class Token(TokenMixin):
    access_token: str
    client_id: str
    scope: str
    patient: str | None
    expires_at: float

    def check_client(self, client):
        return client.get_client_id() == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return int(self.expires_at - time.time())

    def is_expired(self):
        return time.time() >= self.expires_at

    def is_revoked(self):
        return False


class S256Only(CodeChallenge):
    """PKCE is required on every authorization request, and only with S256 (SMART App Launch 2)."""
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required")
        return super().validate_code_challenge(grant, redirect_uri)


# ------------------------------------------------------------------------------ the double

class EhrDouble:
    def __init__(self, upstream_fhir: str, upstream_token: str, client_id: str, redirect_uris: list[str],
                 app_launch_url: str, cds_service_url: str | None = None, standalone_patient: str | None = None,
                 code_lifetime_s: float = 60.0, token_lifetime_s: int = 3600, host: str = "127.0.0.1",
                 port: int | None = None):
        self.upstream_fhir = upstream_fhir.rstrip("/")
        self.upstream_token = upstream_token
        self.client = Client(client_id, list(redirect_uris))
        self.app_launch_url = app_launch_url
        self.cds_service_url = cds_service_url
        self.standalone_patient = standalone_patient
        self.code_lifetime_s = code_lifetime_s
        self.token_lifetime_s = token_lifetime_s
        self.fail_fhir = False
        self.host, self.port = host, port or free_port()
        self.base_url = f"http://{host}:{self.port}"
        self.fhir_base = f"{self.base_url}/fhir"
        self.launches: dict[str, dict] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.fhir_requests: list[str] = []  # paths (no tokens) the app read, for the tests
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._http.trust_env = False
        self.app = self._build_app()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> "EhrDouble":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines would carry codes
        self._server = make_server(self.host, self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="ehr-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -------------------------------------------------------------- launches
    def new_launch(self, patient: str, app_context: str | None = None) -> str:
        launch = secrets.token_urlsafe(16)
        with self._lock:
            self.launches[launch] = {"patient": patient, "appContext": app_context}
        return launch

    def launch_url(self, patient: str, app_context: str | None = None, app_url: str | None = None) -> str:
        launch = self.new_launch(patient, app_context)
        target = app_url or self.app_launch_url
        sep = "&" if urlsplit(target).query else "?"
        return f"{target}{sep}{urlencode({'launch': launch, 'iss': self.fhir_base})}"

    # -------------------------------------------------------------- app
    def _build_app(self) -> Flask:
        app = Flask("ehr-double")
        double = self

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

            def save_authorization_code(self, code, req):
                data = req.payload.data
                launch = data.get("launch")
                scopes = (req.payload.scope or "").split()
                context = None
                if launch:
                    with double._lock:
                        context = double.launches.get(launch)
                    if context is None:
                        raise InvalidRequestError("Unknown launch")
                elif "launch/patient" in scopes and double.standalone_patient:
                    context = {"patient": double.standalone_patient, "appContext": None}
                item = Code(code=code, client_id=req.client.get_client_id(), redirect_uri=req.payload.redirect_uri,
                            scope=req.payload.scope or "", user=req.user,
                            code_challenge=data.get("code_challenge"),
                            code_challenge_method=data.get("code_challenge_method"),
                            patient=(context or {}).get("patient"), app_context=(context or {}).get("appContext"),
                            lifetime_s=double.code_lifetime_s)
                with double._lock:
                    double.codes[code] = item

            def query_authorization_code(self, code, client):
                with double._lock:
                    item = double.codes.get(code)
                if item and item.client_id == client.get_client_id() and not item.is_expired():
                    return item
                return None

            def delete_authorization_code(self, authorization_code):
                with double._lock:
                    double.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        def query_client(client_id):
            return double.client if client_id == double.client.client_id else None

        def save_token(token, req):
            code = req.authorization_code
            # SMART: the launch context comes back beside the token; CDS Hooks: so does the card's appContext.
            if code.patient:
                token["patient"] = code.patient
            if code.app_context:
                token["appContext"] = code.app_context
            with double._lock:
                double.tokens[token["access_token"]] = Token(
                    token["access_token"], code.client_id, token.get("scope", ""), code.patient,
                    time.time() + int(token.get("expires_in", double.token_lifetime_s)))

        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": self.token_lifetime_s}
        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_grant(CodeGrant, [S256Only(required=True)])

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string):
                with double._lock:
                    return double.tokens.get(token_string)

        protect = ResourceProtector()
        protect.register_token_validator(Validator())

        @app.get("/fhir/.well-known/smart-configuration")
        def smart_configuration():
            return jsonify({
                "authorization_endpoint": f"{double.base_url}/auth/authorize",
                "token_endpoint": f"{double.base_url}/auth/token",
                "token_endpoint_auth_methods_supported": ["none"],
                "grant_types_supported": ["authorization_code"],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": SUPPORTED_SCOPES,
                "capabilities": ["launch-ehr", "launch-standalone", "client-public", "context-ehr-patient",
                                 "context-standalone-patient", "permission-patient", "permission-v2"],
            })

        @app.route("/auth/authorize", methods=["GET", "POST"])
        def authorize():
            try:
                grant = server.get_consent_grant(end_user="Practitioner/demo-nephrologist")
            except OAuth2Error as err:  # bad client or redirect_uri: never redirect, say so here
                return Response(f"Authorization refused: {escape(err.error)}: {escape(err.description or '')}",
                                400, mimetype="text/plain")
            return server.create_authorization_response(grant_user=grant.request.user, grant=grant)

        @app.post("/auth/token")
        def issue_token():
            return server.create_token_response()

        @app.get("/fhir/<path:path>")
        def fhir(path: str):
            try:
                token = protect.acquire_token()
            except OAuth2Error as err:
                return _outcome(401, "login", f"{err.error}: {err.description or ''}")
            problem = _scope_problem(token, path, request.args)
            if problem:
                return _outcome(403, "forbidden", problem)
            double.fhir_requests.append(request.full_path)
            if double.fail_fhir:
                return _outcome(500, "exception", "The FHIR server failed (test double switched to failing)")
            upstream = f"{double.upstream_fhir}/{path}"
            resp = double._http.get(upstream, params=list(request.args.items(multi=True)), timeout=30,
                                    headers={"Authorization": f"Bearer {double.upstream_token}",
                                             "Accept": "application/fhir+json"})
            body = resp.content.replace(double.upstream_fhir.encode(), double.fhir_base.encode())
            return Response(body, resp.status_code, mimetype="application/fhir+json")

        @app.get("/ehr/patient/<patient>")
        def sidebar(patient: str):
            return double._sidebar(patient)

        @app.get("/ehr/launch")
        def ehr_launch():
            target = request.args.get("app", double.app_launch_url)
            if target.split("?")[0] != double.app_launch_url.split("?")[0]:
                return Response("Not a registered SMART app", 400, mimetype="text/plain")
            return redirect(double.launch_url(request.args["patient"], request.args.get("appContext"), target))

        return app

    def _sidebar(self, patient: str) -> Response:
        """The EHR's card sidebar for one patient (patient-view, fetch mode against the upstream FHIR server)."""
        from .demo import build_request  # one request builder for the demo files and this page

        body = build_request("dialysis-electrolytes-patient-view", patient, self.upstream_fhir, self.upstream_token)
        answer = self._http.post(f"{self.cds_service_url}/cds-services/dialysis-electrolytes-patient-view",
                                 json=body, timeout=30)
        cards = answer.json().get("cards", []) if answer.status_code == 200 else []
        items = []
        for card in cards:
            links = []
            for link in card.get("links") or []:
                if link.get("type") == "smart":
                    href = "/ehr/launch?" + urlencode({"app": link["url"], "patient": patient,
                                                       "appContext": link.get("appContext", "")})
                    links.append(f'<a class="smart-link" href="{escape(href)}">{escape(link["label"])}</a>')
                else:
                    links.append(f'<a href="{escape(link["url"])}">{escape(link["label"])}</a>')
            items.append(f'<article class="card" data-topic="{escape(card["source"]["topic"]["code"])}" '
                         f'data-indicator="{escape(card["indicator"])}"><h2>{escape(card["summary"])}</h2>'
                         f'<p>{" · ".join(links)}</p></article>')
        page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>EHR test double: {escape(patient)}"
                f"</title></head><body data-ready='true'><h1>Patient {escape(patient)}: CDS cards "
                f"(HTTP {answer.status_code})</h1>{''.join(items) or '<p>No cards.</p>'}</body></html>")
        return Response(page, mimetype="text/html")


def _outcome(status: int, code: str, text: str) -> Response:
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    resp = jsonify(body)
    resp.status_code = status
    resp.mimetype = "application/fhir+json"
    return resp


def _scope_problem(token: Token, path: str, args) -> str | None:
    """SMART v2 patient scopes: patient/<Type>.rs (or .read, or *), and only the launch patient's data."""
    rtype = path.split("/")[0]
    scopes = token.scope.split()
    wanted = {f"patient/{rtype}.rs", f"patient/{rtype}.read", "patient/*.rs", "patient/*.read"}
    if rtype == "Patient":
        wanted.add("patient/Patient.r")
    if not wanted & set(scopes):
        return f"the token's scopes do not allow reading {rtype}"
    if rtype == "Patient":
        return None if path == f"Patient/{token.patient}" else "only the launch patient may be read"
    subject = args.get("patient") or args.get("subject", "").removeprefix("Patient/")
    if "/" in path or subject != token.patient:
        return "searches must name the launch patient (patient=...)"
    return None
