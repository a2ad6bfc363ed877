"""A capacity sweep's levels and knee as the terminal, ``agentspeed show`` and the HTML report
show them: one formatting of the run file's numbers (:class:`~pytest_agentspeed.records.
Capacity`), so every output says the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup, escape

from pytest_agentspeed.outputs import charts
from pytest_agentspeed.records import Capacity, CapacityLevel

#: The table's columns.
HEADER = (
    "concurrency",
    "sessions",
    "throughput P10",
    "P50",
    "P90 (tok/s)",
    "TTFT P50",
    "P90 (s)",
    "sessions/h",
    "tasks/h",
    "errors",
)
#: How the percentiles are computed, for every output that shows them.
PERCENTILES = (
    "percentiles interpolate linearly between order statistics (numpy's default); throughput "
    "over the level's sessions, TTFT over its answered turns"
)


def _number(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def level_cells(level: CapacityLevel) -> list[str]:
    """A level's row as text, in :data:`HEADER`'s order."""
    return [
        str(level.concurrency),
        str(level.sessions),
        _number(level.throughput_p10, 1),
        _number(level.throughput_p50, 1),
        _number(level.throughput_p90, 1),
        _number(level.ttft_p50, 3),
        _number(level.ttft_p90, 3),
        _number(level.sessions_per_hour, 1),
        _number(level.tasks_per_hour, 1),
        str(level.errors),
    ]


def knee_line(capacity: Capacity) -> str:
    """What the knee is, in words, with the throughput it is measured against."""
    if not capacity.levels:
        return "knee: none (no levels)"
    lowest = capacity.levels[0]
    share = f"{capacity.drop * 100:g}%"
    if lowest.throughput_p50 is None:
        return (
            f"knee: none; concurrency {lowest.concurrency} has no session throughput to compare "
            "with (no session was answered)"
        )
    floor = (1 - capacity.drop) * lowest.throughput_p50
    if capacity.knee is None:
        return (
            f"knee: none; session throughput P50 stays within {share} of concurrency "
            f"{lowest.concurrency}'s ({lowest.throughput_p50:.1f} tok/s) up to concurrency "
            f"{capacity.levels[-1].concurrency}"
        )
    return (
        f"knee: concurrency {capacity.knee}; beyond it session throughput P50 drops by more "
        f"than {share} (below {floor:.1f} tok/s, {1 - capacity.drop:g} x concurrency "
        f"{lowest.concurrency}'s {lowest.throughput_p50:.1f})"
    )


def capacity_lines(capacity: Capacity) -> list[str]:
    """The levels as an aligned table, then the knee and how the percentiles are computed."""
    rows = [list(HEADER), *(level_cells(level) for level in capacity.levels)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return [*lines, knee_line(capacity), f"({PERCENTILES})"]


def capacity_section(capacity: Capacity) -> dict[str, Any]:
    """What the HTML report's capacity section shows: the table, the knee and the chart."""
    return {
        "header": HEADER,
        "rows": [level_cells(level) for level in capacity.levels],
        "knee": knee_line(capacity),
        "percentiles": PERCENTILES,
        "chart": capacity_chart(capacity),
    }


def capacity_chart(capacity: Capacity) -> Markup:
    """Session throughput P50 (with P10-P90 whiskers) and TTFT P50 against concurrency, one
    panel each on a shared log-scale concurrency axis, the knee marked."""
    levels = capacity.levels
    title = "Session throughput and TTFT against concurrency"
    if not levels:
        return charts._svg(60, '<text x="20" y="30">no data</text>', title)
    concurrency = [float(level.concurrency) for level in levels]
    x = charts._log(concurrency[0], concurrency[-1])
    panel_h, gap, top = 150, 34, 12
    parts = [
        _panel(
            levels,
            x,
            top,
            panel_h,
            value=lambda level: level.throughput_p50,
            spread=lambda level: (level.throughput_p10, level.throughput_p90),
            unit="throughput P50 (tok/s)",
            colour=charts.ARM_COLOURS[0],
            dash=charts.ARM_DASHES[0],
            knee=capacity.knee,
        ),
        _panel(
            levels,
            x,
            top + panel_h + gap,
            panel_h,
            value=lambda level: level.ttft_p50,
            spread=None,
            unit="TTFT P50 (s)",
            colour=charts.ARM_COLOURS[1],
            dash=charts.ARM_DASHES[1],
            knee=capacity.knee,
        ),
    ]
    axis_y = top + 2 * panel_h + gap
    parts.append(
        charts._x_axis(concurrency, x, axis_y, "sessions in flight (log scale)", lambda t: f"{t:g}")
    )
    return charts._svg(axis_y + 42, "".join(parts), title)


def _panel(
    levels: Sequence[CapacityLevel],
    x: charts.Scale,
    top: float,
    height: float,
    *,
    value: Callable[[CapacityLevel], float | None],
    spread: Callable[[CapacityLevel], tuple[float | None, float | None]] | None,
    unit: str,
    colour: str,
    dash: str,
    knee: int | None,
) -> str:
    """One quantity's line against concurrency, with its own y axis."""
    shown = [v for level in levels if (v := value(level)) is not None]
    if spread is not None:
        shown += [v for level in levels for v in spread(level) if v is not None]
    ticks = charts.nice_ticks(0, max([*shown, 1e-9]) * 1.08)

    def y(v: float) -> float:
        return top + height * (1 - v / ticks[-1])

    parts = [charts.y_axis(ticks, y, unit, left=charts.LABEL_W, top=top, height=height)]
    if knee is not None:
        kx = x(knee)
        parts.append(
            f'<line x1="{kx:.1f}" x2="{kx:.1f}" y1="{top}" y2="{top + height}" stroke="#555" '
            f'stroke-dasharray="4 3"><title>knee: concurrency {knee}</title></line>'
            f'<text class="legend" x="{kx + 4:.1f}" y="{top + 12}">knee</text>'
        )
    points = []
    for level in levels:
        v = value(level)
        if v is None:
            continue
        px, py = x(level.concurrency), y(v)
        points.append(f"{px:.1f},{py:.1f}")
        low, high = spread(level) if spread is not None else (None, None)
        if low is not None and high is not None:
            parts.append(
                f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" '
                f'stroke="{colour}" stroke-width="1.5"><title>P10-P90 at concurrency '
                f"{level.concurrency}: {low:.1f}-{high:.1f}</title></line>"
            )
        parts.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}"><title>'
            f"concurrency {level.concurrency}: {escape(unit)} {charts.fmt_number(v)}"
            "</title></circle>"
        )
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    if len(points) > 1:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
            f'stroke-width="2"{dash_attr}/>'
        )
    return "".join(parts)
