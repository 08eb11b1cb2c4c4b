"""Replaying one JWT against live services (gunicorn processes) and seeing which worker refused it."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from support.security import BASE, ISS, SERVICE, SERVICE_URL, Keys, auth, hook_request, mint, write_jwks


def jwt_env(tmp_path, keys: Keys) -> dict:
    return {"CDS_REQUIRE_JWT": "true", "CDS_PUBLIC_BASE_URL": BASE,
            "CDS_TRUSTED_ISSUERS": json.dumps({ISS: str(write_jwks(tmp_path, keys))}), "CDS_LOG_LEVEL": "INFO"}


def _new_log_lines(service, seen: list[int]) -> list[dict]:
    text = service.log_text()
    fresh, seen[0] = text[seen[0]:], len(text)
    out = []
    for line in fresh.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # gunicorn's own lines
    return out


def _post(service, token: str) -> requests.Response:
    return requests.post(f"{service.base_url}/cds-services/{SERVICE}", json=hook_request(with_fhir=False),
                         headers={**auth(token), "Connection": "close"}, timeout=15)


def assert_replays_refused_across(services, keys, tokens: int = 4, tries: int = 12) -> list[dict]:
    """Each token: accepted once, then replayed on new connections until a pid other than the accepting one
    refused it. Returns what happened, per token."""
    seen = {id(s): [0] for s in services}
    outcomes = []
    for n in range(tokens):
        token = mint(keys, jku=None, aud=SERVICE_URL)
        first = services[n % len(services)]
        resp = _post(first, token)
        assert resp.status_code == 200, (resp.text, first.log_text()[-2000:])
        time.sleep(0.05)
        accepted_by = {line["pid"] for line in _new_log_lines(first, seen[id(first)]) if line.get("msg") == "hook answered"}
        assert len(accepted_by) == 1
        refused_by = set()
        for attempt in range(tries):
            target = services[(n + 1 + attempt) % len(services)]
            resp = _post(target, token)
            assert resp.status_code == 401, (attempt, resp.status_code, resp.text)
            time.sleep(0.05)
            refused_by |= {line["pid"] for line in _new_log_lines(target, seen[id(target)])
                           if line.get("event") == "auth-refused" and "jti replayed" in line.get("msg", "")}
            if refused_by - accepted_by:
                break
        assert refused_by - accepted_by, f"every replay of token {n} reached the accepting worker {accepted_by}"
        outcomes.append({"accepted_by": sorted(accepted_by), "refused_by": sorted(refused_by),
                         "replays_sent": attempt + 1})
    return outcomes


def race(services, keys, senders: int = 8) -> int:
    """The same fresh token sent by several threads at once, spread over the services: how many were accepted."""
    token = mint(keys, jku=None, aud=SERVICE_URL)
    start = threading.Barrier(senders)

    def send(i):
        start.wait()
        return _post(services[i % len(services)], token).status_code

    with ThreadPoolExecutor(max_workers=senders) as pool:
        codes = list(pool.map(send, range(senders)))
    assert set(codes) <= {200, 401}, codes
    return codes.count(200)
