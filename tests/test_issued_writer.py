"""Issued-card records: written by the background writer, never waited for, counted when dropped, flushed at exit."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

from sqlalchemy import func, select

from cds_service.hooks.feedback import FeedbackStore, issued_cards, silent_firings


def _count(store: FeedbackStore, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    db = tmp_path / "fb.sqlite3"
    dropped: list[str] = []
    store = FeedbackStore(str(db), on_drop=dropped.append, queue_size=5)
    blocker = sqlite3.connect(db, timeout=30)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer's next insert now waits for this lock
    try:
        cards = [(f"card-{i}", "electrolyte-review") for i in range(40)]
        # returns with the database locked: queueing never waits for the writer
        store.record_issued("svc", "hook-1", cards, silent=["silent-rule"] * 10)
        assert store.dropped == len(dropped) > 0
        assert set(dropped) <= {"issued_cards", "silent_firings"}
    finally:
        blocker.rollback()
        blocker.close()
    store.close()
    written = _count(store, issued_cards) + _count(store, silent_firings)
    assert written == 50 - store.dropped


def test_records_queued_at_exit_are_written(tmp_path):
    db = tmp_path / "fb.sqlite3"
    code = ("import sys\nfrom cds_service.hooks.feedback import FeedbackStore\n"
            "s = FeedbackStore(sys.argv[1])\n"
            "s.record_issued('svc', 'hook-1', [(f'card-{i}', 'rule') for i in range(300)], silent=['quiet'] * 20)\n")
    subprocess.run([sys.executable, "-c", code, str(db)], check=True, timeout=60)  # exits without flushing
    store = FeedbackStore(str(db))
    assert _count(store, issued_cards) == 300
    assert _count(store, silent_firings) == 20
