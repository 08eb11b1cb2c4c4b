"""`cds-service cards lint [PATH ...]`: check card files; `file:line: message` per problem, exit 1 on any.

`cds-service cards test [PATH ...]`: run scenario files against the card files; a diff per failing
scenario, exit 1 on any failure."""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    cards = subparsers.add_parser("cards", help="card-file tools for informaticists")
    cards_sub = cards.add_subparsers(dest="cards_command", required=True)
    lint = cards_sub.add_parser(
        "lint", help="check card files (schema, placeholders, summary length, source, rule, indicator, links)")
    lint.add_argument("paths", nargs="*", metavar="PATH",
                      help="card files or folders (default: the CDS_CARDS_DIR folder)")
    lint.add_argument("-q", "--quiet", action="store_true", help="print problems only, no summary line")
    lint.set_defaults(func=_lint)
    test = cards_sub.add_parser(
        "test", help="run scenario files (default: the scenarios/ folder next to the card files) and show "
                     "expected against actual cards")
    test.add_argument("paths", nargs="*", metavar="PATH",
                      help="scenario files or folders (default: CDS_CARDS_DIR/scenarios)")
    test.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    test.set_defaults(func=_test)


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
