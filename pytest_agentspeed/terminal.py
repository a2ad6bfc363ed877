"""The terminal table: the article's table, one column per arm plus a difference column.

Formats the values :mod:`pytest_agentspeed.metrics` computed; computes nothing of its own
except the relative differences it prints. Returns lines, so the pytest terminal reporter and
the command line can print them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentspeed.timing import PHASES

Getter = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    get: Getter
    fmt: Callable[[float], str]
    #: How the difference column compares: relative change, percentage points, or not at all.
    diff: str = "rel"


def _dig(*keys: str) -> Getter:
    def get(summary: dict[str, Any]) -> Any:
        value: Any = summary
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _seconds(v: float) -> str:
    return f"{v:.2f} s" if v < 100 else f"{v / 60:.1f} min"


def _tok_s(v: float) -> str:
    return f"{v:,.0f} tok/s" if v >= 10 else f"{v:.1f} tok/s"


def _count(v: float) -> str:
    return f"{v:,.0f}"


def _pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def _runs(v: float) -> str:
    return f"{v:,.1f}"


ROWS: tuple[Row, ...] = (
    Row("sessions", _dig("sessions"), _count, "none"),
    Row("pass rate", _dig("pass_rate"), _pct, "pp"),
    Row("error rate", _dig("error_rate"), _pct, "pp"),
    Row("mean session time", _dig("session_wall_s", "mean"), _seconds),
    Row("output tokens / session", _dig("output_tokens_per_session"), _count),
    Row("turns / session", _dig("turns_per_session"), _runs),
    Row("session throughput P50", _dig("throughput_tok_s", "p50"), _tok_s),
    Row("session throughput P90", _dig("throughput_tok_s", "p90"), _tok_s),
    Row("session throughput P10", _dig("throughput_tok_s", "p10"), _tok_s),
    Row("TTFT P50", _dig("ttft_s", "p50"), _seconds),
    Row("TTFT P90", _dig("ttft_s", "p90"), _seconds),
    Row("decode P50", _dig("decode_tok_s", "p50"), _tok_s),
    Row("decode burst (P90, 500+ tok)", _dig("decode_tok_s", "burst"), _tok_s),
    *(Row(f"share: {p.replace('_', ' ')}", _dig("phase_share", p), _pct, "pp") for p in PHASES),
    Row("runs / window", _dig("runs_per_window"), _runs),
    Row("tasks / window", _dig("tasks_per_window"), _runs),
)


def summary_table(summary: dict[str, dict[str, Any]], arms: Sequence[str]) -> list[str]:
    """The table's lines: a column per arm, then one difference column per candidate."""
    baseline = arms[0] if arms else None
    candidates = list(arms[1:])
    header = [
        "",
        *arms,
        *(f"{c} vs {baseline}" if len(candidates) > 1 else "difference" for c in candidates),
    ]
    rows = [header]
    for row in ROWS:
        values = [row.get(summary.get(arm, {})) for arm in arms]
        cells = [row.label, *("-" if v is None else row.fmt(v) for v in values)]
        for c in candidates:
            cells.append(_difference(row, values[0], row.get(summary.get(c, {}))))
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for r in rows:
        first = r[0].ljust(widths[0])
        rest = "  ".join(cell.rjust(w) for cell, w in zip(r[1:], widths[1:], strict=True))
        lines.append(f"{first}  {rest}".rstrip())
    return lines


def _difference(row: Row, base: Any, cand: Any) -> str:
    if row.diff == "none" or base is None or cand is None:
        return ""
    if row.diff == "pp":
        return f"{(cand - base) * 100:+.0f} pp"
    if base == 0:
        return "-"
    return f"{(cand / base - 1) * 100:+.0f}%"
