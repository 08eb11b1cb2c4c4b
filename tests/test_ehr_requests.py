"""Epic's request and feedback dialect, in process: extensions, scope strings, overrideReasons, long ids;
and the card-text checks the EHR profiles rely on (each shown to catch what it is for)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import responses

from cds_service.authoring import scenarios
from cds_service.hooks.extensions import log_fields
from cds_service.hooks.feedback import FeedbackStore, reasons_of
from cds_service.hooks.prefetch import fetch_url, render_template, token_values
from cds_service.hooks.readability import detail_problems, summary_problems
from cds_service.hooks.validation import response_problems
from cds_service.reporting.report import collect
from cds_service.services import SERVICES
from support.ehr_profiles import comparable, epic_bundle, epic_card_problems, load, oracle_card_problems
from support.helpers import (NOW, OSEL, PV, REPO, fixture_bundle, hook_request, orders_bundle, prefetch_from_fixture,
                     topics)
from test_docs import _test_names

SITE = "https://ehr.example.org/acknowledgment-reason"


def _low_mg(**extra) -> dict:
    body = hook_request(PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg")))
    body.update(extra)
    return body


# ------------------------------------------------------------------ request extensions and scopes

def test_extension_fields_for_the_log():
    ext = {"com.epic.cdshooks.request.bpa-trigger-action": 18, "com.epic.cdshooks.request.criteria-id": "71104",
           "internal.epic.cdshooks.request.epic-emp-id": "14977", "bad key with spaces": 1}
    fields = log_fields({"extension": ext})
    assert fields == {"extensions": ["com.epic.cdshooks.request.bpa-trigger-action",
                                     "com.epic.cdshooks.request.criteria-id",
                                     "internal.epic.cdshooks.request.epic-emp-id"],
                      "epicTriggerAction": "18", "epicTrigger": "enter order", "epicCriteriaId": "71104"}
    assert "14977" not in str(fields)  # values other than trigger and criteria are never logged
    assert log_fields({"extension": {"com.epic.cdshooks.request.bpa-trigger-action": {"x": 1}}}) == {
        "extensions": ["com.epic.cdshooks.request.bpa-trigger-action"]}
    assert log_fields({}) == {} and log_fields([]) == {} and log_fields({"extension": "x"}) == {}


@pytest.mark.parametrize("extension", [
    {"com.epic.cdshooks.request.bpa-trigger-action": "23", "com.epic.cdshooks.request.fhir-version": "R4"},
    {"com.epic.cdshooks.request.bpa-trigger-action": 60},
    {"org.example.anything": {"nested": [1, 2, {"deep": True}]}},
])
def test_extensions_never_change_the_cards(client, extension):
    plain = client.post(f"/cds-services/{PV}", json=_low_mg()).get_json()
    extended = client.post(f"/cds-services/{PV}", json=_low_mg(extension=extension))
    assert extended.status_code == 200 and topics(extended.get_json()) == topics(plain)


@pytest.mark.parametrize("scope", ["Patient.Read (R4) Observation.Read (Labs) (R4) Condition.Read (Problems) (R4)",
                                   "launch patient/*.read user/Observation.rs", "", "EPIC.FHIR.R4.SERVICES.Patient.Read"])
def test_scope_strings_are_never_parsed(make_app, scope):
    client = make_app(CDS_ALLOWED_FHIR_SERVERS="https://fhir.example.org/api/FHIR/R4").test_client()
    body = _low_mg(fhirServer="https://fhir.example.org/api/FHIR/R4",
                   fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": scope,
                                      "subject": "cds"})
    resp = client.post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 200 and "electrolyte-review" in topics(resp.get_json())


def test_epic_long_draft_order_ids_are_selected_and_named(client):
    draft = orders_bundle("quinine")
    long_id = "e" + "x1Y2.z-" * 27  # 190 characters, as long as Epic's
    draft["entry"][0]["resource"]["id"] = long_id
    draft["entry"][0]["resource"]["subject"] = {"reference": "Patient/ord-hd-normal"}
    body = hook_request(OSEL, "ord-hd-normal", draft_orders=draft, selections=[f"MedicationRequest/{long_id}"],
                        prefetch=prefetch_from_fixture(OSEL, "ord-hd-normal", fixture_bundle("ord-hd-normal"),
                                                       draft_orders=draft))
    resp = client.post(f"/cds-services/{OSEL}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert topics(resp.get_json()) == ["quinine-for-cramps"]
    assert long_id in resp.get_json()["cards"][0]["detail"]


# ------------------------------------------------------------------ feedback

def test_every_override_reason_is_read_in_order():
    item = {"overrideReason": {"reason": {"system": "s", "code": "a", "display": "A"}, "userComment": "why"},
            "overrideReasons": [{"reason": {"code": "b"}}, {"system": SITE, "code": "c", "display": "C"},
                                {"userComment": "only a comment"}, {}]}
    assert reasons_of(item) == [
        {"system": "s", "code": "a", "display": "A", "user_comment": "why"},
        {"system": None, "code": "b", "display": None, "user_comment": None},
        {"system": SITE, "code": "c", "display": "C", "user_comment": None},
        {"system": None, "code": None, "display": None, "user_comment": "only a comment"}]
    assert reasons_of({"outcome": "accepted"}) == []


def test_override_reasons_list_is_accepted_and_every_reason_stored(client):
    app = client.application
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T12:00:00Z",
                          "overrideReasons": [{"reason": {"system": SITE, "code": "1", "display": "Not relevant"},
                                               "userComment": "seen"},
                                              {"system": SITE, "code": "2", "display": "Already treated"}]}]}
    resp = client.post(f"/cds-services/{PV}/feedback", json=body)
    assert resp.status_code == 200 and resp.get_json() == {"stored": 1}
    store: FeedbackStore = app.extensions["cds"].feedback
    [row] = store.all_feedback()
    assert (row["override_system"], row["override_code"], row["override_display"], row["user_comment"]) == \
        (SITE, "1", "Not relevant", "seen")
    assert [(r["position"], r["code"], r["display"]) for r in store.all_override_reasons()] == [
        (0, "1", "Not relevant"), (1, "2", "Already treated")]


@pytest.mark.parametrize("bad", [{"overrideReasons": {"code": "1"}}, {"overrideReasons": [{"reason": {}}]},
                                 {"overrideReasons": ["not an object"]}, {"overrideReasons": [{"code": 5}]}])
def test_malformed_override_reasons_get_400(client, bad):
    item = {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T12:00:00Z", **bad}
    resp = client.post(f"/cds-services/{PV}/feedback", json={"feedback": [item]})
    assert resp.status_code == 400 and resp.get_json()["resourceType"] == "OperationOutcome"


def test_report_counts_every_override_reason(tmp_path):
    store = FeedbackStore(str(tmp_path / "fb.sqlite3"))
    store.record_issued(PV, "h", [("c1", "hypomagnesemia"), ("c2", "hypomagnesemia")])
    store.flush()
    store.add_feedback(PV, [
        {"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T12:00:00Z",
         "overrideReasons": [{"system": SITE, "code": "1", "display": "Not relevant"},
                             {"system": SITE, "code": "2", "display": "Already treated"}]},
        {"card": "c2", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T12:00:00Z",
         "overrideReason": {"reason": {"system": SITE, "code": "2", "display": "Already treated"}}}])
    [row] = [r for r in collect(store.engine).rows if r.rule == "hypomagnesemia"]
    assert row.top_reasons() == [("2", "Already treated", 2), ("1", "Not relevant", 1)]


# ------------------------------------------------------------------ card text checks

@pytest.mark.parametrize("detail, problem", [
    ("See <b>this</b>", "HTML tag"), ("K &gt; 6", "HTML entity"), ("![logo](https://x/y.png)", "image"),
    ("Read [the label](https://dailymed.nlm.nih.gov/x)", "Markdown link"), ("## Work-up\nCheck Mg", "heading"),
    ("```\ncode\n```", "fenced code block"), ("2 \\* 3", "backslash escape"), ("Mg low\n\n---\nK low", "horizontal rule"),
])
def test_detail_check_catches_markup_that_shows_as_plain_text(detail, problem):
    assert any(p.startswith(problem) for p in detail_problems(detail)), detail_problems(detail)


def test_detail_check_allows_markdown_that_reads_as_plain_text():
    text = ("**Magnesium 0.55 mmol/L** (low), taken 2026-01-15 08:00 (4 h ago).\n\n1. Check Mg first.\n"
            "2. Review the dialysate.\n\n| Analyte | Value |\n|---|---|\n| Mg | 0.55 mmol/L |\n\n*hyper*magnesaemia")
    assert detail_problems(text) == []


@pytest.mark.parametrize("summary, problem", [
    ("x" * 140, "140 characters"), ("Low Mg\nrecheck", "line break"), ("**Low** Mg", "markup"),
    ("Low Mg _now_", "markup"), ("Order MedicationRequest/e" + "a" * 40 + " flagged", "word longer"),
])
def test_summary_check_catches_what_a_narrow_sidebar_shows_badly(summary, problem):
    assert any(problem in p for p in summary_problems(summary)), summary_problems(summary)


def test_summary_check_allows_a_plain_short_line():
    assert summary_problems("Low magnesium 0.55 mmol/L on dialysis: check and correct Mg first") == []


# ------------------------------------------------------------------ every card of every scenario

def _all_scenario_cards(client) -> list[dict]:
    """Every card every scenario file gives (patient and order hooks), as the client renders it."""
    cards = []
    for path in scenarios.scenario_files([REPO / "cards" / "scenarios"]):
        s = scenarios.load(path)
        [service] = [svc for svc in SERVICES.values() if svc.hook == s.hook]
        body = scenarios.request_for(s, scenarios.materialise(s, NOW), service, prefetch=True)
        cards += client.post(f"/cds-services/{service.id}", json=body).get_json()["cards"]
    return cards


def test_every_card_of_every_scenario_fits_epic_and_oracle_health(client):
    """Topic code, selectionBehavior 'any', one action per suggestion, plain-text detail, sidebar summary."""
    cards = _all_scenario_cards(client)
    assert len(cards) > 20 and any(c.get("suggestions") for c in cards)
    problems = {(c["source"]["topic"]["code"], c["summary"]): epic_card_problems(c) + oracle_card_problems(c)
                for c in cards}
    assert {k: v for k, v in problems.items() if v} == {}


# ------------------------------------------------------------------ docs/ehr-integration.md

def test_ehr_integration_page_cites_existing_tests():
    """Every row of every table in docs/ehr-integration.md names at least one test, and each one exists."""
    text = (REPO / "docs" / "ehr-integration.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert [s.split("\n", 1)[0] for s in sections][:3] == ["Epic", "Oracle Health (Cerner Millennium)",
                                                           "CDS Hooks sandbox"]
    known = _test_names()
    for section in sections:
        rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|---")][1:]
        assert len(rows) >= 4 or section.startswith("Any client"), section[:40]
        for row in rows:
            cited = re.findall(r"`(test_\w+\.py::test_\w+)`", row.rsplit("|", 2)[-2])
            assert cited, f"row without a test: {row[:80]}"
            missing = [c for c in cited if c not in known]
            assert not missing, f"docs/ehr-integration.md cites tests that do not exist: {missing}"


# ------------------------------------------------------------------ documented response shapes

def _documented_cards(name: str) -> list[dict]:
    return load(name)["cards"]


def test_epic_documented_card_passes_both_the_spec_and_the_epic_checks():
    [card] = _documented_cards("epic-response")
    assert response_problems({"cards": [card]}) == []  # Epic's extension is allowed by the response schema
    assert epic_card_problems(card) == []


@pytest.mark.parametrize("change, problem", [
    (lambda c: c["source"]["topic"].update(code="hypo-magnesemia"), "letters and digits"),
    (lambda c: c["source"]["topic"].update(code="A" * 101), "letters and digits"),
    (lambda c: c.update(selectionBehavior="at-most-one"), "only 'any'"),
    (lambda c: c["suggestions"][0]["actions"].append(c["suggestions"][0]["actions"][0]), "2 actions"),
    (lambda c: c.pop("uuid"), "no card uuid"),
    (lambda c: c["suggestions"][0].pop("uuid"), "has no uuid"),
    (lambda c: c.update(detail="See <a href='https://x'>here</a>"), "HTML tag"),
])
def test_epic_checks_catch_what_epic_refuses(change, problem):
    [card] = _documented_cards("epic-response")
    change(card)
    assert any(problem in p for p in epic_card_problems(card)), epic_card_problems(card)


def test_oracle_documented_cards_pass_and_app_context_is_caught():
    cards = _documented_cards("oracle-response")
    assert [oracle_card_problems(c) for c in cards] == [[], []]
    cards[1]["links"][0]["appContext"] = "patient=1"  # a SMART link: Oracle Health drops appContext, harmless
    assert oracle_card_problems(cards[1]) == []
    cards[0]["links"][0]["appContext"] = "patient=1"  # on an absolute link it means nothing anywhere
    assert any("appContext" in p for p in oracle_card_problems(cards[0]))
    cards[0]["summary"] = "Potassium **6.8** mmol/L"
    assert oracle_card_problems(cards[0])


# ------------------------------------------------------------------ fetch mode against an Epic-like FHIR server

@pytest.mark.parametrize("pid", ["dx-cramp-post-session", "dx-low-mg", "dx-normal", "dx-tachycardia"])
def test_fetch_mode_reads_epic_shaped_search_results(make_app, pid):
    """The service's own FHIR queries answered as Epic's FHIR server answers them (absolute references,
    search.mode, an OperationOutcome entry for an empty result): the same cards as the data prefetched."""
    base = "https://fhir.example.org/api/FHIR/R4"
    client = make_app(CDS_ALLOWED_FHIR_SERVERS=base).test_client()
    prefetch = prefetch_from_fixture(PV, pid, fixture_bundle(pid))
    canonical = client.post(f"/cds-services/{PV}", json=hook_request(PV, pid, prefetch=prefetch)).get_json()
    body = hook_request(PV, pid, fhir_server=base, token="epic-access-token")
    answers = {}
    for name, key in SERVICES[PV].prefetch.items():
        if key.fetch:
            url = fetch_url(base, render_template(key.template, token_values(body["context"])), key, NOW,
                            timedelta(days=45))  # the CDS_LOOKBACK_DAYS default
            answers[url] = epic_bundle(prefetch[name] or {"resourceType": "Bundle", "type": "searchset"}, base)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        for url, bundle in answers.items():
            rsps.get(url, json=bundle, match=[responses.matchers.header_matcher(
                {"Authorization": "Bearer epic-access-token"})])
        resp = client.post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert any(e["search"]["mode"] == "outcome" for b in answers.values() for e in b["entry"])
    assert comparable(resp.get_json()["cards"]) == comparable(canonical["cards"])


def test_older_sandbox_override_reason_as_a_bare_coding_is_stored(client):
    """Sandbox builds before cds-hooks/sandbox#139 sent overrideReason as the Coding itself."""
    body = {"feedback": [{"card": "c-9", "outcome": "overridden", "outcomeTimestamp": "2020-05-13T20:10:12.147Z",
                          "overrideReason": {"code": "generic-drug-unavailable",
                                             "system": "http://terminology.cds-hooks.org/CodeSystem/OverrideReasons"}}]}
    resp = client.post(f"/cds-services/{PV}/feedback", json=body)
    assert resp.status_code == 200
    [row] = client.application.extensions["cds"].feedback.all_feedback()
    assert (row["override_system"], row["override_code"]) == (
        "http://terminology.cds-hooks.org/CodeSystem/OverrideReasons", "generic-drug-unavailable")
