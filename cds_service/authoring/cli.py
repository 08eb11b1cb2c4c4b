"""`cds-service cards lint [PATH ...]`: check card files; `file:line: message` per problem, exit 1 on any."""
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
