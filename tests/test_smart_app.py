"""The electrolyte trend app end to end over HTTP: the EHR test double (Authlib authorization server and FHIR
gateway) in front of the real FHIR server, the service under gunicorn with two workers.

Covers the EHR launch (PKCE S256, state, code exchange, patient and appContext from the token response),
the standalone launch, what the page shows (every fixture result, classes, units), the card's smart link,
and every bad input giving a clear page: missing or mismatched state, an expired code, a failing FHIR
server, a patient with no labs, an unregistered or launch-less FHIR server.
"""
from __future__ import annotations

import json
import re
from html import unescape

import pytest
import requests

from support.helpers import PV, hook_request, rule_of
from support.smart import NO_LABS, TREND, data_attr, fixture_results

pytestmark = pytest.mark.fhir_server




def _no_trace(page: str) -> None:
    assert "Traceback" not in page and "Internal Server Error" not in page


def _message(resp: requests.Response) -> str:
    return unescape(re.search(r"<h1>(.*?)</h1>", resp.text).group(1))


def test_ehr_launch_shows_every_result_of_the_patient_with_its_class(env):
    resp = env.launch(TREND, json.dumps({"analyte": "k", "hookInstance": "hook-1"}))
    assert resp.status_code == 200, resp.text[:500]
    assert resp.url.startswith(env.service.base_url + "/smart/")
    page = resp.text
    assert data_attr(page, "data-focus") == "k"  # appContext chose the analyte to open on
    assert "Astrid Lindqvist" in page
    for analyte in ("mg", "ica", "k", "po4"):
        expected = fixture_results(TREND, analyte, env.fhir.loaded_at)
        assert expected, analyte
        svg = re.search(rf'<svg class="chart"[^>]*data-analyte="{analyte}" data-points="(\d+)"', page)
        assert int(svg.group(1)) == len(expected), analyte
        assert len(re.findall(rf'<tr data-analyte="{analyte}"', page)) == len(expected), analyte
    # The newest Mg was drawn 30 min before the last session started: superseded (pre-session), 0.52 mmol/L.
    latest_mg = re.search(r'<tr data-analyte="mg" data-class="([a-z-]+)"><td>[^<]+</td><td>Mg</td>'
                          r'<td class="num">([0-9.]+)</td>', page)
    assert latest_mg.groups() == ("pre-session", "0.52")
    classes = set(re.findall(r'<tr data-analyte="k" data-class="([a-z-]+)"', page))
    assert {"pre-session", "early-post"} <= classes  # post-session K draws are early-post
    assert "intradialytic" in set(re.findall(r'<tr data-analyte="ica" data-class="([a-z-]+)"', page))
    # Sessions shaded, medication orders and cramps on the timeline, UFR per session with the high one flagged.
    assert len(re.findall(r'<rect class="session"', page)) >= 4 * 36
    assert data_attr(page, "data-meds") == "3" and data_attr(page, "data-cramps") == "2"
    assert len(re.findall(r'<tr class="high">', page)) == 1
    # Only the launch patient's data was asked for, through the gateway, never with an ambient token.
    assert env.double.fhir_requests and all(f"patient={TREND}" in p or p.startswith(f"/fhir/Patient/{TREND}")
                                            for p in env.double.fhir_requests)


def test_without_app_context_the_app_opens_on_magnesium(env):
    resp = env.launch(TREND, None)  # Oracle Health passes no appContext
    assert resp.status_code == 200
    assert data_attr(resp.text, "data-focus") == "mg"
    assert 'class="analyte analyte--focus" id="chart-mg"' in resp.text


@pytest.mark.parametrize("analyte", ["mg", "ica", "k", "po4"])
def test_app_context_opens_on_each_analyte(env, analyte):
    resp = env.launch(TREND, json.dumps({"analyte": analyte}))
    assert data_attr(resp.text, "data-focus") == analyte
    first_chart = re.search(r'<figure class="analyte[^"]*" id="chart-(\w+)"', resp.text).group(1)
    assert first_chart == analyte


def test_units_switch_between_mmol_mg_dl_and_meq(env):
    session = requests.Session()
    assert env.launch(TREND, None, session).status_code == 200
    row = r'<tr data-analyte="{a}" data-class="[a-z-]+"><td>[^<]+</td><td>{s}</td><td class="num">([0-9.]+)</td><td>([^<]+)</td>'
    pages = {u: session.get(f"{env.service.base_url}/smart/", params={"unit": u}, timeout=30).text
             for u in ("mmol/L", "mg/dL", "mEq/L")}
    latest = {u: re.search(row.format(a="mg", s="Mg"), p).groups() for u, p in pages.items()}
    assert latest == {"mmol/L": ("0.52", "mmol/L"), "mg/dL": ("1.3", "mg/dL"), "mEq/L": ("1.04", "mEq/L")}
    k = {u: re.search(row.format(a="k", s="K"), p).groups()[1] for u, p in pages.items()}
    assert k == {"mmol/L": "mmol/L", "mg/dL": "mg/dL", "mEq/L": "mEq/L"}
    # Phosphate has no fixed mEq/L factor: it stays in mmol/L, and the page says why.
    assert re.search(row.format(a="po4", s="PO4"), pages["mEq/L"]).groups()[1] == "mmol/L"
    assert "no fixed mEq/L factor" in pages["mEq/L"]
    # The period selector narrows what is read and drawn.
    week = session.get(f"{env.service.base_url}/smart/", params={"days": 7}, timeout=30).text
    assert int(data_attr(week, "data-labs")) < int(data_attr(pages["mmol/L"], "data-labs"))


def test_standalone_launch_picks_a_patient_at_the_authorization_server(env):
    resp = requests.get(f"{env.service.base_url}/smart/launch", params={"iss": env.double.fhir_base}, timeout=30)
    assert resp.status_code == 200 and data_attr(resp.text, "data-focus") == "mg"
    assert "Astrid Lindqvist" in resp.text


def test_page_is_strict_no_script_no_store_and_tokens_stay_out_of_logs(env):
    resp = env.launch(TREND, None)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'none'" in csp and "default-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert "<script" not in resp.text and " style=" not in resp.text
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Referrer-Policy"] == "no-referrer"
    cookie = resp.history[-1].headers["Set-Cookie"]  # the callback's answer sets the session cookie
    assert "HttpOnly" in cookie and "Path=/smart" in cookie
    tokens = list(env.double.tokens)
    assert tokens and not any(t in resp.text or t in cookie for t in tokens)
    log = env.service.log_text()
    assert "SMART app launched" in log
    assert not any(t in log for t in tokens)


def test_card_link_is_a_smart_link_to_the_app_with_the_analyte_and_hook_instance(env):
    body = hook_request(PV, TREND, fhir_server=env.fhir.base_url, token=env.fhir.token)
    cards = env.service.post(f"/cds-services/{PV}", body).json()["cards"]
    low_mg = next(c for c in cards if rule_of(c) == "electrolyte-review")
    link = low_mg["links"][0]
    assert link["type"] == "smart" and link["url"] == f"{env.service.base_url}/smart/launch"
    assert json.loads(link["appContext"]) == {"analyte": "mg", "hookInstance": body["hookInstance"]}


def test_card_sidebar_link_launches_the_app(env):
    session = requests.Session()
    sidebar = session.get(f"{env.double.base_url}/ehr/patient/{TREND}", timeout=30).text
    href = unescape(re.search(r'class="smart-link" href="([^"]+)"', sidebar).group(1))
    resp = session.get(env.double.base_url + href, timeout=30)
    assert resp.status_code == 200 and data_attr(resp.text, "data-focus") == "mg"


# ------------------------------------------------------------------------------------------ bad input

def _authorized_callback(env, patient=TREND) -> tuple[requests.Session, str]:
    """Launch and authorize, but stop before the callback: (browser session, callback URL with code and state)."""
    session = requests.Session()
    start = session.get(env.double.launch_url(patient), allow_redirects=False, timeout=30)
    assert start.status_code == 302
    authorize = session.get(start.headers["Location"], allow_redirects=False, timeout=30)
    assert authorize.status_code == 302, authorize.text
    return session, authorize.headers["Location"]


def test_missing_state_gives_a_clear_page(env):
    session, callback = _authorized_callback(env)
    resp = session.get(re.sub(r"&state=[^&]+", "", callback), timeout=30)
    assert resp.status_code == 400 and _message(resp) == "The sign-in could not be verified"
    _no_trace(resp.text)


def test_mismatched_state_gives_a_clear_page(env):
    session, callback = _authorized_callback(env)
    resp = session.get(re.sub(r"state=[^&]+", "state=not-the-launch-state", callback), timeout=30)
    assert resp.status_code == 400 and _message(resp) == "The sign-in could not be verified"
    assert not env.double.tokens or all(t.patient for t in env.double.tokens.values())


def test_callback_in_another_browser_has_no_launch(env):
    _session, callback = _authorized_callback(env)
    resp = requests.get(callback, timeout=30)  # no launch cookie
    assert resp.status_code == 400 and _message(resp) == "No launch in progress"


def test_expired_code_gives_a_clear_page(env):
    session, callback = _authorized_callback(env)
    saved = env.double.code_lifetime_s
    for code in env.double.codes.values():
        code.lifetime_s = 0  # the clinician took too long
    try:
        resp = session.get(callback, timeout=30)
    finally:
        env.double.code_lifetime_s = saved
    assert resp.status_code == 400 and _message(resp) == "The sign-in expired"
    _no_trace(resp.text)


def test_failing_fhir_server_gives_a_clear_page(env):
    session = requests.Session()
    env.double.fail_fhir = True
    try:
        resp = env.launch(TREND, None, session)
    finally:
        env.double.fail_fhir = False
    assert resp.status_code == 502 and _message(resp) == "The EHR's FHIR server did not answer"
    assert "Nothing is shown rather than an incomplete trend" in resp.text
    _no_trace(resp.text)
    # The same browser recovers once the server does.
    assert session.get(f"{env.service.base_url}/smart/", timeout=30).status_code == 200


def test_patient_with_no_labs_gets_a_clear_page(env):
    resp = env.launch(NO_LABS, None)
    assert resp.status_code == 200
    assert "No magnesium, ionized calcium, potassium or phosphate results in the last 90 days" in resp.text
    assert data_attr(resp.text, "data-labs") == "0"


def test_launch_without_iss_or_from_an_unregistered_server_is_refused(env):
    resp = requests.get(f"{env.service.base_url}/smart/launch", timeout=30)
    assert resp.status_code == 400 and _message(resp) == "Open this app from the EHR"
    resp = requests.get(f"{env.service.base_url}/smart/launch", params={"iss": "https://ehr.example.org/fhir",
                                                                        "launch": "x"}, timeout=30)
    assert resp.status_code == 403 and _message(resp) == "This EHR is not registered with the app"


def test_discovery_against_a_server_without_app_launch(env):
    """sekmet serves .well-known/smart-configuration for backend services only: the app says so."""
    resp = requests.get(f"{env.service.base_url}/smart/launch", params={"iss": env.fhir.base_url, "launch": "x"},
                        timeout=30)
    assert resp.status_code == 502 and _message(resp) == "This FHIR server does not support app launch"
    assert "client_credentials" in resp.text


def test_page_without_a_session_and_a_tampered_cookie(env):
    resp = requests.get(f"{env.service.base_url}/smart/", timeout=30)
    assert resp.status_code == 401 and _message(resp) == "Your session has ended"
    resp = requests.get(f"{env.service.base_url}/smart/", cookies={"smart_session": "gAAAAAforged"}, timeout=30)
    assert resp.status_code == 401
