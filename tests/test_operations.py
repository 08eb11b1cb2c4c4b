"""Operator-facing endpoints: liveness, readiness, the landing page and the metrics content type."""
from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser

import pytest

from cds_service.config import REPO_ROOT

JWKS = {"https://ehr.example.org": "https://ehr.example.org/.well-known/jwks.json"}


def _ready(client):
    resp = client.get("/health/ready")
    return resp.status_code, resp.get_json()


def test_ready_when_jwt_settings_cards_and_store_are_in_order(make_app):
    client = make_app(CDS_REQUIRE_JWT="true", CDS_TRUSTED_ISSUERS=json.dumps(JWKS),
                      CDS_PUBLIC_BASE_URL="https://cds.example.org").test_client()
    status, body = _ready(client)
    assert status == 200, body
    assert body["status"] == "ready" and body["problems"] == []
    assert body["checks"] == {"jwtSettings": True, "cardFiles": True, "feedbackStore": True}


@pytest.mark.parametrize("missing", ["CDS_TRUSTED_ISSUERS", "CDS_PUBLIC_BASE_URL"])
def test_not_ready_while_jwt_is_required_without_issuer_or_base_url(make_app, missing):
    settings = {"CDS_REQUIRE_JWT": "true", "CDS_TRUSTED_ISSUERS": json.dumps(JWKS),
                "CDS_PUBLIC_BASE_URL": "https://cds.example.org", missing: ""}
    client = make_app(**settings).test_client()
    status, body = _ready(client)
    assert status == 503
    assert body["status"] == "not-ready" and body["checks"]["jwtSettings"] is False
    assert any(missing in p for p in body["problems"]), body
    # Liveness stays green: restarting the process would not fix a setting.
    assert client.get("/health/live").status_code == 200
    # And the service really does refuse calls in this state (the readiness check tells the truth).
    assert client.get("/cds-services").status_code == 401


def test_default_settings_are_not_ready(monkeypatch, tmp_path):
    """The image's defaults (JWT required, nothing configured) must not look ready to an orchestrator."""
    from cds_service import create_app

    for name in ("CDS_REQUIRE_JWT", "CDS_TRUSTED_ISSUERS", "CDS_PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    app = create_app({"CDS_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"), "CDS_LOG_FORMAT": "text"})
    status, body = _ready(app.test_client())
    assert status == 503 and len(body["problems"]) == 2


def test_not_ready_when_card_files_are_refused(make_app, tmp_path):
    cards = tmp_path / "cards"
    shutil.copytree(REPO_ROOT / "cards", cards)
    client = make_app(CDS_CARDS_DIR=str(cards)).test_client()
    assert _ready(client)[0] == 200
    victim = sorted(cards.glob("*.yaml"))[0]
    victim.write_text(victim.read_text() + "\nnot_a_card_key: [\n", encoding="utf-8")  # broken YAML
    status, body = _ready(client)
    assert status == 503 and body["checks"]["cardFiles"] is False
    assert any("card files refused" in p and victim.name in p for p in body["problems"]), body
    victim.unlink()  # a rule without its card file is refused too
    status, body = _ready(client)
    assert status == 503 and any("no card file" in p for p in body["problems"]), body
    shutil.copy(REPO_ROOT / "cards" / victim.name, victim)
    assert _ready(client)[0] == 200


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def test_landing_page_links_the_endpoints_that_are_on(make_app):
    client = make_app(CDS_PREVIEW="true").test_client()
    resp = client.get("/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    html = resp.get_data(as_text=True)
    assert "CDS Hooks 2.0" in html and 'data-status="ready"' in html
    hrefs = _links(html)
    for path in ("/cds-services", "/health", "/health/live", "/health/ready", "/metrics", "/preview"):
        assert path in hrefs, (path, hrefs)
        assert client.get(path).status_code == 200, path  # every link works (JWT off here)
    assert any(h.startswith("https://cds-hooks.hl7.org/") for h in hrefs)
    for document in ("docs/deployment.md", "docs/security.md", "docs/authoring.md", "docs/openapi.yaml"):
        assert document in html and (REPO_ROOT / document).is_file(), document
    # Discovery stays behind the JWT: the page names no service id.
    assert "dialysis-electrolytes-" not in html


def test_landing_page_leaves_out_what_is_off_and_says_why_it_is_not_ready(make_app):
    client = make_app(CDS_PREVIEW="false", CDS_METRICS="false", CDS_REQUIRE_JWT="true").test_client()
    html = client.get("/").get_data(as_text=True)
    hrefs = _links(html)
    assert "/preview" not in hrefs and "/metrics" not in hrefs
    assert 'data-status="not-ready"' in html and "CDS_TRUSTED_ISSUERS" in html and "CDS_PUBLIC_BASE_URL" in html


def test_metrics_content_type_has_one_charset(client):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    content_type = resp.headers["Content-Type"]
    assert content_type.lower().count("charset") == 1, content_type
    assert content_type.startswith("text/plain;") and "version=" in content_type


def test_kubernetes_example_probes_readiness_and_liveness(make_app):
    import yaml

    docs = list(yaml.safe_load_all((REPO_ROOT / "docs" / "k8s" / "deployment.yaml").read_text(encoding="utf-8")))
    deployment = next(d for d in docs if d and d.get("kind") == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    client = make_app().test_client()
    for probe in ("readinessProbe", "livenessProbe"):
        assert client.get(container[probe]["httpGet"]["path"]).status_code == 200


def test_lenient_parse_notes_are_debug_lines_counted_on_the_hook_line(make_app, caplog):
    """Real EHR data needs lenient parsing often (the demo logged 252 notes at INFO); they are DEBUG now and
    the one INFO line per hook call says how many there were."""
    import logging
    from datetime import datetime, timezone

    from cds_service.authoring import scenarios as sc
    from cds_service.services import SERVICES

    scenario = sc.load(REPO_ROOT / "cards" / "scenarios" / "order-sign-sandbox-mixed.yaml")
    service = next(s for s in SERVICES.values() if s.hook == scenario.hook)
    now = datetime.now(timezone.utc)
    body = sc.request_for(scenario, sc.materialise(scenario, now), service, prefetch=True)
    client = make_app().test_client()
    with caplog.at_level(logging.DEBUG, logger="cds_service"):
        assert client.post(f"/cds-services/{service.id}", json=body).status_code == 200
    notes = [r for r in caplog.records if r.getMessage().startswith("lenient parse")]
    assert notes and all(r.levelno == logging.DEBUG for r in notes)
    [hook_line] = [r for r in caplog.records if getattr(r, "event", None) == "hook"]
    assert hook_line.levelno == logging.INFO and hook_line.parseNotes == len(notes)
