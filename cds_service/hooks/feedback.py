"""Feedback store (SQLAlchemy Core): SQLite by default, PostgreSQL for several replicas.

Feedback is written in one transaction before the 200 is returned. The cards the
service issues are recorded too (card uuid -> service, rule), so that feedback can
be attributed to rules and acceptance rates computed, even when the feedback
reaches another replica.
"""
from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import (Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, event, insert,
                        select)
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
# How long the issued-card writer waits after the first queued record before writing what has come in.
ISSUED_LINGER_S = 0.05

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


# Every override reason of a feedback item: CDS Hooks 2.0 sends one (overrideReason), Epic a list
# (overrideReasons). The first is also kept in the feedback row itself.
override_reasons = Table(
    "feedback_override_reasons", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feedback_id", Integer, nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("system", String(300), nullable=True),
    Column("code", String(200), nullable=True),
    Column("display", String(500), nullable=True),
    Column("user_comment", Text, nullable=True),
)


def reasons_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Every override reason of a feedback item as {system, code, display, user_comment}, in order.

    ``overrideReason`` (CDS Hooks 2.0) comes first, then each ``overrideReasons`` item (Epic), which may be an
    OverrideReason ({reason, userComment}) or a bare Coding. Items with neither a reason nor a comment are skipped.
    """
    raw = []
    if isinstance(item.get("overrideReason"), dict):
        raw.append(item["overrideReason"])
    raw.extend(r for r in item.get("overrideReasons") or [] if isinstance(r, dict))
    out = []
    for entry in raw:
        coding = entry.get("reason") if isinstance(entry.get("reason"), dict) else (entry if "code" in entry else {})
        reason = {"system": coding.get("system"), "code": coding.get("code"), "display": coding.get("display"),
                  "user_comment": entry.get("userComment")}
        if any(v is not None for v in reason.values()):
            out.append(reason)
    return out


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


def create_schema(engine: Engine, setting: str, meta: MetaData = metadata) -> None:
    """Create the tables. gunicorn workers start together and may all open a new SQLite file at once; switching
    it to WAL then fails with "database is locked" in all but one, so the first connection and the schema are
    set up under an exclusive file lock (one worker at a time; the others find it done)."""
    path = _sqlite_file(setting)
    if path is None:
        meta.create_all(engine)
        return
    import fcntl

    with open(f"{path}.init-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            meta.create_all(engine)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class FeedbackStore:
    def __init__(self, setting: str, on_drop: Callable[[str], None] | None = None, queue_size: int = 10000):
        self.engine = make_engine(setting)
        create_schema(self.engine, setting)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._on_drop = on_drop  # called with the table name of each record dropped because the queue is full
        self.dropped = 0
        self._writer = threading.Thread(target=self._write_issued, name="issued-cards-writer", daemon=True)
        self._writer.start()
        _LIVE.add(self)

    # -------------------------------------------------------------- feedback (synchronous, durable)
    def add_feedback(self, service_id: str, items: Iterable[dict[str, Any]]) -> int:
        now = datetime.now(timezone.utc)
        rows = []
        for item in items:
            reasons = reasons_of(item)
            first = reasons[0] if reasons else {}
            comment = next((r["user_comment"] for r in reasons if r["user_comment"]), None)
            accepted = [s.get("id") for s in item.get("acceptedSuggestions") or [] if isinstance(s, dict)]
            rows.append(({
                "service_id": service_id,
                "card_uuid": item["card"],
                "outcome": item["outcome"],
                "accepted_suggestions": json.dumps(accepted) if accepted else None,
                "override_system": first.get("system"),
                "override_code": first.get("code"),
                "override_display": first.get("display"),
                "user_comment": comment,
                "outcome_timestamp": item["outcomeTimestamp"],
                "received_at": now,
            }, reasons))
        with self.engine.begin() as conn:
            for row, reasons in rows:
                key = conn.execute(insert(feedback), row).inserted_primary_key
                assert key is not None  # an autoincrement id, always returned
                feedback_id = key[0]
                if reasons:
                    conn.execute(insert(override_reasons), [dict(r, feedback_id=feedback_id, position=i)
                                                            for i, r in enumerate(reasons)])
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
            except queue.Full:  # never make a clinician wait for the record: count it and drop it
                self.dropped += 1
                if self._on_drop is not None:
                    self._on_drop(row[0].name)
                log.warning("issued-card queue full; %s of rule %s not recorded", row[0].name, row[1]["rule_id"])

    def _write_issued(self) -> None:
        while True:
            batch = [self._queue.get()]
            # One transaction costs this (GIL-holding) thread ~0.3-1 ms of CPU whatever its size: under load,
            # waiting a moment lets one transaction take the records of many calls instead of one each.
            time.sleep(ISSUED_LINGER_S)
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

    def close(self, timeout: float = 5.0) -> None:
        """Write what is still queued (shutdown: atexit and gunicorn's worker_exit both call it; twice is harmless)."""
        if self._queue.unfinished_tasks:
            self.flush(timeout)
        _LIVE.discard(self)


    # -------------------------------------------------------------- reads
    def all_feedback(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(feedback).order_by(feedback.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def all_override_reasons(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(override_reasons).order_by(override_reasons.c.feedback_id,
                                                                  override_reasons.c.position)).mappings().all()
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


_LIVE: "weakref.WeakSet[FeedbackStore]" = weakref.WeakSet()


@atexit.register
def flush_all(timeout: float = 5.0) -> None:
    """Flush every open store's queued issued-card records (process shutdown)."""
    for store in list(_LIVE):
        store.close(timeout)
