"""Small SVG charts for the admin dashboard, drawn on the server.

Plain inline SVG: no JavaScript, colours as presentation attributes
(fill="...", stroke="...") rather than style attributes, so the admin's
Content-Security-Policy leaves them alone. Every piece of text goes through
format_html, so labels are escaped.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# Okabe-Ito: tells apart for most kinds of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
GREEN, ORANGE, RED, GREY, LIGHT_GREY, SKY, PURPLE = (
    "#009E73",
    "#E69F00",
    "#D55E00",
    "#999999",
    "#CCCCCC",
    "#56B4E9",
    "#CC79A7",
)
STATE_COLOURS = {"ok": GREEN, "near": ORANGE, "over": RED}

_CHAR_WIDTH = 6.5  # rough width of one character at font-size 11, for layout only
_LEFT, _RIGHT, _TOP, _X_AXIS = 44, 12, 10, 22
_LEGEND_ROW = 18


@dataclass(frozen=True)
class Series:
    label: str
    values: list[float]
    colour: str
    dashed: bool = False


def _num(value: float) -> str:
    return f"{value:.1f}"


def _join(parts) -> SafeString:
    """Concatenate already-escaped fragments (each one from format_html)."""
    return format_html_join("", "{}", ((part,) for part in parts))


def _ticks(maximum: float, *, count: int = 4, integers: bool = True) -> list[float]:
    """Round axis ticks from 0 to at least `maximum`."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integers:
        step = max(1, math.ceil(step))
    steps = math.ceil(maximum / step - 1e-9)
    return [step * i for i in range(steps + 1)]


def _tick_label(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


def _legend(series: list[Series], *, width: int, top: float) -> tuple[list[SafeString], int]:
    """Legend items in rows that fit `width`; returns the fragments and the rows' height."""
    parts, x, row = [], _LEFT, 0
    for item in series:
        item_width = 18 + len(item.label) * _CHAR_WIDTH + 16
        if x > _LEFT and x + item_width > width - _RIGHT:
            x, row = _LEFT, row + 1
        y = top + row * _LEGEND_ROW
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="12" height="12" fill="{}"/>'
                '<text x="{}" y="{}" fill="currentColor">{}</text>',
                _num(x),
                _num(y),
                item.colour,
                _num(x + 16),
                _num(y + 10),
                item.label,
            )
        )
        x += item_width
    return parts, (row + 1) * _LEGEND_ROW if series else 0


def _frame(chart_id: str, title: str, description: str, width: int, height: float, body) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="dailyq-chart" id="{}" viewBox="0 0 {} {}" width="100%" '
        'height="{}" preserveAspectRatio="xMinYMin meet" role="img" aria-labelledby="{}-title {}-desc" '
        'font-family="sans-serif" font-size="11">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        chart_id,
        width,
        _num(height),
        _num(height),
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description or title,
        body,
    )


def _axes(labels: list[str], ticks: list[float], *, width: int, plot_height: int, x_of) -> list[SafeString]:
    """Horizontal grid lines with their values, and every k-th x label."""
    parts = []
    bottom = _TOP + plot_height
    for tick in ticks:
        y = bottom - tick / ticks[-1] * plot_height
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-opacity="{}"/>'
                '<text x="{}" y="{}" text-anchor="end" fill="currentColor">{}</text>',
                _LEFT,
                _num(y),
                width - _RIGHT,
                _num(y),
                "0.5" if tick == 0 else "0.15",
                _LEFT - 6,
                _num(y + 4),
                _tick_label(tick),
            )
        )
    every = max(1, math.ceil(len(labels) / 10))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" fill="currentColor">{}</text>',
                    _num(x_of(i)),
                    _num(bottom + 15),
                    label,
                )
            )
    return parts


def _plot(chart_id: str, title: str, description: str, width: int, bottom: float, parts, series) -> SafeString:
    """A chart of plotted `parts` over an x axis at `bottom`, its legend underneath."""
    legend, legend_height = _legend(series, width=width, top=bottom + _X_AXIS + 4)
    height = bottom + _X_AXIS + 4 + legend_height
    return _frame(chart_id, title, description, width, height, _join(parts + legend))


def _empty(chart_id: str, title: str, description: str, width: int, message: str) -> SafeString:
    body = format_html('<text x="{}" y="40" text-anchor="middle" fill="currentColor">{}</text>', width // 2, message)
    return _frame(chart_id, title, description, width, 64, body)


def line_chart(
    *,
    chart_id: str,
    title: str,
    labels: list[str],
    series: list[Series],
    description: str = "",
    empty_message: str = "No data",
    width: int = 720,
    plot_height: int = 180,
) -> SafeString:
    """A line per series over the same x labels, with a legend underneath."""
    if not labels or not series:
        return _empty(chart_id, title, description, width, empty_message)
    ticks = _ticks(max((max(s.values, default=0) for s in series), default=0))
    plot_width = width - _LEFT - _RIGHT
    bottom = _TOP + plot_height

    def x_of(i: int) -> float:
        return _LEFT + plot_width / 2 if len(labels) == 1 else _LEFT + i * plot_width / (len(labels) - 1)

    def y_of(value: float) -> float:
        return bottom - value / ticks[-1] * plot_height

    parts = _axes(labels, ticks, width=width, plot_height=plot_height, x_of=x_of)
    for item in series:
        points = " ".join(f"{_num(x_of(i))},{_num(y_of(v))}" for i, v in enumerate(item.values))
        if len(item.values) == 1:
            parts.append(
                format_html(
                    '<circle cx="{}" cy="{}" r="3" fill="{}"><title>{}</title></circle>',
                    _num(x_of(0)),
                    _num(y_of(item.values[0])),
                    item.colour,
                    item.label,
                )
            )
            continue
        parts.append(
            format_html(
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{}><title>{}</title></polyline>',
                points,
                item.colour,
                format_html(' stroke-dasharray="{}"', "5 3") if item.dashed else "",
                item.label,
            )
        )
    return _plot(chart_id, title, description, width, bottom, parts, series)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: list[str],
    series: list[Series],
    stacked: bool = True,
    description: str = "",
    empty_message: str = "No data",
    width: int = 720,
    plot_height: int = 180,
) -> SafeString:
    """One group of bars per label: the series stacked, or side by side."""
    if not labels or not series:
        return _empty(chart_id, title, description, width, empty_message)
    columns = list(zip(*(s.values for s in series), strict=True))
    ticks = _ticks(max((sum(c) if stacked else max(c)) for c in columns))
    plot_width = width - _LEFT - _RIGHT
    slot = plot_width / len(labels)
    bottom = _TOP + plot_height

    def x_of(i: int) -> float:
        return _LEFT + slot * (i + 0.5)

    parts = _axes(labels, ticks, width=width, plot_height=plot_height, x_of=x_of)
    group_width = slot * 0.7
    bar_width = group_width if stacked else group_width / len(series)
    for i, (label, column) in enumerate(zip(labels, columns, strict=True)):
        base = 0.0
        for j, (item, value) in enumerate(zip(series, column, strict=True)):
            if value <= 0:
                continue
            height = value / ticks[-1] * plot_height
            x = x_of(i) - group_width / 2 + (0 if stacked else j * bar_width)
            y = bottom - base - height
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} · {}: {}</title></rect>',
                    _num(x),
                    _num(y),
                    _num(max(bar_width, 1)),
                    _num(height),
                    item.colour,
                    label,
                    item.label,
                    _tick_label(value),
                )
            )
            if stacked:
                base += height
    return _plot(chart_id, title, description, width, bottom, parts, series)


def gauge(
    *,
    chart_id: str,
    title: str,
    value: float,
    scale_max: float,
    value_text: str,
    colour: str,
    markers: Iterable[tuple[float, str]] = (),
    description: str = "",
    width: int = 360,
) -> SafeString:
    """A horizontal bar filled to `value` of `scale_max`, with labelled marks (thresholds)."""
    track_width = width - 2 * 8
    scale_max = scale_max if scale_max > 0 else 1

    def x_of(v: float) -> float:
        return 8 + min(max(v / scale_max, 0.0), 1.0) * track_width

    parts = [
        format_html(
            '<text x="8" y="13" fill="currentColor"><tspan font-weight="bold">{}:</tspan> {}</text>'
            '<rect x="8" y="20" width="{}" height="14" fill="currentColor" fill-opacity="0.12"/>',
            title,
            value_text,
            track_width,
        )
    ]
    if value > 0:
        parts.append(
            format_html(
                '<rect x="8" y="20" width="{}" height="14" fill="{}"/>', _num(max(x_of(value) - 8, 1.5)), colour
            )
        )
    for position, label in markers:
        x = x_of(position)
        anchor = "end" if x > width * 0.75 else "start" if x < width * 0.25 else "middle"
        parts.append(
            format_html(
                '<line x1="{}" y1="16" x2="{}" y2="38" stroke="currentColor" stroke-width="2"/>'
                '<text x="{}" y="50" text-anchor="{}" fill="currentColor">{}</text>',
                _num(x),
                _num(x),
                _num(x),
                anchor,
                label,
            )
        )
    return _frame(chart_id, title, description, width, 56, _join(parts))
