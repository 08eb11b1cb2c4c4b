"""Server-side SVG charts for the trend app: no chart library, no script, CSP-safe (no inline styles).

Each chart is one <svg> with presentation attributes and CSS classes only. Markers of one result
class are drawn as a single <path> (one element per class, however many results), so a year of
results stays a small DOM.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from html import escape
from typing import Iterable

from markupsafe import Markup

from ..clinical.codes import ANALYTE_LABEL
from . import domain, trends

W, H = 720, 160
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 8, 22
PLOT_W, PLOT_H = W - LEFT - RIGHT, H - TOP - BOTTOM
TITLED_POINTS = 400  # per chart: up to this many markers get their own <title> (hover text)

# Marker shape per result class (colour alone never carries the meaning; the legend names them).
SHAPES = {
    domain.ResultClass.CURRENT: "circle",
    domain.ResultClass.PRE_SESSION: "square",
    domain.ResultClass.INTRADIALYTIC: "triangle",
    domain.ResultClass.EARLY_POST: "diamond",
    domain.ResultClass.FUTURE: "cross",
}


class Scale:
    def __init__(self, start: datetime, end: datetime, lo: float, hi: float, left: float = LEFT):
        self.t0, self.span = start.timestamp(), max(1.0, (end - start).total_seconds())
        self.lo, self.hi = lo, hi if hi > lo else lo + 1.0
        self.left, self.width = left, W - RIGHT - left

    def x(self, moment: datetime) -> float:
        return self.left + min(1.0, max(0.0, (moment.timestamp() - self.t0) / self.span)) * self.width

    def y(self, value: float) -> float:
        return TOP + (1.0 - (value - self.lo) / (self.hi - self.lo)) * PLOT_H


def _marker(shape: str, x: float, y: float, r: float = 3.6) -> str:
    # Circles and squares are zero-length subpaths drawn by the stroke's round or square cap (smart.css):
    # 12 bytes a marker instead of 50, so a year of results stays a small page that paints fast.
    if shape in ("circle", "square"):
        return f"M{x:.1f} {y:.1f}h0"
    if shape == "triangle":
        return f"M{x:.1f} {y - r - 0.8:.1f}l{r + 0.8} {2 * r}h{-2 * r - 1.6}z"
    if shape == "diamond":
        return f"M{x:.1f} {y - r - 0.8:.1f}l{r + 0.8} {r + 0.8}l{-r - 0.8} {r + 0.8}l{-r - 0.8} {-r - 0.8}z"
    return f"M{x - r:.1f} {y - r:.1f}l{2 * r} {2 * r}m0 {-2 * r}l{-2 * r} {2 * r}"


def _nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    raw = (hi - lo) / max(1, n)
    step = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= step * mult:
            step *= mult
            break
    first = (lo // step + 1) * step
    ticks: list[float] = []
    value = first
    while value < hi and len(ticks) < 8:
        ticks.append(round(value, 6))
        value += step
    return ticks


def _time_ticks(start: datetime, end: datetime) -> list[datetime]:
    days = (end - start).days
    step = 1 if days <= 7 else 7 if days <= 31 else 14 if days <= 92 else 61
    first = (start + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return [first + timedelta(days=i * step) for i in range(0, days // step + 1) if first + timedelta(days=i * step) < end]


def _session_rects(view: trends.TrendView, scale: Scale, top: float, height: float) -> Iterable[str]:
    for s in view.sessions:
        if s.start is None:
            continue
        end = s.end or view.now
        x0, x1 = scale.x(s.start), scale.x(end)
        yield (f'<rect class="session" x="{x0:.1f}" y="{top:.1f}" width="{max(1.5, x1 - x0):.1f}" '
               f'height="{height:.1f}"><title>Dialysis session {s.start:%d %b %H:%M}–{end:%H:%M}</title></rect>')


def _x_axis(scale: Scale, start: datetime, end: datetime, y: float) -> Iterable[str]:
    yield f'<line class="axis" x1="{scale.left}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}"/>'
    for tick in _time_ticks(start, end):
        x = scale.x(tick)
        yield f'<line class="tick" x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}"/>'
        yield f'<text class="tick-label" x="{x:.1f}" y="{y + 14:.1f}" text-anchor="middle">{tick:%d %b}</text>'


def analyte_chart(view: trends.TrendView, analyte: str, unit: str) -> Markup:
    points = view.series.get(analyte) or []
    factor = trends.display_factor(analyte, unit) or 1.0
    shown = trends.shown_unit(analyte, unit)
    band_lo, band_hi = (v * factor for v in trends.BANDS[analyte])
    values = [p.result.value * factor for p in points]
    lo, hi = min(values + [band_lo]), max(values + [band_hi])
    pad = (hi - lo) * 0.12 or 0.1
    scale = Scale(view.start, view.now, lo - pad, hi + pad)
    label = trends.SHORT[analyte]
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-{analyte}-title" '
             f'data-analyte="{analyte}" data-points="{len(points)}">',
             f'<title id="chart-{analyte}-title">{escape(codes_label(analyte))}: {len(points)} results in the last '
             f'{view.days} days, in {escape(shown)}</title>']
    parts.extend(_session_rects(view, scale, TOP, PLOT_H))
    y_hi, y_lo = scale.y(band_hi), scale.y(band_lo)
    parts.append(f'<rect class="band" x="{LEFT}" y="{y_hi:.1f}" width="{PLOT_W}" height="{max(1.0, y_lo - y_hi):.1f}">'
                 f'<title>{escape(trends.BAND_LABEL[analyte])} mmol/L</title></rect>')
    for tick in _nice_ticks(scale.lo, scale.hi):
        y = scale.y(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick-label" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    parts.extend(_x_axis(scale, view.start, view.now, TOP + PLOT_H))
    if len(points) > 1:
        line = "M" + "L".join(f"{scale.x(p.result.time):.1f} {scale.y(v):.1f}" for p, v in zip(points, values))
        parts.append(f'<path class="trend" d="{line}"/>')
    by_class: dict[domain.ResultClass, list[str]] = {}
    titled = len(points) <= TITLED_POINTS
    titles = []
    for p, v in zip(points, values):
        x, y = scale.x(p.result.time), scale.y(v)
        by_class.setdefault(p.cls, []).append(_marker(SHAPES[p.cls], x, y))
        if titled:
            titles.append(f'<circle class="hit" cx="{x:.1f}" cy="{y:.1f}" r="6"><title>{label} '
                          f'{trends.format_value(analyte, p.result.value, shown)} {escape(shown)}, '
                          f'{p.result.time:%d %b %Y %H:%M} UTC, {p.cls.value}</title></circle>')
    for cls, marks in by_class.items():
        parts.append(f'<path class="marker marker--{cls.value}" data-class="{cls.value}" data-count="{len(marks)}" '
                     f'd="{"".join(marks)}"/>')
    parts.extend(titles)
    if not points:
        parts.append(f'<text class="empty" x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle">'
                     f'No {escape(codes_label(analyte).lower())} results in the last {view.days} days</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def codes_label(analyte: str) -> str:
    return ANALYTE_LABEL[analyte]


def legend_marker(cls: domain.ResultClass) -> Markup:
    return Markup(f'<svg class="legend-marker" viewBox="0 0 12 12" aria-hidden="true"><path class="marker '
                  f'marker--{cls.value}" d="{_marker(SHAPES[cls], 6, 6, 3.6)}"/></svg>')


ROW_H = 20
TIMELINE_LEFT = 96


def timeline(view: trends.TrendView) -> Markup:
    """Medication orders as bars (one row per order), cramps and spasms as markers, sessions shaded."""
    rows = len(view.meds) + 1
    height = TOP + rows * ROW_H + BOTTOM
    scale = Scale(view.start, view.now, 0, 1, left=TIMELINE_LEFT)
    parts = [f'<svg class="chart timeline" viewBox="0 0 {W} {height}" role="img" aria-labelledby="timeline-title" '
             f'data-meds="{len(view.meds)}" data-cramps="{len(view.cramps)}">',
             '<title id="timeline-title">Medication orders and documented cramps or spasms</title>']
    parts.extend(_session_rects(view, scale, TOP, rows * ROW_H))
    y = TOP + ROW_H / 2
    parts.append(f'<text class="row-label" x="{TIMELINE_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">Cramps</text>')
    marks = []
    for d in view.cramps:
        x = scale.x(d.time)
        marks.append(_marker("cross", x, y, 4.5))  # drawn by the stroke (.cramp)
        parts.append(f'<circle class="hit" cx="{x:.1f}" cy="{y:.1f}" r="6"><title>{escape(d.label)}, '
                     f'{d.time:%d %b %Y %H:%M} UTC</title></circle>')
    if marks:
        parts.append(f'<path class="cramp" d="{"".join(marks)}"/>')
    for i, med in enumerate(view.meds, start=1):
        y = TOP + i * ROW_H + ROW_H / 2
        short = med.group if len(med.group) <= 15 else med.group[:14] + "…"
        parts.append(f'<text class="row-label" x="{TIMELINE_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(short)}</text>')
        x0 = scale.x(med.start)
        title = (f"{escape(med.label)} ({escape(med.status)}), from {med.start:%d %b %Y}"
                 + (f" to {med.end:%d %b %Y}" if med.end else ""))
        if med.end is not None:
            x1 = scale.x(med.end)
            parts.append(f'<rect class="med med--{escape(med.status)}" x="{x0:.1f}" y="{y - 6:.1f}" '
                         f'width="{max(3.0, x1 - x0):.1f}" height="12" rx="3"><title>{title}</title></rect>')
        else:
            parts.append(f'<path class="med med--{escape(med.status)}" d="{_marker("diamond", x0, y, 5)}">'
                         f'<title>{title}</title></path>')
    parts.extend(_x_axis(scale, view.start, view.now, TOP + rows * ROW_H))
    parts.append("</svg>")
    return Markup("".join(parts))


def ufr_chart(view: trends.TrendView) -> Markup:
    """Ultrafiltration rate per session (bars), with the 13 mL/kg/h line."""
    rated = [sw for sw in view.session_rows if sw.ufr is not None and sw.session.start is not None]
    top = max([sw.ufr or 0.0 for sw in rated] + [domain.UFR_HIGH_ML_KG_H * 1.3])
    scale = Scale(view.start, view.now, 0, top)
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="ufr-title" '
             f'data-sessions="{len(rated)}">',
             f'<title id="ufr-title">Ultrafiltration rate per session (mL/kg/h); {len(rated)} sessions with pre- '
             f'and post-session weights</title>']
    y13 = scale.y(domain.UFR_HIGH_ML_KG_H)
    for tick in _nice_ticks(0, top):
        y = scale.y(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick-label" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    parts.append(f'<line class="limit" x1="{LEFT}" y1="{y13:.1f}" x2="{W - RIGHT}" y2="{y13:.1f}">'
                 f'<title>13 mL/kg/h</title></line>')
    for sw in rated:
        x = scale.x(sw.session.start or view.now)
        y = scale.y(sw.ufr or 0.0)
        parts.append(f'<rect class="ufr{" ufr--high" if sw.ufr_high else ""}" x="{x - 2.5:.1f}" y="{y:.1f}" width="5" '
                     f'height="{TOP + PLOT_H - y:.1f}"><title>{sw.session.start:%d %b}: UFR {sw.ufr:.1f} mL/kg/h '
                     f'({sw.pre_kg:.1f} → {sw.post_kg:.1f} kg)</title></rect>')
    parts.extend(_x_axis(scale, view.start, view.now, TOP + PLOT_H))
    parts.append("</svg>")
    return Markup("".join(parts))
