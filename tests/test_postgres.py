"""The feedback store and the report on a real PostgreSQL server (the several-replicas set-up).

A throwaway cluster is initdb'd in a temporary folder and started on 127.0.0.1 on a free port (as the
`postgres` user when the tests run as root: PostgreSQL refuses to run as root). Skipped where PostgreSQL
is not installed; under CI=true (where .ci/run installs it) that is a failure.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from cds_service.cli import main
from cds_service.devtools.fhir_server import free_port
from cds_service.hooks.feedback import FeedbackStore, issued_cards
from support.helpers import PV, fixture_bundle, hook_request, prefetch_from_fixture, rule_of
from support.live import start_service, stop_service

pytestmark = pytest.mark.postgres


def _require_or_skip(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


class Cluster:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="cds-pg-"))  # not under pytest's root-only tmp folder
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                _require_or_skip("running as root and there is no `postgres` user to run PostgreSQL as")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.as_user, str(self.bindir / tool), *args], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed: {proc.stdout}\n{proc.stderr}")
        return proc

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w",
                 "-t", "60", "start")

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        name = f"cds_{uuid.uuid4().hex[:10]}"
        admin = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="module")
def postgres():
    bindir = postgres_bin()
    if bindir is None:
        _require_or_skip("PostgreSQL is not installed (Debian: apt-get install postgresql); PostgreSQL tests skipped")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _require_or_skip("psycopg is not installed (pip install 'cds-service[postgres]')")
    cluster = Cluster(bindir)
    cluster.start()
    yield cluster
    cluster.stop()


def test_store_writes_and_reads_feedback_on_postgres(postgres):
    url = postgres.create_database()
    store = FeedbackStore(url)
    assert store.ping()
    store.record_issued(PV, "hook-1", [("card-1", "electrolyte-review"), ("card-2", "electrolyte-review")])
    store.flush()
    stored = store.add_feedback(PV, [{
        "card": "card-1", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T12:05:00Z",
        "overrideReason": {"reason": {"code": "recently-corrected", "display": "Magnesium already being corrected"},
                           "userComment": "Given this morning"}}])
    assert stored == 1
    rows = store.all_feedback()
    assert [(r["card_uuid"], r["override_code"], r["user_comment"]) for r in rows] == [
        ("card-1", "recently-corrected", "Given this morning")]
    assert rows[0]["received_at"].tzinfo is not None
    with store.engine.connect() as conn:
        assert conn.execute(select(issued_cards.c.card_uuid).order_by(issued_cards.c.card_uuid)).scalars().all() == [
            "card-1", "card-2"]
        assert conn.dialect.name == "postgresql"
    store.engine.dispose()


def test_two_replicas_share_one_store_and_the_report_reads_it(postgres, tmp_path, capsys):
    """A card issued by one replica and answered through another is still attributed to its rule."""
    url = postgres.create_database()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    replica_a = start_service(tmp_path / "a", {"CDS_FEEDBACK_DB": url}, workers=1)
    replica_b = None
    try:
        replica_b = start_service(tmp_path / "b", {"CDS_FEEDBACK_DB": url}, workers=1)
        assert replica_a.get("/health").json()["feedbackStore"] is True
        uuids = []  # the electrolyte-review cards
        all_uuids = []  # every card issued
        for _ in range(3):
            body = hook_request(PV, "dx-low-mg",
                                prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg"),
                                                               now=datetime.now(timezone.utc)))
            resp = replica_a.post(f"/cds-services/{PV}", body)
            assert resp.status_code == 200
            cards = resp.json()["cards"]
            uuids.append(next(c["uuid"] for c in cards if rule_of(c) == "electrolyte-review"))
            all_uuids.extend(c["uuid"] for c in cards)
        feedback = {"feedback": [
            {"card": uuids[0], "outcome": "accepted", "outcomeTimestamp": "2026-01-15T12:05:00Z"},
            {"card": uuids[1], "outcome": "overridden", "outcomeTimestamp": "2026-01-15T12:06:00Z",
             "overrideReason": {"reason": {"code": "dialysate-adjusted",
                                           "display": "Dialysate magnesium already adjusted"},
                                "userComment": "Bath already 1.0 mmol/L"}}]}
        resp = replica_b.post(f"/cds-services/{PV}/feedback", feedback)
        assert resp.status_code == 200 and resp.json() == {"stored": 2}
        # issued cards are written off the request path: give replica A's writer a moment
        engine = create_engine(url)
        deadline = time.monotonic() + 15
        while True:
            with engine.connect() as conn:
                issued = conn.execute(select(issued_cards.c.card_uuid)).scalars().all()
            if len(issued) >= len(all_uuids) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        engine.dispose()
        assert set(issued) == set(all_uuids)
    finally:
        stop_service(replica_a)
        if replica_b is not None:
            stop_service(replica_b)

    assert main(["feedback", "report", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "| `electrolyte-review` | 3 | 2 | 67% | 1 | 1 | 50% | 50% |" in out
    assert "- Dialysate magnesium already adjusted (`dialysate-adjusted`): 1" in out
    assert "“Bath already 1.0 mmol/L”" in out
    assert main(["feedback", "report", "--db", url, "--format", "csv"]) == 0
    assert f"{PV},electrolyte-review,3,2,0.6667,1,1,0.5000,0.5000" in capsys.readouterr().out


def test_report_on_postgres_without_the_tables_is_a_clear_error(postgres, capsys):
    url = postgres.create_database()
    assert main(["feedback", "report", "--db", url]) == 2
    assert "has no feedback or issued_cards table" in capsys.readouterr().err


def test_two_service_processes_on_one_postgres_share_the_replay_cache(postgres, tmp_path):
    """A token accepted by one replica is refused by the other, and a token raced to both is accepted once."""
    from support.replay import assert_replays_refused_across, jwt_env, race
    from support.security import Keys

    url = postgres.create_database()
    keys = Keys()
    replicas = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            replicas.append(start_service(tmp_path / name, {**jwt_env(tmp_path, keys), "CDS_FEEDBACK_DB": url},
                                          workers=1))
        outcomes = assert_replays_refused_across(replicas, keys, tokens=4, tries=2)
        assert all(o["replays_sent"] == 1 for o in outcomes)  # one worker each: the first replay crossed over
        for _ in range(5):
            assert race(replicas, keys) == 1
    finally:
        for replica in replicas:
            stop_service(replica)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jwt_replay")).scalar_one() == 4 + 5
    engine.dispose()


def test_readiness_fails_while_the_shared_store_is_gone_and_liveness_does_not(postgres, make_app):
    url = postgres.create_database()
    client = make_app(CDS_FEEDBACK_DB=url).test_client()
    assert client.get("/health/ready").status_code == 200
    name = url.rsplit("/", 1)[1]
    admin = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/postgres",
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))  # the store goes away under the running app
    admin.dispose()
    resp = client.get("/health/ready")
    assert resp.status_code == 503, resp.get_json()
    body = resp.get_json()
    assert body["checks"]["feedbackStore"] is False and any("CDS_FEEDBACK_DB" in p for p in body["problems"])
    assert client.get("/health/live").status_code == 200
