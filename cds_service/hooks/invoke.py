"""One hook call end to end: validate, resolve prefetch, build the snapshot, run rules, render cards."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from ..clinical.rules import RuleFailure, run_rules
from ..timing import Timings
from .cards import CardLibrary, render_card
from .errors import HookError
from .prefetch import Fetcher, require, resolve
from .validation import validate_request

log = logging.getLogger(__name__)


@dataclass
class HookOutcome:
    body: dict
    fired: list[str] = field(default_factory=list)
    cards: list[tuple[str, str]] = field(default_factory=list)  # (card uuid, rule id)
    silent: list[str] = field(default_factory=list)  # rule id of each finding of a silent rule (no card returned)
    unavailable: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rule_errors: list[RuleFailure] = field(default_factory=list)


def invoke(service, body: Any, *, cards: CardLibrary, now: datetime, lookback: timedelta,
           fetcher: Fetcher | None, allowed: Callable[[str], bool], timings: Timings,
           strict: bool = False, smart_launch_url: str | None = None) -> HookOutcome:
    """Raise HookError for anything the client got wrong; otherwise return the response body."""
    with timings.stage("validate"):
        validate_request(body, service.hook)
    timed_fetcher = None
    fetch_ms = [0.0]
    if fetcher is not None:
        def timed_fetcher(urls, token):
            t0 = time.perf_counter()
            try:
                return fetcher(urls, token)
            finally:
                fetch_ms[0] = (time.perf_counter() - t0) * 1000.0
    # "prefetch" is the resolution itself; the concurrent FHIR wave inside it is reported apart as "fetch".
    t0 = time.perf_counter()
    try:
        resolved = resolve(service.prefetch, body, now, timed_fetcher, allowed, lookback)
    finally:
        timings.add("prefetch", (time.perf_counter() - t0) * 1000.0 - fetch_ms[0])
        if fetcher is not None:
            timings.add("fetch", fetch_ms[0])
    require(service.prefetch, resolved)

    notes: list[str] = []
    with timings.stage("snapshot"):
        from .context import build_snapshot  # local import keeps module import light for the linter CLI
        try:
            snapshot = build_snapshot(service.hook, body, resolved, now, lookback, notes)
        except Exception:  # a shape of FHIR data nobody foresaw: refuse this request, never a 500
            log.exception("the snapshot could not be built from this request's FHIR data")
            raise HookError(422, "processing", "The FHIR data in the request could not be processed; "
                                               "no checks ran.") from None
    with timings.stage("rules"):
        run = run_rules(service.hook, snapshot, cards.thresholds(), cards.placeholders(), only=service.rules,
                        silent=cards.silent(), strict=strict)
    with timings.stage("render"):
        rendered = []
        outcome = HookOutcome(body={}, unavailable=dict(resolved.unavailable), sources=dict(resolved.source),
                              notes=notes, rule_errors=run.errors)
        for finding in run.findings:
            card_file = cards.files[finding.rule_id]
            if card_file.status == "silent":
                outcome.silent.append(finding.rule_id)  # recorded and counted, never shown
                continue
            card = render_card(finding, card_file, snapshot.patient_id, smart_launch_url, body.get("hookInstance"))
            rendered.append(card)
            outcome.cards.append((card["uuid"], finding.rule_id))
            if finding.rule_id not in outcome.fired:
                outcome.fired.append(finding.rule_id)
        outcome.body = {"cards": rendered}
    return outcome


def unknown_service(service_id: str, known: Mapping[str, Any]) -> HookError:
    return HookError(404, "not-found", f"No CDS service with id '{service_id}'.",
                     [f"known services: {', '.join(sorted(known))}"])
