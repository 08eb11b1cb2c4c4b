"""`GET /`: a small HTML page saying what this service is and where its endpoints and documents are.

It names no service id (discovery stays behind the JWT check) and shows whether the service is
ready to answer calls, with the reasons when it is not (the same checks as /health/ready).
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from .probes import readiness

bp = Blueprint("landing", __name__, template_folder="templates")

CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CDS_HOOKS_SPEC = "https://cds-hooks.hl7.org/2.0/"
DOCUMENTS = [
    ("README.md", "what the service does, how to call it, every setting"),
    ("docs/deployment.md", "registering with an EHR, replicas, Kubernetes"),
    ("docs/security.md", "JWT checks, FHIR server allowlist, limits"),
    ("docs/authoring.md", "editing, linting and previewing card files"),
    ("docs/openapi.yaml", "the HTTP API"),
]


@bp.get("/")
def landing():
    cfg = current_app.extensions["cds"].cfg
    body = render_template("landing.html", state=readiness(), jwt=cfg["CDS_REQUIRE_JWT"],
                           metrics=cfg["CDS_METRICS"], preview=bool(cfg.get("CDS_PREVIEW")),
                           spec=CDS_HOOKS_SPEC, documents=DOCUMENTS)
    resp = Response(body, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-store"
    return resp
