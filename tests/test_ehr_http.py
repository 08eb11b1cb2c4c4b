"""Ordinary HTTP habits of real clients: gzip bodies, trailing slashes, upper-case fhirServer, CORS headers."""
from __future__ import annotations

import gzip
import json
import zlib

import pytest

from support import security as sk
from support.helpers import PV, fixture_bundle, hook_request, prefetch_from_fixture, topics

LIMIT = 50_000


def _low_mg_request() -> dict:
    return hook_request(PV, "dx-low-mg", prefetch=prefetch_from_fixture(PV, "dx-low-mg", fixture_bundle("dx-low-mg")))


def _post(client, path: str, raw: bytes, encoding: str | None = None):
    headers = {"Content-Type": "application/json"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return client.post(path, data=raw, headers=headers)


def _outcome(resp, status: int, code: str) -> str:
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == code
    return body["issue"][0]["diagnostics"]


@pytest.fixture
def small_client(make_app):
    return make_app(CDS_MAX_BODY_BYTES=str(LIMIT)).test_client()


# ------------------------------------------------------------------ Content-Encoding

@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "x-gzip", "identity, gzip"])
def test_gzip_body_gives_the_same_cards_as_the_plain_one(client, encoding):
    raw = json.dumps(_low_mg_request()).encode()
    plain = _post(client, f"/cds-services/{PV}", raw)
    zipped = _post(client, f"/cds-services/{PV}", gzip.compress(raw), encoding)
    assert zipped.status_code == 200, zipped.get_data(as_text=True)[:300]
    assert topics(zipped.get_json()) == topics(plain.get_json()) and "electrolyte-review" in topics(plain.get_json())


def test_gzip_feedback_is_stored(client):
    body = {"feedback": [{"card": "c-1", "outcome": "accepted", "outcomeTimestamp": "2026-01-15T12:00:00Z"}]}
    resp = _post(client, f"/cds-services/{PV}/feedback", gzip.compress(json.dumps(body).encode()), "gzip")
    assert resp.status_code == 200 and resp.get_json() == {"stored": 1}


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, gzip", "zstd"])
def test_other_encodings_get_415_naming_the_encoding(client, encoding):
    raw = json.dumps(_low_mg_request()).encode()
    text = _outcome(_post(client, f"/cds-services/{PV}", raw, encoding), 415, "not-supported")
    assert encoding in text and "gzip" in text


def test_broken_gzip_gets_400_without_a_python_message(client):
    raw = gzip.compress(json.dumps(_low_mg_request()).encode())
    for bad in (b"not gzip at all", raw[: len(raw) // 2], raw + b"trailing"):
        text = _outcome(_post(client, f"/cds-services/{PV}", bad, "gzip"), 400, "invalid")
        assert "gzip" in text and "Error" not in text and "codec" not in text


def test_gzip_that_was_not_declared_is_a_clear_400(client):
    raw = gzip.compress(json.dumps(_low_mg_request()).encode())
    text = _outcome(_post(client, f"/cds-services/{PV}", raw), 400, "invalid")
    assert "not valid JSON" in text


def test_limit_applies_to_the_decompressed_size(small_client):
    body = _low_mg_request()
    body["extension"] = {"padding": "x" * (LIMIT * 3)}  # compresses to far below the limit
    raw = gzip.compress(json.dumps(body).encode())
    assert len(raw) < LIMIT
    text = _outcome(_post(small_client, f"/cds-services/{PV}", raw, "gzip"), 413, "too-costly")
    assert str(LIMIT) in text


def test_gzip_bomb_is_refused_without_being_expanded(small_client, monkeypatch):
    """1 GiB of zeros in ~1 MB of gzip: refused after at most LIMIT + 1 bytes of output."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(1024)) + compressor.flush()
    produced = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *a, **kw):
            self._d = real(*a, **kw)

        def decompress(self, data, max_length=0):
            out = self._d.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._d, name)

    monkeypatch.setattr("cds_service.http_body.zlib.decompressobj", Counting)
    small_client.application.config["MAX_CONTENT_LENGTH"] = len(bomb) + 1
    _outcome(_post(small_client, f"/cds-services/{PV}", bomb, "gzip"), 413, "too-costly")
    assert produced and sum(produced) <= LIMIT + 1


# ------------------------------------------------------------------ trailing slashes

def test_trailing_slash_urls_answer_like_the_canonical_ones(client):
    assert client.get("/cds-services/").get_json() == client.get("/cds-services").get_json()
    raw = json.dumps(_low_mg_request()).encode()
    slash = _post(client, f"/cds-services/{PV}/", raw)
    assert slash.status_code == 200 and topics(slash.get_json()) == topics(_post(client, f"/cds-services/{PV}", raw)
                                                                           .get_json())
    body = {"feedback": [{"card": "c-2", "outcome": "accepted", "outcomeTimestamp": "2026-01-15T12:00:00Z"}]}
    assert _post(client, f"/cds-services/{PV}/feedback/", json.dumps(body).encode()).get_json() == {"stored": 1}
    _outcome(client.post("/cds-services/no-such-service/", json={}), 404, "not-found")


def test_trailing_slash_is_accepted_in_the_token_audience_too(tmp_path):
    keys = sk.Keys()
    client = sk.make_app(tmp_path, str(sk.write_jwks(tmp_path, keys))).test_client()
    body = sk.hook_request(with_fhir=False)
    for path, aud in ((f"/cds-services/{sk.SERVICE}/", sk.SERVICE_URL + "/"),
                      (f"/cds-services/{sk.SERVICE}/", sk.SERVICE_URL),
                      (f"/cds-services/{sk.SERVICE}", sk.SERVICE_URL)):
        resp = client.post(path, json=body, headers=sk.auth(sk.mint(keys, jku=None, aud=aud)))
        assert resp.status_code == 200, (path, aud, resp.get_data(as_text=True)[:200])
    # ...but only on the trailing-slash URL: the canonical URL still wants the exact endpoint
    resp = client.post(f"/cds-services/{sk.SERVICE}", json=body,
                       headers=sk.auth(sk.mint(keys, jku=None, aud=sk.SERVICE_URL + "/")))
    assert resp.status_code == 401


# ------------------------------------------------------------------ fhirServer spelling

@pytest.mark.parametrize("spelling", ["HTTPS://FHIR.Example.ORG/r4", "Https://fhir.example.org/r4",
                                      "https://FHIR.EXAMPLE.ORG./r4"])
def test_fhir_server_scheme_and_host_compare_case_insensitively(make_app, spelling):
    client = make_app(CDS_ALLOWED_FHIR_SERVERS="https://fhir.example.org/r4").test_client()
    body = _low_mg_request()
    body["fhirServer"] = spelling
    resp = client.post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.get_json()["cards"]


@pytest.mark.parametrize("spelling", ["https://fhir.example.org/R4", "https://fhir.example.org:8443/r4",
                                      "https://fhir.example.org/r4x"])
def test_fhir_server_path_and_port_stay_exact(make_app, spelling):
    """Not on the allowlist: never contacted, so the missing data is reported, never fetched."""
    client = make_app(CDS_ALLOWED_FHIR_SERVERS="https://fhir.example.org/r4").test_client()
    body = hook_request(PV, "dx-low-mg", fhir_server=spelling, token="t")
    resp = client.post(f"/cds-services/{PV}", json=body)
    assert resp.status_code == 412
    assert "allowlist" in json.dumps(resp.get_json())


# ------------------------------------------------------------------ CORS

def _preflight(client, headers: str):
    return client.options(f"/cds-services/{PV}", headers={
        "Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers})


def _allowed(resp) -> set[str]:
    return {h.strip().lower() for h in resp.headers.get("Access-Control-Allow-Headers", "").split(",") if h.strip()}


def test_cors_preflight_allows_epic_client_id_and_content_encoding(client):
    resp = _preflight(client, "authorization, content-type, epic-client-id, content-encoding")
    assert resp.status_code == 200
    assert {"authorization", "content-type", "epic-client-id", "content-encoding"} <= _allowed(resp)


def test_cors_allows_headers_named_by_the_setting_and_no_others(make_app):
    client = make_app(CDS_CORS_ALLOW_HEADERS="X-Site-Trace, X-Other").test_client()
    assert "x-site-trace" in _allowed(_preflight(client, "x-site-trace"))
    assert "x-not-listed" not in _allowed(_preflight(client, "x-not-listed"))
