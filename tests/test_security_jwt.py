"""JWT attack matrix, through the Flask test client, on discovery, invocation and feedback.

Every refused case must answer 401 with a WWW-Authenticate header and a body that says
nothing about why; the reason goes to the log (asserted for a few cases).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid

import jwt
import pytest
import responses

from support.security import (BASE, DISCOVERY_URL, FEEDBACK_URL, ISS, JWKS_URL, SERVICE, SERVICE_URL, Keys, auth, b64,
                          claims, hook_request, make_app, mint, write_jwks)
from support.helpers import rule_of

ENDPOINTS = ["discovery", "invoke", "feedback"]
AUDIENCE = {"discovery": DISCOVERY_URL, "invoke": SERVICE_URL, "feedback": FEEDBACK_URL}


@pytest.fixture(scope="module")
def keys():
    return Keys()


@pytest.fixture(scope="module")
def attacker():
    return Keys("-attacker")


@pytest.fixture(scope="module")
def app(tmp_path_factory, keys):
    tmp = tmp_path_factory.mktemp("jwt")
    path = write_jwks(tmp, keys)
    # offline copy of the issuer's JWKS; tokens name the issuer's public jku (never fetched)
    return make_app(tmp, {"jwks": str(path), "jku": JWKS_URL})


@pytest.fixture()
def client(app):
    return app.test_client()


def call(client, endpoint: str, headers: dict | None = None):
    headers = headers or {}
    if endpoint == "discovery":
        return client.get("/cds-services", headers=headers)
    if endpoint == "invoke":
        return client.post(f"/cds-services/{SERVICE}", json=hook_request(with_fhir=False), headers=headers)
    body = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted",
                          "outcomeTimestamp": "2026-01-05T10:00:00Z"}]}
    return client.post(f"/cds-services/{SERVICE}/feedback", json=body, headers=headers)


def assert_refused(resp):
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert [i["diagnostics"] for i in body["issue"]] == ["Authentication required."]  # no reason, no detail


def assert_ok(resp, endpoint):
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    if endpoint == "discovery":
        assert any(s["id"] == SERVICE for s in body["services"])
    elif endpoint == "invoke":
        assert [rule_of(c) for c in body["cards"]] == ["electrolyte-review"]
    else:
        assert body == {"stored": 1}


# ------------------------------------------------------------------ accepted

@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_valid_token_accepted(client, keys, endpoint, alg):
    assert_ok(call(client, endpoint, auth(mint(keys, alg=alg, aud=AUDIENCE[endpoint]))), endpoint)


def test_feedback_accepts_the_service_url_as_audience(client, keys):
    assert_ok(call(client, "feedback", auth(mint(keys, aud=SERVICE_URL))), "feedback")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_token_without_jku_accepted(client, keys, endpoint):
    assert_ok(call(client, endpoint, auth(mint(keys, jku=None, aud=AUDIENCE[endpoint]))), endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_extra_claims_tolerated(client, keys, endpoint):
    now = int(time.time())
    token = mint(keys, aud=[AUDIENCE[endpoint], "https://elsewhere.example/x"], nbf=now - 300,
                 tenant="hospital-1", sub="epic-client-7", extra={"nested": True})
    assert_ok(call(client, endpoint, auth(token)), endpoint)


# ------------------------------------------------------------------ refused: the matrix

def _alg_none(keys, aud):
    header = {"alg": "none", "typ": "JWT", "kid": keys.ec_kid, "jku": JWKS_URL}
    return f"{b64(header)}.{b64(claims(aud=aud))}."


def _hs256_with_public_key(keys, aud, secret_kind="pem"):
    header = {"alg": "HS256", "typ": "JWT", "kid": keys.rsa_kid, "jku": JWKS_URL}
    signing_input = f"{b64(header)}.{b64(claims(aud=aud))}".encode()
    if secret_kind == "pem":
        secret = keys.public_pem("rsa")
    else:  # the JWK as published in the JWKS
        secret = json.dumps(keys.jwks()["keys"][1]).encode()
    sig = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(sig)}"


def _tampered(keys, aud):
    token = mint(keys, aud=aud, sub="nurse-1")
    head, payload, sig = token.split(".")
    forged = jwt.decode(token, options={"verify_signature": False})
    forged["sub"] = "admin"
    return f"{head}.{b64(forged)}.{sig}"


def _tampered_header(keys, aud):
    """Signature by the EC key, header switched to the RSA kid: must not verify."""
    token = mint(keys, aud=aud)
    _, payload, sig = token.split(".")
    header = {"alg": "ES384", "typ": "JWT", "kid": keys.ec_kid, "jku": JWKS_URL, "x": 1}
    return f"{b64(header)}.{payload}.{sig}"


NOW = lambda: int(time.time())  # noqa: E731

CASES = {  # name: (refusal reason expected in the log, token factory(keys, attacker keys, audience))
    "alg none": ("alg none not accepted", lambda k, a, aud: _alg_none(k, aud)),
    "HS256 with the public key PEM as secret": (
        "alg HS256 not accepted", lambda k, a, aud: _hs256_with_public_key(k, aud, "pem")),
    "HS256 with the public JWK as secret": (
        "alg HS256 not accepted", lambda k, a, aud: _hs256_with_public_key(k, aud, "jwk")),
    "expired": ("expired", lambda k, a, aud: mint(k, aud=aud, iat=NOW() - 900, exp=NOW() - 120)),
    "iat in the future": ("in the future", lambda k, a, aud: mint(k, aud=aud, iat=NOW() + 600, exp=NOW() + 900)),
    "nbf in the future": ("in the future", lambda k, a, aud: mint(k, aud=aud, nbf=NOW() + 600)),
    "wrong aud": ("aud is not this endpoint",
                  lambda k, a, aud: mint(k, aud="https://other-cds.example/cds-services/" + SERVICE)),
    "aud of the right path under another host": (
        "aud is not this endpoint",
        lambda k, a, aud: mint(k, aud=aud.replace(BASE, "https://cds.example.org.evil.example"))),
    "no aud": ("lacks the aud claim", lambda k, a, aud: mint(k, aud=None)),
    "unknown iss (attacker key, attacker jku)": (
        "not a trusted issuer",
        lambda k, a, aud: mint(a, aud=aud, iss="https://evil.example", jku="https://evil.example/jwks.json")),
    "foreign jku for a trusted iss": (
        "is not the JWKS configured", lambda k, a, aud: mint(a, aud=aud, jku="https://evil.example/jwks.json")),
    "unknown kid": ("is not in the JWKS", lambda k, a, aud: mint(a, aud=aud)),
    "kid of the other key type": ("does not fit alg RS384",
                                  lambda k, a, aud: mint(k, alg="RS384", kid=k.ec_kid, aud=aud)),
    "tampered payload": ("signature does not verify", lambda k, a, aud: _tampered(k, aud)),
    "tampered header": ("signature does not verify", lambda k, a, aud: _tampered_header(k, aud)),
    "signed by another key under a trusted kid": ("signature does not verify",
                                                  lambda k, a, aud: mint(a, aud=aud, kid=k.ec_kid)),
    "no jti": ("lacks the jti claim", lambda k, a, aud: mint(k, aud=aud, jti=None)),
    "no exp": ("lacks the exp claim", lambda k, a, aud: mint(k, aud=aud, exp=None)),
    "no iat": ("lacks the iat claim", lambda k, a, aud: mint(k, aud=aud, iat=None)),
    "lifetime longer than allowed": ("exceeds CDS_JWT_MAX_LIFETIME_S",
                                     lambda k, a, aud: mint(k, aud=aud, exp=NOW() + 7200)),
    "RS256 (not in the accepted list)": ("alg RS256 not accepted", lambda k, a, aud: mint(k, alg="RS256", aud=aud)),
    # CDS Hooks 2.0: the JWT header's typ is required and is "JWT"
    "no typ": ("typ None is not JWT", lambda k, a, aud: mint(k, aud=aud, typ=None)),
    "typ at+jwt (an OAuth access token)": ("typ at+jwt is not JWT", lambda k, a, aud: mint(k, aud=aud, typ="at+jwt")),
    "typ JWE": ("typ JWE is not JWT", lambda k, a, aud: mint(k, aud=aud, typ="JWE")),
    "typ not a string": ("is not JWT", lambda k, a, aud: mint(k, aud=aud, typ=["JWT"])),
    # PyJWT reads numeric strings as numbers; RFC 7519 NumericDate is a JSON number
    "exp as a numeric string": ("exp must be a JSON number", lambda k, a, aud: mint(k, aud=aud, exp=str(NOW() + 300))),
    "iat as a numeric string": ("iat must be a JSON number", lambda k, a, aud: mint(k, aud=aud, iat=str(NOW()))),
    "nbf as a numeric string": ("nbf must be a JSON number", lambda k, a, aud: mint(k, aud=aud, nbf=str(NOW() - 60))),
    "exp as a boolean": ("exp", lambda k, a, aud: mint(k, aud=aud, exp=True)),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", list(CASES))
def test_attack_refused(client, keys, attacker, endpoint, case, caplog):
    reason, make = CASES[case]
    token = make(keys, attacker, AUDIENCE[endpoint])
    with caplog.at_level(logging.WARNING):
        assert_refused(call(client, endpoint, auth(token)))
    logged = [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "auth-refused"]
    assert len(logged) == 1 and reason in logged[0], logged  # refused for the reason the case is about


@pytest.mark.parametrize("typ", ["JWT", "jwt", "Jwt"])
def test_typ_jwt_accepted_in_any_case(client, keys, typ):
    assert_ok(call(client, "invoke", auth(mint(keys, aud=SERVICE_URL, typ=typ))), "invoke")


def test_fractional_numeric_dates_accepted(client, keys):
    now = time.time()
    token = mint(keys, aud=SERVICE_URL, iat=now - 1.5, exp=now + 120.25, nbf=now - 10.5)
    assert_ok(call(client, "invoke", auth(token)), "invoke")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_replayed_jti_refused(client, keys, endpoint, caplog):
    token = mint(keys, aud=AUDIENCE[endpoint])
    assert_ok(call(client, endpoint, auth(token)), endpoint)
    with caplog.at_level(logging.WARNING):
        assert_refused(call(client, endpoint, auth(token)))
    assert any("jti replayed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_same_jti_with_a_new_signature_is_still_a_replay(client, keys, endpoint):
    jti = str(uuid.uuid4())
    assert_ok(call(client, endpoint, auth(mint(keys, aud=AUDIENCE[endpoint], jti=jti))), endpoint)
    assert_refused(call(client, endpoint, auth(mint(keys, alg="RS384", aud=AUDIENCE[endpoint], jti=jti))))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_authorization_header(client, endpoint):
    assert_refused(call(client, endpoint))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("value", [
    "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer not-a-jwt", "Bearer a.b", "Bearer a.b.c.d",
    "Token {jwt}", "Bearer {jwt} extra", "{jwt}", "Bearer {jwt}===", "Bearer " + "A" * 20000,
])
def test_malformed_authorization_header(client, keys, endpoint, value):
    value = value.replace("{jwt}", mint(keys, aud=AUDIENCE[endpoint]))
    assert_refused(call(client, endpoint, {"Authorization": value}))


def test_bearer_scheme_is_case_insensitive(client, keys):
    resp = call(client, "discovery", {"Authorization": "bearer " + mint(keys, aud=DISCOVERY_URL)})
    assert_ok(resp, "discovery")


def test_discovery_token_is_not_accepted_by_a_service(client, keys):
    assert_refused(call(client, "invoke", auth(mint(keys, aud=DISCOVERY_URL))))


def test_refusal_reason_is_logged_without_the_token(client, keys, attacker, caplog):
    token = mint(attacker, aud=SERVICE_URL, jku="https://evil.example/jwks.json")
    with caplog.at_level(logging.INFO):
        assert_refused(call(client, "invoke", auth(token)))
    refusals = [r for r in caplog.records if getattr(r, "event", None) == "auth-refused"]
    assert len(refusals) == 1
    assert "jku" in refusals[0].getMessage() and "evil.example" in refusals[0].getMessage()
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in everything and token.split(".")[2] not in everything


def test_jwt_not_required_when_switched_off(tmp_path):
    app = make_app(tmp_path, "/nonexistent/jwks.json", CDS_REQUIRE_JWT="false")
    resp = app.test_client().get("/cds-services")
    assert resp.status_code == 200


def test_no_public_base_url_refuses_everything(tmp_path, keys):
    """Without CDS_PUBLIC_BASE_URL the audience would come from the Host header; refuse instead."""
    path = write_jwks(tmp_path, keys)
    app = make_app(tmp_path, str(path), CDS_PUBLIC_BASE_URL="")
    client = app.test_client()
    token = mint(keys, jku=None, aud="http://localhost/cds-services")
    assert_refused(client.get("/cds-services", headers=auth(token)))


def test_tenant_allowlist(tmp_path, keys):
    path = write_jwks(tmp_path, keys)
    app = make_app(tmp_path, str(path), CDS_ALLOWED_TENANTS="hospital-1,hospital-2")
    client = app.test_client()
    assert_ok(call(client, "discovery", auth(mint(keys, jku=None, aud=DISCOVERY_URL, tenant="hospital-2"))),
              "discovery")
    assert_refused(call(client, "discovery", auth(mint(keys, jku=None, aud=DISCOVERY_URL, tenant="hospital-9"))))
    assert_refused(call(client, "discovery", auth(mint(keys, jku=None, aud=DISCOVERY_URL))))


def test_configured_symmetric_algorithms_are_still_refused(tmp_path, keys):
    path = write_jwks(tmp_path, keys)
    app = make_app(tmp_path, str(path), CDS_JWT_ALGORITHMS="HS256,none,ES384")
    client = app.test_client()
    assert_refused(call(client, "discovery", auth(_hs256_with_public_key(keys, DISCOVERY_URL))))
    assert_refused(call(client, "discovery", auth(_alg_none(keys, DISCOVERY_URL))))
    # the asymmetric one configured still works, RS384 (not configured here) does not
    assert_ok(call(client, "discovery", auth(mint(keys, jku=None, aud=DISCOVERY_URL))), "discovery")
    assert_refused(call(client, "discovery", auth(mint(keys, alg="RS384", jku=None, aud=DISCOVERY_URL))))


def test_leeway_applies_to_exp_and_iat(tmp_path, keys):
    path = write_jwks(tmp_path, keys)
    client = make_app(tmp_path, str(path), CDS_JWT_LEEWAY_S="120").test_client()
    now = int(time.time())
    assert_ok(call(client, "discovery", auth(mint(keys, jku=None, aud=DISCOVERY_URL, iat=now - 200, exp=now - 60))),
              "discovery")
    assert_ok(call(client, "discovery", auth(mint(keys, jku=None, aud=DISCOVERY_URL, iat=now + 60, exp=now + 300))),
              "discovery")
    assert_refused(call(client, "discovery", auth(mint(keys, jku=None, aud=DISCOVERY_URL, iat=now - 400,
                                                       exp=now - 200))))


# ------------------------------------------------------------------ JWKS over https (mocked)

@pytest.fixture()
def https_app(tmp_path, keys):
    return make_app(tmp_path, JWKS_URL)


def test_jwks_fetched_from_the_configured_url_only(https_app, keys, attacker):
    client = https_app.test_client()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.get(JWKS_URL, json=keys.jwks())
        assert_ok(call(client, "discovery", auth(mint(keys, aud=DISCOVERY_URL))), "discovery")
        assert_ok(call(client, "invoke", auth(mint(keys, alg="RS384", aud=SERVICE_URL))), "invoke")
        # a token pointing at the attacker's key set: refused, and that URL is never contacted
        assert_refused(call(client, "discovery", auth(mint(attacker, aud=DISCOVERY_URL,
                                                           jku="https://evil.example/jwks.json"))))
        assert [c.request.url for c in rsps.calls] == [JWKS_URL]  # one fetch, cached afterwards


def test_unknown_kid_refetch_is_rate_limited(https_app, keys, attacker):
    client = https_app.test_client()
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=keys.jwks())
        assert_ok(call(client, "discovery", auth(mint(keys, aud=DISCOVERY_URL))), "discovery")
        for i in range(25):  # garbage kids
            assert_refused(call(client, "discovery", auth(mint(attacker, aud=DISCOVERY_URL, kid=f"junk-{i}"))))
        # the first fetch loaded the set; unknown kids within the refetch interval cause no further fetch
        assert len(rsps.calls) == 1


def test_key_rotation_picked_up_after_the_refetch_interval(keys):
    from cds_service.security import auth as auth_mod

    # the authenticator's clock drives JWKS caching; token times are checked against real time
    clock = [time.time()]
    rotated = Keys("-rotated")
    authn = auth_mod.Authenticator(
        {"CDS_TRUSTED_ISSUERS": {ISS: JWKS_URL}, "CDS_JWT_ALGORITHMS": ["ES384"], "CDS_JWT_LEEWAY_S": 30,
         "CDS_JWT_MAX_LIFETIME_S": 3600, "CDS_PUBLIC_BASE_URL": BASE, "CDS_REQUIRE_JWT": True},
        clock=lambda: clock[0])
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=keys.jwks())
        authn.verify("Bearer " + mint(keys, aud=SERVICE_URL), [SERVICE_URL])
        # the issuer rotates: its JWKS now also holds the new key
        rsps.replace(responses.GET, JWKS_URL, json={"keys": keys.jwks()["keys"] + rotated.jwks()["keys"]})
        with pytest.raises(auth_mod.AuthError, match="kid"):
            authn.verify("Bearer " + mint(rotated, aud=SERVICE_URL), [SERVICE_URL])  # first fetch was just now
        assert len(rsps.calls) == 1
        clock[0] += auth_mod.JWKS_MIN_REFETCH_S + 1
        claims_ = authn.verify("Bearer " + mint(rotated, aud=SERVICE_URL), [SERVICE_URL])
        assert claims_["iss"] == ISS
        assert len(rsps.calls) == 2


def test_unreachable_jwks_keeps_trusting_cached_keys(tmp_path, keys):
    from cds_service.security import auth as auth_mod

    clock = [time.time()]
    authn = auth_mod.Authenticator(
        {"CDS_TRUSTED_ISSUERS": {ISS: JWKS_URL}, "CDS_JWT_ALGORITHMS": ["ES384"], "CDS_JWT_LEEWAY_S": 30,
         "CDS_JWT_MAX_LIFETIME_S": 3600, "CDS_PUBLIC_BASE_URL": BASE}, clock=lambda: clock[0])
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=keys.jwks())
        authn.verify("Bearer " + mint(keys, aud=SERVICE_URL), [SERVICE_URL])
        rsps.replace(responses.GET, JWKS_URL, status=503)
        clock[0] += auth_mod.JWKS_TTL_S + 1  # stale: refetch is attempted and fails
        source = authn.sources[ISS]
        assert source.key(keys.ec_kid) is not None
        assert source.fetches == 2


def test_jwks_redirect_not_followed(https_app, keys):
    client = https_app.test_client()
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, status=302, headers={"Location": "https://evil.example/jwks.json"})
        assert_refused(call(client, "discovery", auth(mint(keys, aud=DISCOVERY_URL))))
        assert [c.request.url for c in rsps.calls] == [JWKS_URL]


def test_jwks_private_and_symmetric_keys_ignored(tmp_path, keys):
    jwks = keys.jwks()
    private_ec = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys.ec))
    private_ec.update(kid="leaked", alg="ES384")
    jwks["keys"] += [private_ec, {"kty": "oct", "kid": "shared", "k": b64(b"secret-secret-secret")}]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    client = make_app(tmp_path, str(path)).test_client()
    assert_refused(call(client, "discovery", auth(mint(keys, jku=None, kid="leaked", aud=DISCOVERY_URL))))
    hs = jwt.encode(claims(aud=DISCOVERY_URL), b"secret-secret-secret", algorithm="HS256", headers={"kid": "shared"})
    assert_refused(call(client, "discovery", auth(hs)))
    assert_ok(call(client, "discovery", auth(mint(keys, jku=None, aud=DISCOVERY_URL))), "discovery")


@pytest.mark.parametrize("location", ["http://ehr.example.org/jwks.json", "ftp://ehr.example.org/jwks.json",
                                      "https://user@ehr.example.org/jwks.json", ""])
def test_unsafe_jwks_location_is_a_configuration_error(tmp_path, location):
    from cds_service.config import ConfigError
    with pytest.raises(ConfigError):
        make_app(tmp_path, location)


def test_loopback_http_jwks_allowed(tmp_path, keys):
    client = make_app(tmp_path, "http://127.0.0.1:8765/jwks.json").test_client()
    with responses.RequestsMock() as rsps:
        rsps.get("http://127.0.0.1:8765/jwks.json", json=keys.jwks())
        assert_ok(call(client, "discovery", auth(mint(keys, jku="http://127.0.0.1:8765/jwks.json",
                                                      aud=DISCOVERY_URL))), "discovery")


# ------------------------------------------------------------------ replay cache

def test_replay_cache_forgets_after_expiry_and_stays_bounded():
    from cds_service.security.auth import ReplayCache

    clock = [1000.0]
    cache = ReplayCache(max_entries=3, clock=lambda: clock[0])
    assert cache.check_and_add(ISS, "a", 1100.0)
    assert not cache.check_and_add(ISS, "a", 1100.0)
    assert cache.check_and_add("https://other-ehr.example", "a", 1100.0)  # jti is per issuer
    assert cache.check_and_add(ISS, "b", 1050.0)
    assert cache.check_and_add(ISS, "c", 1200.0)  # full: the soonest-expiring entry ("b") makes room
    assert len(cache) == 3
    assert not cache.check_and_add(ISS, "c", 1200.0)
    clock[0] = 1150.0  # "a" entries have expired: the same jti is a new token now
    assert cache.check_and_add(ISS, "a", 1250.0)
    assert len(cache) == 2


def test_replay_cache_is_thread_safe():
    from concurrent.futures import ThreadPoolExecutor

    from cds_service.security.auth import ReplayCache

    cache = ReplayCache(max_entries=1000)
    later = time.time() + 300
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: cache.check_and_add(ISS, f"jti-{i % 50}", later), range(400)))
    assert sum(results) == 50  # each jti accepted exactly once however the threads interleave


def test_rsa_key_shorter_than_2048_bits_refused(tmp_path, caplog):
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk_ = jwt.algorithms.RSAAlgorithm.to_jwk(small.public_key(), as_dict=True)
    jwk_.update(kid="small", alg="RS384")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk_]}))
    client = make_app(tmp_path, str(path)).test_client()
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):
        token = jwt.encode(claims(aud=DISCOVERY_URL), small, algorithm="RS384", headers={"kid": "small"})
    with caplog.at_level(logging.WARNING):
        assert_refused(call(client, "discovery", auth(token)))
    assert any("below the minimum" in r.getMessage() for r in caplog.records)
