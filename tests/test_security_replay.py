"""The JWT replay cache is shared: a token is accepted once, whichever worker or process sees it again.

Unit tests of the table (``cds_service/security/replay.py``) on SQLite, then the real thing: the
service under gunicorn with two workers on one SQLite file, each replay sent on a new connection
until a worker other than the one that accepted the token has refused it (the JSON log names the
worker's pid). The same across two service processes on one PostgreSQL is in test_postgres.py.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, select

from cds_service.hooks.feedback import create_schema
from cds_service.security.replay import DbReplayCache, ReplayStoreError, jwt_replay, metadata
from support.live import start_service, stop_service
from support.replay import assert_replays_refused_across, jwt_env, race
from support.security import ISS, SERVICE, SERVICE_URL, Keys, auth, hook_request, mint, write_jwks


def _cache(path, clock=time.time, **kwargs) -> DbReplayCache:
    setting = str(path)
    engine = create_engine(f"sqlite:///{setting}", connect_args={"timeout": 30, "check_same_thread": False})
    create_schema(engine, setting, metadata)
    return DbReplayCache(engine, clock=clock, **kwargs)


def test_table_remembers_per_issuer_until_expiry_then_purges(tmp_path):
    clock = [1000.0]
    cache = _cache(tmp_path / "r.sqlite3", clock=lambda: clock[0], purge_every_s=0)
    assert cache.check_and_add(ISS, "a", 1100.0)
    assert not cache.check_and_add(ISS, "a", 1100.0)
    assert cache.check_and_add("https://other-ehr.example", "a", 1100.0)  # jti is per issuer
    assert cache.check_and_add(ISS, "b", 1300.0)
    assert len(cache) == 3
    clock[0] = 1150.0  # the "a" tokens have expired: the same jti is a new token now, and the old rows go
    assert cache.check_and_add(ISS, "a", 1250.0)
    assert not cache.check_and_add(ISS, "a", 1250.0)
    with cache.engine.connect() as conn:
        rows = sorted(conn.execute(select(jwt_replay.c.iss, jwt_replay.c.jti, jwt_replay.c.forget_after)).all())
    assert rows == [(ISS, "a", 1250.0), (ISS, "b", 1300.0)]  # the other issuer's expired row was purged


def test_two_stores_on_one_file_accept_each_jti_once_under_contention(tmp_path):
    """Two engines stand for two processes; eight threads race on fifty jti values."""
    path = tmp_path / "r.sqlite3"
    caches = [_cache(path), _cache(path)]
    later = time.time() + 300
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: caches[i % 2].check_and_add(ISS, f"jti-{i % 50}", later), range(400)))
    assert sum(results) == 50


def test_unreachable_store_is_an_error_not_an_acceptance(tmp_path):
    cache = _cache(tmp_path / "r.sqlite3")
    with cache.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE jwt_replay")
    with pytest.raises(ReplayStoreError):
        cache.check_and_add(ISS, "a", time.time() + 60)


def test_service_answers_503_when_the_replay_store_fails(tmp_path):
    from support.security import make_app

    keys = Keys()
    app = make_app(tmp_path, str(write_jwks(tmp_path, keys)))
    with app.extensions["cds"].feedback.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE jwt_replay")
    resp = app.test_client().post(f"/cds-services/{SERVICE}", json=hook_request(with_fhir=False),
                                  headers=auth(mint(keys, jku=None, aud=SERVICE_URL)))
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_restart_does_not_forget_a_token(tmp_path):
    from support.security import make_app

    keys = Keys()
    jwks = str(write_jwks(tmp_path, keys))
    token = mint(keys, jku=None, aud=SERVICE_URL)
    first = make_app(tmp_path, jwks).test_client()
    assert first.post(f"/cds-services/{SERVICE}", json=hook_request(with_fhir=False), headers=auth(token)).status_code == 200
    again = make_app(tmp_path, jwks).test_client()  # a new app (a restarted worker) on the same store
    assert again.post(f"/cds-services/{SERVICE}", json=hook_request(with_fhir=False), headers=auth(token)).status_code == 401


# ------------------------------------------------------------------ two gunicorn workers, one SQLite file

def test_two_gunicorn_workers_share_the_replay_cache(tmp_path):
    keys = Keys()
    service = start_service(tmp_path, jwt_env(tmp_path, keys), workers=2)
    try:
        outcomes = assert_replays_refused_across([service], keys)
        assert len({pid for o in outcomes for pid in o["accepted_by"] + o["refused_by"]}) == 2  # both workers
        for _ in range(5):
            assert race([service], keys) == 1
    finally:
        stop_service(service)


def test_jti_longer_than_the_column_is_refused_before_the_store(tmp_path):
    from support.security import make_app

    keys = Keys()
    app = make_app(tmp_path, str(write_jwks(tmp_path, keys)))
    token = mint(keys, jku=None, aud=SERVICE_URL, jti="j" * 257)
    resp = app.test_client().post(f"/cds-services/{SERVICE}", json=hook_request(with_fhir=False), headers=auth(token))
    assert resp.status_code == 401


def test_a_failed_purge_does_not_refuse_the_token_just_remembered(tmp_path, caplog):
    cache = _cache(tmp_path / "r.sqlite3", purge_every_s=0)
    real_begin = cache.engine.begin
    calls = []

    def begin_then_fail():
        calls.append(1)
        if len(calls) == 2:  # the purge's transaction
            from sqlalchemy.exc import OperationalError
            raise OperationalError("DELETE", {}, Exception("database is locked"))
        return real_begin()

    cache.engine.begin = begin_then_fail
    assert cache.check_and_add(ISS, "a", time.time() + 60)
    assert any("not purged" in r.getMessage() for r in caplog.records)
    cache.engine.begin = real_begin
    assert not cache.check_and_add(ISS, "a", time.time() + 60)
