"""The terminal table: the article's table, one column per arm plus a difference column.

Formats the values :mod:`pytest_agentspeed.analysis.metrics` computed; computes nothing of its own
except the relative differences it prints. Returns lines, so the pytest terminal reporter and
the command line can print them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_agentspeed.timing import PHASES

if TYPE_CHECKING:
    from pytest_agentspeed.records import RunRecord

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


def _plain_seconds(v: float) -> str:
    # Always seconds, as the difference next to it is.
    return f"{v:.2f} s" if v < 100 else f"{v:,.1f} s"


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


def _phase(name: str) -> str:
    return name.replace("_", " ")


def phase_seconds_label(phase: str) -> str:
    """The row of a phase's mean seconds per session."""
    return f"time / session: {_phase(phase)}"


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
    *(Row(phase_seconds_label(p), _dig("phase_s_per_session", p), _seconds, "s") for p in PHASES),
    *(Row(f"share: {_phase(p)}", _dig("phase_share", p), _pct, "pp") for p in PHASES),
    Row("runs / window", _dig("runs_per_window"), _runs),
    Row("tasks / window", _dig("tasks_per_window"), _runs),
    Row("session speed-up, 2x generation", _dig("what_if", "2x"), _speedup, "none"),
    Row("session speed-up, 10x generation", _dig("what_if", "10x"), _speedup, "none"),
)
_BY_LABEL = {row.label: row for row in ROWS}

#: The row of each gate metric (compare.METRICS): it leads the table.
METRIC_ROWS = {
    "throughput_tok_s": "session throughput P50",
    "session_wall_s": "mean session time",
    "tasks_per_window": "tasks / window",
}
#: The rows that decide, after the gate metric's: shown first and highlighted.
DECIDING_ROWS = (
    "pass rate",
    "error rate",
    "mean session time",
    "TTFT P50",
    "decode P50",
    "tasks / window",
)


@dataclass(frozen=True, slots=True)
class Table:
    """What the summary table shows; the terminal, markdown and HTML outputs format it alike.

    Built by :func:`pytest_agentspeed.analysis.table_of` from a run (and a stored baseline).
    """

    #: Column label -> that column's arm summary (:func:`metrics.summarize_arm`).
    summary: Mapping[str, Mapping[str, Any]]
    #: Column labels in order.
    columns: Sequence[str]
    #: (baseline column, candidate column) of each difference column; ``None``: every column
    #: after the first against the first.
    pairs: Sequence[tuple[str, str]] | None = None
    #: The gate's metric: its row comes first.
    metric: str = "throughput_tok_s"

    @property
    def differences(self) -> list[tuple[str, str]]:
        if self.pairs is not None:
            return list(self.pairs)
        return [(self.columns[0], c) for c in self.columns[1:]]

    @property
    def rows(self) -> list[Row]:
        """Every row: the deciding ones first (the gate metric's leading), then the rest."""
        key = self._key_labels()
        return [_BY_LABEL[label] for label in key] + [r for r in ROWS if r.label not in key]

    @property
    def key_rows(self) -> int:
        """How many rows, after the header, are the deciding ones."""
        return len(self._key_labels())

    def _key_labels(self) -> list[str]:
        lead = METRIC_ROWS.get(self.metric, METRIC_ROWS["throughput_tok_s"])
        return [lead, *(label for label in DECIDING_ROWS if label != lead)]

    def cells(self) -> list[list[str]]:
        """Header and rows as text cells: a column per arm, then a difference column each."""
        diffs = self.differences
        header = [
            "",
            *self.columns,
            *(f"{c} vs {b}" if len(diffs) > 1 else "difference" for b, c in diffs),
        ]
        out = [header]
        for row in self.rows:
            value = {c: row.get(dict(self.summary.get(c, {}))) for c in self.columns}
            cells = [row.label, *("-" if v is None else row.fmt(v) for v in value.values())]
            cells += [_difference(row, value[b], value[c]) for b, c in diffs]
            out.append(cells)
        return out

    def lines(self) -> list[str]:
        """The table as aligned text lines, a rule under the deciding rows."""
        rows = self.cells()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for r in rows:
            first = r[0].ljust(widths[0])
            rest = "  ".join(cell.rjust(w) for cell, w in zip(r[1:], widths[1:], strict=True))
            lines.append(f"{first}  {rest}".rstrip())
        rule = "-" * max(len(line) for line in lines)
        return [*lines[: 1 + self.key_rows], rule, *lines[1 + self.key_rows :]]


def table_cells(summary: Mapping[str, Mapping[str, Any]], arms: Sequence[str]) -> list[list[str]]:
    """Header and rows as text cells: a column per arm, then a difference column per candidate."""
    return Table(summary=summary, columns=arms).cells()


def summary_table(summary: Mapping[str, Mapping[str, Any]], arms: Sequence[str]) -> list[str]:
    """The table as aligned text lines."""
    return Table(summary=summary, columns=arms).lines()


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
    table: Table, comparisons: Sequence[Mapping[str, Any]], *, note: str | None = None
) -> str:
    """The verdicts, then the table, as a markdown section (job summaries and PR comments).

    The verdicts come first: a PR comment is read from the top. The deciding rows lead the
    table, their labels in bold.
    """
    out = ["## agentspeed", ""]
    for c in comparisons:
        out += [f"**{c['verdict']}** `{c['line']}`", ""]
        out.append(f"- {c['candidate']} vs {c['baseline']} ({c['against']})")
        out += [f"- {reason}" for reason in c["reasons"]]
        out += [f"- warning: {warning}" for warning in c["warnings"]]
        out.append("")
    rows = table.cells()
    out.append("| " + " | ".join(_md(cell) for cell in rows[0]) + " |")
    out.append("|---|" + "---:|" * (len(rows[0]) - 1))
    for i, r in enumerate(rows[1:]):
        label = f"**{_md(r[0])}**" if i < table.key_rows else _md(r[0])
        out.append("| " + " | ".join([label, *(_md(cell) for cell in r[1:])]) + " |")
    if note:
        out += ["", f"_{note}_"]
    return "\n".join(out) + "\n"


def scale_note(run: RunRecord) -> str | None:
    """The note under the table of a run whose simulated delays were scaled; ``None`` at real
    speed."""
    scale = run.config.get("time_scale")
    if scale in (None, 1.0):
        return None
    return f"simulated delays x{scale:g}: times are scaled, not those of a real endpoint"


#: Below this a p-value is printed as a bound: the tails of approximations that far out (the
#: normal for large rank tests, t for Welch and Brunner-Munzel) are not credible digits.
P_FLOOR = 1e-4


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


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
    if row.diff == "s":
        # Seconds, to the hundredth: "+0.00 s", never "-0.00 s".
        change = round(cand - base, 2)
        return f"{change:+.2f} s" if change else "+0.00 s"
    if base == 0:
        return "-"
    return f"{_signed((cand / base - 1) * 100)}%"


def _signed(value: float) -> str:
    # "+0", never "-0", for a change that rounds away.
    rounded = round(value)
    return f"{rounded:+d}" if rounded else "+0"
