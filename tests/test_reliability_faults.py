"""FHIR faults against real loopback socket servers (no mocked transport).

Each fault kind of the FHIR client is produced by a server that really misbehaves on a
socket: refused connections, a server that never answers, one that trickles bytes, 5xx,
401/403, non-JSON, JSON that is not a Bundle, OperationOutcome, a paging loop, and
Bundles too big to read whole. Then the same faults through the hook: a 200 with the
cards that could be built, never a hang, never a 500.

No wall-clock assertions: "the client gave up on its own" is shown causally (the server
was still holding the connection, or still trickling, when the call returned).
"""
from __future__ import annotations

import itertools
import json
import logging

import pytest

from cds_service.devtools.fhir_stubs import (Reply, StubServer, closed_port, prefetch_router, searchset,
                                             wait_until)
from cds_service.fhir import client as client_mod
from cds_service.fhir.client import ClientSettings, FhirClient
from cds_service.fhir.urls import Allowlist
from cds_service.timing import Deadline
from support.helpers import PV, assert_valid_response, fixture_bundle, hook_request, prefetch_from_fixture, rule_of, topics

OUTCOME = {"resourceType": "OperationOutcome",
           "issue": [{"severity": "error", "code": "processing", "diagnostics": "search failed"}]}
EMPTY = searchset([])


def _client(server: StubServer | str, **settings) -> FhirClient:
    base = server if isinstance(server, str) else server.base_url
    return FhirClient(Allowlist([base]), ClientSettings(**settings))


def _fetch(server, path="Observation?patient=p1&code=x", budget_ms=5000, **settings):
    client = _client(server, **settings)
    try:
        base = server if isinstance(server, str) else server.base_url
        return client.fetch("labs", f"{base}/{path}", "tok", Deadline(budget_ms))
    finally:
        client.close()


# ---------------------------------------------------------------------- connection level

def test_connection_refused():
    base = f"http://127.0.0.1:{closed_port()}/fhir"
    result = _fetch(base)
    assert result.error is not None and result.error.kind == "connect"


def test_hung_server_times_out_while_it_still_holds_the_connection():
    with StubServer(lambda req: None) as server:
        result = _fetch(server, timeout_ms=300)
        assert result.error is not None and result.error.kind == "timeout"
        assert server.count == 1  # a timeout is not retried
        # the server never answered nor closed: the client gave up and closed the connection itself
        assert wait_until(lambda: server.abandoned == 1)


@pytest.mark.parametrize("trickle_from", [0, 60], ids=["headers-trickle", "body-trickle"])
def test_slow_trickle_is_cut_off_while_the_server_is_still_sending(trickle_from):
    # one byte every 50 ms: each socket read succeeds, so only a per-call stop can end this
    body = json.dumps(searchset([{"resourceType": "Observation", "id": f"o{i}"} for i in range(200)]))
    with StubServer(lambda req: Reply(200, body, trickle_interval=0.05, trickle_from=trickle_from)) as server:
        result = _fetch(server, timeout_ms=400)
        assert result.error is not None and result.error.kind == "timeout"
        assert server.trickling == 1  # still sending: the cut-off came from the client


def test_slow_trickle_cut_off_does_not_poison_the_pool():
    replies = itertools.chain([Reply(200, json.dumps(EMPTY), trickle_interval=0.05, trickle_from=20)],
                              itertools.repeat(Reply(200, EMPTY)))
    with StubServer(lambda req: next(replies)) as server:
        client = _client(server, timeout_ms=300)
        try:
            first = client.fetch("a", f"{server.base_url}/Observation?x=1", None, Deadline(5000))
            second = client.fetch("b", f"{server.base_url}/Observation?x=2", None, Deadline(5000))
        finally:
            client.close()
    assert first.error.kind == "timeout"
    assert second.error is None and second.data["entry"] == []


def test_connection_closed_halfway_through_the_body():
    with StubServer(lambda req: Reply(200, EMPTY, stop_after=90)) as server:
        result = _fetch(server)
    assert result.error is not None and result.error.kind in {"timeout", "not-json"}


# ---------------------------------------------------------------------- status codes

def test_5xx_is_retried_once_and_a_second_answer_is_used():
    replies = iter([Reply(503, "busy", content_type="text/plain"), Reply(200, EMPTY)])
    with StubServer(lambda req: next(replies)) as server:
        result = _fetch(server, timeout_ms=1000)
        assert result.error is None and server.count == 2


def test_5xx_twice_is_reported_after_exactly_one_retry():
    with StubServer(lambda req: Reply(500, "boom", content_type="text/plain")) as server:
        result = _fetch(server, timeout_ms=1000)
        assert result.error.kind == "server" and result.error.status == 500
        assert server.count == 2


def test_5xx_is_not_retried_when_the_budget_is_nearly_spent():
    with StubServer(lambda req: Reply(502, "bad gateway", content_type="text/plain", delay=0.3)) as server:
        # 400 ms budget, 1 s per-call timeout: after the first answer less than half a timeout is left
        result = _fetch(server, budget_ms=400, timeout_ms=1000)
        assert result.error.kind == "server"
        assert server.count == 1


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_not_retried(status):
    with StubServer(lambda req: Reply(status, OUTCOME)) as server:
        result = _fetch(server)
        assert result.error.kind == "unauthorized" and result.error.status == status
        assert server.count == 1


def test_404_with_operation_outcome():
    with StubServer(lambda req: Reply(404, OUTCOME)) as server:
        result = _fetch(server)
    assert result.error.kind == "operation-outcome" and "search failed" in result.error.detail


# ---------------------------------------------------------------------- bodies

def test_non_json_body():
    with StubServer(lambda req: Reply(200, "<html>login page</html>", content_type="text/html")) as server:
        result = _fetch(server)
    assert result.error.kind == "not-json"


@pytest.mark.parametrize("body", [
    [1, 2, 3],
    {"hello": "world"},
    {"resourceType": "Patient", "id": "p1"},  # a resource where a search Bundle is due
    {"resourceType": "Bundle", "type": "searchset", "entry": {"resource": {}}},  # entry not a list
], ids=["json-list", "no-resourceType", "patient-for-search", "entry-not-list"])
def test_json_that_is_not_a_bundle(body):
    with StubServer(lambda req: Reply(200, body)) as server:
        result = _fetch(server)
    assert result.error is not None and result.error.kind == "not-bundle"


def test_read_answered_with_another_resource_type():
    with StubServer(lambda req: Reply(200, {"resourceType": "Practitioner", "id": "x"})) as server:
        result = _fetch(server, path="Patient/p1")
    assert result.error.kind == "not-bundle"


def test_read_answered_with_the_resource():
    with StubServer(lambda req: Reply(200, {"resourceType": "Patient", "id": "P1"})) as server:
        result = _fetch(server, path="Patient/P1")
    assert result.error is None and result.data["id"] == "P1"


def test_operation_outcome_with_200():
    with StubServer(lambda req: Reply(200, OUTCOME)) as server:
        result = _fetch(server)
    assert result.error.kind == "operation-outcome"


# ---------------------------------------------------------------------- paging and size

def test_paging_loop_is_detected():
    def handle(req):
        page = int(req.query.get("page", "1"))
        nxt = f"http://127.0.0.1:{req.headers['host'].split(':')[1]}/fhir/Observation?page={page % 3 + 1}"
        return Reply(200, searchset([{"resourceType": "Observation", "id": f"o{page}"}], nxt))

    with StubServer(handle) as server:
        result = _fetch(server, path="Observation?page=1", max_pages=10)
        assert result.error.kind == "paging-loop"
        assert server.count == 3


def test_endless_paging_stops_at_the_page_cap():
    def handle(req):
        page = int(req.query.get("page", "1"))
        nxt = f"{req.headers['x-base']}/Observation?page={page + 1}" if "x-base" in req.headers else \
            f"Observation?page={page + 1}"
        return Reply(200, searchset([{"resourceType": "Observation", "id": f"o{page}"}], nxt))

    with StubServer(handle) as server:
        result = _fetch(server, path="Observation?page=1", max_pages=4)
        assert result.error is None and result.truncated
        assert result.pages == 4 and server.count == 4
        assert [e["resource"]["id"] for e in result.data["entry"]] == ["o1", "o2", "o3", "o4"]


def test_huge_bundle_is_capped_at_max_entries():
    big = searchset([{"resourceType": "Observation", "id": f"o{i}"} for i in range(20000)])
    with StubServer(lambda req: Reply(200, big)) as server:
        result = _fetch(server, max_entries=500)
    assert result.error is None and result.truncated and len(result.data["entry"]) == 500


def test_response_over_the_byte_cap_declared_in_content_length(monkeypatch):
    monkeypatch.setattr(client_mod, "MAX_RESPONSE_BYTES", 10_000)
    big = searchset([{"resourceType": "Observation", "id": f"o{i}"} for i in range(2000)])
    with StubServer(lambda req: Reply(200, big)) as server:
        result = _fetch(server)
    assert result.error.kind == "too-large"


def test_response_over_the_byte_cap_without_content_length(monkeypatch):
    monkeypatch.setattr(client_mod, "MAX_RESPONSE_BYTES", 10_000)
    big = searchset([{"resourceType": "Observation", "id": f"o{i}"} for i in range(2000)])
    with StubServer(lambda req: Reply(200, big, content_length=False)) as server:
        result = _fetch(server)
    assert result.error.kind == "too-large"


# ---------------------------------------------------------------------- the wave and the deadline

def test_fetch_wave_sends_every_query_at_once():
    """All queries are in flight together: the server sees all of them before it answers any."""
    gate = {"n": 0}
    seen_all = __import__("threading").Event()

    def handle(req):
        gate["n"] += 1
        if gate["n"] >= 6:
            seen_all.set()
        seen_all.wait(5)
        return Reply(200, EMPTY)

    with StubServer(handle) as server:
        client = _client(server, timeout_ms=3000)
        try:
            urls = {f"k{i}": f"{server.base_url}/Observation?i={i}" for i in range(6)}
            results = client.fetch_wave(urls, None, Deadline(8000))
        finally:
            client.close()
    assert seen_all.is_set()
    assert all(r.error is None for r in results.values())


def test_fetch_wave_reports_deadline_for_what_is_not_back():
    def handle(req):
        return None if "slow" in req.target else Reply(200, EMPTY)

    with StubServer(handle) as server:
        client = _client(server, timeout_ms=10_000)
        try:
            results = client.fetch_wave({"fast": f"{server.base_url}/Observation?fast=1",
                                         "slow": f"{server.base_url}/Observation?slow=1"}, None, Deadline(400))
        finally:
            client.close()
    assert results["fast"].error is None
    assert results["slow"].error is not None and results["slow"].error.kind in {"deadline", "timeout"}


# ---------------------------------------------------------------------- through the hook

@pytest.fixture
def dx_prefetch():
    return prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))


def _post(make_app, server_base: str, prefetch: dict | None, **cfg):
    settings = {"CDS_ALLOWED_FHIR_SERVERS": server_base, "CDS_DEADLINE_MS": "800", "CDS_FHIR_TIMEOUT_MS": "5000"}
    settings.update(cfg)
    app = make_app(**settings)
    body = hook_request(PV, "dx-low-mg", prefetch=prefetch, fhir_server=server_base, token="tok")
    return app.test_client().post(f"/cds-services/{PV}", json=body)


def test_hung_server_hook_answers_with_the_cards_it_can_build(make_app, dx_prefetch):
    """Labs and dialysis data prefetched, the rest must be fetched from a hung server: the Mg card still comes,
    with an info card naming what could not be retrieved; the budget, not the 5 s FHIR timeout, ends the wait."""
    for key in ("aluminum", "heartRate", "symptoms"):
        del dx_prefetch[key]
    with StubServer(lambda req: None) as server:
        resp = _post(make_app, server.base_url, dx_prefetch)
        # every hung query was abandoned by the service, none answered
        assert server.count == 3 and wait_until(lambda: server.abandoned == 3)
    assert resp.status_code == 200
    body = resp.get_json()
    assert_valid_response(body)
    assert {"electrolyte-review", "data-unavailable"} <= set(topics(body))
    notice = next(c for c in body["cards"] if rule_of(c) == "data-unavailable")
    assert "serum aluminum" in notice["detail"] and "time budget ran out" in notice["detail"]


def test_rule_lacking_its_data_does_not_fire(make_app, dx_prefetch):
    """Labs from a failing server: no Mg card (the rule needs labs), only the notice."""
    del dx_prefetch["labs"]
    with StubServer(lambda req: Reply(500, "boom", content_type="text/plain")) as server:
        resp = _post(make_app, server.base_url, dx_prefetch)
    assert resp.status_code == 200
    assert topics(resp.get_json()) == ["data-unavailable"]


def test_needs_is_enforced_by_the_registry_even_when_data_is_present():
    """Rule.needs: a rule does not run when its key is unavailable, whatever the snapshot holds."""
    from cds_service.clinical.rules import run_rules
    from cds_service.hooks.cards import CardLibrary
    from cds_service.hooks.context import build_snapshot
    from cds_service.hooks.prefetch import Resolved
    from cds_service.config import REPO_ROOT
    from datetime import timedelta
    from support.helpers import NOW

    prefetch = prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))
    request = hook_request(PV, "dx-low-mg", prefetch=prefetch)
    library = CardLibrary(REPO_ROOT / "cards")
    thresholds, placeholders = library.thresholds(), library.placeholders()

    def fired(snapshot):
        return [f.rule_id for f in run_rules("patient-view", snapshot, thresholds, placeholders, strict=True).findings]

    ok = build_snapshot("patient-view", request, Resolved(data=prefetch), NOW, timedelta(days=30))
    assert "electrolyte-review" in fired(ok)
    missing = build_snapshot("patient-view", request, Resolved(data=prefetch, unavailable={"labs": "timeout"}),
                             NOW, timedelta(days=30))
    assert "electrolyte-review" not in fired(missing)


@pytest.mark.parametrize("make_reply", [
    lambda: (lambda req: Reply(200, "not json", content_type="text/plain")),
    lambda: (lambda req: Reply(200, [1, 2])),
    lambda: (lambda req: Reply(200, OUTCOME)),
    lambda: (lambda req: Reply(200, EMPTY, trickle_interval=0.05)),
    lambda: (lambda req: None),
], ids=["non-json", "not-bundle", "operation-outcome", "trickle", "hung"])
def test_every_fault_in_fetch_mode_gives_a_valid_200_or_412(make_app, make_reply):
    """Nothing prefetched: dialysis status cannot be had. Non-access faults give a 200 notice; never a 500."""
    with StubServer(make_reply()) as server:
        resp = _post(make_app, server.base_url, None)
    assert resp.status_code in (200, 412), resp.get_data(as_text=True)
    if resp.status_code == 200:
        body = resp.get_json()
        assert_valid_response(body)
        assert topics(body) == ["data-unavailable"]
        assert "could not be established" in body["cards"][0]["detail"]
    else:
        assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_refused_connection_with_nothing_prefetched_is_412(make_app):
    base = f"http://127.0.0.1:{closed_port()}/fhir"
    resp = _post(make_app, base, None)
    assert resp.status_code == 412
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_fetch_mode_against_a_working_stub_matches_prefetch_mode(make_app, dx_prefetch):
    with StubServer(prefetch_router(dx_prefetch)) as server:
        fetched = _post(make_app, server.base_url, None, CDS_DEADLINE_MS="5000")
        assert server.count == 9  # every prefetch key but the Patient, which no rule reads
    prefetched = make_app().test_client().post(f"/cds-services/{PV}",
                                               json=hook_request(PV, "dx-low-mg", prefetch=dx_prefetch))
    assert fetched.status_code == prefetched.status_code == 200
    assert topics(fetched.get_json()) == topics(prefetched.get_json())
    assert "electrolyte-review" in topics(fetched.get_json())


def test_queries_are_narrowed(make_app, dx_prefetch):
    with StubServer(prefetch_router(dx_prefetch)) as server:
        _post(make_app, server.base_url, None, CDS_DEADLINE_MS="5000", CDS_LOOKBACK_DAYS="60")
        requests = list(server.requests)
    by_type = {}
    for req in requests:
        by_type.setdefault(req.path.split("/")[2], []).append(req)
    observations = by_type["Observation"]
    assert len(observations) == 5  # labs, aluminum, weights, heart rate, symptoms
    for req in observations + by_type["Procedure"] + by_type["Encounter"]:
        q = req.query
        assert q["patient"] == "dx-low-mg"
        assert q["_sort"] == "-date" and int(q["_count"]) <= 200
        assert q["date"].startswith("ge")
        assert ("code" in q) or ("type" in q)
    labs = next(r for r in observations if "19123-9" in r.query["code"])
    # the lab query reaches back over the whole configured lookback (60 days), not the template's 46
    from datetime import datetime
    from support.helpers import NOW
    since = datetime.fromisoformat(labs.query["date"][2:].replace("Z", "+00:00"))
    assert (NOW - since).days == 61
    assert "2598-1" not in labs.query["code"]  # urine Mg is never asked for


def test_timings_in_log_and_server_timing_header(make_app, dx_prefetch, caplog):
    del dx_prefetch["labs"]
    with StubServer(prefetch_router(prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg")))) as server:
        with caplog.at_level(logging.INFO, logger="cds_service"):
            app = make_app(CDS_ALLOWED_FHIR_SERVERS=server.base_url)
            body = hook_request(PV, "dx-low-mg", prefetch=dx_prefetch, fhir_server=server.base_url, token="t",
                                hook_instance="timing-instance-1")
            resp = app.test_client().post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 200
    header = resp.headers["Server-Timing"]
    stages = dict(part.strip().split(";dur=") for part in header.split(","))
    for stage in ("prefetch", "fetch", "snapshot", "rules", "render", "total"):
        assert stage in stages and float(stages[stage]) >= 0
    assert float(stages["fetch"]) <= float(stages["total"])
    records = [r for r in caplog.records if getattr(r, "hookInstance", None) == "timing-instance-1"]
    assert records and set(records[-1].timings_ms) >= {"prefetch", "fetch", "rules", "render"}
