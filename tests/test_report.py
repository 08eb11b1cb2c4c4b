"""`cds-service feedback report` on the default SQLite store (PostgreSQL: test_postgres.py)."""
from __future__ import annotations

import csv
import io
import struct
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from cds_service.cli import main
from cds_service.hooks.feedback import FeedbackStore, feedback, issued_cards
from cds_service.reporting.report import collect, parse_since
from support.helpers import PV, OSIGN, fixture_bundle, hook_request, prefetch_from_fixture

REASON_SYSTEM = "https://cds.dialysis-cramps.example/override-reason"


def item(card: str, outcome: str, code: str | None = None, display: str | None = None, comment: str | None = None):
    out = {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-01-15T12:05:00Z"}
    if code:
        out["overrideReason"] = {"reason": {"system": REASON_SYSTEM, "code": code, "display": display}}
        if comment:
            out["overrideReason"]["userComment"] = comment
    return out


def populate(store: FeedbackStore) -> None:
    """hypomagnesemia (patient-view): 4 issued, 3 with feedback: 1 accepted, 2 overridden (one after accepting).
    iv-mg (order-sign): 2 issued, 1 accepted, 1 overridden. Plus feedback on a card never recorded as issued."""
    store.record_issued(PV, "h1", [("c1", "hypomagnesemia"), ("c2", "hypomagnesemia"), ("c3", "hypomagnesemia"),
                                   ("c4", "hypomagnesemia")])
    store.record_issued(OSIGN, "h2", [("d1", "iv-magnesium-during-dialysis"), ("d2", "iv-magnesium-during-dialysis")])
    store.flush()
    store.add_feedback(PV, [
        item("c1", "accepted"),
        item("c2", "overridden", "recently-corrected", "Magnesium already being corrected", "Mg given this morning"),
        item("c3", "accepted"),
    ])
    store.add_feedback(PV, [item("c3", "overridden", "recently-corrected", "Magnesium already being corrected"),
                            item("zz", "accepted"), item("d2", "accepted")])  # never issued; issued by order-sign
    store.add_feedback(OSIGN, [
        item("d1", "overridden", "not-clinically-relevant", "Not clinically relevant", "Session | ended an hour ago"),
        item("d2", "accepted"),
    ])


@pytest.fixture
def store(tmp_path):
    return FeedbackStore(str(tmp_path / "feedback.sqlite3"))


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["feedback", "report", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_counts_rates_and_reasons(store):
    populate(store)
    report = collect(store.engine)
    rows = {(r.service, r.rule): r for r in report.rows}
    assert set(rows) == {(PV, "hypomagnesemia"), (PV, "(unmatched)"), (OSIGN, "iv-magnesium-during-dialysis")}
    mg = rows[(PV, "hypomagnesemia")]
    assert (mg.issued, mg.with_feedback, mg.accepted, mg.overridden) == (4, 3, 1, 2)
    assert mg.accept_rate == pytest.approx(1 / 3) and mg.override_rate == pytest.approx(2 / 3)
    assert mg.feedback_rate == pytest.approx(3 / 4)
    assert mg.top_reasons() == [("recently-corrected", "Magnesium already being corrected", 2)]
    assert [c[2] for c in mg.comments] == ["Mg given this morning"]
    unmatched = rows[(PV, "(unmatched)")]
    assert (unmatched.issued, unmatched.with_feedback, unmatched.accepted) == (0, 2, 2)
    assert unmatched.feedback_rate is None
    total = report.service_total(PV)  # the unmatched acceptances count nowhere
    assert (total.issued, total.with_feedback, total.accepted, total.overridden) == (4, 3, 1, 2)
    ivmg = rows[(OSIGN, "iv-magnesium-during-dialysis")]  # d2's feedback sent to patient-view is not its own
    assert (ivmg.with_feedback, ivmg.accepted, ivmg.overridden) == (2, 1, 1)
    assert [r.rule for r in report.by_rule()] == ["hypomagnesemia", "iv-magnesium-during-dialysis"]


def test_markdown_report_from_the_cli(store, capsys, monkeypatch, tmp_path):
    populate(store)
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    code, out, _err = run(capsys)
    assert code == 0
    assert out.startswith("# Card feedback report (all time)")
    assert f"## {PV}" in out and f"## {OSIGN}" in out
    assert "| `hypomagnesemia` | 4 | 3 | 75% | 1 | 2 | 33% | 67% |" in out
    assert "| **(all rules)** | 4 | 3 | 75% | 1 | 2 | 33% | 67% |" in out
    assert "(unmatched)" not in out.split(f"## {OSIGN}")[0].split("Unmatched feedback")[0]
    assert ("Unmatched feedback, counted in no rule and in no total above: 2 card(s) this service never issued "
            "(2 accepted, 0 overridden).") in out
    assert "| `iv-magnesium-during-dialysis` | 2 | 2 | 100% | 1 | 1 | 50% | 50% |" in out
    assert "- Magnesium already being corrected (`recently-corrected`): 2" in out
    assert "[Magnesium already being corrected]: “Mg given this morning”" in out
    assert "“Session \\| ended an hour ago”" in out  # a pipe in a comment does not break the table


def test_csv_report_to_a_file(store, capsys, tmp_path):
    populate(store)
    out_file = tmp_path / "report.csv"
    code, out, err = run(capsys, "--db", str(tmp_path / "feedback.sqlite3"), "--format", "csv", "--output",
                         str(out_file))
    assert code == 0 and out == "" and "wrote" in err
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    by_rule = {(r["service"], r["rule"]): r for r in rows}
    mg = by_rule[(PV, "hypomagnesemia")]
    assert (mg["issued"], mg["with_feedback"], mg["accepted"], mg["overridden"]) == ("4", "3", "1", "2")
    assert mg["accept_rate"] == "0.3333" and mg["override_rate"] == "0.6667"
    assert mg["top_override_reasons"] == "recently-corrected (Magnesium already being corrected): 2"
    unmatched = by_rule[(PV, "(unmatched)")]
    assert (unmatched["issued"], unmatched["with_feedback"], unmatched["feedback_rate"]) == ("0", "2", "")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_png_bar_chart(store, capsys, tmp_path):
    populate(store)
    out_file = tmp_path / "report.png"
    code, _out, _err = run(capsys, "--db", str(tmp_path / "feedback.sqlite3"), "--format", "png", "-o", str(out_file))
    assert code == 0
    width, height = _png_size(out_file.read_bytes())
    assert (width, height) == (600, 420)  # 2 rules (unmatched feedback is no bar): 6 x 4.2 inches at 100 dpi
    from support.helpers import save_artifact
    save_artifact("feedback-report.png", out_file.read_bytes())


def test_png_needs_an_output_file(store, capsys, tmp_path):
    code, _out, err = run(capsys, "--db", str(tmp_path / "feedback.sqlite3"), "--format", "png")
    assert code == 2 and "--output" in err


def test_since_excludes_older_cards_and_feedback(store, capsys, tmp_path):
    populate(store)
    old = datetime(2025, 6, 1, 8, 0, tzinfo=timezone.utc)
    with store.engine.begin() as conn:
        conn.execute(insert(issued_cards), [{"card_uuid": "old1", "service_id": PV, "rule_id": "hypomagnesemia",
                                             "hook_instance": "h0", "issued_at": old}])
        conn.execute(insert(feedback), [{"service_id": PV, "card_uuid": "old1", "outcome": "overridden",
                                         "override_code": "stale", "override_display": "Stale",
                                         "outcome_timestamp": "2025-06-01T08:05:00Z", "received_at": old}])
    db = str(tmp_path / "feedback.sqlite3")
    _code, everything, _err = run(capsys, "--db", db)
    assert "| `hypomagnesemia` | 5 | 4 | 80% | 1 | 3 |" in everything and "Stale" in everything
    since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    code, recent, _err = run(capsys, "--db", db, "--since", since)
    assert code == 0 and f"since {since} 00:00 UTC" in recent
    assert "| `hypomagnesemia` | 4 | 3 | 75% | 1 | 2 |" in recent and "Stale" not in recent
    code, _out, err = run(capsys, "--db", db, "--since", "last tuesday")
    assert code == 2 and "--since" in err


def test_parse_since_accepts_dates_and_offsets():
    assert parse_since("2026-01-15") == datetime(2026, 1, 15, tzinfo=timezone.utc)
    assert parse_since("2026-01-15T10:00:00+02:00") == datetime(2026, 1, 15, 8, tzinfo=timezone.utc)
    assert parse_since(None) is None


def test_missing_store_is_a_clear_error(capsys, tmp_path):
    code, _out, err = run(capsys, "--db", str(tmp_path / "nowhere.sqlite3"))
    assert code == 2 and "no feedback store" in err
    assert not (tmp_path / "nowhere.sqlite3").exists()


def test_empty_store(store, capsys, tmp_path):
    code, out, _err = run(capsys, "--db", str(tmp_path / "feedback.sqlite3"))
    assert code == 0 and "No cards issued and no feedback" in out


def test_report_over_cards_issued_and_answered_through_the_service(make_app, capsys, tmp_path):
    app = make_app()
    client = app.test_client()
    cards = []
    for _ in range(3):
        body = hook_request(PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg")))
        cards.append(client.post(f"/cds-services/{PV}", json=body).get_json()["cards"][0]["uuid"])
    fb = {"feedback": [item(cards[0], "accepted"),
                       item(cards[1], "overridden", "dialysate-adjusted", "Dialysate magnesium already adjusted",
                            "Bath changed to 1.0 mmol/L")]}
    assert client.post(f"/cds-services/{PV}/feedback", json=fb).status_code == 200
    app.extensions["cds"].feedback.flush()
    code, out, _err = run(capsys, "--db", str(tmp_path / "feedback.sqlite3"))
    assert code == 0
    assert "| `electrolyte-review` | 3 | 2 | 67% | 1 | 1 | 50% | 50% |" in out
    assert "“Bath changed to 1.0 mmol/L”" in out


def test_override_reasons_show_their_card_file_labels(store, capsys, tmp_path):
    """EHRs often send the reason code alone, or their own wording: the report uses the card file's label."""
    store.record_issued(PV, "h1", [("c1", "electrolyte-review"), ("c2", "electrolyte-review"), ("c3", "electrolyte-review")])
    store.flush()
    store.add_feedback(PV, [
        item("c1", "overridden", "cause-known", None, "bath changed"),             # code only
        item("c2", "overridden", "cause-known", "DIALYSATE ADJ"),                 # the EHR's own display
        item("c3", "overridden", "ehr-local-code", "Patient declined"),           # a code no card file knows
    ])
    code, out, _err = run(capsys, "--db", str(tmp_path / "feedback.sqlite3"))
    assert code == 0
    assert "- Cause already known and being managed (`cause-known`): 2" in out
    assert "- Patient declined (`ehr-local-code`): 1" in out
    assert "[Cause already known and being managed]: “bath changed”" in out
    assert "DIALYSATE ADJ" not in out


def test_report_after_the_demo_reads_the_demo_store(store, capsys, tmp_path, monkeypatch):
    """With CDS_FEEDBACK_DB at its default and no store there, the report falls back to the demo's store."""
    from cds_service.devtools import demo

    populate(store)
    monkeypatch.setattr(demo, "FEEDBACK_DB", tmp_path / "feedback.sqlite3")
    monkeypatch.delenv("CDS_FEEDBACK_DB", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # var/feedback.sqlite3 does not exist here
    code, out, err = run(capsys)
    assert code == 0, err
    assert "reading the demo's store" in err and "| `hypomagnesemia` | 4 | 3 |" in out
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(elsewhere / "set-explicitly.sqlite3"))  # an explicit setting wins
    code, _out, err = run(capsys)
    assert code == 2 and "no feedback store" in err
