"""The summary table: the article's table, one column per arm plus a difference column.

What the terminal, the markdown and the HTML report show as their table is decided here
once: which columns (:func:`table_of`), which rows in which order, and each cell's text.
Formats the values :mod:`pytest_agentspeed.analysis.metrics` computed; computes nothing of its
own except the relative differences it prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.summary import arms, baseline_arm_for, summary_of, summary_value
from pytest_agentspeed.records import RunRecord
from pytest_agentspeed.timing import ALL_PHASES, EXTERNAL_PHASES

Getter = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    get: Getter
    fmt: Callable[[float], str]
    #: How the difference column compares: relative change, percentage points, or not at all.
    diff: str = "rel"
    #: Shown only when some column has a value (what older run files did not record).
    optional: bool = False


def _dig(*keys: str) -> Getter:
    return lambda summary: summary_value(summary, *keys)


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


def _ms(v: float) -> str:
    return f"{v:.1f} ms"


def _speedup(v: float) -> str:
    return f"{v:.2f}x"


def _phase(name: str) -> str:
    return name.replace("_", " ")


def _external(phase: str) -> bool:
    return phase in EXTERNAL_PHASES


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
    # The phases of an agent measured from outside (start-up, its own time, wind-down) only
    # where some column has them: the built-in agent's table keeps its rows.
    *(
        Row(phase_seconds_label(p), _dig("phase_s_per_session", p), _seconds, "s", _external(p))
        for p in ALL_PHASES
    ),
    *(
        Row(f"share: {_phase(p)}", _dig("phase_share", p), _pct, "pp", _external(p))
        for p in ALL_PHASES
    ),
    Row("side requests / session", _dig("side_requests_per_session"), _runs, "rel", True),
    Row(
        "non-streamed turns (TTFT = whole response)",
        _dig("non_streamed_turn_share"),
        _pct,
        "pp",
        True,
    ),
    Row("runs / window", _dig("runs_per_window"), _runs),
    Row("tasks / window", _dig("tasks_per_window"), _runs),
    Row("session speed-up, 2x generation", _dig("what_if", "2x"), _speedup, "none"),
    Row("session speed-up, 10x generation", _dig("what_if", "10x"), _speedup, "none"),
    # How far the measurement itself can be trusted (analysis.clock): the measuring process's
    # clock, not the endpoint, so no difference column.
    Row("clock late P99, worst session", _dig("clock", "late_p99_ms"), _ms, "none", True),
    Row("sessions with the clock late", _dig("clock", "late_sessions"), _count, "none", True),
    Row("CPU busy, mean over sessions", _dig("clock", "cpu_busy"), _pct, "none", True),
)
_BY_LABEL = {row.label: row for row in ROWS}

#: The row of each gate metric (``analysis.gate.GATE_METRICS``): it leads the table.
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

    Built by :func:`table_of` from a run (and a stored baseline).
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
        rest = [r for r in ROWS if r.label not in key and (not r.optional or self._has(r))]
        return [_BY_LABEL[label] for label in key] + rest

    @property
    def phases(self) -> list[str]:
        """The phases the table shows: :data:`~pytest_agentspeed.timing.PHASES`, then those of
        an agent measured from outside that some column has; charts show the same."""
        shown = {row.label for row in self.rows}
        return [p for p in ALL_PHASES if phase_seconds_label(p) in shown]

    def _has(self, row: Row) -> bool:
        return any(row.get(dict(self.summary.get(c, {}))) is not None for c in self.columns)

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


def table_of(
    run: RunRecord,
    baseline: RunRecord | None = None,
    against: str = "baseline",
    *,
    metric: str | None = None,
) -> Table:
    """The summary table's columns, which the terminal, markdown and HTML outputs all format.

    A column per arm of ``run`` and a difference to its baseline arm, as in an in-run A/B.
    With a stored ``baseline``, its arms that the run's arms are compared with come first,
    labelled ``ARM (AGAINST)``, and each arm of the run gets a difference to its one.

    :param against: where the baseline came from (``baseline main``, ``baseline main.json``).
    :param metric: the gate's metric, whose row leads; default: the run's comparisons' metric.
    """
    names = arms(run)
    summary = dict(_summaries(run))
    columns: list[str] = list(names)
    pairs = [(names[0], name) for name in names[1:]]
    if baseline is not None and arms(baseline):
        stored = _summaries(baseline)
        labels: dict[str, str] = {}
        for name in names:
            base_arm = baseline_arm_for(baseline, name)
            labels.setdefault(base_arm, baseline_label(base_arm, against))
        columns = [*labels.values(), *names]
        summary = {labels[b]: stored.get(b, {}) for b in labels} | summary
        pairs = [(labels[baseline_arm_for(baseline, name)], name) for name in names] + pairs
    chosen = metric or next((c.metric for c in run.comparisons), None) or GateSettings().metric
    return Table(summary=summary, columns=columns, pairs=pairs, metric=chosen)


def baseline_label(arm: str, against: str) -> str:
    """The column of a stored baseline's arm: ``ARM (baseline main)``."""
    return f"{arm} ({against})"


def _summaries(run: RunRecord) -> Mapping[str, Mapping[str, Any]]:
    """The run's stored summary; recomputed for files written before a summary field
    existed (the seconds per session by phase), so old run files show every row."""
    stored = run.summary
    if all("phase_s_per_session" in stored.get(name, {}) for name in arms(run)):
        return stored
    return summary_of(run)
