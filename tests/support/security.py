"""Shared pieces for the security tests: key pairs, a JWKS, token minting, an app wired for JWT, a request."""
from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.app import create_app

BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
SERVICE = "dialysis-electrolytes-patient-view"
SERVICE_URL = f"{BASE}/cds-services/{SERVICE}"
FEEDBACK_URL = f"{SERVICE_URL}/feedback"
DISCOVERY_URL = f"{BASE}/cds-services"
FHIR = "https://fhir.example.org/r4"

PATIENT_NAME_GIVEN = "Philomena"
PATIENT_NAME_FAMILY = "Quackenbush"
PATIENT_ID = "pat-7731"


class Keys:
    """One issuer's signing keys: ES384 (P-384) and RS384 (RSA 2048)."""

    def __init__(self, suffix: str = ""):
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_kid = f"ec-key{suffix}"
        self.rsa_kid = f"rsa-key{suffix}"

    def jwks(self) -> dict:
        ec_jwk = ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        ec_jwk.update(kid=self.ec_kid, use="sig", alg="ES384")
        rsa_jwk = RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        rsa_jwk.update(kid=self.rsa_kid, use="sig", alg="RS384")
        return {"keys": [ec_jwk, rsa_jwk]}

    def public_pem(self, which: str = "rsa") -> bytes:
        key = self.rsa if which == "rsa" else self.ec
        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def claims(aud: str = SERVICE_URL, iss: str = ISS, **overrides) -> dict:
    now = int(time.time())
    body = {"iss": iss, "sub": "ehr-client-1", "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    for k, v in overrides.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def mint(keys: Keys, alg: str = "ES384", jku: str | None = JWKS_URL, kid: str | None = None, typ: str | None = "JWT",
         **claim_overrides) -> str:
    payload = claims(**claim_overrides)
    headers = {"typ": typ, "kid": kid or (keys.ec_kid if alg.startswith("ES") else keys.rsa_kid)}
    if jku:
        headers["jku"] = jku
    key = keys.ec if alg.startswith("ES") else keys.rsa
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def write_jwks(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(keys.jwks()))
    return path


def make_app(tmp_path: Path, jwks_location: str, **extra):
    cfg = {
        "TESTING": True,
        "CDS_REQUIRE_JWT": "true",
        "CDS_TRUSTED_ISSUERS": json.dumps({ISS: jwks_location}),
        "CDS_PUBLIC_BASE_URL": BASE,
        "CDS_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"),
        "CDS_ALLOWED_FHIR_SERVERS": FHIR,
        "CDS_METRICS": "true",
    }
    cfg.update(extra)
    return create_app(cfg)


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------ a dialysis patient with a name

def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def searchset(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"{FHIR}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}


def patient_resource() -> dict:
    return {"resourceType": "Patient", "id": PATIENT_ID,
            "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-55501234"}],
            "name": [{"use": "official", "family": PATIENT_NAME_FAMILY, "given": [PATIENT_NAME_GIVEN]}],
            "gender": "female", "birthDate": "1951-04-02"}


def hook_request(now: datetime | None = None, *, with_fhir: bool = True, access_token: str = "opaque-fhir-token-1",
                 prefetch_keys: tuple[str, ...] | None = None) -> dict:
    """A patient-view request for a dialysis patient with low magnesium, named in the prefetch."""
    now = now or datetime.now(timezone.utc)
    ref = {"reference": f"Patient/{PATIENT_ID}", "display": f"{PATIENT_NAME_GIVEN} {PATIENT_NAME_FAMILY}"}
    condition = {
        "resourceType": "Condition", "id": "cond-1", "subject": ref,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z99.2",
                             "display": "Dependence on renal dialysis"}]},
    }
    mg = {
        "resourceType": "Observation", "id": "obs-mg-1", "status": "final", "subject": ref,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2601-3",
                             "display": "Magnesium [Moles/volume] in Serum or Plasma"}]},
        "effectiveDateTime": _iso(now - timedelta(hours=3)),
        "valueQuantity": {"value": 0.55, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    }
    prefetch = {
        "patient": patient_resource(),
        "conditions": searchset([condition]),
        "procedures": searchset([]),
        "encounters": searchset([]),
        "labs": searchset([mg]),
        "aluminum": searchset([]),
        "heartRate": searchset([]),
        "symptoms": searchset([]),
        "weights": searchset([]),
        "medications": searchset([]),
    }
    if prefetch_keys is not None:
        prefetch = {k: v for k, v in prefetch.items() if k in prefetch_keys}
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/prac-1", "patientId": PATIENT_ID},
        "prefetch": prefetch,
    }
    if with_fhir:
        body["fhirServer"] = FHIR
        body["fhirAuthorization"] = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "cds-service"}
    return body
