"""The electrolyte trend app's HTTP side: /smart/launch, /smart/callback and the page at /smart/.

Server-rendered: the page is HTML with inline SVG charts drawn in Python (cds_service.smart.charts)
and a stylesheet served from /smart/static; there is no script at all, so the Content-Security-
Policy can forbid every script. Range, unit and focus are plain links (GET parameters).
"""
from __future__ import annotations

import hmac
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import requests
from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from ..config import REPO_ROOT
from ..fhir.client import ClientSettings, FhirClient, FhirError
from ..fhir.parse import bundle_resources
from ..fhir.urls import Allowlist
from ..clinical import codes
from ..timing import Deadline
from . import appcontext, charts, domain, oauth, trends
from .sealed import Sealer, resolve_secret

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
bp = Blueprint("smart", __name__, url_prefix="/smart", static_folder=str(STATIC), static_url_path="/static")

LAUNCH_COOKIE, SESSION_COOKIE = "smart_launch", "smart_session"
LAUNCH_MAX_AGE_S = 600
SESSION_MAX_AGE_S = 3600
FHIR_BUDGET_MS = 15000
TABLE_ROWS = 1000  # newest rows in the table; ?rows=all for every one (the charts always draw every result)
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors {ancestors}")

_LABS = ",".join(f"{codes.LOINC}|{c}" for a in trends.ANALYTES for c in codes.ANALYTE_LOINC[a])
_PROCS = ",".join(f"{s}|{c}" for s, c in sorted(codes.DIALYSIS_PROCEDURES))
_CRAMPS = ",".join(f"{s}|{c}" for s, c in sorted(codes.CRAMP_CODES))
# kind -> (query, required): without the labs or the sessions the page would mislead, so it is not drawn.
QUERIES = {
    "labs": ("Observation?patient={p}&code=" + _LABS + "&date=ge{since}&_count=1000", True),
    "procedures": ("Procedure?patient={p}&code=" + _PROCS + "&date=ge{since}&_count=1000", True),
    "weights": ("Observation?patient={p}&code=" + ",".join(f"{codes.LOINC}|{c}" for c in codes.ANALYTE_LOINC["weight"])
                + "&date=ge{since}&_count=1000", False),
    "symptoms": ("Observation?patient={p}&code=" + _CRAMPS + "&date=ge{since}&_count=200", False),
    "conditions": ("Condition?patient={p}&_count=200", False),
    "meds": ("MedicationRequest?patient={p}&_count=500", False),
    "patient": ("Patient/{p}", False),
}
WHAT = {"weights": "body weights", "symptoms": "documented cramps (observations)",
        "conditions": "documented cramps (conditions)", "meds": "medication orders", "patient": "the patient's name"}


class _State:
    def __init__(self, cfg: Mapping[str, Any]):
        self.cfg = cfg
        secret = resolve_secret(cfg["CDS_SMART_SECRET"], REPO_ROOT / "var" / "smart-app.key")
        self.launch_seal = Sealer(secret, "launch")
        self.session_seal = Sealer(secret, "session")
        self.allowlist = Allowlist(cfg["CDS_ALLOWED_FHIR_SERVERS"])
        self.http = requests.Session()
        self.http.trust_env = False
        self.fhir = FhirClient(self.allowlist, ClientSettings(
            timeout_ms=max(cfg["CDS_FHIR_TIMEOUT_MS"], 5000), max_pages=50, max_entries=50000))
        self.now = cfg.get("NOW_FN") or (lambda: datetime.now(timezone.utc))


def register(app: Flask, cfg: Mapping[str, Any]) -> None:
    app.extensions["smart"] = _State(cfg)
    app.register_blueprint(bp)


def _st() -> _State:
    return current_app.extensions["smart"]


def launch_url(cfg: Mapping[str, Any], url_root: str) -> str:
    """The app's launch URL as cards link to it: CDS_SMART_APP_URL, else this service's own /smart/launch."""
    if cfg.get("CDS_SMART_APP_URL"):
        return cfg["CDS_SMART_APP_URL"]
    base = (cfg.get("CDS_PUBLIC_BASE_URL") or url_root).rstrip("/")
    return f"{base}/smart/launch"


def _public(path: str) -> str:
    base = (_st().cfg["CDS_PUBLIC_BASE_URL"] or request.url_root).rstrip("/")
    return base + path


def _secure() -> bool:
    return request.is_secure or str(_st().cfg["CDS_PUBLIC_BASE_URL"]).startswith("https://")


def _set_cookie(resp: Response, name: str, value: str, max_age: int) -> None:
    # Cross-site iframes (an EHR embedding the app) need SameSite=None, which browsers accept only with Secure.
    resp.set_cookie(name, value, max_age=max_age, path="/smart", httponly=True, secure=_secure(),
                    samesite="None" if _secure() else "Lax")


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP.format(ancestors=_st().cfg["CDS_SMART_FRAME_ANCESTORS"])
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"  # the callback URL carries the code
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def message(title: str, text: str, status: int, hint: str | None = None) -> tuple[str, int]:
    return render_template("smart_message.html", title=title, text=text, hint=hint, status=status), status


@bp.errorhandler(oauth.LaunchError)
def _launch_error(err: oauth.LaunchError):
    log.info("SMART launch stopped: %s", err.title, extra={"event": "smart-launch", "status": err.status})
    return message(err.title, err.message, err.status, "Launch the app again from the patient's chart.")


@bp.errorhandler(Exception)
def _unexpected(err: Exception):
    if hasattr(err, "code") and isinstance(getattr(err, "code"), int):  # werkzeug HTTP errors (404, 405)
        return message("Not found" if err.code == 404 else "Not allowed", "There is no such page in the app.",
                       err.code)
    log.exception("unexpected error in the SMART app", extra={"event": "error", "path": request.path})
    return message("Something went wrong", "The app could not show this page; the event was logged.", 500)


# ----------------------------------------------------------------------------------- launch

@bp.get("/launch")
def launch():
    st = _st()
    iss, launch_id = request.args.get("iss", ""), request.args.get("launch")
    if not iss:
        return message("Open this app from the EHR",
                       "The app was opened without an EHR (no iss parameter). Open it from a patient's chart or "
                       "from a card's link.", 400)
    if not st.allowlist.allows(iss):
        log.warning("SMART launch from a FHIR server not in CDS_ALLOWED_FHIR_SERVERS",
                    extra={"event": "smart-launch", "status": 403})
        return message("This EHR is not registered with the app",
                       "Its FHIR server is not one the service may contact (CDS_ALLOWED_FHIR_SERVERS).", 403)
    config = oauth.discover(st.http, iss)
    verifier, challenge = oauth.new_pkce()
    state = oauth.new_state()
    redirect_uri = _public("/smart/callback")
    scope = oauth.EHR_SCOPES if launch_id else oauth.STANDALONE_SCOPES
    target = oauth.authorization_url(config, client_id=st.cfg["CDS_SMART_CLIENT_ID"], redirect_uri=redirect_uri,
                                     scope=scope, state=state, challenge=challenge, aud=iss, launch=launch_id)
    resp = redirect(target, code=302)
    _set_cookie(resp, LAUNCH_COOKIE, st.launch_seal.seal({
        "state": state, "verifier": verifier, "iss": iss, "token": config.token_endpoint,
        "redirect": redirect_uri}), LAUNCH_MAX_AGE_S)
    return resp


@bp.get("/callback")
def callback():
    st = _st()
    if request.args.get("error"):
        why = str(request.args.get("error_description") or request.args["error"])[:200]
        return message("The EHR did not authorize the app", why, 403)
    pending = st.launch_seal.open(request.cookies.get(LAUNCH_COOKIE), LAUNCH_MAX_AGE_S)
    if pending is None:
        return message("No launch in progress",
                       "This sign-in does not match a launch started in this browser in the last 10 minutes "
                       "(the launch expired, or the page was opened from elsewhere).", 400,
                       "Launch the app again from the patient's chart.")
    state = request.args.get("state")
    if not state or not hmac.compare_digest(state, pending["state"]):
        log.warning("SMART callback with a missing or mismatched state", extra={"event": "smart-launch",
                                                                                "status": 400})
        return message("The sign-in could not be verified",
                       "The answer from the EHR does not carry this launch's state parameter, so it may not "
                       "come from the launch you started.", 400, "Launch the app again from the patient's chart.")
    code = request.args.get("code")
    if not code:
        return message("The sign-in could not be completed", "The EHR sent no authorization code.", 400)
    token = oauth.exchange(st.http, pending["token"], code=code, redirect_uri=pending["redirect"],
                           client_id=st.cfg["CDS_SMART_CLIENT_ID"], verifier=pending["verifier"])
    context = appcontext.read(token.get("appContext"))
    try:
        lifetime = int(token.get("expires_in") or SESSION_MAX_AGE_S)
    except (TypeError, ValueError):
        lifetime = SESSION_MAX_AGE_S
    lifetime = max(60, min(SESSION_MAX_AGE_S, lifetime))
    session = {"iss": pending["iss"], "token": token["access_token"], "patient": token["patient"],
               "exp": int(time.time()) + lifetime, **context}
    log.info("SMART app launched", extra={"event": "smart-launch", "status": 200,
                                          "hookInstance": context.get("hookInstance", "-")})
    resp = redirect(url_for(".page", analyte=context["analyte"]), code=303)
    _set_cookie(resp, SESSION_COOKIE, st.session_seal.seal(session), lifetime)
    resp.delete_cookie(LAUNCH_COOKIE, path="/smart")
    return resp


# ----------------------------------------------------------------------------------- the page

def _choice(name: str, allowed, default):
    value: Any = request.args.get(name)
    if name == "days":
        try:
            value = int(value) if value is not None else default
        except ValueError:
            value = default
    return value if value in allowed else default


def read_patient(fhir: FhirClient, iss: str, token: str, patient: str, since: datetime,
                 budget_ms: int = FHIR_BUDGET_MS) -> tuple[dict[str, list[dict]], dict[str, FhirError]]:
    """Every query at once against the EHR's FHIR server with the user's token."""
    base = iss.rstrip("/")
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    urls = {kind: f"{base}/{q.format(p=quote(patient, safe=''), since=stamp)}" for kind, (q, _r) in QUERIES.items()}
    results = fhir.fetch_wave(urls, token, Deadline(budget_ms))
    raw: dict[str, list[dict]] = {}
    errors: dict[str, FhirError] = {}
    for kind, res in results.items():
        if res.error is not None:
            errors[kind] = res.error
            raw[kind] = []
        else:
            raw[kind] = bundle_resources(res.data)
    return raw, errors


def _patient_name(raw: list[dict]) -> str | None:
    for res in raw:
        for name in res.get("name") or []:
            if isinstance(name, dict):
                text = name.get("text") or " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()
                if text:
                    return str(text)[:120]
    return None


def table_rows(view: trends.TrendView, unit: str, limit: int | None) -> list[Markup]:
    """The results table's rows, newest first (at most ``limit``), as HTML: built here rather than in the
    template because a year of results is thousands of rows."""
    rows = sorted(((a, p) for a in trends.ANALYTES for p in view.series[a]), key=lambda t: t[1].result.time,
                  reverse=True)
    out = []
    for analyte, point in rows[:limit]:
        r, cls = point.result, point.cls.value
        value = (f"{r.comparator} " if r.comparator else "") + trends.format_value(analyte, r.value, unit)
        out.append(Markup(
            f'<tr data-analyte="{analyte}" data-class="{cls}"><td>{r.time:%Y-%m-%d %H:%M}</td>'
            f'<td>{trends.SHORT[analyte]}</td><td class="num">{escape(value)}</td>'
            f'<td>{escape(trends.shown_unit(analyte, unit))}</td><td>{r.original_value:g} {escape(r.original_unit)}</td>'
            f'<td>{cls}</td><td>{escape(r.status)}</td></tr>'))
    return out


@bp.get("/")
def page():
    st = _st()
    session = st.session_seal.open(request.cookies.get(SESSION_COOKIE), SESSION_MAX_AGE_S)
    if session is None or session.get("exp", 0) < time.time():
        return message("Your session has ended",
                       "The app has no current sign-in from the EHR in this browser (it lasts at most an hour).",
                       401, "Launch the app again from the patient's chart.")
    days = _choice("days", trends.RANGES, trends.DEFAULT_RANGE)
    unit = _choice("unit", trends.UNITS, "mmol/L")
    focus = _choice("analyte", trends.ANALYTES, session.get("analyte", appcontext.DEFAULT_ANALYTE))
    now = st.now()
    started = time.perf_counter()
    raw, errors = read_patient(st.fhir, session["iss"], session["token"], session["patient"],
                               now - timedelta(days=days))
    fetched = time.perf_counter()
    for kind, (_q, required) in QUERIES.items():
        err = errors.get(kind)
        if err is None or not required:
            continue
        if err.kind == "unauthorized" or err.status in (401, 403):
            return message("The EHR no longer accepts the app's sign-in",
                           "Its FHIR server refused the access token (expired or revoked).", 401,
                           "Launch the app again from the patient's chart.")
        log.warning("SMART app: FHIR %s query failed: %s", kind, err.kind,
                    extra={"event": "smart-fhir", "status": 502})
        return message("The EHR's FHIR server did not answer",
                       f"The patient's {'lab results' if kind == 'labs' else 'dialysis sessions'} could not be read "
                       f"({err.kind}{' ' + str(err.status) if err.status else ''}). Nothing is shown rather than "
                       "an incomplete trend.", 502, "Try again in a minute; if it persists, tell the EHR team.")
    view = trends.build(session["patient"], raw, now, days)
    built = time.perf_counter()
    notes = [f"{WHAT[k]} could not be read ({e.kind})" for k, e in errors.items() if k in WHAT]
    order = [focus] + [a for a in trends.ANALYTES if a != focus]
    html = render_template(
        "smart_app.html", view=view, unit=unit, days=days, focus=focus, order=order, notes=notes,
        name=_patient_name(raw.get("patient") or []), charts=charts, trends=trends, domain=domain,
        labels=codes.ANALYTE_LABEL, hook_instance=session.get("hookInstance"),
        chart_svgs={a: charts.analyte_chart(view, a, unit) for a in trends.ANALYTES},
        timeline=charts.timeline(view), ufr=charts.ufr_chart(view),
        rows=table_rows(view, unit, None if request.args.get("rows") == "all" else TABLE_ROWS),
        all_rows=view.lab_count)
    resp = Response(html, mimetype="text/html")
    resp.headers["Server-Timing"] = (f"fetch;dur={(fetched - started) * 1000:.1f}, build;dur={(built - fetched) * 1000:.1f}, "
                                     f"render;dur={(time.perf_counter() - built) * 1000:.1f}")
    return resp
