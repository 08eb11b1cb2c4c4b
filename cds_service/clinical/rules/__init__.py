"""Rule registry: a rule is declared once, here, with ``@rule``.

A rule is a pure function ``fn(ctx: RuleContext) -> list[Finding]`` in a module of this
package. Its card text, threshold values and citations live in its card file,
``cards/<rule-id>.yaml``; its expected behaviour in a scenario file,
``cards/scenarios/<name>.yaml``. Adding a rule is those three files and nothing else.

    from . import PATIENT_VIEW, Finding, RuleContext, Threshold, order_lab, rule

    @rule("hyperkalemia", hooks={PATIENT_VIEW}, needs={"labs"},
          tags={"electrolyte"}, label="high potassium",
          thresholds={"k_high": Threshold("mmol/L", low=5.0, high=7.0),
                      "k_critical": Threshold("mmol/L", low=5.5, high=8.0)})
    def hyperkalemia(ctx: RuleContext) -> list[Finding]:
        k = ctx.snapshot.latest("k")
        if k is None or k.above(ctx.params["k_high"]) is not True:
            return []
        return [Finding(values={"k": k.display(), ...}, indicator="critical", variant="critical")]

The decorator's arguments:

- ``rule_id``: the card file's ``rule:``, the card's ``source.topic.code``. The registry writes it
  into every ``Finding`` the rule returns (``Finding.rule_id``); a rule never writes it.
- ``hooks``: ``PATIENT_VIEW`` and/or ``ORDER_HOOKS`` (order-select, order-sign).
- ``needs``: prefetch data keys (``hooks.prefetch``) the rule cannot do without; when one of them
  could not be retrieved the rule does not run (the data-unavailable card says so).
- ``thresholds``: name -> ``Threshold(unit, low, high)``. The card file must give every one,
  as ``thresholds: {name: {value: 0.70, unit: mmol/L}}``, with exactly that unit and a value in
  [low, high] (a plausible range that catches typos, not a clinical recommendation); the linter
  and start-up refuse anything else. ``ctx.params[name]`` is then a float in that unit.
- ``after``: rule ids, or ``"tag:<tag>"`` for every rule with that tag, that must run (and be
  shown) before this one; only those can be in ``ctx.fired`` / ``ctx.findings`` when this rule
  runs. The registry orders rules topologically and refuses unknown names and cycles. Rules with
  no ``after`` relation between them keep source order: modules alphabetically, then the order
  they are written in within a module. The run order is the order cards are shown in.
- ``tags``: names other rules can depend on (``after={"tag:electrolyte"}``) or read back
  (``ctx.fired_tagged("electrolyte")``), so that no rule keeps a list of other rules' ids.
- ``label``: how other cards name this rule's finding ("low magnesium"); ``ctx.label(rule_id)``.
- ``always``: run even for patients not (known to be) on dialysis (the rule decides); default off.

Placeholders: the names under the card file's ``placeholders:`` are the contract between a rule
and its card. Start-up (the linter) refuses a text that uses an undeclared name; at run time a
finding whose ``values`` lack a declared name, or carry an undeclared one, is a rule error.

Rule errors (an exception, or a broken placeholder contract) are loud: the other rules' cards are
still returned, but the error is recorded in ``RuleRun.errors`` (counted in metrics, shown by
``/health`` as degraded) and raises ``RuleError`` when ``strict`` is on (the test suite).
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..snapshot import Snapshot

log = logging.getLogger(__name__)

PATIENT_VIEW = "patient-view"
ORDER_SELECT = "order-select"
ORDER_SIGN = "order-sign"
ORDER_HOOKS = frozenset({ORDER_SELECT, ORDER_SIGN})
HOOKS = frozenset({PATIENT_VIEW, ORDER_SELECT, ORDER_SIGN})


@dataclass(frozen=True)
class Threshold:
    """A card-file threshold: its unit (UCUM) and the plausible range a value must fall in."""
    unit: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"Threshold range [{self.low}, {self.high}] is empty")

    def problem(self, value: Any, unit: Any) -> str | None:
        """Why ``value``/``unit`` from a card file is refused, or None when it is fine."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"value must be a number, got {value!r}"
        if unit != self.unit:
            return f"unit must be '{self.unit}', got {unit!r}"
        if not self.low <= float(value) <= self.high:
            return f"value {value:g} {self.unit} is outside the plausible range {self.low:g}–{self.high:g} {self.unit}"
        return None


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
    values: dict[str, Any] = field(default_factory=dict)  # the card file's placeholders, every one of them
    indicator: str | None = None  # overrides the card file's default indicator
    suggestions: list[SuggestionSpec] = field(default_factory=list)
    order_ref: str | None = None  # "MedicationRequest/id" for order cards
    variant: str | None = None  # picks an alternative text block in the card file (e.g. "info")
    rule_id: str = ""  # filled by the registry


@dataclass
class RuleContext:
    snapshot: Snapshot
    params: Mapping[str, float]  # this rule's thresholds, in their declared units
    fired: set[str]  # ids of rules that fired earlier in this call (only rules this one runs after)
    findings: list[Finding]  # the findings so far

    def fired_tagged(self, tag: str) -> list[str]:
        """Ids of the rules with ``tag`` that fired earlier in this call, in run order."""
        return [f.rule_id for f in _unique_rules(self.findings) if tag in REGISTRY[f.rule_id].tags]

    @staticmethod
    def label(rule_id: str) -> str:
        return REGISTRY[rule_id].label or rule_id


def _unique_rules(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[str] = set()
    out = []
    for f in findings:
        if f.rule_id not in seen:
            seen.add(f.rule_id)
            out.append(f)
    return out


@dataclass
class Rule:
    id: str
    hooks: frozenset[str]
    fn: Callable[[RuleContext], list[Finding]]
    needs: frozenset[str] = frozenset()  # data keys the rule cannot do without (see hooks.prefetch)
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)
    after: frozenset[str] = frozenset()  # rule ids or "tag:<tag>" that run before this one
    tags: frozenset[str] = frozenset()
    label: str = ""
    always: bool = False  # runs even for patients not (known to be) on dialysis; the rule decides


REGISTRY: dict[str, Rule] = {}


class RegistryError(ValueError):
    """A mistake in the rule declarations (unknown hook or dependency, cycle, duplicate id)."""


class RuleError(RuntimeError):
    """A rule failed at run time (raised only in strict mode)."""


def rule(rule_id: str, hooks: Iterable[str], needs: Iterable[str] = (), *,
         thresholds: Mapping[str, Threshold] | None = None, after: Iterable[str] = (), tags: Iterable[str] = (),
         label: str = "", always: bool = False) -> Callable[[Callable[[RuleContext], list[Finding]]],
                                                             Callable[[RuleContext], list[Finding]]]:
    """Register a rule (see the module docstring)."""
    unknown = set(hooks) - HOOKS
    if unknown or not set(hooks):
        raise RegistryError(f"rule {rule_id}: hooks must be among {sorted(HOOKS)}, got {sorted(hooks)}")
    for name, threshold in (thresholds or {}).items():
        if not isinstance(threshold, Threshold):
            raise RegistryError(f"rule {rule_id}: threshold {name} must be a Threshold(unit, low, high)")

    def decorate(fn: Callable[[RuleContext], list[Finding]]) -> Callable[[RuleContext], list[Finding]]:
        if rule_id in REGISTRY and REGISTRY[rule_id].fn is not fn:
            raise RegistryError(f"rule {rule_id} registered twice")
        REGISTRY[rule_id] = Rule(rule_id, frozenset(hooks), fn, frozenset(needs), dict(thresholds or {}),
                                 frozenset(after), frozenset(tags), label, always)
        _by_hook.clear()
        _visible.clear()
        return fn
    return decorate


_loaded = False
_by_hook: dict[str, list[Rule]] = {}
_visible: dict[str, frozenset[str]] = {}


def load_all() -> dict[str, Rule]:
    """Import every module of this package so that their @rule decorators run (once per process)."""
    global _loaded
    if not _loaded:
        for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True
    return REGISTRY


def _predecessors(r: Rule, rules: Mapping[str, Rule]) -> set[str]:
    out: set[str] = set()
    for name in r.after:
        if name.startswith("tag:"):
            tag = name[4:]
            tagged = {other.id for other in REGISTRY.values() if tag in other.tags}
            if not tagged:
                raise RegistryError(f"rule {r.id}: after '{name}': no rule has tag '{tag}'")
            out |= {t for t in tagged if t in rules}
        elif name not in REGISTRY:
            raise RegistryError(f"rule {r.id}: after '{name}': no such rule")
        elif name in rules:
            out.add(name)
    out.discard(r.id)
    return out


def _source_position(r: Rule) -> tuple[str, int]:
    """Where the rule is written: module name, then line (independent of the order modules are imported in)."""
    return r.fn.__module__, r.fn.__code__.co_firstlineno


def ordered(rules: list[Rule]) -> list[Rule]:
    """``rules`` in run order: every rule after those it names in ``after``; otherwise registration order."""
    by_id = {r.id: r for r in rules}
    position = {r.id: _source_position(r) for r in rules}
    waiting = {r.id: _predecessors(r, by_id) for r in rules}
    out: list[Rule] = []
    while waiting:
        ready = [rid for rid, before in waiting.items() if not before]
        if not ready:
            raise RegistryError(f"rules depend on each other in a cycle: {', '.join(sorted(waiting))}")
        chosen = min(ready, key=position.__getitem__)
        out.append(by_id[chosen])
        del waiting[chosen]
        for before in waiting.values():
            before.discard(chosen)
    return out


def rules_for(hook: str) -> list[Rule]:
    """The hook's rules in run order (the order their cards are shown in)."""
    load_all()
    if hook not in _by_hook:
        _by_hook[hook] = ordered([r for r in REGISTRY.values() if hook in r.hooks])
    return _by_hook[hook]


def check_registry() -> None:
    """Raise RegistryError on an unknown dependency or a cycle, for every hook."""
    for hook in sorted(HOOKS):
        rules_for(hook)


@dataclass
class RuleFailure:
    rule_id: str
    message: str


@dataclass
class RuleRun:
    findings: list[Finding] = field(default_factory=list)
    errors: list[RuleFailure] = field(default_factory=list)


def run_rules(hook: str, snapshot: Snapshot, params_by_rule: Mapping[str, Mapping[str, float]],
              placeholders: Mapping[str, frozenset[str]], *, only: set[str] | frozenset[str] | None = None,
              silent: set[str] | frozenset[str] = frozenset(), strict: bool = False) -> RuleRun:
    """Run the hook's rules in order. Patients not on dialysis get nothing, except from ``always`` rules.

    ``params_by_rule``: rule id -> thresholds (floats). ``placeholders``: rule id -> the names its card
    file declares; a rule missing from it does not run. A rule whose needed data is unavailable does not
    run. The findings of ``silent`` rules are returned too (the caller records them instead of showing
    them) but are invisible to the rules after them, so that a silent rule changes no card. A rule that raises, or returns a finding whose values do not match its card file's placeholders,
    is recorded in ``errors`` (and raises RuleError when ``strict``); the other rules still run.
    """
    run = RuleRun()
    fired: set[str] = set()
    for r in rules_for(hook):
        if r.id not in placeholders:
            continue  # no active card file (status: off)
        if only is not None and r.id not in only:
            continue
        if not snapshot.dialysis.on_dialysis and not r.always:
            continue
        if any(snapshot.data_missing(key) for key in r.needs):
            continue
        visible = _visible.get(r.id)
        if visible is None:
            visible = _visible[r.id] = frozenset(_predecessors(r, REGISTRY))
        ctx = RuleContext(snapshot, params_by_rule.get(r.id, {}), (fired & visible) - silent,
                          [f for f in run.findings if f.rule_id in visible and f.rule_id not in silent])
        try:
            produced = list(r.fn(ctx) or [])
            for finding in produced:
                finding.rule_id = r.id
                _check_values(finding, placeholders[r.id])
        except Exception as exc:  # one rule's bug must not take the other cards (or the EHR screen) down
            if strict:
                raise RuleError(f"rule {r.id} failed: {exc!r}") from exc
            log.exception("rule %s failed; its cards are missing from this answer", r.id)
            run.errors.append(RuleFailure(r.id, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        if produced:
            fired.add(r.id)
            run.findings.extend(produced)
    return run


def _check_values(finding: Finding, declared: frozenset[str]) -> None:
    given = set(finding.values)
    missing, extra = sorted(declared - given), sorted(given - declared)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks placeholder(s) {', '.join(missing)}")
        if extra:
            parts.append(f"gives placeholder(s) its card file does not declare: {', '.join(extra)}")
        raise ValueError(f"finding of {finding.rule_id} " + "; ".join(parts))
