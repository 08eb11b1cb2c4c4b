"""Card preview page (`/preview`, only when CDS_PREVIEW is true).

For informaticists editing card files: every fixture scenario (patient-view for each patient
fixture, order-select and order-sign for each draft-orders fixture) is run through the real
pipeline, in prefetch mode, with the fixture shifted to "now", and its cards are drawn as an
EHR sidebar would draw them. A text box sends any hook request to the real endpoint and draws
the answer the same way (the browser POSTs to /cds-services/<id>, then asks /preview/render to
draw the JSON it got back).

Server-rendered HTML with a little JavaScript; card detail is Markdown rendered with raw HTML
escaped. Nothing here is recorded in the feedback store.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from flask import Blueprint, Flask, Response, current_app, render_template, request
from markdown_it import MarkdownIt
from markupsafe import Markup

from . import fixtures
from .hooks.errors import HookError
from .services import SERVICES
from .timing import Timings

log = logging.getLogger(__name__)

bp = Blueprint("preview", __name__, url_prefix="/preview", template_folder="templates",
               static_folder="static", static_url_path="/static")

INDICATORS = ("info", "warning", "critical")
HOOK_ORDER = ("patient-view", "order-select", "order-sign")
SERVICE_FOR_HOOK = {s.hook: s.id for s in SERVICES.values()}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

# html=False: raw HTML in a card's detail is shown as text, never interpreted (CommonMark plus GFM tables).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def register(app: Flask, cfg: Mapping[str, Any]) -> None:
    if cfg.get("CDS_PREVIEW"):
        app.register_blueprint(bp)
        log.info("card preview enabled at /preview")


def render_markdown(text: Any) -> Markup:
    if not isinstance(text, str) or not text:
        return Markup("")
    return Markup(_markdown.render(text))


# ------------------------------------------------------------------------------------------ scenarios

@dataclass
class Scenario:
    key: str
    hook: str
    service_id: str
    patient_id: str
    title: str
    note: str
    request: dict
    response: dict | None = None
    error: dict | None = None
    fired: list[str] = field(default_factory=list)


def _patient_of(bundle: dict) -> tuple[str | None, str]:
    for entry in bundle.get("entry") or []:
        res = entry.get("resource") or {}
        if res.get("resourceType") == "Patient":
            names = res.get("name") or [{}]
            name = " ".join((names[0].get("given") or []) + [names[0].get("family") or ""]).strip()
            return res.get("id"), name
    return None, ""


DEFAULT_ORDER_PATIENT = "ord-hd-low-mg"


def _order_subject(bundle: dict) -> str | None:
    for entry in bundle.get("entry") or []:
        ref = ((entry.get("resource") or {}).get("subject") or {}).get("reference") or ""
        if ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


def _request(service_id: str, patient_id: str, draft_orders: dict | None, selections: list[str] | None) -> dict:
    service = SERVICES[service_id]
    context: dict[str, Any] = {"userId": "Practitioner/preview", "patientId": patient_id}
    if draft_orders is not None:
        context["draftOrders"] = draft_orders
    if selections is not None:
        context["selections"] = selections
    return {"hook": service.hook, "hookInstance": str(uuid.uuid4()), "context": context}


def build_scenarios(now: datetime, folder: Path | None = None) -> list[Scenario]:
    """The fixture scenarios, as hook requests in prefetch mode with every fixture moved to ``now``."""
    folder = Path(folder) if folder else fixtures.FIXTURES_DIR
    patients: dict[str, tuple[Path, dict, str]] = {}
    out: list[Scenario] = []
    for path, bundle in fixtures.patient_bundles(folder / "patients"):
        patient_id, name = _patient_of(bundle)
        if not patient_id:
            continue
        patients[patient_id] = (path, bundle, name)
        shifted = fixtures.at(bundle, now)
        body = _request(SERVICE_FOR_HOOK["patient-view"], patient_id, None, None)
        body["prefetch"] = fixtures.prefetch_for(SERVICES[SERVICE_FOR_HOOK["patient-view"]], body["context"], shifted)
        out.append(Scenario(f"patient-view/{fixtures.fixture_id(path)}", "patient-view", SERVICE_FOR_HOOK["patient-view"], patient_id,
                            f"{name or patient_id}", f"patients/{path.name}", body))
    for path in sorted((folder / "orders").glob("*.json")):
        orders = fixtures.load_json(path)
        patient_id = _order_subject(orders)
        if patient_id not in patients:
            # Draft-order examples written for any patient are shown for the default dialysis patient.
            patient_id = DEFAULT_ORDER_PATIENT
        if patient_id not in patients:
            log.warning("preview: %s names no patient fixture; skipped", path.name)
            continue
        p_path, p_bundle, name = patients[patient_id]
        base = fixtures.anchor(p_bundle)
        drafts = fixtures.shift(orders, now - base) if base else orders
        drafts.setdefault("type", "collection")
        refs = [f"{(e.get('resource') or {}).get('resourceType')}/{(e.get('resource') or {}).get('id')}"
                for e in drafts.get("entry") or [] if (e.get("resource") or {}).get("id")]
        shifted = fixtures.at(p_bundle, now)
        for hook in ("order-select", "order-sign"):
            service_id = SERVICE_FOR_HOOK[hook]
            body = _request(service_id, patient_id, drafts, refs if hook == "order-select" else None)
            body["prefetch"] = fixtures.prefetch_for(SERVICES[service_id], body["context"], shifted)
            out.append(Scenario(f"{hook}/{path.stem}", hook, service_id, patient_id, f"{name or patient_id}",
                                f"orders/{path.name} for patients/{p_path.name}", body))
    out.sort(key=lambda s: (HOOK_ORDER.index(s.hook) if s.hook in HOOK_ORDER else 9, s.key))
    return out


def run_scenario(scenario: Scenario, ext, now: datetime) -> Scenario:
    """Answer the scenario's request through the real pipeline (validation, prefetch, rules, card files)."""
    try:
        outcome = ext.engine.call(SERVICES[scenario.service_id], scenario.request, Timings(), fetch=False, now=now)
        scenario.response = outcome.body
        scenario.fired = list(outcome.fired)
    except HookError as err:
        scenario.error = err.outcome()
    except Exception:  # a broken card file or rule must not take the page down
        log.exception("preview scenario %s failed", scenario.key)
        scenario.error = {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "exception", "diagnostics": "The scenario failed; see the service log."}]}
    return scenario


# ------------------------------------------------------------------------------------------ views

def _html(body: str) -> Response:
    resp = Response(body, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _card_view(card: Any) -> dict:
    """A defensive view of one card (the render endpoint draws whatever JSON the browser sends)."""
    if not isinstance(card, dict):
        return {"summary": "(not a card object)", "indicator": "info", "invalid": True}
    indicator = card.get("indicator") if card.get("indicator") in INDICATORS else "info"
    source: dict[str, Any] = card["source"] if isinstance(card.get("source"), dict) else {}
    topic: dict[str, Any] = source["topic"] if isinstance(source.get("topic"), dict) else {}
    links = []
    for link in card.get("links") or []:
        if isinstance(link, dict):
            url = str(link.get("url") or "")
            links.append({"label": str(link.get("label") or url), "type": str(link.get("type") or "absolute"),
                          "url": url if url.startswith(("http://", "https://")) else "",
                          "appContext": link.get("appContext")})
    suggestions = []
    for s in card.get("suggestions") or []:
        if isinstance(s, dict):
            actions = [a for a in s.get("actions") or [] if isinstance(a, dict)]
            suggestions.append({"label": str(s.get("label") or "(no label)"), "recommended": bool(s.get("isRecommended")),
                                "actions": [{"type": str(a.get("type") or ""),
                                             "description": str(a.get("description") or ""),
                                             "json": json.dumps(a, indent=2, ensure_ascii=False)} for a in actions]})
    reasons = [r for r in card.get("overrideReasons") or [] if isinstance(r, dict)]
    source_url = str(source.get("url") or "")
    return {
        "summary": str(card.get("summary") or ""),
        "indicator": indicator,
        "detail": render_markdown(card.get("detail")),
        "source_label": str(source.get("label") or ""),
        "source_url": source_url if source_url.startswith(("http://", "https://")) else "",
        "topic": str(topic.get("code") or ""),
        "topic_display": str(topic.get("display") or ""),
        "suggestions": suggestions,
        "selection": str(card.get("selectionBehavior") or ""),
        "links": links,
        "override_reasons": [{"code": str(r.get("code") or ""), "display": str(r.get("display") or r.get("code") or "")}
                             for r in reasons],
        "uuid": str(card.get("uuid") or ""),
    }


def _outcome_view(status: int | None, body: Any) -> dict:
    """What the render endpoint and the page draw: cards, or the error an endpoint returned."""
    if isinstance(body, dict) and isinstance(body.get("cards"), list):
        return {"status": status, "cards": [_card_view(c) for c in body["cards"]],
                "system_actions": [json.dumps(a, indent=2, ensure_ascii=False)
                                   for a in body.get("systemActions") or []]}
    issues = []
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        for issue in body.get("issue") or []:
            if isinstance(issue, dict):
                text = (issue.get("details") or {}).get("text") if isinstance(issue.get("details"), dict) else None
                issues.append(f"{issue.get('code', '')}: {text or issue.get('diagnostics') or ''}".strip(": "))
    if not issues:
        issues = ["The answer is neither a CDS Hooks response nor an OperationOutcome."]
    return {"status": status, "error": issues, "raw": json.dumps(body, indent=2, ensure_ascii=False)[:20000]}


@bp.get("")
@bp.get("/")
def page():
    ext = current_app.extensions["cds"]
    now = ext.now()
    ext.engine.cards.refresh()  # an edited card file shows on this load; a refused edit is shown instead
    scenarios = [run_scenario(s, ext, now) for s in build_scenarios(now)]
    views = []
    for s in scenarios:
        views.append({
            "key": s.key, "anchor": s.key.replace("/", "--"), "hook": s.hook, "service_id": s.service_id,
            "patient_id": s.patient_id, "title": s.title, "note": s.note, "fired": s.fired,
            "outcome": _outcome_view(200 if s.response is not None else None, s.response or s.error),
            "request_json": json.dumps(s.request, indent=2, ensure_ascii=False),
        })
    services = [{"id": sid, "hook": svc.hook, "title": svc.title} for sid, svc in SERVICES.items()]
    return _html(render_template("preview.html", scenarios=views, services=services,
                                 now=now.strftime("%Y-%m-%d %H:%M UTC"), jwt=ext.cfg["CDS_REQUIRE_JWT"],
                                 card_problem=ext.engine.cards.problem))


@bp.post("/render")
def render_response():
    """Draw a hook response (or error) the browser got from the real endpoint: {"status": int, "body": ...}."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or "body" not in payload:
        raise HookError(400, "invalid", 'Send {"status": <HTTP status>, "body": <the endpoint\'s JSON answer>}.')
    status = payload.get("status") if isinstance(payload.get("status"), int) else None
    return _html(render_template("preview_outcome.html", outcome_data=_outcome_view(status, payload["body"])))
