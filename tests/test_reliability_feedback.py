"""Feedback durability: 10,000 items from 8 threads over HTTP, all stored; the service killed and restarted,
all still there (read back by a separate process, then through a new service on the same database)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from support.helpers import PV
from support.live import start_service, stop_service

ITEMS = 10_000
THREADS = 8
PER_REQUEST = 5  # CDS Hooks feedback carries a list; 2,000 requests of 5 items


def _count_in_fresh_process(db_path) -> dict:
    code = ("import json,sys\nfrom cds_service.hooks.feedback import FeedbackStore\n"
            "s = FeedbackStore(sys.argv[1])\nrows = s.all_feedback()\n"
            "print(json.dumps({'count': s.count(), 'cards': [r['card_uuid'] for r in rows]}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_ten_thousand_feedback_items_from_eight_threads_survive_a_kill_and_restart(tmp_path):
    service = start_service(tmp_path, {})
    sent: list[str] = []
    try:
        def writer(t: int) -> list[str]:
            session = requests.Session()
            mine = []
            for r in range(ITEMS // THREADS // PER_REQUEST):
                cards = [f"t{t}-r{r}-{i}-{uuid.uuid4().hex[:8]}" for i in range(PER_REQUEST)]
                body = {"feedback": [{"card": c, "outcome": "overridden" if i % 2 else "accepted",
                                      "outcomeTimestamp": "2026-01-15T12:00:00Z",
                                      **({"overrideReason": {"userComment": f"comment {c}"}} if i % 2 else {})}
                                     for i, c in enumerate(cards)]}
                resp = session.post(f"{service.base_url}/cds-services/{PV}/feedback", json=body, timeout=30)
                assert resp.status_code == 200 and resp.json() == {"stored": PER_REQUEST}, resp.text
                mine.extend(cards)
            return mine

        with ThreadPoolExecutor(THREADS) as pool:
            for cards in pool.map(writer, range(THREADS)):
                sent.extend(cards)
    finally:
        # no graceful shutdown: every acknowledged write must already be on disk
        os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait(timeout=15)
    assert len(sent) == ITEMS == len(set(sent))

    stored = _count_in_fresh_process(service.feedback_db)
    assert stored["count"] == ITEMS
    assert sorted(stored["cards"]) == sorted(sent)

    restarted = start_service(tmp_path, {})
    try:
        resp = restarted.post(f"/cds-services/{PV}/feedback", {"feedback": [
            {"card": "after-restart", "outcome": "accepted", "outcomeTimestamp": "2026-01-15T12:00:00Z"}]})
        assert resp.status_code == 200
    finally:
        stop_service(restarted)
    assert _count_in_fresh_process(restarted.feedback_db)["count"] == ITEMS + 1


def test_many_processes_opening_a_new_feedback_database_at_once(tmp_path):
    """gunicorn starts its workers together and each opens the (new) SQLite file: none may fail to boot."""
    code = ("import sys, time\nfrom cds_service.hooks.feedback import FeedbackStore\n"
            "start = float(sys.argv[2])\nwhile time.time() < start: time.sleep(0.001)\n"
            "s = FeedbackStore(sys.argv[1])\nprint(s.ping())\n")
    for attempt in range(5):
        db = tmp_path / f"fresh-{attempt}.sqlite3"
        import time as _time
        start = _time.time() + 1.5  # every process past its imports, then all open the file together
        procs = [subprocess.Popen([sys.executable, "-c", code, str(db), str(start)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        outcomes = [p.communicate(timeout=120) for p in procs]
        failed = [err[-400:] for (out, err), p in zip(outcomes, procs) if p.returncode != 0 or "True" not in out]
        assert failed == [], failed
