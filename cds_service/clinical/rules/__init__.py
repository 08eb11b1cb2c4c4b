"""Rule registry.

A rule is a pure function ``fn(ctx: RuleContext) -> list[Finding]``, registered with
``@rule(id, hooks=..., needs=..., order=...)``. Its thresholds come from its card
file (``thresholds:``), passed in as ``ctx.params``. Adding a rule = one function in
a module of this package + one card file in ``cards/``.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..snapshot import Snapshot

log = logging.getLogger(__name__)

PATIENT_VIEW = "patient-view"
ORDER_SELECT = "order-select"
ORDER_SIGN = "order-sign"
ORDER_HOOKS = frozenset({ORDER_SELECT, ORDER_SIGN})


@dataclass
class SuggestionSpec:
    """A suggestion in domain terms; the protocol layer turns it into CDS Hooks actions.

    kind: "order-lab" (params: analyte, loinc, display) or "remove-draft" (params: resource_id, medication).
    """
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    recommended: bool = False


def order_lab(analyte: str) -> SuggestionSpec:
    """Suggest ordering a serum level of ``analyte`` (a key of codes.ORDERABLE_LOINC)."""
    from .. import codes

    loinc, display = codes.ORDERABLE_LOINC[analyte]
    return SuggestionSpec("order-lab", {"analyte": codes.ANALYTE_LABEL[analyte].lower(), "loinc": loinc,
                                        "display": display})


@dataclass
class Finding:
    rule_id: str
    values: dict[str, Any] = field(default_factory=dict)  # placeholders for the card text
    indicator: str | None = None  # overrides the card file's default indicator
    suggestions: list[SuggestionSpec] = field(default_factory=list)
    order_ref: str | None = None  # "MedicationRequest/id" for order cards
    variant: str | None = None  # picks an alternative text block in the card file (e.g. "info")


@dataclass
class RuleContext:
    snapshot: Snapshot
    params: Mapping[str, Any]  # this rule's thresholds
    fired: set[str]  # ids of rules that already fired in this call (rules run in `order`)
    findings: list[Finding]  # the findings so far


@dataclass
class Rule:
    id: str
    hooks: frozenset[str]
    fn: Callable[[RuleContext], list[Finding]]
    needs: frozenset[str]  # data keys the rule cannot do without (see hooks.prefetch DATA_KEYS)
    order: int
    provides: frozenset[str] = frozenset()  # placeholder names its findings fill in
    always: bool = False  # runs even for patients not (known to be) on dialysis; the rule decides


REGISTRY: dict[str, Rule] = {}


def rule(rule_id: str, hooks: set[str] | frozenset[str], needs: set[str] | frozenset[str] = frozenset(),
         order: int = 100, provides: set[str] | frozenset[str] = frozenset(), always: bool = False):
    def decorate(fn: Callable[[RuleContext], list[Finding]]):
        if rule_id in REGISTRY and REGISTRY[rule_id].fn is not fn:
            raise ValueError(f"rule {rule_id} registered twice")
        REGISTRY[rule_id] = Rule(rule_id, frozenset(hooks), fn, frozenset(needs), order, frozenset(provides), always)
        return fn
    return decorate


_loaded = False
_by_hook: dict[str, list[Rule]] = {}


def load_all() -> dict[str, Rule]:
    """Import every module of this package so that their @rule decorators run (once per process)."""
    global _loaded
    if not _loaded:
        for mod in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True
    return REGISTRY


def rules_for(hook: str) -> list[Rule]:
    load_all()
    cached = _by_hook.get(hook)
    if cached is not None and len(cached) == sum(1 for r in REGISTRY.values() if hook in r.hooks):
        return cached
    _by_hook[hook] = sorted((r for r in REGISTRY.values() if hook in r.hooks), key=lambda r: (r.order, r.id))
    return _by_hook[hook]


def run_rules(hook: str, snapshot: Snapshot, params_by_rule: Mapping[str, Mapping[str, Any]],
              only: set[str] | None = None) -> list[Finding]:
    """Run the hook's rules in order. Patients not on dialysis get nothing, from any rule.

    A rule whose needed data is unavailable does not run.
    """
    findings: list[Finding] = []
    fired: set[str] = set()
    for r in rules_for(hook):
        if not snapshot.dialysis.on_dialysis and not r.always:
            continue
        if only is not None and r.id not in only:
            continue
        if any(snapshot.data_missing(key) for key in r.needs):
            continue
        ctx = RuleContext(snapshot, params_by_rule.get(r.id, {}), fired, findings)
        try:
            produced = r.fn(ctx) or []
        except Exception:  # one rule's bug must not take the other cards (or the EHR screen) down
            log.exception("rule %s failed; skipped", r.id)
            continue
        if produced:
            fired.add(r.id)
            findings.extend(produced)
    return findings
