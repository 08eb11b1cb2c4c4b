"""The trend app's parts in isolation: result classes, lab reading and units, appContext, the card link,
the sealed cookies, SMART discovery checks, and the SVG charts."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses

from cds_service.clinical.dialysis import DialysisStatus
from cds_service.clinical.labs import LabPanel, LabResult
from cds_service.clinical.snapshot import Snapshot
from cds_service.clinical.timing import Session
from cds_service.clinical.rules import Finding
from cds_service.hooks.cards import CardLibrary, render_card
from cds_service.smart import appcontext, charts, domain, oauth, trends
from cds_service.smart.sealed import Sealer, resolve_secret
from support.helpers import REPO

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
C = domain.ResultClass


def _session(start_h_ago: float, hours: float = 4.0) -> Session:
    start = NOW - timedelta(hours=start_h_ago)
    return Session(start=start, end=start + timedelta(hours=hours), source="Procedure/x")


def _result(hours_ago: float, analyte: str = "mg", value: float = 0.6, loinc: str = "2601-3") -> LabResult:
    return LabResult(analyte=analyte, value=value, unit="mmol/L", comparator=None,
                     time=NOW - timedelta(hours=hours_ago), loinc=loinc, original_value=value, original_unit="mmol/L")


def _classify(sessions: list[Session]):
    return domain.classifier(DialysisStatus(on_dialysis=True, hd_sessions=sessions), NOW)


@pytest.mark.parametrize("drawn_h_ago, expected", [
    (-1, C.FUTURE),            # an hour in the future
    (7.5, C.PRE_SESSION),      # 30 min before the session that started 7 h ago and has ended
    (5, C.INTRADIALYTIC),      # during it
    (2.5, C.EARLY_POST),       # 30 min after it ended (3 h ago)
    (0.5, C.CURRENT),          # 2.5 h after it ended
    (200, C.PRE_SESSION),      # long before: dialysed since
])
def test_result_classes_are_the_cards_classes(drawn_h_ago, expected):
    result = _result(drawn_h_ago)
    assert _classify([_session(7)])(result) is expected
    # the very code the cards use (the snapshot's classify) gives the same answer
    snapshot = Snapshot(now=NOW, patient_id="p", hook="patient-view", labs=LabPanel(),
                        dialysis=DialysisStatus(on_dialysis=True, hd_sessions=[_session(7)]))
    assert snapshot.classify(result) is expected


def test_a_coded_post_dialysis_potassium_inside_the_session_window_is_early_post():
    assert _classify([_session(7)])(_result(3.1, "k", 3.4, "29349-8")) is C.EARLY_POST


def test_session_rows_carry_weights_and_ufr():
    s, other = _session(7), _session(55)
    weights = [_result(7 + 1 / 3, "weight", 72.0, "29463-7"), _result(10, "weight", 90, "29463-7"),
               _result(3 - 0.25, "weight", 68.0, "29463-7")]
    rows = domain.session_rows([other, s], weights)
    assert [r.session for r in rows] == [other, s]
    assert rows[0].ufr is None and rows[0].pre_kg is None and not rows[0].ufr_high
    assert (rows[1].pre_kg, rows[1].post_kg, rows[1].hours) == (72.0, 68.0, 4.0)
    assert rows[1].ufr == pytest.approx(4.0 * 1000 / (68.0 * 4)) and rows[1].ufr_high  # 14.7 mL/kg/h


def _obs(loinc: str, value, unit: str, hours_ago: float, status: str = "final", comparator: str | None = None):
    q = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if comparator:
        q["comparator"] = comparator
    return {"resourceType": "Observation", "id": f"o-{loinc}-{hours_ago}", "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "effectiveDateTime": (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valueQuantity": q}


def test_lab_reading_uses_the_cards_codes_and_unit_factors():
    raw = [_obs("19123-9", 1.26, "mg/dL", 10), _obs("2601-3", 0.5, "mmol/L", 20, comparator="<"),
           _obs("2598-1", 0.2, "mmol/L", 5),             # urine Mg: never a serum Mg
           _obs("2601-3", 0.9, "mmol/L", 6, "entered-in-error"),
           _obs("2601-3", 0.8, "mmol/L", -3),            # future-dated
           _obs("2601-3", 0.8, "furlongs", 4),           # unknown unit: counted as not usable
           _obs("2823-3", 4.1, "meq/L", 8), _obs("2777-1", 4.5, "mg/dL", 8)]
    results, skipped = trends.lab_results(raw, NOW - timedelta(days=7), NOW)
    assert [round(r.value, 3) for r in results["mg"]] == [0.5, round(1.26 * 0.4114, 3)]  # oldest first
    assert results["mg"][0].comparator == "<"
    assert results["k"][0].value == 4.1 and results["po4"][0].value == pytest.approx(4.5 * 0.3229)
    assert skipped == 1


def test_display_units():
    assert trends.format_value("mg", 0.52, "mg/dL") == "1.3"
    assert trends.format_value("mg", 0.52, "mEq/L") == "1.04"
    assert trends.format_value("ica", 1.1, "mg/dL") == "4.4"
    assert trends.format_value("k", 4.0, "mEq/L") == "4.0"
    assert trends.shown_unit("po4", "mEq/L") == "mmol/L" and trends.display_factor("po4", "mEq/L") is None


@pytest.mark.parametrize("value, expected", [
    ('{"analyte":"k","hookInstance":"h"}', {"analyte": "k", "hookInstance": "h"}),
    ("ica", {"analyte": "ica"}),
    (None, {"analyte": "mg"}),
    ('{"analyte":"sodium"}', {"analyte": "mg"}),
    ("[1,2]", {"analyte": "mg"}),
])
def test_app_context_is_read_leniently(value, expected):
    assert appcontext.read(value) == expected


def test_card_file_key_becomes_a_smart_link_first_among_the_links():
    library = CardLibrary(REPO / "cards")
    card = library.files["hypokalemia-severe"]
    finding = Finding(rule_id="hypokalemia-severe", values={k: "x" for k in card.data.get("placeholders", {})})
    out = render_card(finding, card, "p1", "https://cds.example.org/smart/launch", "hook-9")
    assert out["links"][0] == {"label": "Open the electrolyte trends", "url": "https://cds.example.org/smart/launch",
                               "type": "smart", "appContext": '{"analyte":"k","hookInstance":"hook-9"}'}
    aluminium = render_card(finding, library.files["aluminum-toxicity"], "p1", "https://x/smart/launch", "h")
    assert all(link["type"] != "smart" for link in aluminium.get("links", []))  # not an electrolyte card
    assert all(link["type"] != "smart" for link in render_card(finding, card, "p1").get("links", []))  # no URL


def test_sealed_cookies_refuse_tampering_other_secrets_and_age(tmp_path):
    seal = Sealer("one", "session")
    token = seal.seal({"token": "abc"})
    assert "abc" not in token and seal.open(token, 60) == {"token": "abc"}
    assert Sealer("two", "session").open(token, 60) is None
    assert Sealer("one", "launch").open(token, 60) is None  # a launch cookie is not a session cookie
    assert seal.open(token[:-4] + "AAAA", 60) is None and seal.open(None, 60) is None
    assert seal.open(token, -1) is None  # too old
    key = tmp_path / "k"
    assert resolve_secret("", key) == resolve_secret("", key) == key.read_text() and len(key.read_text()) > 40
    assert oct(key.stat().st_mode & 0o777) == "0o600"


@responses.activate
@pytest.mark.parametrize("doc, title", [
    ({"authorization_endpoint": "https://a/authorize", "token_endpoint": "https://a/token"},
     "This FHIR server does not support PKCE (S256)"),
    ({"authorization_endpoint": "https://a/authorize", "token_endpoint": "http://a.example/token",
      "code_challenge_methods_supported": ["S256"]}, "The EHR's SMART configuration is not safe"),
    ({"token_endpoint": "https://a/token", "code_challenge_methods_supported": ["S256"]},
     "The EHR's SMART configuration is incomplete"),
    ([], "The EHR's SMART configuration is not readable"),
])
def test_discovery_refuses_what_the_app_cannot_use(doc, title):
    responses.get("https://ehr.example.org/fhir/.well-known/smart-configuration", json=doc)
    with pytest.raises(oauth.LaunchError) as err:
        oauth.discover(requests.Session(), "https://ehr.example.org/fhir")
    assert err.value.title == title


@responses.activate
def test_discovery_and_authorization_url():
    responses.get("https://ehr.example.org/fhir/.well-known/smart-configuration", json={
        "authorization_endpoint": "https://ehr.example.org/oauth2/authorize",
        "token_endpoint": "https://ehr.example.org/oauth2/token", "code_challenge_methods_supported": ["S256"],
        "capabilities": ["launch-ehr"]})
    config = oauth.discover(requests.Session(), "https://ehr.example.org/fhir")
    verifier, challenge = oauth.new_pkce()
    url = oauth.authorization_url(config, client_id="c", redirect_uri="https://cds/smart/callback",
                                  scope=oauth.EHR_SCOPES, state="s", challenge=challenge,
                                  aud="https://ehr.example.org/fhir", launch="L1")
    assert url.startswith("https://ehr.example.org/oauth2/authorize?response_type=code&client_id=c")
    assert "code_challenge_method=S256" in url and "launch=L1" in url and "state=s" in url
    assert 43 <= len(verifier) <= 128 and challenge != verifier


def _view(n: int) -> trends.TrendView:
    sessions = [_session(24 * d + 7) for d in range(0, 90, 2)]
    raw = [_obs("2601-3", 0.5 + (i % 7) / 20, "mmol/L", i * 90 * 24 / n + 0.1) for i in range(n)]
    view = trends.TrendView("p", NOW, 90, NOW - timedelta(days=90), sessions=sorted(sessions, key=lambda s: s.start))
    results, _ = trends.lab_results(raw, view.start, NOW)
    classify = _classify(view.sessions)
    for a in trends.ANALYTES:
        view.series[a] = [trends.Point(r, classify(r)) for r in results[a]]
    return view


def test_chart_draws_every_result_as_a_marker_of_its_class():
    view = _view(300)
    svg = str(charts.analyte_chart(view, "mg", "mg/dL"))
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r'data-class="([a-z-]+)" data-count="(\d+)"', svg)}
    assert sum(counts.values()) == 300 and set(counts) <= {c.value for c in C}
    assert len(re.findall(r"<rect class=\"session\"", svg)) == len(view.sessions)
    assert svg.count("<title") == 1 + len(view.sessions) + 1 + 300  # chart, sessions, band, one per point
    assert "style=" not in svg and "<script" not in svg
    empty = str(charts.analyte_chart(view, "k", "mmol/L"))
    assert "No potassium results in the last 90 days" in empty


def test_long_histories_keep_the_dom_small():
    svg = str(charts.analyte_chart(_view(5000), "mg", "mmol/L"))
    assert svg.count("<path") <= 2 + len(C) and svg.count("<circle") == 0  # one path per class, no per-point nodes


def test_windowed_classes_equal_the_snapshots_on_a_full_history():
    """The app judges each result against its neighbouring sessions only (for speed): same classes as the cards'
    Snapshot.classify over every session, for a year of the trend patient's results and for draws placed at
    and around every session's edges."""
    from cds_service import fixtures
    from cds_service.fhir.parse import parse_all
    from support.helpers import fixture_bundle

    bundle = fixtures.at(fixture_bundle("dx-low-mg-trend"), NOW)
    resources = [e["resource"] for e in bundle["entry"]]
    status = domain.dialysis_status(parse_all([r for r in resources if r["resourceType"] == "Procedure"],
                                              "Procedure"), NOW, 365)
    assert len(status.hd_sessions) > 150
    snapshot = Snapshot(now=NOW, patient_id="p", hook="patient-view", labs=LabPanel(), dialysis=status)
    results, _ = trends.lab_results([r for r in resources if r["resourceType"] == "Observation"],
                                    NOW - timedelta(days=365), NOW)
    probes = [r for series in results.values() for r in series]
    for s in [*status.hd_sessions[::7], status.hd_sessions[-1]]:
        for edge in (s.start, s.end):
            for minutes in (-150, -121, -60, -1, 0, 1, 60, 119, 121, 150):
                for loinc in ("2601-3", "51618-7", "29349-8"):
                    probes.append(_result(0, "k", 4.0, loinc).__class__(**{
                        **_result(0, "k", 4.0, loinc).__dict__, "time": edge + timedelta(minutes=minutes)}))
    classify = domain.classifier(status, NOW)
    seen = set()
    for r in probes:
        assert classify(r) is snapshot.classify(r), (r.time, r.loinc)
        seen.add(snapshot.classify(r))
    assert {C.PRE_SESSION, C.INTRADIALYTIC, C.EARLY_POST, C.CURRENT} <= seen


@responses.activate
def test_behind_https_the_launch_cookie_is_secure_and_cross_site(make_app):
    """An EHR embedding the app in an iframe needs SameSite=None, which browsers accept only with Secure."""
    responses.get("https://ehr.example.org/fhir/.well-known/smart-configuration", json={
        "authorization_endpoint": "https://ehr.example.org/oauth2/authorize",
        "token_endpoint": "https://ehr.example.org/oauth2/token", "code_challenge_methods_supported": ["S256"]})
    client = make_app(CDS_PUBLIC_BASE_URL="https://cds.example.org", CDS_SMART_SECRET="s",
                      CDS_ALLOWED_FHIR_SERVERS="https://ehr.example.org/fhir",
                      CDS_SMART_FRAME_ANCESTORS="https://ehr.example.org").test_client()
    resp = client.get("/smart/launch?iss=https://ehr.example.org/fhir&launch=abc")
    assert resp.status_code == 302
    assert "redirect_uri=https%3A%2F%2Fcds.example.org%2Fsmart%2Fcallback" in resp.headers["Location"]
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "SameSite=None" in cookie and "HttpOnly" in cookie
    assert resp.headers["Content-Security-Policy"].endswith("frame-ancestors https://ehr.example.org")
