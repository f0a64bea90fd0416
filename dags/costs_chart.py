"""Spend over time as an SVG bar chart, drawn on the server (no script, prints, works offline).

Each bar stacks execution and planning cost for one period. The chart names itself for
assistive technology (`<title>`, `<desc>`, one `<title>` per bar); the page shows the same
figures in a table beside it. Colours come from the stylesheet (classes `chart-*`), so both
themes apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ui.templatetags.ui import usd

WIDTH = 760
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 76, 12, 14, 44
GRID_LINES = 4
MAX_X_LABELS = 8
# Nice steps for the value axis: 1, 2, 2.5 and 5 times a power of ten.
NICE = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))


@dataclass(frozen=True)
class ChartPoint:
    label: str
    planning: Decimal
    execution: Decimal

    @property
    def total(self) -> Decimal:
        return self.planning + self.execution


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 'round' number (1, 2, 2.5 or 5 times 10^k) at or above `value`; 1 for 0."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in NICE:
        candidate = step.scaleb(exponent)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exponent)  # not reached: 10 times 10^k always fits


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def cost_chart_svg(*, points: Sequence[ChartPoint], title: str, description: str) -> SafeString:
    """The chart of `points` (oldest first) as inline SVG markup."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    top_value = nice_ceiling(max((point.total for point in points), default=Decimal(0)))
    base = TOP + plot_height

    def y(value: Decimal) -> float:
        return base - float(value / top_value) * plot_height

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'aria-labelledby="cost-chart-title cost-chart-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="cost-chart-title">{escape(title)}</title>',
        f'<desc id="cost-chart-desc">{escape(description)}</desc>',
        '<g class="chart-grid" aria-hidden="true">',
    ]
    for index in range(GRID_LINES + 1):
        value = top_value * index / GRID_LINES
        line_y = _number(y(value))
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{line_y}" y2="{line_y}"/>')
        parts.append(
            f'<text class="chart-label" x="{LEFT - 6}" y="{line_y}" dy="0.32em" '
            f'text-anchor="end">{escape(usd(value))}</text>'
        )
    parts.append("</g>")
    count = len(points)
    if count:
        band = plot_width / count
        bar = max(1.0, band * 0.7)
        every = -(-count // MAX_X_LABELS)
        for index, point in enumerate(points):
            x = LEFT + index * band + (band - bar) / 2
            execution_top = y(point.execution)
            total_top = y(point.total)
            parts.append(
                f'<g class="chart-bar"><title>{escape(point.label)}: execution '
                f"{escape(usd(point.execution))}, planning {escape(usd(point.planning))}, "
                f"total {escape(usd(point.total))}</title>"
            )
            if point.execution > 0:
                parts.append(
                    f'<rect class="chart-execution" x="{_number(x)}" y="{_number(execution_top)}" '
                    f'width="{_number(bar)}" height="{_number(base - execution_top)}"/>'
                )
            if point.planning > 0:
                parts.append(
                    f'<rect class="chart-planning" x="{_number(x)}" y="{_number(total_top)}" '
                    f'width="{_number(bar)}" height="{_number(execution_top - total_top)}"/>'
                )
            parts.append("</g>")
            if index % every == 0:
                center = _number(LEFT + index * band + band / 2)
                parts.append(
                    f'<text class="chart-label" x="{center}" y="{base + 18}" '
                    f'text-anchor="middle" aria-hidden="true">{escape(point.label)}</text>'
                )
    parts.append(
        f'<line class="chart-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" '
        'aria-hidden="true"/>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))
