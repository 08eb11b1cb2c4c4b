"""Card preview page (`/preview`, only when CDS_PREVIEW is true).

For informaticists editing card files and scenarios: every scenario file (``cards/scenarios/*.yaml``,
next to the card files) is run through the real pipeline in prefetch mode, as of now, and compared
with what it expects. The navigation groups the scenarios by rule, from the scenarios themselves:
under each rule the scenarios that expect its card, then, collapsed, those that say it must stay
silent; at the end, collapsed, the scenarios that expect no card at all. One scenario is drawn at a
time (``?s=<scenario>``): the values its request carries beside its cards, drawn at the width of an
EHR's CDS sidebar. The request box at the top sends any hook request to the real endpoint and draws
the answer the same way (the browser POSTs to /cds-services/<id>, then asks /preview/render to draw
the JSON it got back).

Scenario requests and answers are computed once and reused until a card file, scenario file or
fixture changes (or a minute passes: scenario times are relative to now), so a reload after an edit
shows the edit and other reloads only draw the page.

Server-rendered HTML with a little JavaScript; card detail is Markdown rendered with raw HTML
escaped. Nothing here is recorded in the feedback store.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from flask import Blueprint, Flask, Response, current_app, render_template, request
from markdown_it import MarkdownIt
from markupsafe import Markup

from . import fixtures
from .authoring import scenarios as scenario_files
from .clinical.rules import load_all
from .hooks.errors import HookError
from .preview_values import ValueGroup, patient_values
from .services import SERVICES
from .timing import Timings

log = logging.getLogger(__name__)

bp = Blueprint("preview", __name__, url_prefix="/preview", template_folder="templates",
               static_folder="static", static_url_path="/static")

INDICATORS = ("info", "warning", "critical")
# selectionBehavior in the words a clinician would use (shown only when a card offers several suggestions).
SELECTION_HINTS = {"at-most-one": "Choose one of these.", "any": "Choose any of these."}
HOOK_ORDER = ("patient-view", "order-select", "order-sign")
SERVICE_FOR_HOOK = {s.hook: s.id for s in SERVICES.values()}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
CACHE_SECONDS = 60  # scenario times are relative to now: requests are rebuilt at least this often

# html=False: raw HTML in a card's detail is shown as text, never interpreted (CommonMark plus GFM tables).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def register(app: Flask, cfg: Mapping[str, Any]) -> None:
    if cfg.get("CDS_PREVIEW"):
        app.register_blueprint(bp)
        log.info("card preview enabled at /preview")
        # Run the scenarios once in the background, so that the first visit does not wait for them.
        threading.Thread(target=_warm, args=(app,), name="preview-warm-up", daemon=True).start()


def _warm(app: Flask) -> None:
    try:
        with app.app_context():
            _prepared(app, app.extensions["cds"])
    except Exception:  # the page computes it again, and reports, on the first visit
        log.debug("preview warm-up failed", exc_info=True)


def render_markdown(text: Any) -> Markup:
    if not isinstance(text, str) or not text:
        return Markup("")
    return _render_markdown(text)


@lru_cache(maxsize=512)
def _render_markdown(text: str) -> Markup:
    return Markup(_markdown.render(text))


# ------------------------------------------------------------------------------------------ scenarios

@dataclass
class Scenario:
    """One scenario file, as a hook request in prefetch mode (or the reason it cannot be one)."""
    key: str
    hook: str
    service_id: str
    patient_id: str
    title: str
    note: str                            # where it comes from, e.g. scenarios/dx-low-mg.yaml
    request: dict
    description: str = ""
    expected: list[str] | None = None    # rule ids whose cards it expects, in order
    absent: list[str] = field(default_factory=list)  # rules that must stay silent
    values: list[ValueGroup] = field(default_factory=list)
    source: Any = None                   # the loaded scenario (authoring.scenarios.Scenario)
    broken: str = ""                     # why the file could not be turned into a request


def build_scenarios(now: datetime, cards_dir: str | Path) -> list[Scenario]:
    """Every scenario file next to the card files, as a request as of ``now``."""
    out = []
    for path in scenario_files.scenario_files([scenario_files.scenario_dir(cards_dir)]):
        note = f"scenarios/{path.name}"
        try:
            s = scenario_files.load(path)
            service_id = SERVICE_FOR_HOOK[s.hook]
            body = scenario_files.request_for(s, scenario_files.materialise(s, now), SERVICES[service_id],
                                              prefetch=True)
        except (scenario_files.ScenarioError, KeyError, ValueError, OSError) as exc:
            log.warning("preview: %s", exc)
            out.append(Scenario(path.stem, "?", "", "", path.stem, note, {}, broken=str(exc), expected=[]))
            continue
        out.append(Scenario(s.key, s.hook, service_id, s.patient_id, s.name, note, body, s.description,
                            [c.rule for c in s.cards], list(s.absent), patient_values(body, now), s))
    return out


@dataclass
class Answer:
    response: dict | None = None
    error: dict | None = None
    fired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # how it differs from what the scenario expects


def run_scenario(scenario: Scenario, ext, now: datetime) -> Answer:
    """Answer the scenario's request through the real pipeline (validation, prefetch, rules, card files)."""
    if scenario.broken:
        return Answer(error=_outcome("invalid", scenario.broken), problems=[f"! {scenario.broken}"])
    try:
        outcome = ext.engine.call(SERVICES[scenario.service_id], scenario.request, Timings(), fetch=False, now=now)
    except HookError as err:
        return Answer(error=err.outcome(), problems=[f"! the service refused the request ({err.status}): {err.message}"])
    except Exception:  # a broken card file or rule must not take the page down
        log.exception("preview scenario %s failed", scenario.key)
        return Answer(error=_outcome("exception", "The scenario failed; see the service log."),
                      problems=["! the scenario failed; see the service log"])
    problems = scenario_files.compare(scenario.source, scenario_files.actual_cards(outcome.body))
    return Answer(outcome.body, None, list(outcome.fired), problems)


def _outcome(code: str, text: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


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
        "selection_hint": SELECTION_HINTS.get(str(card.get("selectionBehavior") or ""), "") if len(suggestions) > 1 else "",
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


def group_by_rule(views: list[dict], rule_order: list[str], rule_titles: Mapping[str, str]) -> tuple[list[dict], list[dict]]:
    """Navigation: one group per rule with the scenarios that expect its card (positive scenarios), then,
    collapsed, the scenarios that say that rule must stay silent (its decoys); plus the scenarios that
    expect no card at all. Built from the scenarios themselves, so new rules and files group themselves.

    A scenario's rules are the ones it expects; without expectations, the ones that fired.
    """
    positive: dict[str, list[dict]] = {}
    decoys: dict[str, list[dict]] = {}
    none: list[dict] = []
    for view in views:
        rules = view["expected"] if view["expected"] is not None else view["fired"]
        for rule in dict.fromkeys(rules):
            positive.setdefault(rule, []).append(view)
        for rule in dict.fromkeys(view.get("absent") or []):
            if rule not in rules:
                decoys.setdefault(rule, []).append(view)
        if not rules:
            none.append(view)
    order = {rule: i for i, rule in enumerate(rule_order)}
    hook_rank = {hook: i for i, hook in enumerate(HOOK_ORDER)}

    def by_hook_then_title(v: dict) -> tuple[int, str, str]:
        return (hook_rank.get(v["hook"], 9), v["title"].lower(), v["key"])

    groups: list[dict[str, Any]] = []
    for rule in sorted(set(positive) | set(decoys), key=lambda r: (order.get(r, len(order)), r)):
        groups.append({"rule": rule, "title": rule_titles.get(rule) or rule,
                       "positive": sorted(positive.get(rule, []), key=by_hook_then_title),
                       "decoys": sorted(decoys.get(rule, []), key=by_hook_then_title)})
    return groups, sorted(none, key=by_hook_then_title)


def _view(s: Scenario, answer: Answer) -> dict:
    outcome = _outcome_view(200 if answer.response is not None else None, answer.response or answer.error)
    return {
        "key": s.key, "hook": s.hook, "service_id": s.service_id, "patient_id": s.patient_id, "title": s.title,
        "note": s.note, "description": s.description, "expected": s.expected, "absent": s.absent,
        "fired": answer.fired, "problems": answer.problems, "card_count": len(outcome.get("cards") or []),
        "outcome": outcome, "patient_values": s.values,
    }


@dataclass
class _Built:
    key: tuple
    now: datetime
    scenarios: list[Scenario]


@dataclass
class _Answered:
    key: tuple
    views: list[dict]


_lock = threading.Lock()


def _prepared(app, ext) -> tuple[_Built, _Answered]:
    """Scenario requests, rebuilt when a scenario or fixture file changes or CACHE_SECONDS pass; answers and
    their drawing, redone when the requests or any card file change, or the card library is replaced."""
    from .probes import tree_signature

    cards_dir = Path(ext.cfg["CDS_CARDS_DIR"])
    scenario_dir = scenario_files.scenario_dir(cards_dir)
    build_key = (str(cards_dir), tree_signature(scenario_dir), tree_signature(fixtures.FIXTURES_DIR),
                 int(time.time() // CACHE_SECONDS))
    with _lock:
        built = app.extensions.get("cds_preview_built")
        if built is None or built.key != build_key:
            now = ext.now()
            built = _Built(build_key, now, build_scenarios(now, cards_dir))
            app.extensions["cds_preview_built"] = built
        card_files = tuple(e for e in tree_signature(cards_dir) if not e[0].startswith(scenario_dir.name + "/"))
        answer_key = (id(built), id(ext.engine.cards.current()), card_files)
        answered = app.extensions.get("cds_preview_answered")
        if answered is None or answered.key != answer_key:
            answered = _Answered(answer_key, [_view(s, run_scenario(s, ext, built.now)) for s in built.scenarios])
            app.extensions["cds_preview_answered"] = answered
        return built, answered


@bp.get("")
@bp.get("/")
def page():
    ext = current_app.extensions["cds"]
    ext.engine.cards.refresh()  # an edited card file shows on this load; a refused edit is shown instead
    built, answered = _prepared(current_app, ext)
    rule_titles = {rule: str(f.data.get("title") or rule) for rule, f in ext.engine.cards.current().files.items()}
    groups, no_card = group_by_rule(answered.views, list(load_all()), rule_titles)
    ordered = [v for g in groups for v in g["positive"]] + [v for g in groups for v in g["decoys"]] + no_card
    wanted = request.args.get("s")
    current = next((v for v in answered.views if v["key"] == wanted), None) or (ordered[0] if ordered else None)
    services = [{"id": sid, "hook": svc.hook, "title": svc.title} for sid, svc in SERVICES.items()]
    mismatched = sum(1 for v in answered.views if v["problems"])
    return _html(render_template("preview.html", current=current, count=len(answered.views), groups=groups,
                                 no_card=no_card, mismatched=mismatched, services=services, rule_titles=rule_titles,
                                 now=built.now.strftime("%Y-%m-%d %H:%M UTC"), jwt=ext.cfg["CDS_REQUIRE_JWT"],
                                 card_problem=ext.engine.cards.problem))


@bp.get("/request/<key>")
def scenario_request(key: str):
    """One scenario's hook request, for the request box."""
    built, _answered = _prepared(current_app, current_app.extensions["cds"])
    for s in built.scenarios:
        if s.key == key and not s.broken:
            return current_app.response_class(json.dumps(s.request, indent=2, ensure_ascii=False),
                                              mimetype="application/json")
    raise HookError(404, "not-found", f"No preview scenario {key!r}.")


@bp.post("/render")
def render_response():
    """Draw a hook response (or error) the browser got from the real endpoint: {"status": int, "body": ...}."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or "body" not in payload:
        raise HookError(400, "invalid", 'Send {"status": <HTTP status>, "body": <the endpoint\'s JSON answer>}.')
    status = payload.get("status") if isinstance(payload.get("status"), int) else None
    return _html(render_template("preview_outcome.html", outcome_data=_outcome_view(status, payload["body"])))
