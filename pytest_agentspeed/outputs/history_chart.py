"""The report's History section (``agentspeed report --history DIR``): per endpoint, the gate
metric's trend over saved runs as inline SVG (a point per run with its CI as a whisker, a line
through them, and a marker on every step the gate calls FAIL or IMPROVED) and the same numbers
as a table. It formats :class:`~pytest_agentspeed.analysis.history.History`; it computes
nothing of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup, escape

from pytest_agentspeed.analysis.history import ESTIMATE_LABELS, History, Point, Trend
from pytest_agentspeed.outputs import charts
from pytest_agentspeed.records import Comparison

#: The verdicts a step is marked with in the chart: (colour, marker path around 0,0, word).
#: The others (PASS, INCONCLUSIVE, NOT COMPARED) are in the table only: a mark on every step
#: would hide the ones that matter.
STEP_MARKS = {
    "FAIL": ("#b2182b", "M-7,-5L7,-5L0,7Z"),  # pointing down: slower
    "IMPROVED": ("#0072B2", "M-7,5L7,5L0,-7Z"),  # pointing up: faster
}
#: The chart's left margin: room for the value axis' ticks and label.
LEFT = 78
#: Run names under the axis are cut to this many characters (the whole name is in the title).
MAX_RUN_LABEL = 22


def history_section(history: History) -> dict[str, Any]:
    """What the template shows: a chart and a table per endpoint."""
    level = f"{history.ci_level * 100:.0f}% CI"
    label = ESTIMATE_LABELS[history.metric]
    return {
        "metric": label,
        "runs": len(history.runs),
        "header": [
            "run",
            "created",
            "sessions",
            label,
            level,
            f"vs previous run [{level}]",
            "gate",
        ],
        "trends": [
            {
                "endpoint": trend.endpoint,
                "chart": trend_chart(trend, label, colour=charts.ARM_COLOURS[i % 6]),
                "rows": _rows(trend),
                "fails": trend.fails,
            }
            for i, trend in enumerate(history.trends)
        ],
    }


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _rows(trend: Trend) -> list[dict[str, Any]]:
    rows = []
    for i, point in enumerate(trend.points):
        step = trend.steps[i - 1] if i else None
        ratio = "-"
        if step is not None and step.ratio is not None:
            ci = "-" if step.ci is None else f"{step.ci[0]:.2f}-{step.ci[1]:.2f}"
            ratio = f"{step.ratio:.2f} [{ci}]"
        rows.append(
            {
                "cells": [
                    point.run,
                    point.created_at,
                    str(point.sessions),
                    _number(point.value),
                    "-" if point.ci is None else f"{_number(point.ci[0])}-{_number(point.ci[1])}",
                    ratio,
                ],
                "value": point.value,
                "verdict": None if step is None else step.verdict,
                "line": None if step is None else step.line,
                "reasons": () if step is None else (*step.refused, *step.reasons),
            }
        )
    return rows


def trend_chart(trend: Trend, unit: str, *, colour: str) -> Markup:
    """The endpoint's points over the runs, oldest left: CI whiskers, a line through the
    estimates, and a marker over each run the gate found FAIL or IMPROVED against the one
    before."""
    title = f"History of {trend.endpoint}"
    shown = [v for p in trend.points for v in (p.value, *(p.ci or ())) if v is not None]
    if not shown:
        return charts._svg(60, '<text x="20" y="30">no data</text>', title)
    top, plot_h = 22, 200
    ticks = charts.nice_ticks(min(shown), max(shown))
    lo, hi = ticks[0], ticks[-1]
    span = (hi - lo) or 1.0
    slot = (charts.WIDTH - charts.RIGHT - LEFT) / len(trend.points)

    def x(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / span)

    parts = [charts.y_axis(ticks, y, unit, left=LEFT, top=top, height=plot_h)]
    line = [
        f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(trend.points) if p.value is not None
    ]
    if len(line) > 1:
        parts.append(
            f'<polyline class="history-line" points="{" ".join(line)}" fill="none" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
    for i, point in enumerate(trend.points):
        parts.append(_point(point, x(i), y, colour, unit))
        step = trend.steps[i - 1] if i else None
        if step is not None and step.verdict in STEP_MARKS:
            parts.append(_step_mark(step, x(i), top))
    axis_y = top + plot_h
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{charts.WIDTH - charts.RIGHT}" y1="{axis_y}" '
        f'y2="{axis_y}"/>'
    )
    parts.append(_run_labels([p.run for p in trend.points], x, axis_y))
    return charts._svg(int(axis_y) + 76, "".join(parts), title)


def _point(point: Point, px: float, y: charts.Scale, colour: str, unit: str) -> str:
    """A run's estimate as a dot, its CI as a whisker with caps."""
    if point.value is None:
        return ""
    parts = []
    ci = ""
    if point.ci is not None:
        low, high = point.ci
        ci = f", CI {charts.fmt_number(low)}-{charts.fmt_number(high)}"
        parts.append(
            f'<path class="history-ci" d="M{px - 5:.1f},{y(low):.1f}H{px + 5:.1f}'
            f'M{px:.1f},{y(low):.1f}V{y(high):.1f}M{px - 5:.1f},{y(high):.1f}H{px + 5:.1f}" '
            f'stroke="{colour}" stroke-width="1.5" fill="none"/>'
        )
    parts.append(
        f'<circle class="history-point" data-run="{escape(point.run)}" '
        f'data-value="{point.value!r}" cx="{px:.1f}" cy="{y(point.value):.1f}" r="4" '
        f'fill="{colour}"><title>{escape(point.run)}: {escape(unit)} '
        f"{_number(point.value)}{ci} (n={point.sessions})</title></circle>"
    )
    return "".join(parts)


def _step_mark(step: Comparison, px: float, top: float) -> str:
    """A marker and the verdict's word above the later run of a step."""
    colour, shape = STEP_MARKS[step.verdict]
    return (
        f'<g class="history-step" data-verdict="{step.verdict}" '
        f'transform="translate({px:.1f},{top - 12})"><title>{escape(step.line)}</title>'
        f'<path d="{shape}" fill="{colour}"/><text class="legend" x="10" y="4" '
        f'fill="{colour}">{step.verdict}</text></g>'
    )


def _run_labels(runs: Sequence[str], x: Callable[[int], float], axis_y: float) -> str:
    """Each run's name under its point, slanted so that long names do not collide."""
    parts = []
    for i, run in enumerate(runs):
        short = run if len(run) <= MAX_RUN_LABEL else run[: MAX_RUN_LABEL - 1] + "\u2026"
        parts.append(
            f'<text class="tick-label" text-anchor="end" '
            f'transform="translate({x(i):.1f},{axis_y + 12}) rotate(-30)">'
            f"<title>{escape(run)}</title>{escape(short)}</text>"
        )
    return "".join(parts)
