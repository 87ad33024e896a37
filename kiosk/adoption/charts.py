"""Small server-rendered SVG charts for the dashboards: horizontal bars, a line over months and
a target progress bar. No JavaScript and no library: a few hundred bytes of SVG that a low-end
phone draws at once, with a title and a description for screen readers and the numbers written
on the chart. Every page shows the same numbers in a table too; a chart is never the only place
a figure appears.

All text is escaped with markupsafe; the colours come from classes in adoption.css, with
presentation attributes as a fallback (the Content-Security-Policy forbids inline styles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

CHART_WIDTH_PX = 320
BAR_ROW_HEIGHT_PX = 38
BAR_LABEL_HEIGHT_PX = 17
BAR_HEIGHT_PX = 15
# Bars stop short of the right edge so that the number after the longest bar fits.
BAR_AREA_WIDTH_PX = 220
LINE_CHART_HEIGHT_PX = 170
PROGRESS_HEIGHT_PX = 38

BAR_COLOUR = "#0b3d91"
TRACK_COLOUR = "#e3e7ee"
TARGET_COLOUR = "#b35900"
TEXT_COLOUR = "#111111"
AXIS_COLOUR = "#767676"


# --- Numbers the Vietnamese way: dots group thousands, a comma before decimals ------------------


def format_count(value: int) -> str:
    """12345 → "12.345"."""
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value):,}".replace(",", ".")


def format_decimal(value: float, digits: int = 1) -> str:
    """1234.5 → "1.234,5"."""
    rounded = round(value, digits)
    sign = "-" if rounded < 0 else ""
    whole, _, fraction = f"{abs(rounded):,.{digits}f}".partition(".")
    whole = whole.replace(",", ".")
    return f"{sign}{whole},{fraction}" if fraction else f"{sign}{whole}"


def format_percent(rate: float | None, digits: int = 1) -> str:
    """0.925 → "92,5%"; None → "—" (no rate: the denominator is missing). A rate above zero
    that would round to zero reads "<0,1%": 3 accounts in a commune of 10.000 adults are a
    start, not nothing."""
    if rate is None:
        return "—"
    smallest = 10.0**-digits
    if 0 < rate * 100 < smallest / 2:
        return f"<{format_decimal(smallest, digits)}%"
    return f"{format_decimal(rate * 100, digits)}%"


# --- Chart inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` sets its length, ``text`` is the number written after it."""

    label: str
    value: float
    text: str


@dataclass(frozen=True)
class Point:
    """One point of a line: ``value`` None leaves a gap (no figure for that month)."""

    label: str
    value: float | None
    text: str


def _open_svg(chart_id: str, title: str, description: str, height: int) -> list[Markup]:
    ident = escape(chart_id)
    return [
        Markup(
            '<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
            'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
            'aria-labelledby="{ident}-title {ident}-desc">'
        ).format(width=CHART_WIDTH_PX, height=height, ident=ident),
        Markup('<title id="{ident}-title">{title}</title>').format(ident=ident, title=title),
        Markup('<desc id="{ident}-desc">{description}</desc>').format(
            ident=ident, description=description
        ),
    ]


def _text(x: float, y: float, content: str, *, css: str, anchor: str = "start") -> Markup:
    return Markup(
        '<text class="{css}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}" '
        'font-size="13">{content}</text>'
    ).format(css=css, x=x, y=y, anchor=anchor, colour=TEXT_COLOUR, content=content)


def bar_chart(*, chart_id: str, title: str, description: str, bars: Sequence[Bar]) -> Markup:
    """Horizontal bars, one per row, each with its label above and its number after it. Bars
    are scaled to the largest value; a zero value draws no bar but keeps its number."""
    height = max(1, len(bars)) * BAR_ROW_HEIGHT_PX + 4
    parts = _open_svg(chart_id, title, description, height)
    largest = max((bar.value for bar in bars), default=0.0)
    for index, bar in enumerate(bars):
        top = index * BAR_ROW_HEIGHT_PX
        length = BAR_AREA_WIDTH_PX * bar.value / largest if largest > 0 else 0.0
        length = max(0.0, length)
        parts.append(_text(0, top + 13, bar.label, css="chart-label"))
        parts.append(
            Markup(
                '<rect class="chart-track" x="0" y="{y}" width="{width}" height="{height}" '
                'fill="{colour}"/>'
            ).format(
                y=top + BAR_LABEL_HEIGHT_PX,
                width=BAR_AREA_WIDTH_PX,
                height=BAR_HEIGHT_PX,
                colour=TRACK_COLOUR,
            )
        )
        if length > 0:
            parts.append(
                Markup(
                    '<rect class="chart-bar" x="0" y="{y}" width="{width:.1f}" height="{height}" '
                    'fill="{colour}"><title>{label}: {text}</title></rect>'
                ).format(
                    y=top + BAR_LABEL_HEIGHT_PX,
                    width=length,
                    height=BAR_HEIGHT_PX,
                    colour=BAR_COLOUR,
                    label=bar.label,
                    text=bar.text,
                )
            )
        parts.append(
            _text(
                BAR_AREA_WIDTH_PX + 6,
                top + BAR_LABEL_HEIGHT_PX + BAR_HEIGHT_PX - 2,
                bar.text,
                css="chart-value",
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def line_chart(*, chart_id: str, title: str, description: str, points: Sequence[Point]) -> Markup:
    """A line over months from 0 to the largest value. Each point is marked and carries its
    number as a tooltip; the latest number and the largest are written on the chart, and the
    first and last month under it (the table beside the chart has every number)."""
    left, right, top, bottom = 8.0, CHART_WIDTH_PX - 44.0, 18.0, LINE_CHART_HEIGHT_PX - 22.0
    parts = _open_svg(chart_id, title, description, LINE_CHART_HEIGHT_PX)
    parts.append(
        Markup(
            '<line class="chart-axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" '
            'stroke="{colour}" stroke-width="1"/>'
        ).format(left=left, right=right, bottom=bottom, colour=AXIS_COLOUR)
    )
    known = [point.value for point in points if point.value is not None]
    largest = max(known, default=0.0)
    step = (right - left) / (len(points) - 1) if len(points) > 1 else 0.0

    def position(index: int, value: float) -> tuple[float, float]:
        x = left + index * step if len(points) > 1 else (left + right) / 2
        y = bottom - (bottom - top) * (value / largest if largest > 0 else 0.0)
        return x, y

    segment: list[str] = []
    segments: list[list[str]] = [segment]
    for index, point in enumerate(points):
        if point.value is None:
            segment = []
            segments.append(segment)
            continue
        x, y = position(index, point.value)
        segment.append(f"{x:.1f},{y:.1f}")
    for coordinates in segments:
        if len(coordinates) > 1:
            parts.append(
                Markup(
                    '<polyline class="chart-line" points="{points}" fill="none" '
                    'stroke="{colour}" stroke-width="2"/>'
                ).format(points=" ".join(coordinates), colour=BAR_COLOUR)
            )
    highest_index = next(
        (index for index, point in enumerate(points) if point.value == largest and known), None
    )
    last_index = max((i for i, point in enumerate(points) if point.value is not None), default=None)
    for index, point in enumerate(points):
        if point.value is None:
            continue
        x, y = position(index, point.value)
        parts.append(
            Markup(
                '<circle class="chart-point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                "<title>{label}: {text}</title></circle>"
            ).format(x=x, y=y, colour=BAR_COLOUR, label=point.label, text=point.text)
        )
        if index in (highest_index, last_index):
            parts.append(_text(x, max(y - 6, 10.0), point.text, css="chart-value", anchor="middle"))
    if points:
        parts.append(_text(left, LINE_CHART_HEIGHT_PX - 6, points[0].label, css="chart-label"))
        if len(points) > 1:
            parts.append(
                _text(
                    right,
                    LINE_CHART_HEIGHT_PX - 6,
                    points[-1].label,
                    css="chart-label",
                    anchor="end",
                )
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def progress_bar(
    *, chart_id: str, title: str, description: str, rate: float, target_rate: float
) -> Markup:
    """A bar from 0 to 100%: filled up to ``rate``, with a mark at ``target_rate`` and both
    numbers written under it."""
    width = CHART_WIDTH_PX - 2
    filled = width * min(max(rate, 0.0), 1.0)
    target_x = 1 + width * min(max(target_rate, 0.0), 1.0)
    parts = _open_svg(chart_id, title, description, PROGRESS_HEIGHT_PX)
    parts.append(
        Markup(
            '<rect class="chart-track" x="1" y="2" width="{width}" height="16" fill="{colour}"/>'
        ).format(width=width, colour=TRACK_COLOUR)
    )
    if filled > 0:
        parts.append(
            Markup(
                '<rect class="chart-bar" x="1" y="2" width="{width:.1f}" height="16" '
                'fill="{colour}"/>'
            ).format(width=filled, colour=BAR_COLOUR)
        )
    parts.append(
        Markup(
            '<line class="chart-target" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="20" '
            'stroke="{colour}" stroke-width="3"/>'
        ).format(x=target_x, colour=TARGET_COLOUR)
    )
    parts.append(_text(1, 34, format_percent(rate), css="chart-value"))
    parts.append(
        _text(
            min(max(target_x, 40.0), CHART_WIDTH_PX - 1.0),
            34,
            format_percent(target_rate, 0),
            css="chart-target-label",
            anchor="end" if target_x > CHART_WIDTH_PX - 40 else "middle",
        )
    )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
