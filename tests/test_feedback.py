"""Feedback endpoint: validated, persisted before the 200, attributable to rules, durable across restarts."""
from __future__ import annotations

from support.helpers import PV, fixture_bundle, hook_request, prefetch_from_fixture


def _feedback(card, outcome="accepted", **extra):
    item = {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-01-15T12:05:00Z"}
    item.update(extra)
    return {"feedback": [item]}


def test_feedback_is_stored_and_linked_to_the_rule(make_app):
    app = make_app()
    client = app.test_client()
    resp = client.post(f"/cds-services/{PV}", json=hook_request(
        PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))))
    card = resp.get_json()["cards"][0]
    override = {"reason": {"system": "https://cds.dialysis-cramps.example/override-reason",
                           "code": "recently-corrected", "display": "Magnesium already being corrected"},
                "userComment": "Mg infusion given this morning"}
    fb = client.post(f"/cds-services/{PV}/feedback", json=_feedback(card["uuid"], "overridden",
                                                                     overrideReason=override))
    assert fb.status_code == 200 and fb.get_json() == {"stored": 1}
    store = app.extensions["cds"].feedback
    store.flush()
    rows = store.all_feedback()
    assert rows[-1]["card_uuid"] == card["uuid"]
    assert rows[-1]["override_code"] == "recently-corrected"
    assert rows[-1]["user_comment"] == "Mg infusion given this morning"
    from sqlalchemy import select
    from cds_service.hooks.feedback import issued_cards
    with store.engine.connect() as conn:
        rule = conn.execute(select(issued_cards.c.rule_id).where(issued_cards.c.card_uuid == card["uuid"])).scalar()
    assert rule == "electrolyte-review"


def test_invalid_feedback_is_400_and_nothing_is_stored(make_app):
    app = make_app()
    client = app.test_client()
    for bad in ({}, {"feedback": []}, {"feedback": [{"card": "x", "outcome": "maybe",
                                                      "outcomeTimestamp": "2026-01-15T12:05:00Z"}]},
                {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "yesterday"}]}):
        resp = client.post(f"/cds-services/{PV}/feedback", json=bad)
        assert resp.status_code == 400, bad
        assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert app.extensions["cds"].feedback.count() == 0


def test_feedback_for_unknown_service_is_404(client):
    resp = client.post("/cds-services/nope/feedback", json=_feedback("abc"))
    assert resp.status_code == 404


def test_feedback_survives_a_restart(make_app, tmp_path):
    db = str(tmp_path / "durable.sqlite3")
    first = make_app(CDS_FEEDBACK_DB=db).test_client()
    for i in range(25):
        assert first.post(f"/cds-services/{PV}/feedback", json=_feedback(f"card-{i}")).status_code == 200
    second = make_app(CDS_FEEDBACK_DB=db)
    assert second.extensions["cds"].feedback.count() == 25


def test_accepted_suggestions_are_kept(make_app):
    app = make_app()
    client = app.test_client()
    client.post(f"/cds-services/{PV}/feedback", json=_feedback("c1", acceptedSuggestions=[{"id": "s1"}, {"id": "s2"}]))
    assert app.extensions["cds"].feedback.all_feedback()[0]["accepted_suggestions"] == '["s1", "s2"]'


def test_feedback_for_a_card_never_issued_is_200_but_counts_for_no_rule(make_app):
    """The EHR cannot fix a wrong uuid: it gets its 200, and the report keeps the item apart."""
    import uuid

    from support.helpers import OSIGN, rule_of
    from cds_service.reporting.report import collect

    app = make_app()
    client = app.test_client()
    resp = client.post(f"/cds-services/{PV}", json=hook_request(
        PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"))))
    issued = {rule_of(c): c["uuid"] for c in resp.get_json()["cards"]}
    made_up = str(uuid.uuid4())
    for service, card in ((PV, made_up), (OSIGN, issued["electrolyte-review"]), (PV, issued["electrolyte-review"])):
        fb = client.post(f"/cds-services/{service}/feedback", json=_feedback(card))
        assert fb.status_code == 200 and fb.get_json() == {"stored": 1}
    store = app.extensions["cds"].feedback
    store.flush()
    report = collect(store.engine)
    mg = next(r for r in report.rows_for(PV) if r.rule == "electrolyte-review")
    assert (mg.with_feedback, mg.accepted) == (1, 1)  # only its own service's feedback
    assert report.service_total(PV).accepted == 1
    assert report.unmatched(PV).accepted == 1  # the made-up uuid
    assert report.unmatched(OSIGN).accepted == 1  # patient-view's card answered through order-sign
    assert report.rows_for(OSIGN) == []
