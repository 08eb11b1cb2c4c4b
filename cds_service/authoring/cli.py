"""`cds-service cards lint [PATH ...]`: check card files; `file:line: message` per problem, exit 1 on any.

`cds-service cards test [PATH ...]`: run scenario files against the card files; a diff per failing
scenario, exit 1 on any failure."""
from __future__ import annotations

import argparse
import sys


def _command(sub, name: str, help_text: str, paths_help: str, quiet_help: str, func) -> None:
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("paths", nargs="*", metavar="PATH", help=paths_help)
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    parser.set_defaults(func=func)


def register(subparsers) -> None:
    cards = subparsers.add_parser("cards", help="card-file tools for informaticists")
    cards_sub = cards.add_subparsers(dest="cards_command", required=True)
    _command(cards_sub, "lint", "check card files (schema, thresholds, placeholders, summary length, wording, "
                                "sources, rule, indicator, links)",
             "card files or folders (default: the CDS_CARDS_DIR folder)", "print problems only, no summary line",
             _lint)
    _command(cards_sub, "test", "run scenario files (default: the scenarios/ folder next to the card files) and "
                                "show expected against actual cards",
             "scenario files or folders (default: CDS_CARDS_DIR/scenarios)", "print failures only", _test)
    listing = cards_sub.add_parser(
        "list", help="print the registered rules per hook, in run order, with card status, indicator and thresholds "
                     "(Markdown)")
    listing.set_defaults(func=_list)


def _lint(args: argparse.Namespace) -> int:
    from .lint import lint

    paths = args.paths
    if not paths:
        from ..config import load_config
        paths = [load_config()["CDS_CARDS_DIR"]]
    files, problems = lint(paths)
    for problem in problems:
        print(problem)
    if not files:
        print(f"no card files found in {', '.join(map(str, paths))}", file=sys.stderr)
        return 2
    if not args.quiet:
        status = f"{len(problems)} problem(s)" if problems else "OK"
        print(f"{len(files)} card file(s) checked: {status}", file=sys.stderr)
    return 1 if problems else 0


def _test(args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta, timezone

    from ..config import load_config
    from ..hooks.cards import CardFileError, CardLibrary
    from . import scenarios

    cfg = load_config()
    try:
        cards = CardLibrary(cfg["CDS_CARDS_DIR"])
    except CardFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    paths = scenarios.scenario_files(args.paths or [scenarios.scenario_dir(cfg["CDS_CARDS_DIR"])])
    if not paths:
        print(f"no scenario files found in {', '.join(args.paths) or scenarios.scenario_dir(cfg['CDS_CARDS_DIR'])}",
              file=sys.stderr)
        return 2
    now = datetime.now(timezone.utc)
    failed = 0
    for path in paths:
        try:
            scenario = scenarios.load(path)
        except scenarios.ScenarioError as exc:
            print(f"FAIL {exc}")
            failed += 1
            continue
        result = scenarios.run_prefetch(scenario, cards, now, timedelta(days=cfg["CDS_LOOKBACK_DAYS"]))
        if not result.ok or not args.quiet:
            print(scenarios.report(scenario, result.cards, result.problems))
        failed += not result.ok
    print(f"{len(paths)} scenario(s) run with the card files of {cfg['CDS_CARDS_DIR']}: "
          f"{f'{failed} failed' if failed else 'all passed'}", file=sys.stderr)
    return 1 if failed else 0


def _list(args: argparse.Namespace) -> int:
    """The rule list, generated from the registry and the card files (docs never keep a hand-made copy)."""
    from ..clinical.rules import HOOKS, rules_for
    from ..config import load_config
    from ..hooks.cards import CardFileError, CardLibrary

    try:
        cards = CardLibrary(load_config()["CDS_CARDS_DIR"])
    except CardFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    for hook in ("patient-view", *sorted(HOOKS - {"patient-view"})):
        print(f"## {hook}\n\n| Rule (run and shown in this order) | Status | Indicator | Thresholds (plausible range) |")
        print("|---|---|---|---|")
        for rule in rules_for(hook):
            card = cards.files.get(rule.id)
            values = card.thresholds if card else {}
            thresholds = ", ".join(f"{name} = {values.get(name, '?'):g} {spec.unit} ({spec.low:g}–{spec.high:g})"
                                   if name in values else f"{name} (missing)" for name, spec in rule.thresholds.items())
            status = card.status if card else "no card file"
            indicator = card.data["indicator"] if card else ""
            print(f"| `{rule.id}` | {status} | {indicator} | {thresholds or '–'} |")
        print()
    return 0
