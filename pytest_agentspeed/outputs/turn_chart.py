"""The report's per-turn view of replayed sessions: ratios against context length.

One section per comparison that holds :class:`~pytest_agentspeed.records.TurnPairs`: its
figures in rows, its context-bin table, and an inline SVG scatter of every matched turn (log x:
the baseline turn's context length; log y: the candidate/baseline ratio of TTFT and of decode
rate, a line at 1). Points below the line are turns the candidate served faster for TTFT;
for the decode rate, above it (a higher rate is faster). Cold prefills are hollow. Pure
functions from records to escaped markup, like :mod:`.charts`, whose frame and axis they share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

from pytest_agentspeed.analysis.turn_pairs import CONTEXT_BINS, ratio_words
from pytest_agentspeed.outputs.charts import (
    ARM_COLOURS,
    RIGHT,
    WIDTH,
    Scale,
    _svg,
    _x_axis,
    fmt_number,
)
from pytest_agentspeed.records import Comparison, TurnPairs, TurnPoint

LEFT = 70
TOP = 12
PLOT_H = 260
#: Ratios beyond 1/32 and 32 are drawn at the edge (their tooltip keeps the value).
RATIO_LIMIT = 32.0
#: Up to this many points each carry a tooltip; beyond, the report would grow by ~100 bytes a
#: turn for little use.
MAX_TITLED = 600
#: (series, what is plotted, colour, marker).
_SERIES = (
    ("ttft", "TTFT ratio (candidate / baseline; below 1: faster)", ARM_COLOURS[0], "circle"),
    (
        "decode",
        "decode-rate ratio (candidate / baseline; above 1: faster)",
        ARM_COLOURS[1],
        "square",
    ),
)


def turn_sections(comparisons: Sequence[Comparison]) -> list[dict[str, Any]]:
    """The report's section data: one per comparison with turn pairs (empty: no section)."""
    return [
        _section(c, c.turn_pairs) for c in comparisons if c.turn_pairs is not None and not c.refused
    ]


def _section(c: Comparison, pairs: TurnPairs) -> dict[str, Any]:
    level = f"{c.ci_level * 100:.0f}% CI"
    rows = [
        ("design", pairs.design),
        (
            f"TTFT ratio over session pairs (Hodges-Lehmann, {level})",
            ratio_words(pairs.ttft_ratio, pairs.ttft_ci),
        ),
        (
            f"decode-rate ratio over session pairs (Hodges-Lehmann, {level})",
            ratio_words(pairs.decode_ratio, pairs.decode_ci),
        ),
        ("session pairs matched turn by turn", str(len(pairs.sessions))),
    ]
    bins = [
        (
            b.label,
            "cold" if b.cold else "warm",
            str(b.turns),
            ratio_words(b.ttft_ratio, None),
            str(b.decode_turns),
            ratio_words(b.decode_ratio, None),
        )
        for b in pairs.bins
    ]
    return {
        "title": f"{c.candidate} vs {c.baseline} ({c.against})",
        "rows": rows,
        "bins": bins,
        "unmatched": list(pairs.unmatched),
        "chart": scatter(pairs, title=f"Per-turn ratios: {c.candidate} vs {c.baseline}"),
    }


def scatter(pairs: TurnPairs, *, title: str) -> Markup:
    """Every matched turn's TTFT and decode-rate ratio against its context length."""
    points = pairs.points
    contexts = [p.context_tokens for p in points if p.context_tokens > 0]
    ratios = [r for p in points for r in (p.ttft_ratio, p.decode_ratio) if r is not None and r > 0]
    if not contexts or not ratios:
        return _svg(60, '<text x="20" y="30">no matched turns</text>', title)
    x_ticks = _decades(min(contexts), max(contexts))
    x = _log_scale(x_ticks[0], x_ticks[-1], LEFT, WIDTH - RIGHT)
    low = max(min([*ratios, 1.0]), 1 / RATIO_LIMIT)
    high = min(max([*ratios, 1.0]), RATIO_LIMIT)
    y_ticks = [2.0**e for e in range(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1)]
    if len(y_ticks) < 3:
        y_ticks = [y_ticks[0] / 2, *y_ticks, y_ticks[-1] * 2]
    to_y = _log_scale(y_ticks[-1], y_ticks[0], TOP, TOP + PLOT_H)
    bottom = TOP + PLOT_H
    parts = [_y_axis(y_ticks, to_y), _bin_edges(x_ticks, x)]
    one = to_y(1.0)
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{one:.1f}" y2="{one:.1f}" '
        'stroke-dasharray="4 3"><title>ratio 1: no difference</title></line>'
    )
    titled = len(points) <= MAX_TITLED
    for key, _, colour, marker in _SERIES:
        marks = []
        for p in points:
            ratio = p.ttft_ratio if key == "ttft" else p.decode_ratio
            if ratio is None or ratio <= 0 or p.context_tokens <= 0:
                continue
            shown = min(max(ratio, y_ticks[0]), y_ticks[-1])
            marks.append(
                _marker(marker, x(p.context_tokens), to_y(shown), colour, p, ratio, titled)
            )
        parts.append(f'<g class="series-{key}" stroke="{colour}">{"".join(marks)}</g>')
    parts.append(
        _x_axis(
            x_ticks, x, bottom, "context length of the turn (input tokens, log scale)", tokens, LEFT
        )
    )
    legend_y = bottom + 56
    for i, (_, label, colour, marker) in enumerate(_SERIES):
        y = legend_y + 18 * i
        parts.append(
            _marker(marker, LEFT + 6, y - 4, colour, None, 0.0, False)
            + f'<text class="legend" x="{LEFT + 18}" y="{y}">{escape(label)}</text>'
        )
    y = legend_y + 18 * len(_SERIES)
    parts.append(
        f'<text class="legend" x="{LEFT}" y="{y}">filled: warm (prompt cache read); hollow: cold '
        "prefill · dashed verticals: context bins 8k, 32k, 128k</text>"
    )
    return _svg(int(y) + 12, "".join(parts), title)


def _marker(
    shape: str, cx: float, cy: float, colour: str, p: TurnPoint | None, ratio: float, titled: bool
) -> str:
    fill = "#fff" if p is not None and p.cold else colour
    tip = ""
    if titled and p is not None:
        tip = (
            f"<title>pair {p.session + 1} turn {p.turn + 1}: {p.context_tokens:,} context, "
            f"{p.output_tokens:,} output tokens{', cold' if p.cold else ''}; "
            f"ratio {ratio:.3g}</title>"
        )
    if shape == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.2" fill="{fill}">{tip}</circle>'
    return (
        f'<rect x="{cx - 3:.1f}" y="{cy - 3:.1f}" width="6" height="6" fill="{fill}">{tip}</rect>'
    )


def tokens(count: float) -> str:
    """A token count as context windows are quoted: ``800``, ``8k``, ``128k``, ``1M``."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:g}M"
    return f"{count / 1000:g}k" if count >= 1000 else f"{count:g}"


def _decades(low: float, high: float) -> list[float]:
    """Powers of ten covering [low, high], at least two."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return [10.0**e for e in range(first, max(last, first + 1) + 1)]


def _log_scale(lo: float, hi: float, start: float, end: float) -> Scale:
    """Value to pixel on a log axis from ``lo`` (at ``start``) to ``hi`` (at ``end``)."""
    llo, span = math.log10(lo), (math.log10(hi) - math.log10(lo)) or 1.0
    return lambda v: start + (math.log10(v) - llo) / span * (end - start)


def _y_axis(ticks: Sequence[float], to_y: Scale) -> str:
    parts = [f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + PLOT_H}"/>']
    for t in ticks:
        y = to_y(t)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick-label" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{fmt_number(t)}</text>"
        )
    parts.append(
        f'<text class="axis-label" transform="translate({LEFT - 48},{TOP + PLOT_H / 2}) '
        'rotate(-90)" text-anchor="middle">candidate / baseline (x, log scale)</text>'
    )
    return "".join(parts)


def _bin_edges(x_ticks: Sequence[float], x: Scale) -> str:
    """The context bins' edges inside the plotted range, as dashed verticals."""
    edges = [low for _, low, _ in CONTEXT_BINS if x_ticks[0] < low < x_ticks[-1]]
    return "".join(
        f'<line class="grid" x1="{x(e):.1f}" x2="{x(e):.1f}" y1="{TOP}" y2="{TOP + PLOT_H}" '
        f'stroke-dasharray="3 3"/>'
        for e in edges
    )
