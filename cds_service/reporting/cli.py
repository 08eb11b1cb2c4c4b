"""`cds-service feedback report [--since DATE] [--format md|csv|png] [--output FILE] [--db URL]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    fb = subparsers.add_parser("feedback", help="feedback store tools")
    fb_sub = fb.add_subparsers(dest="feedback_command", required=True)
    report = fb_sub.add_parser(
        "report", help="cards issued, accepted and overridden per service and rule, with override reasons")
    report.add_argument("--since", metavar="DATE", help="only cards and feedback from this date (YYYY-MM-DD, UTC) "
                                                        "or ISO 8601 date-time on")
    report.add_argument("--format", choices=("md", "csv", "png"), default="md",
                        help="md (default), csv, or png (bar chart; needs the `report` extra)")
    report.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
    report.add_argument("--db", metavar="URL", help="feedback store (default: CDS_FEEDBACK_DB)")
    report.add_argument("--cards", metavar="DIR",
                        help="card files whose override-reason labels the report shows (default: CDS_CARDS_DIR)")
    report.set_defaults(func=_report)


def _demo_store_instead(setting: str) -> str:
    """Right after `cds-service demo`, with CDS_FEEDBACK_DB left at its default, read the demo's store."""
    import os

    from ..devtools.demo import FEEDBACK_DB

    default_path = setting.split("sqlite:///", 1)[-1]
    if ("CDS_FEEDBACK_DB" not in os.environ and not Path(default_path).expanduser().exists()
            and FEEDBACK_DB.exists()):
        print(f"no feedback store at {default_path}; reading the demo's store at {FEEDBACK_DB}", file=sys.stderr)
        return str(FEEDBACK_DB)
    return setting


def _report(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .report import ReportError, build, card_labels, parse_since, render

    setting = args.db
    if not setting:
        setting = load_config()["CDS_FEEDBACK_DB"]
        setting = _demo_store_instead(setting)
    if args.format == "png" and not args.output:
        print("--format png needs --output FILE", file=sys.stderr)
        return 2
    if "://" not in setting or setting.startswith("sqlite:///"):
        path = setting.split("sqlite:///", 1)[-1]
        if path and path != ":memory:" and not Path(path).expanduser().exists():
            print(f"no feedback store at {path} (set CDS_FEEDBACK_DB or --db)", file=sys.stderr)
            return 2
    try:
        labels = card_labels(args.cards or load_config()["CDS_CARDS_DIR"])
        report = build(setting, parse_since(args.since), labels=labels)
        data = render(report, args.format)
    except ReportError as exc:
        print(f"feedback report: {exc}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"wrote {args.output} ({len(report.rows)} service/rule rows)", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0
