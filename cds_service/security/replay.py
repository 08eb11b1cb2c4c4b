"""JWT replay cache shared by every worker and replica: a table in the feedback database.

One row per accepted ``(iss, jti)`` with the time after which it may be forgotten. The primary key
is ``(iss, jti)``, so "remember this token unless it has been seen" is a single atomic
``INSERT ... ON CONFLICT`` that SQLite (one host, any number of workers) and PostgreSQL (several
replicas) both serialise: whichever worker or replica sees a token second finds the row and refuses it.
A row whose token has expired is taken over by the same statement (``DO UPDATE ... WHERE expired``),
and expired rows are deleted now and then, so the table holds only tokens still within their lifetime.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from sqlalchemy import Column, Float, MetaData, String, Table, delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

log = logging.getLogger(__name__)

PURGE_EVERY_S = 60.0

metadata = MetaData()

jwt_replay = Table(
    "jwt_replay", metadata,
    Column("iss", String(500), primary_key=True),
    Column("jti", String(256), primary_key=True),  # the authenticator refuses longer jti values
    Column("forget_after", Float, nullable=False, index=True),  # epoch seconds: exp + leeway
)


class ReplayStoreError(Exception):
    """The shared replay cache could not be read or written: the token can be neither accepted nor refused."""


class DbReplayCache:
    """``check_and_add(iss, jti, forget_after)`` against the ``jwt_replay`` table; same contract as ReplayCache."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time, purge_every_s: float = PURGE_EVERY_S):
        self.engine = engine
        self.clock = clock
        self.purge_every_s = purge_every_s
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()
        self._dialect = engine.dialect.name

    def check_and_add(self, iss: str, jti: str, forget_after: float) -> bool:
        """True when (iss, jti) is new or its earlier token has expired (and is now remembered); False for a replay."""
        now = self.clock()
        row = {"iss": iss, "jti": jti, "forget_after": forget_after}
        try:
            with self.engine.begin() as conn:
                fresh = self._insert(conn, row, now)
        except SQLAlchemyError as exc:
            raise ReplayStoreError(f"replay cache unavailable ({type(exc).__name__})") from None
        self._maybe_purge(now)
        return fresh

    def _insert(self, conn, row: dict, now: float) -> bool:
        upsert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(self._dialect)
        if upsert is None:  # another database: a plain insert; the unique key still decides
            try:
                with conn.begin_nested():
                    conn.execute(insert(jwt_replay).values(**row))
                return True
            except IntegrityError:
                return False
        stmt: Any = upsert(jwt_replay).values(**row)  # the dialect's Insert, with on_conflict_do_update
        stmt = stmt.on_conflict_do_update(
            index_elements=[jwt_replay.c.iss, jwt_replay.c.jti],
            set_={"forget_after": stmt.excluded.forget_after},
            where=jwt_replay.c.forget_after < now,  # only a row whose token has expired is taken over
        ).returning(jwt_replay.c.jti)  # a row back: inserted or taken over (rowcount is -1 with psycopg)
        return conn.execute(stmt).first() is not None

    def _maybe_purge(self, now: float) -> None:
        if now < self._next_purge or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._next_purge = now + self.purge_every_s
            with self.engine.begin() as conn:
                purged = conn.execute(delete(jwt_replay).where(jwt_replay.c.forget_after < now)).rowcount
            if purged:
                log.debug("replay cache: %d expired jti rows purged", purged)
        except SQLAlchemyError as exc:  # the token is already remembered: a failed purge must not refuse it
            log.warning("replay cache: expired rows not purged (%s); will retry", type(exc).__name__)
        finally:
            self._purge_lock.release()

    def __len__(self) -> int:
        from sqlalchemy import func, select

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(jwt_replay)).scalar_one())
