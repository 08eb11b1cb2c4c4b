"""Feedback store (SQLAlchemy Core): SQLite by default, PostgreSQL for several replicas.

Feedback is written in one transaction before the 200 is returned. The cards the
service issues are recorded too (card uuid -> service, rule), so that feedback can
be attributed to rules and acceptance rates computed, even when the feedback
reaches another replica.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import (Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, event, insert,
                        select)
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

metadata = MetaData()

issued_cards = Table(
    "issued_cards", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(100), nullable=False),
    Column("rule_id", String(100), nullable=False),
    Column("hook_instance", String(200), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
)

# Findings of rules whose card file says `status: silent`: no card was returned, the firing is kept so that
# a committee can see how often the rule would have fired before it goes live.
silent_firings = Table(
    "silent_firings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(100), nullable=False),
    Column("rule_id", String(100), nullable=False, index=True),
    Column("hook_instance", String(200), nullable=False),
    Column("fired_at", DateTime(timezone=True), nullable=False),
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(100), nullable=False, index=True),
    Column("card_uuid", String(200), nullable=False, index=True),
    Column("outcome", String(20), nullable=False),
    Column("accepted_suggestions", Text, nullable=True),  # JSON list of suggestion uuids
    Column("override_system", String(300), nullable=True),
    Column("override_code", String(200), nullable=True),
    Column("override_display", String(500), nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("outcome_timestamp", String(40), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


def database_url(setting: str) -> str:
    """A plain path means an SQLite file; anything with '://' is an SQLAlchemy URL."""
    if "://" in setting:
        return setting
    return f"sqlite:///{setting}"


def make_engine(setting: str) -> Engine:
    url = database_url(setting)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    return engine


def _sqlite_file(setting: str) -> Path | None:
    url = database_url(setting)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///"):]).expanduser()
    return None


def create_schema(engine: Engine, setting: str) -> None:
    """Create the tables. gunicorn workers start together and may all open a new SQLite file at once; switching
    it to WAL then fails with "database is locked" in all but one, so the first connection and the schema are
    set up under an exclusive file lock (one worker at a time; the others find it done)."""
    path = _sqlite_file(setting)
    if path is None:
        metadata.create_all(engine)
        return
    import fcntl

    with open(f"{path}.init-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            metadata.create_all(engine)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class FeedbackStore:
    def __init__(self, setting: str):
        self.engine = make_engine(setting)
        create_schema(self.engine, setting)
        self._queue: queue.Queue = queue.Queue(maxsize=10000)
        self._writer = threading.Thread(target=self._write_issued, name="issued-cards-writer", daemon=True)
        self._writer.start()

    # -------------------------------------------------------------- feedback (synchronous, durable)
    def add_feedback(self, service_id: str, items: Iterable[dict[str, Any]]) -> int:
        now = datetime.now(timezone.utc)
        rows = []
        for item in items:
            reason = (item.get("overrideReason") or {}).get("reason") or {}
            accepted = [s.get("id") for s in item.get("acceptedSuggestions") or [] if isinstance(s, dict)]
            rows.append({
                "service_id": service_id,
                "card_uuid": item["card"],
                "outcome": item["outcome"],
                "accepted_suggestions": json.dumps(accepted) if accepted else None,
                "override_system": reason.get("system"),
                "override_code": reason.get("code"),
                "override_display": reason.get("display"),
                "user_comment": (item.get("overrideReason") or {}).get("userComment"),
                "outcome_timestamp": item["outcomeTimestamp"],
                "received_at": now,
            })
        with self.engine.begin() as conn:
            conn.execute(insert(feedback), rows)
        return len(rows)

    # -------------------------------------------------------------- issued cards (background)
    def record_issued(self, service_id: str, hook_instance: str, cards: Iterable[tuple[str, str]],
                      silent: Iterable[str] = ()) -> None:
        """Queue the cards issued by one call, and the findings of silent rules (no card), for writing."""
        now = datetime.now(timezone.utc)
        rows = [(issued_cards, {"card_uuid": card_uuid, "service_id": service_id, "rule_id": rule_id,
                                "hook_instance": hook_instance[:200], "issued_at": now}) for card_uuid, rule_id in cards]
        rows += [(silent_firings, {"service_id": service_id, "rule_id": rule_id, "hook_instance": hook_instance[:200],
                                   "fired_at": now}) for rule_id in silent]
        for row in rows:
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                log.warning("issued-card queue full; %s of rule %s not recorded", row[0].name, row[1]["rule_id"])

    def _write_issued(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with self.engine.begin() as conn:
                    for table in (issued_cards, silent_firings):
                        rows = [row for t, row in batch if t is table]
                        if rows:
                            conn.execute(insert(table), rows)
            except Exception:  # keep the writer alive whatever the database does
                log.exception("could not record %d issued cards", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every issued card queued so far is written (tests, shutdown)."""
        done = threading.Event()

        def waiter():
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        done.wait(timeout)

    # -------------------------------------------------------------- reads
    def all_feedback(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(feedback).order_by(feedback.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(feedback.c.id)).all())

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except Exception:
            log.exception("feedback database unreachable")
            return False
