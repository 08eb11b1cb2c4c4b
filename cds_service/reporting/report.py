"""Feedback report: how clinicians answered each rule's cards, per service.

Reads the feedback store (``issued_cards`` and ``feedback`` tables of hooks/feedback.py) on
SQLite or PostgreSQL. Definitions:

- *issued*: cards the service returned (issued_cards rows) in the period;
- *with feedback*: distinct cards that got at least one feedback item in the period;
- a card's outcome is its **latest** feedback item (an EHR may send "overridden" after "accepted");
- *accepted* / *overridden*: cards whose latest outcome is that; rates are over cards with feedback;
- *feedback rate*: cards with feedback / cards issued (blank when nothing was issued in the period);
- override reasons and comments come from every overridden item in the period;
- *silent*: findings of a rule whose card file says ``status: silent`` (no card was returned): how often
  it would have fired, for a committee trialling the rule before go-live.

Feedback for a card the store never saw issued (another deployment, a wiped table) is counted
under the rule ``(unknown card)`` rather than dropped.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine

from ..hooks.feedback import feedback, issued_cards, make_engine, silent_firings

UNKNOWN_RULE = "(unknown card)"
TOP_REASONS = 5
MAX_COMMENTS = 10


class ReportError(RuntimeError):
    pass


@dataclass
class RuleStats:
    service: str
    rule: str
    issued: int = 0
    with_feedback: int = 0
    accepted: int = 0
    overridden: int = 0
    silent: int = 0  # findings of the rule while its card file said status: silent
    reasons: Counter = field(default_factory=Counter)  # (code, display) -> count
    comments: list[tuple[str, str, str]] = field(default_factory=list)  # (received, reason display, comment)

    @property
    def accept_rate(self) -> float | None:
        return self.accepted / self.with_feedback if self.with_feedback else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.with_feedback if self.with_feedback else None

    @property
    def feedback_rate(self) -> float | None:
        return self.with_feedback / self.issued if self.issued else None

    def top_reasons(self, n: int = TOP_REASONS) -> list[tuple[str, str, int]]:
        ranked = sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0][0]))
        return [(code, display, count) for (code, display), count in ranked[:n]]

    def merge(self, other: "RuleStats") -> None:
        self.issued += other.issued
        self.with_feedback += other.with_feedback
        self.accepted += other.accepted
        self.overridden += other.overridden
        self.silent += other.silent
        self.reasons.update(other.reasons)
        self.comments.extend(other.comments)


@dataclass
class Report:
    since: datetime | None
    generated: datetime
    rows: list[RuleStats]

    def services(self) -> list[str]:
        return sorted({r.service for r in self.rows})

    def rows_for(self, service: str) -> list[RuleStats]:
        return [r for r in self.rows if r.service == service]

    def service_total(self, service: str) -> RuleStats:
        total = RuleStats(service, "(all rules)")
        for row in self.rows_for(service):
            total.merge(row)
        return total

    def by_rule(self) -> list[RuleStats]:
        """Rows merged across services (the chart's bars)."""
        merged: dict[str, RuleStats] = {}
        for row in self.rows:
            merged.setdefault(row.rule, RuleStats("(all services)", row.rule)).merge(row)
        return [merged[k] for k in sorted(merged, key=lambda k: (k == UNKNOWN_RULE, k))]


def parse_since(text: str | None) -> datetime | None:
    """A date (YYYY-MM-DD, midnight UTC) or an ISO 8601 date-time (UTC if no offset)."""
    if not text:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=timezone.utc)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReportError(f"--since: expected YYYY-MM-DD or an ISO 8601 date-time, got {text!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _aware(value):
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)  # SQLite hands back naive datetimes (stored as UTC)
    return value


def open_store(setting: str) -> Engine:
    engine = make_engine(setting)
    tables = set(inspect(engine).get_table_names())
    missing = {"issued_cards", "feedback"} - tables
    if missing:
        engine.dispose()
        raise ReportError(f"the feedback store has no {' or '.join(sorted(missing))} table; "
                          "is CDS_FEEDBACK_DB the service's store?")
    return engine


def collect(engine: Engine, since: datetime | None = None, now: datetime | None = None) -> Report:
    stats: dict[tuple[str, str], RuleStats] = {}

    def row(service: str, rule: str) -> RuleStats:
        return stats.setdefault((service, rule), RuleStats(service, rule))

    issued_q = select(issued_cards.c.service_id, issued_cards.c.rule_id, issued_cards.c.issued_at)
    fb_q = (select(feedback.c.id, feedback.c.service_id, feedback.c.card_uuid, feedback.c.outcome,
                   feedback.c.override_code, feedback.c.override_display, feedback.c.user_comment,
                   feedback.c.received_at, issued_cards.c.rule_id)
            .select_from(feedback.outerjoin(issued_cards, feedback.c.card_uuid == issued_cards.c.card_uuid))
            .order_by(feedback.c.id))
    if since is not None:
        issued_q = issued_q.where(issued_cards.c.issued_at >= since)
        fb_q = fb_q.where(feedback.c.received_at >= since)
    silent_q = select(silent_firings.c.service_id, silent_firings.c.rule_id)
    if since is not None:
        silent_q = silent_q.where(silent_firings.c.fired_at >= since)
    has_silent = "silent_firings" in inspect(engine).get_table_names()  # a store older than silent mode
    with engine.connect() as conn:
        for service_id, rule_id, _at in conn.execute(issued_q):
            row(service_id, rule_id).issued += 1
        for service_id, rule_id in conn.execute(silent_q) if has_silent else []:
            row(service_id, rule_id).silent += 1
        latest: dict[tuple[str, str], tuple[str, str]] = {}  # (service, card) -> (rule, outcome)
        for item in conn.execute(fb_q).mappings():
            rule = item["rule_id"] or UNKNOWN_RULE
            latest[(item["service_id"], item["card_uuid"])] = (rule, item["outcome"])
            if item["outcome"] == "overridden":
                target = row(item["service_id"], rule)
                if item["override_code"] or item["override_display"]:
                    target.reasons[(item["override_code"] or "", item["override_display"] or item["override_code"])] += 1
                if item["user_comment"]:
                    received = _aware(item["received_at"])
                    when = received.strftime("%Y-%m-%d %H:%M") if isinstance(received, datetime) else str(received)
                    target.comments.append((when, item["override_display"] or item["override_code"] or "",
                                            item["user_comment"]))
    for (service_id, _card), (rule, outcome) in latest.items():
        target = row(service_id, rule)
        target.with_feedback += 1
        if outcome == "accepted":
            target.accepted += 1
        elif outcome == "overridden":
            target.overridden += 1
    for target in stats.values():
        target.comments.sort(reverse=True)  # newest first
    rows = sorted(stats.values(), key=lambda r: (r.service, r.rule == UNKNOWN_RULE, r.rule))
    return Report(since, now or datetime.now(timezone.utc), rows)


# ------------------------------------------------------------------------------------------ output

def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def to_markdown(report: Report) -> str:
    period = f"since {report.since:%Y-%m-%d %H:%M} UTC" if report.since else "all time"
    lines = [f"# Card feedback report ({period})", "",
             f"Generated {report.generated:%Y-%m-%d %H:%M} UTC. A card's outcome is its latest feedback; "
             "rates are over cards with feedback.", ""]
    if not report.rows:
        lines.append("No cards issued and no feedback in this period.")
        return "\n".join(lines) + "\n"
    header = ("| Rule | Issued | With feedback | Feedback rate | Accepted | Overridden | Accept rate | Override rate |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|")
    for service in report.services():
        lines += [f"## {service}", "", header]
        for r in report.rows_for(service) + [report.service_total(service)]:
            name = f"**{r.rule}**" if r.rule == "(all rules)" else f"`{r.rule}`"
            lines.append(f"| {name} | {r.issued} | {r.with_feedback} | {_pct(r.feedback_rate)} | {r.accepted} | "
                         f"{r.overridden} | {_pct(r.accept_rate)} | {_pct(r.override_rate)} |")
        lines.append("")
        silent = [r for r in report.rows_for(service) if r.silent]
        for r in silent:
            lines.append(f"- `{r.rule}` silent: would have fired {r.silent} time{'s' if r.silent != 1 else ''}")
        if silent:
            lines.append("")
        for r in report.rows_for(service):
            if not r.reasons and not r.comments:
                continue
            lines.append(f"### `{r.rule}`: why it was overridden")
            lines.append("")
            for code, display, count in r.top_reasons():
                lines.append(f"- {_md_cell(display)} (`{_md_cell(code)}`): {count}")
            if r.comments:
                lines.append("")
                lines.append("Comments (newest first):")
                lines.append("")
                for when, reason, comment in r.comments[:MAX_COMMENTS]:
                    lines.append(f"- {when}{f' [{_md_cell(reason)}]' if reason else ''}: “{_md_cell(comment)}”")
                if len(r.comments) > MAX_COMMENTS:
                    lines.append(f"- … and {len(r.comments) - MAX_COMMENTS} more")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


CSV_COLUMNS = ["service", "rule", "issued", "with_feedback", "feedback_rate", "accepted", "overridden", "accept_rate",
               "override_rate", "silent_firings", "top_override_reasons", "comments"]


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        writer.writerow([r.service, r.rule, r.issued, r.with_feedback, _rate(r.feedback_rate), r.accepted,
                         r.overridden, _rate(r.accept_rate), _rate(r.override_rate), r.silent,
                         "; ".join(f"{code} ({display}): {count}" for code, display, count in r.top_reasons()),
                         " | ".join(comment for _w, _r, comment in r.comments[:MAX_COMMENTS])])
    return out.getvalue()


def to_png(report: Report) -> bytes:
    """Grouped bars: accept and override rate per rule (all services), with the number of cards with feedback."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ReportError('PNG output needs matplotlib: pip install "cds-service[report]"') from exc
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rules = report.by_rule()
    fig = Figure(figsize=(max(6.0, 1.6 * len(rules) + 2), 4.2), dpi=100)
    ax = fig.subplots()
    xs = list(range(len(rules)))
    width = 0.38
    accept = [100 * (r.accept_rate or 0) for r in rules]
    override = [100 * (r.override_rate or 0) for r in rules]
    bars_a = ax.bar([x - width / 2 for x in xs], accept, width, label="accepted", color="#2e7d32")
    bars_o = ax.bar([x + width / 2 for x in xs], override, width, label="overridden", color="#c62828")
    for bars in (bars_a, bars_o):
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8, padding=2)
    ax.set_xticks(xs, [f"{r.rule}\n(n={r.with_feedback})" for r in rules], fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of cards with feedback")
    period = f"since {report.since:%Y-%m-%d}" if report.since else "all time"
    ax.set_title(f"Card feedback per rule ({period})")
    ax.legend(loc="upper right", fontsize=8)
    if not rules:
        ax.text(0.5, 0.5, "no feedback in this period", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def render(report: Report, fmt: str) -> bytes:
    if fmt == "md":
        return to_markdown(report).encode("utf-8")
    if fmt == "csv":
        return to_csv(report).encode("utf-8")
    if fmt == "png":
        return to_png(report)
    raise ReportError(f"unknown format {fmt!r} (md, csv or png)")


def build(setting: str, since: datetime | None = None) -> Report:
    engine = open_store(setting)
    try:
        return collect(engine, since)
    finally:
        engine.dispose()


__all__ = ["Report", "RuleStats", "ReportError", "build", "collect", "parse_since", "render"]
