"""The terminal table: the article's table, one column per arm plus a difference column.

Formats the values :mod:`pytest_agentspeed.metrics` computed; computes nothing of its own
except the relative differences it prints. Returns lines, so the pytest terminal reporter and
the command line can print them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


def _speedup(v: float) -> str:
    return f"{v:.2f}x"


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
    Row("TTFT P50, cached context", _dig("ttft_s", "cached", "p50"), _seconds),
    Row("TTFT P50, cold context", _dig("ttft_s", "cold", "p50"), _seconds),
    Row("cache hit ratio", _dig("cache_hit_ratio"), _pct, "pp"),
    Row("decode P50", _dig("decode_tok_s", "p50"), _tok_s),
    Row("decode burst (P90, 500+ tok)", _dig("decode_tok_s", "burst"), _tok_s),
    *(Row(f"share: {p.replace('_', ' ')}", _dig("phase_share", p), _pct, "pp") for p in PHASES),
    Row("runs / window", _dig("runs_per_window"), _runs),
    Row("tasks / window", _dig("tasks_per_window"), _runs),
    Row("session speed-up, 2x generation", _dig("what_if", "2x"), _speedup, "none"),
    Row("session speed-up, 10x generation", _dig("what_if", "10x"), _speedup, "none"),
)


def table_cells(summary: Mapping[str, Mapping[str, Any]], arms: Sequence[str]) -> list[list[str]]:
    """Header and rows as text cells: a column per arm, then a difference column per candidate."""
    baseline = arms[0] if arms else None
    candidates = list(arms[1:])
    header = [
        "",
        *arms,
        *(f"{c} vs {baseline}" if len(candidates) > 1 else "difference" for c in candidates),
    ]
    rows = [header]
    for row in ROWS:
        values = [row.get(dict(summary.get(arm, {}))) for arm in arms]
        cells = [row.label, *("-" if v is None else row.fmt(v) for v in values)]
        cells += [_difference(row, values[0], value) for value in values[1:]]
        rows.append(cells)
    return rows


def summary_table(summary: Mapping[str, Mapping[str, Any]], arms: Sequence[str]) -> list[str]:
    """The table as aligned text lines."""
    rows = table_cells(summary, arms)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        first = r[0].ljust(widths[0])
        rest = "  ".join(cell.rjust(w) for cell, w in zip(r[1:], widths[1:], strict=True))
        lines.append(f"{first}  {rest}".rstrip())
    return lines


def verdict_lines(comparisons: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each comparison's report line, then its details, reasons and warnings (indented)."""
    lines: list[str] = []
    for c in comparisons:
        details = [f"{c['candidate']} vs {c['baseline']} ({c['against']})"]
        if c.get("refused"):
            # Nothing was computed: the line says why, the arms say what was not compared.
            lines += [c["line"], "  " + details[0]]
            lines += [f"  warning: {warning}" for warning in c["warnings"]]
            continue
        if c.get("brunner_munzel_p") is not None:
            details.append(f"Brunner-Munzel {p_equals(c['brunner_munzel_p'])}")
        elif c.get("estimator") == "hodges_lehmann_log" and c.get("ratio") is not None:
            # Undefined here (e.g. arms that do not overlap): its variance estimate is zero.
            details.append("Brunner-Munzel p=n/a")
        welch = c.get("welch_log")
        if welch:
            details.append(
                f"Welch-log ratio {welch['ratio']:.2f} [{welch['low']:.2f}-{welch['high']:.2f}]"
            )
        rates = c["pass_rate"]["rates"]
        if None not in rates:
            details.append(f"pass rate {rates[0] * 100:.0f}% vs {rates[1] * 100:.0f}%")
        errors = c.get("error_rate", {}).get("errors")
        if errors and any(errors):
            details.append(f"endpoint errors {errors[0]} vs {errors[1]} sessions")
        lines.append(c["line"])
        lines.append("  " + " · ".join(details))
        lines += [f"  {reason}" for reason in c["reasons"]]
        lines += [f"  warning: {warning}" for warning in c["warnings"]]
    return lines


def markdown_report(
    summary: Mapping[str, Mapping[str, Any]],
    arms: Sequence[str],
    comparisons: Sequence[Mapping[str, Any]],
    *,
    note: str | None = None,
) -> str:
    """The table and the verdicts as a markdown section (for job summaries and PR comments)."""
    rows = table_cells(summary, arms)
    out = ["## agentspeed", ""]
    out.append("| " + " | ".join(rows[0]) + " |")
    out.append("|---|" + "---:|" * (len(rows[0]) - 1))
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows[1:]]
    if note:
        out += ["", f"_{note}_"]
    for c in comparisons:
        out += ["", f"**{c['verdict']}** `{c['line']}`", ""]
        out += [f"- {reason}" for reason in c["reasons"]]
        out += [f"- warning: {warning}" for warning in c["warnings"]]
    return "\n".join(out) + "\n"


#: Below this a p-value is printed as a bound: the tails of approximations that far out (the
#: normal for large rank tests, t for Welch and Brunner-Munzel) are not credible digits.
P_FLOOR = 1e-4


def format_p(p: float | None) -> str:
    """A p-value as reports print it: three decimals, powers of ten below 0.001, and the bound
    ``<1e-04`` below 1e-4 (never ``0e+00``); ``-`` when there is none."""
    if p is None or p != p:  # None or nan
        return "-"
    if p < P_FLOOR:
        return f"<{P_FLOOR:.0e}"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def p_equals(p: float | None, *, spaced: bool = False) -> str:
    """``p=0.003``, or ``p<1e-04`` for a bound (``p = 0.003``, ``p < 1e-04`` when spaced)."""
    text = format_p(p)
    if text.startswith("<"):
        return f"p {text[0]} {text[1:]}" if spaced else f"p{text}"
    return f"p = {text}" if spaced else f"p={text}"


def _difference(row: Row, base: Any, cand: Any) -> str:
    if row.diff == "none" or base is None or cand is None:
        return ""
    if row.diff == "pp":
        return f"{_signed((cand - base) * 100)} pp"
    if base == 0:
        return "-"
    return f"{_signed((cand / base - 1) * 100)}%"


def _signed(value: float) -> str:
    # "+0", never "-0", for a change that rounds away.
    rounded = round(value)
    return f"{rounded:+d}" if rounded else "+0"
