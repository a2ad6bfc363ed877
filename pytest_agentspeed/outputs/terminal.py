"""The text outputs: the verdict lines the terminal prints, the markdown section (job
summaries, PR comments), the note on a run's scaled time and the warning of a run whose
clock ran late.

They format the :class:`~pytest_agentspeed.outputs.table.Table` and the run's typed
:class:`~pytest_agentspeed.records.Comparison` records; they return text, so the pytest
terminal reporter and the command line can print it alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_agentspeed.analysis.clock import COMPROMISED, late_words, load_words
from pytest_agentspeed.analysis.pvalues import p_equals
from pytest_agentspeed.analysis.turn_pairs import turn_pairs_line
from pytest_agentspeed.outputs.table import Table
from pytest_agentspeed.records import Comparison, RunRecord


def verdict_lines(comparisons: Sequence[Comparison]) -> list[str]:
    """Each comparison's report line, then its details, reasons and warnings (indented)."""
    lines: list[str] = []
    for c in comparisons:
        details = [f"{c.candidate} vs {c.baseline} ({c.against})"]
        if c.refused:
            # Nothing was computed: the line says why, the arms say what was not compared.
            lines += [c.line, "  " + details[0]]
            lines += [f"  warning: {warning}" for warning in c.warnings]
            continue
        if c.brunner_munzel_p is not None:
            details.append(f"Brunner-Munzel {p_equals(c.brunner_munzel_p)}")
        elif c.estimator == "hodges_lehmann_log" and c.ratio is not None:
            # Undefined here (e.g. arms that do not overlap): its variance estimate is zero.
            details.append("Brunner-Munzel p=n/a")
        if c.welch:
            welch = c.welch
            details.append(
                f"Welch-log ratio {welch['ratio']:.2f} [{welch['low']:.2f}-{welch['high']:.2f}]"
            )
        base_rate, cand_rate = c.pass_rate.rates
        if base_rate is not None and cand_rate is not None:
            details.append(f"pass rate {base_rate * 100:.0f}% vs {cand_rate * 100:.0f}%")
        # Run files written before the error-rate check have none.
        errors = c.error_rate.counts if c.error_rate is not None else (0, 0)
        if any(errors):
            details.append(f"endpoint errors {errors[0]} vs {errors[1]} sessions")
        lines.append(c.line)
        lines.append("  " + " · ".join(details))
        lines += [f"  {reason}" for reason in c.reasons]
        lines += [f"  warning: {warning}" for warning in c.warnings]
    return lines


def markdown_report(
    table: Table,
    comparisons: Sequence[Comparison],
    *,
    note: str | None = None,
    warning: str | None = None,
) -> str:
    """The verdicts, then the table, as a markdown section (job summaries and PR comments).

    The verdicts come first: a PR comment is read from the top. The deciding rows lead the
    table, their labels in bold.

    :param note: under the table (the scaled time's).
    :param warning: above everything (a clock that ran late: :func:`clock_warning`).
    """
    out = ["## agentspeed", ""]
    if warning:
        out += [f"**Warning:** {warning}", ""]
    for c in comparisons:
        out += [f"**{c.verdict}** `{c.line}`", ""]
        out.append(f"- {c.candidate} vs {c.baseline} ({c.against})")
        if c.turn_pairs is not None:
            out.append(f"- {turn_pairs_line(c.turn_pairs, c.ci_level)}")
        out += [f"- {reason}" for reason in c.reasons]
        out += [f"- warning: {warning}" for warning in c.warnings]
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


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def scale_note(run: RunRecord, *, explained: bool = True) -> str | None:
    """How outputs flag a run whose simulated delays were scaled: ``simulated delays x0.05``,
    with what that means for its times unless ``explained`` is false; ``None`` for a run at
    real speed."""
    scale = run.config.get("time_scale")
    if scale in (None, 1.0):
        return None
    note = f"simulated delays x{scale:g}"
    return f"{note}: times are scaled, not those of a real endpoint" if explained else note


def clock_warning(run: RunRecord) -> str | None:
    """The warning of a run whose measuring process's clock ran too late for its marks to be
    trusted (:mod:`~pytest_agentspeed.analysis.clock`), with the figure and the machine's load;
    ``None`` for a run whose clock kept time, or that did not measure it."""
    clock = run.environment.get("clock")
    if not isinstance(clock, dict) or not clock.get("compromised"):
        return None
    load = load_words(clock)
    return (
        f"{COMPROMISED}: {late_words(clock)}{f', {load}' if load else ''}; the marks may be "
        f"off by that much (docs/timing.md, When the clock is late)"
    )


def clock_words(run: RunRecord) -> str | None:
    """How late the run's clock ran, whether or not it was too late (the report's
    environment); ``None`` for a run that did not measure it."""
    clock = run.environment.get("clock")
    if not isinstance(clock, dict):
        return None
    load = load_words(clock)
    return f"{late_words(clock)}{f', {load}' if load else ''}"
