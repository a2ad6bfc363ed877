"""Inline SVG charts for the HTML report: pure functions from numbers to markup.

Every text that goes into a chart (arm names, labels) is escaped here; the functions return
``Markup`` so the template does not escape the SVG itself. Arms take the Okabe-Ito palette and
phases Paul Tol's muted one, both distinct under the common colour-vision deficiencies and
apart from each other; phases also carry hatch patterns (defined once in the page,
:data:`PATTERN_DEFS`) so they survive grey-scale printing, and arms differ by line dash as well
as colour. Every axis names its unit; tick labels carry the decimals their ticks need.

Over 500 lines because it is one cohesive thing: every chart of the report, sharing one set of
scales, axes, legends, palettes and hatch patterns, so that they look and read alike.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection, Mapping, Sequence

from markupsafe import Markup, escape

from pytest_agentspeed.timing import PHASES

# Okabe & Ito (2008), "Color Universal Design".
ARM_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
ARM_DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")
#: Phases take Paul Tol's "muted" scheme (also colour-blind safe), kept apart from the arms'
#: Okabe-Ito colours so a phase is never read as an arm; hatches keep them apart in grey.
PHASE_STYLE: dict[str, tuple[str, str]] = {
    # phase: (colour, pattern id or "" for a plain fill)
    "retry_wait": ("#882255", "hatch-h"),
    "ttft": ("#DDCC77", ""),
    "reasoning": ("#332288", "hatch-d"),
    "generation": ("#CC6677", ""),
    "tool": ("#999933", "hatch-x"),
    "overhead": ("#DDDDDD", "dots"),
}
#: The phases only an agent measured from outside has (docs/timing.md, External agents), from
#: the rest of the same scheme.
EXTERNAL_PHASE_STYLE: dict[str, tuple[str, str]] = {
    "startup": ("#88CCEE", "hatch-v"),
    "agent": ("#44AA99", "hatch-a"),
    "winddown": ("#AA4499", "hatch-v"),
}
_STYLE = PHASE_STYLE | EXTERNAL_PHASE_STYLE
PHASE_LABELS = {
    "retry_wait": "retry wait",
    "ttft": "TTFT",
    "reasoning": "reasoning",
    "generation": "generation",
    "tool": "tools",
    "overhead": "overhead",
    "startup": "start-up",
    "agent": "agent's own time",
    "winddown": "wind-down",
}

WIDTH = 760
LABEL_W = 250
RIGHT = 24
#: Longer row labels are cut (the whole label stays in the tooltip).
MAX_LABEL = 38


def _pattern(pid: str, colour: str, body: str) -> str:
    return (
        f'<pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse">'
        f'<rect width="6" height="6" fill="{colour}"/>{body}</pattern>'
    )


def pattern_defs(phases: Sequence[str]) -> Markup:
    """The hatch patterns of ``phases``, to put once in a page that shows them."""
    bodies = {
        "hatch-h": '<path d="M0 3h6" stroke="#fff" stroke-width="1.2"/>',
        "hatch-d": '<path d="M0 6L6 0" stroke="#fff" stroke-opacity=".6" stroke-width="1"/>',
        "hatch-x": '<path d="M0 0L6 6M6 0L0 6" stroke="#fff" stroke-width="1"/>',
        "dots": '<circle cx="3" cy="3" r="1.1" fill="#000" fill-opacity=".5"/>',
        "hatch-v": '<path d="M3 0v6" stroke="#fff" stroke-width="1.2"/>',
        "hatch-a": '<path d="M0 0L6 6" stroke="#fff" stroke-opacity=".7" stroke-width="1"/>',
    }
    styles = [(phase, *_STYLE[phase]) for phase in phases]
    parts = [_pattern(f"p-{phase}", colour, bodies[pid]) for phase, colour, pid in styles if pid]
    return Markup(
        '<svg width="0" height="0" aria-hidden="true"><defs>' + "".join(parts) + "</defs></svg>"
    )


#: The patterns of the built-in agent's phases.
PATTERN_DEFS = pattern_defs(PHASES)


def phase_fill(phase: str) -> str:
    colour, pid = _STYLE[phase]
    return f"url(#p-{phase})" if pid else colour


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi], about ``count`` steps of 1, 2 or 5 times a power
    of ten (2.5 too when that is a whole number, as 25 or 250)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    # 2.5 below ten would need a decimal more than its neighbours (1.025, 1.05, ...).
    steps = (1, 2, 2.5, 5, 10) if mag >= 10 else (1, 2, 5, 10)
    step = next(m * mag for m in steps if m * mag >= raw)
    ticks = [round(math.floor(lo / step) * step, 10)]
    while ticks[-1] < hi - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels for evenly spaced ticks, all with the same, fewest decimals that write each
    exactly: ``1.00, 1.05, 1.10``, never ``1, 1.1, 1.1``."""
    decimals = next(
        (
            d
            for d in range(7)
            if all(abs(round(t, d) - t) <= 1e-9 * max(1.0, abs(t)) for t in ticks)
        ),
        6,
    )
    return [f"{t:,.{decimals}f}" for t in ticks]


def fmt_number(v: float) -> str:
    """Compact tick and label numbers."""
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _svg(height: int, body: str, title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{body}</svg>'
    )


Scale = Callable[[float], float]


def _x_axis(
    ticks: Sequence[float],
    x: Scale,
    y: float,
    unit: str,
    label_fmt: Callable[[float], str] | None = None,
    left: float = LABEL_W,
) -> str:
    """The axis line, its ticks and their labels (:func:`tick_labels` unless ``label_fmt``)."""
    parts = [f'<line class="axis" x1="{left}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>']
    labels = tick_labels(ticks) if label_fmt is None else [label_fmt(t) for t in ticks]
    for t, label in zip(ticks, labels, strict=True):
        px = x(t)
        parts.append(
            f'<line class="tick" x1="{px:.1f}" x2="{px:.1f}" y1="{y}" y2="{y + 4}"/>'
            f'<text class="tick-label" x="{px:.1f}" y="{y + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    parts.append(
        f'<text class="axis-label" x="{(left + WIDTH - RIGHT) / 2}" y="{y + 32}" '
        f'text-anchor="middle">{escape(unit)}</text>'
    )
    return "".join(parts)


def y_axis(
    ticks: Sequence[float], y: Scale, unit: str, *, left: float, top: float, height: float
) -> str:
    """A vertical value axis: a grid line and a label per tick, and the unit written upwards
    beside them (for charts whose values run up the page)."""
    parts = [
        f'<line class="grid" x1="{left}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
        f'y2="{y(tick):.1f}"/><text class="tick-label" x="{left - 6}" y="{y(tick) + 4:.1f}" '
        f'text-anchor="end">{label}</text>'
        for tick, label in zip(ticks, tick_labels(ticks), strict=True)
    ]
    parts.append(
        f'<text class="axis-label" transform="translate({left - 56},{top + height / 2}) '
        f'rotate(-90)" text-anchor="middle">{escape(unit)}</text>'
    )
    return "".join(parts)


def _linear(lo: float, hi: float, left: float = LABEL_W) -> Scale:
    span = (hi - lo) or 1.0
    return lambda v: left + (v - lo) / span * (WIDTH - RIGHT - left)


def _log(lo: float, hi: float) -> Scale:
    llo, lhi = math.log10(lo), math.log10(hi)
    span = (lhi - llo) or 1.0
    return lambda v: LABEL_W + (math.log10(max(v, lo)) - llo) / span * (WIDTH - RIGHT - LABEL_W)


def _row_label(label: str, y: float) -> str:
    short = label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "\u2026"
    return (
        f'<text class="row-label" x="{LABEL_W - 8}" y="{y}" text-anchor="end">'
        f"<title>{escape(label)}</title>{escape(short)}</text>"
    )


def _legend(items: Sequence[tuple[str, str]], y: float) -> tuple[str, int]:
    """Swatches with labels in a row: (fill, label); a label that would run off the chart
    starts another row. Returns the markup and the rows added below the first."""
    parts, x, rows = [], LABEL_W, 0
    for fill, label in items:
        if x > LABEL_W and x + 16 + 7 * len(label) > WIDTH - RIGHT:
            x, y, rows = LABEL_W, y + 18, rows + 1
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="12" height="12" fill="{fill}" stroke="#333" '
            f'stroke-width=".5"/><text class="legend" x="{x + 16}" y="{y + 1}">'
            f"{escape(label)}</text>"
        )
        x += 24 + 7 * len(label)
    return "".join(parts), rows


def phase_shares(
    rows: Sequence[tuple[str, Mapping[str, float | None]]], phases: Sequence[str]
) -> Markup:
    """One 100% bar per arm, split into its phases' shares of session time."""
    bar, gap, top = 26, 12, 10
    height = top + len(rows) * (bar + gap) + 60
    x = _linear(0, 1)
    parts = []
    for i, (label, shares) in enumerate(rows):
        y = top + i * (bar + gap)
        parts.append(_row_label(label, y + bar / 2 + 4))
        left = 0.0
        for phase in phases:
            share = shares.get(phase) or 0.0
            if share <= 0:
                continue
            x0, x1 = x(left), x(left + share)
            parts.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{x1 - x0:.1f}" height="{bar}" '
                f'fill="{phase_fill(phase)}" stroke="#fff" stroke-width=".5">'
                f"<title>{escape(label)}: {PHASE_LABELS[phase]} {share * 100:.1f}%</title></rect>"
            )
            if share >= 0.07:
                parts.append(
                    f'<text class="in-bar" x="{(x0 + x1) / 2:.1f}" y="{y + bar / 2 + 4}" '
                    f'text-anchor="middle">{share * 100:.0f}%</text>'
                )
            left += share
    axis_y = top + len(rows) * (bar + gap)
    parts.append(
        _x_axis(
            nice_ticks(0, 1, 5), x, axis_y, "share of session time (%)", lambda t: f"{t * 100:.0f}"
        )
    )
    legend, more = _legend([(phase_fill(p), PHASE_LABELS[p]) for p in phases], axis_y + 50)
    parts.append(legend)
    return _svg(
        height + 10 + 18 * more, "".join(parts), "Where the time goes: phase shares per arm"
    )


def bars(
    rows: Sequence[tuple[str, float | None]],
    *,
    unit: str,
    title: str,
    start: float = 0.0,
    colours: Sequence[str] | None = None,
    value_fmt: Callable[[float], str] = fmt_number,
) -> Markup:
    """Horizontal bars with their values written at the end."""
    bar, gap, top = 18, 8, 10
    values = [v for _, v in rows if v is not None]
    ticks = nice_ticks(start, max([*values, start + 1e-9]) * 1.08)
    x = _linear(ticks[0], ticks[-1])
    parts = []
    for i, (label, value) in enumerate(rows):
        y = top + i * (bar + gap)
        colour = (colours or ARM_COLOURS)[i % len(colours or ARM_COLOURS)]
        parts.append(_row_label(label, y + bar / 2 + 4))
        if value is None:
            parts.append(f'<text class="value" x="{LABEL_W + 4}" y="{y + bar / 2 + 4}">-</text>')
            continue
        x1 = x(value)
        parts.append(
            f'<rect x="{LABEL_W}" y="{y}" width="{max(x1 - LABEL_W, 1):.1f}" height="{bar}" '
            f'fill="{colour}"><title>{escape(label)}: {escape(value_fmt(value))}</title></rect>'
            f'<text class="value" x="{x1 + 4:.1f}" y="{y + bar / 2 + 4}">'
            f"{escape(value_fmt(value))}</text>"
        )
    axis_y = top + len(rows) * (bar + gap)
    parts.append(_x_axis(ticks, x, axis_y, unit))
    return _svg(axis_y + 42, "".join(parts), title)


#: A group of bars: its name, its swatch's fill, and per bar (label, value, text at its end).
Group = tuple[str, str, Sequence[tuple[str, float | None, str]]]


def grouped_bars(groups: Sequence[Group], *, unit: str, title: str) -> Markup:
    """Horizontal bars in groups (a phase each, say), the n-th bar of every group in the n-th
    arm colour; each group is headed by its swatch and name, each bar ends in its text."""
    bar, gap, head, sep, top = 14, 3, 18, 8, 6
    values = [v for _, _, rows in groups for _, v, _ in rows if v is not None]
    # Room on the right for the text after the longest bar.
    ticks = nice_ticks(0, max([*values, 1e-9]) * 1.3)
    x = _linear(ticks[0], ticks[-1])
    parts, y = [], float(top)
    for name, fill, rows in groups:
        parts.append(
            f'<rect x="{LABEL_W - 150}" y="{y + 3}" width="12" height="12" fill="{fill}" '
            f'stroke="#333" stroke-width=".5"/><text class="group-label" x="{LABEL_W - 132}" '
            f'y="{y + 14}">{escape(name)}</text>'
        )
        y += head
        for i, (label, value, text) in enumerate(rows):
            colour = ARM_COLOURS[i % len(ARM_COLOURS)]
            parts.append(_row_label(label, y + bar / 2 + 4))
            if value is None:
                parts.append(
                    f'<text class="value" x="{LABEL_W + 4}" y="{y + bar / 2 + 4}">-</text>'
                )
            else:
                x1 = x(value)
                parts.append(
                    f'<rect x="{LABEL_W}" y="{y}" width="{max(x1 - LABEL_W, 1):.1f}" '
                    f'height="{bar}" fill="{colour}"><title>{escape(name)}, {escape(label)}: '
                    f"{escape(text)}</title></rect>"
                    f'<text class="value" x="{max(x1, LABEL_W + 1) + 4:.1f}" y="{y + bar / 2 + 4}">'
                    f"{escape(text)}</text>"
                )
            y += bar + gap
        y += sep
    parts.append(_x_axis(ticks, x, y, unit))
    return _svg(int(y) + 42, "".join(parts), title)


def ecdf(series: Sequence[tuple[str, Sequence[float]]], *, unit: str, title: str) -> Markup:
    """Empirical CDFs, one step line per arm (colour and dash)."""
    values = [v for _, vs in series for v in vs]
    top, plot_h = 10, 200
    if not values:
        return _svg(60, '<text x="20" y="30">no data</text>', title)
    lo, hi = min(values), max(values)
    ticks = nice_ticks(lo, hi)
    x = _linear(ticks[0], ticks[-1])

    def y(fraction: float) -> float:
        return top + plot_h * (1 - fraction)

    parts = []
    for frac in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line class="grid" x1="{LABEL_W}" x2="{WIDTH - RIGHT}" y1="{y(frac):.1f}" '
            f'y2="{y(frac):.1f}"/><text class="tick-label" x="{LABEL_W - 6}" y="{y(frac) + 4:.1f}" '
            f'text-anchor="end">{frac * 100:.0f}%</text>'
        )
    parts.append(
        f'<text class="axis-label" transform="translate({LABEL_W - 42},{top + plot_h / 2}) '
        f'rotate(-90)" text-anchor="middle">sessions at or below (%)</text>'
    )
    legend = []
    for i, (label, vs) in enumerate(series):
        if not vs:
            continue
        ordered = sorted(vs)
        colour, dash = ARM_COLOURS[i % len(ARM_COLOURS)], ARM_DASHES[i % len(ARM_DASHES)]
        d = [f"M{x(ordered[0]):.1f},{y(0):.1f}"]
        for k, v in enumerate(ordered):
            px = x(v)
            d.append(f"H{px:.1f}V{y((k + 1) / len(ordered)):.1f}")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<path d="{"".join(d)}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}>'
            f"<title>{escape(label)}</title></path>"
        )
        legend.append((colour, dash, f"{label} (n={len(vs)})"))
    parts.append(_x_axis(ticks, x, top + plot_h, unit))
    ly = top + plot_h + 56
    lx = LABEL_W
    for colour, dash, text in legend:
        if lx > LABEL_W and lx + 32 + 7 * len(text) > WIDTH:
            # Long arm names (a stored baseline's) take a line each rather than run off.
            lx, ly = LABEL_W, ly + 18
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{lx}" x2="{lx + 26}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
            f'stroke-width="2"{dash_attr}/><text class="legend" x="{lx + 32}" y="{ly}">'
            f"{escape(text)}</text>"
        )
        lx += 50 + 7 * len(text)
    return _svg(ly + 12, "".join(parts), title)


def box_plot(
    groups: Sequence[tuple[str, Sequence[float], int]], *, unit: str, title: str
) -> Markup:
    """Horizontal boxes: whiskers P10-P90, box P25-P75, a bar at the median.

    :param groups: (label, values, arm index for the colour).
    """
    from pytest_agentspeed.analysis.metrics import percentile

    values = [v for _, vs, _ in groups for v in vs if v > 0]
    top, row = 10, 30
    if not values:
        return _svg(60, '<text x="20" y="30">no data</text>', title)
    lo, hi = min(values), max(values)
    log_scale = lo > 0 and hi / lo > 30
    if log_scale:
        ticks = [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
        x = _log(ticks[0], ticks[-1])
        unit = f"{unit}, log scale"
    else:
        ticks = nice_ticks(min(0.0, lo), hi)
        x = _linear(ticks[0], ticks[-1])
    parts = []
    for i, (label, vs, arm) in enumerate(groups):
        y = top + i * row
        mid = y + row / 2
        colour = ARM_COLOURS[arm % len(ARM_COLOURS)]
        parts.append(_row_label(f"{label} (n={len(vs)})", mid + 4))
        if not vs:
            continue
        q = {p: percentile(list(vs), p) or 0.0 for p in (10, 25, 50, 75, 90)}
        x10, x25, x50, x75, x90 = (x(q[p]) for p in (10, 25, 50, 75, 90))
        parts.append(
            f"<g><title>{escape(label)}: P10 {fmt_number(q[10])}, P25 {fmt_number(q[25])}, "
            f"median {fmt_number(q[50])}, P75 {fmt_number(q[75])}, P90 {fmt_number(q[90])} "
            f"{escape(unit)}</title>"
            f'<line x1="{x10:.1f}" x2="{x90:.1f}" y1="{mid}" y2="{mid}" stroke="{colour}" '
            f'stroke-width="1.5"/>'
            f'<rect x="{x25:.1f}" y="{mid - 8}" width="{max(x75 - x25, 1):.1f}" height="16" '
            f'fill="{colour}" fill-opacity=".35" stroke="{colour}"/>'
            f'<line x1="{x50:.1f}" x2="{x50:.1f}" y1="{mid - 10}" y2="{mid + 10}" stroke="#000" '
            f'stroke-width="2.5"/></g>'
        )
    axis_y = top + len(groups) * row
    parts.append(_x_axis(ticks, x, axis_y, unit, fmt_number if log_scale else None))
    return _svg(axis_y + 42, "".join(parts), title)


#: A side request in a waterfall: (seconds from session start, wall seconds, what it was).
SideBar = tuple[float, float, str]


def waterfall(
    turns: Sequence[Mapping[str, float]],
    phases: Sequence[str],
    *,
    starts: Sequence[float] | None = None,
    side: Sequence[SideBar] = (),
    wall: float | None = None,
    not_streamed: Collection[int] = (),
) -> Markup:
    """A session's turns one under the other, each split into its phases along the time axis.

    Phases are laid end to end in the order given. Every turn is numbered up to
    :data:`LABEL_EVERY_TURN` turns, every k-th beyond (the axis title says which). One
    ``<path>`` per phase, integer coordinates and no slivers under half a pixel keep a 20-turn
    waterfall under 2 KB, so a report of a thousand sessions stays small.

    An agent measured from outside gives each turn's ``starts`` (seconds from the session's
    start; its turns can overlap, and its session has time outside them), its ``side``
    requests, drawn as outlined bars under the turns and labelled with what they were, the
    session's ``wall`` time the axis spans, and the indexes of turns whose response was
    ``not_streamed`` (numbered with a ``*``: their TTFT is the whole response).
    """
    row, gap, top, left = 10, 3, 16, 56
    if starts is None:
        total = sum(sum(t.values()) for t in turns) or 1.0
    else:
        ends = [a + sum(t.values()) for a, t in zip(starts, turns, strict=True)]
        total = max([*ends, *(a + w for a, w, _ in side), wall or 0.0]) or 1.0
    ticks = nice_ticks(0, total, 4)
    x = _linear(0, ticks[-1], left)
    paths: dict[str, list[str]] = {p: [] for p in phases}
    start = 0.0
    every = turn_label_step(len(turns))
    labels = []
    for i, turn in enumerate(turns):
        y = top + i * (row + gap)
        if (i + 1) % every == 0 or i == 0 or i == len(turns) - 1 or i in not_streamed:
            mark = "*" if i in not_streamed else ""
            labels.append(f'<text x="{left - 6}" y="{y + row - 1}">{i + 1}{mark}</text>')
        pos = start if starts is None else starts[i]
        for phase in phases:
            seconds = turn.get(phase, 0.0)
            x0, x1 = x(pos), x(pos + seconds)
            if x1 - x0 >= 0.5:
                paths[phase].append(
                    f"M{x0:.0f} {y}h{max(x1 - x0, 1):.0f}v{row}h-{max(x1 - x0, 1):.0f}z"
                )
            pos += seconds
        start = pos
    axis_y = top + len(turns) * (row + gap)
    body = (
        f'<text class="axis-label" x="{left - 6}" y="{top - 5}" text-anchor="end">turn</text>'
        f'<g class="tick-label" text-anchor="end">{"".join(labels)}</g>'
    )
    body += "".join(
        f'<path d="{"".join(d)}" fill="{phase_fill(p)}"><title>{PHASE_LABELS[p]}</title></path>'
        for p, d in paths.items()
        if d
    )
    if side:
        body += _side_bars(side, x, axis_y, row, gap, left)
        axis_y += len(side) * (row + gap)
    unit = "seconds from session start (s)"
    if every > 1:
        unit += f"; turns numbered every {every}"
    if not_streamed:
        unit += "; * not streamed: TTFT is the whole response"
    body += _x_axis(ticks, x, axis_y, unit, left=left)
    return _svg(axis_y + 40, body, "Turn waterfall")


def _side_bars(side: Sequence[SideBar], x: Scale, top: float, row: int, gap: int, left: int) -> str:
    """Side requests under the turns: outlined, dashed bars, each followed by what it was."""
    parts = [
        f'<g class="side-requests"><text class="tick-label" x="{left - 6}" y="{top + row - 1}" '
        'text-anchor="end">side</text>'
    ]
    for k, (start, seconds, what) in enumerate(side):
        y = top + k * (row + gap)
        x0, x1 = x(start), x(start + seconds)
        parts.append(
            f'<rect class="side-request" x="{x0:.0f}" y="{y}" width="{max(x1 - x0, 1):.0f}" '
            f'height="{row}" fill="#fff" stroke="#333" stroke-dasharray="2 2">'
            f"<title>side request: {escape(what)}</title></rect>"
            f'<text class="tick-label" x="{max(x1, x0 + 1) + 4:.0f}" y="{y + row - 1}">'
            f"{escape(what)}</text>"
        )
    return "".join(parts) + "</g>"


#: Waterfalls with at most this many turns number every turn.
LABEL_EVERY_TURN = 40


def turn_label_step(turns: int) -> int:
    """Number every turn, or every 2nd, 5th, 10th, 20th... so 40 numbers at most."""
    steps = (m * 10**e for e in itertools.count() for m in (1, 2, 5))  # 1, 2, 5, 10, ...
    return int(next(k for k in steps if turns <= LABEL_EVERY_TURN * k))
