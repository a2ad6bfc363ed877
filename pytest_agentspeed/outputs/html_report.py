"""The HTML speed report: one self-contained file, rendered from a run record.

Everything is inline (CSS, SVG charts, a short script that sorts, filters and expands the
sessions table) and nothing is fetched, so the file works offline as a CI artifact. The page
is rendered by jinja2 with autoescaping on: every string from a run file (task names, endpoint
names, tool names chosen by the model, error messages from servers) reaches the page as text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.history import History
from pytest_agentspeed.analysis.metrics import decode_rate, is_cached, served_turns
from pytest_agentspeed.analysis.pvalues import format_p, p_equals
from pytest_agentspeed.analysis.summary import IN_RUN, against_baseline, arms, baseline_arm_for
from pytest_agentspeed.outputs import charts
from pytest_agentspeed.outputs.capacity import capacity_section
from pytest_agentspeed.outputs.history_chart import history_section
from pytest_agentspeed.outputs.table import Table, baseline_label, phase_seconds_label, table_of
from pytest_agentspeed.outputs.terminal import clock_warning, clock_words, scale_note
from pytest_agentspeed.outputs.turn_chart import turn_sections
from pytest_agentspeed.records import (
    Comparison,
    RateCheck,
    RunRecord,
    SessionRecord,
    SideRequestRecord,
)
from pytest_agentspeed.timing import PHASES

#: Order of the verdicts in the banner: the one that needs attention first.
_SEVERITY = {"FAIL": 0, "NOT COMPARED": 1, "INCONCLUSIVE": 2, "PASS": 3, "IMPROVED": 4}


def render_report(
    run: RunRecord,
    *,
    baseline: RunRecord | None = None,
    baseline_name: str = "baseline",
    gate: GateSettings | None = None,
    history: History | None = None,
) -> str:
    """The report of ``run`` as one HTML document.

    :param baseline: a stored baseline run to compare every arm of ``run`` with (its arm of
        the same name, else its first arm); its arms are shown as columns of their own.
    :param baseline_name: where the baseline came from (``baseline main.json``): labels its
        columns and its comparisons. The comparisons ``run`` holds against a stored baseline
        give way to those against this one, so each comparison has one banner; those it holds
        under this very name (a pytest run's own) are kept, not made again.
    :param history: the gate metric's trend over saved runs (``--history``), shown in a
        section of its own.
    """
    names = arms(run)
    comparisons = list(run.comparisons)
    if baseline is not None and arms(baseline):
        comparisons = [c for c in comparisons if c.against in (IN_RUN, baseline_name)]
        if not any(c.against == baseline_name for c in comparisons):
            comparisons += against_baseline(
                baseline,
                run,
                baseline_name,
                gate or GateSettings(),
                baseline_label=f"the {baseline_name}",
            )
    else:
        baseline = None
    table = table_of(run, baseline, baseline_name, metric=gate.metric if gate else None)
    sessions = {name: [s for s in run.sessions if s.endpoint == name] for name in names}
    if baseline is not None:
        for name in names:
            base_arm = baseline_arm_for(baseline, name)
            sessions[baseline_label(base_arm, baseline_name)] = [
                s for s in baseline.sessions if s.endpoint == base_arm
            ]
    by_column = {column: sessions[column] for column in table.columns}
    window = float(run.config.get("window_s") or 1800.0)
    context = {
        "run": run,
        "heading": _heading(names, baseline_name if baseline is not None else None),
        "lead": _lead(run, names, baseline, baseline_name),
        "table": table.cells(),
        "key_rows": table.key_rows,
        "banner": sorted(comparisons, key=lambda c: _SEVERITY.get(c.verdict, 9)),
        "comparisons": [_comparison_rows(c) for c in comparisons],
        "charts": _charts(table, by_column, window),
        # Replays only: their turns matched one to one (none for live sessions, no section).
        "turn_sections": turn_sections(comparisons),
        "sessions": [_session(s, names) for s in run.sessions],
        "environment": _environment(run),
        "endpoints": run.endpoints,
        "time_scale": run.config.get("time_scale"),
        "scaled": scale_note(run) is not None,
        "clock_warning": clock_warning(run),
        "pattern_defs": charts.pattern_defs(table.phases),
        "phase_legend": [(charts.phase_fill(p), charts.PHASE_LABELS[p]) for p in table.phases],
        "capacity": None if run.capacity is None else capacity_section(run.capacity),
        "history": None if history is None else history_section(history),
    }
    return _environment_jinja().get_template("report.html.j2").render(**context)


def _heading(names: Sequence[str], against: str | None) -> str:
    """What is compared with what: ``A vs B``, or ``A, B vs baseline main.json``."""
    if against is None:
        return " vs ".join(names)
    return f"{', '.join(names)} vs {against}"


def _lead(run: RunRecord, names: Sequence[str], baseline: RunRecord | None, against: str) -> str:
    """The line under the title: the run's sessions and arms, then the baseline's."""
    lead = f"{len(run.sessions)} sessions on {', '.join(names)} ({run.created_at})"
    if baseline is not None:
        used = list(dict.fromkeys(baseline_arm_for(baseline, name) for name in names))
        lead += (
            f" · {against}: {len(baseline.sessions)} sessions on {', '.join(used)} "
            f"({baseline.created_at})"
        )
    return lead


def _environment_jinja() -> Environment:
    # autoescape=True, not select_autoescape(): the template's name ends in .j2.
    return Environment(
        loader=PackageLoader("pytest_agentspeed.outputs", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _charts(
    table: Table, by_column: Mapping[str, Sequence[SessionRecord]], window: float
) -> dict[str, Markup]:
    columns, summary = table.columns, table.summary
    what_if = []
    for column in columns:
        factors = summary[column].get("what_if") or {}
        what_if += [(f"{column} · 2x", factors.get("2x")), (f"{column} · 10x", factors.get("10x"))]
    per_window = []
    for column in columns:
        per_window += [
            (f"{column} · runs", summary[column].get("runs_per_window")),
            (f"{column} · tasks", summary[column].get("tasks_per_window")),
        ]
    ttft_groups: list[tuple[str, Sequence[float], int]] = []
    decode_groups: list[tuple[str, Sequence[float], int]] = []
    for i, column in enumerate(columns):
        turns = served_turns(by_column[column])
        ttft_groups.append(
            (f"{column} · cached", [t.phases_s["ttft"] for t in turns if is_cached(t)], i)
        )
        ttft_groups.append(
            (f"{column} · cold", [t.phases_s["ttft"] for t in turns if not is_cached(t)], i)
        )
        rates = [r for t in turns if (r := decode_rate(t)) is not None]
        decode_groups.append((column, rates, i))
    return {
        "phases": charts.phase_shares(
            [(c, summary[c].get("phase_share") or {}) for c in columns], table.phases
        ),
        "phase_seconds": charts.grouped_bars(
            _phase_seconds(table),
            unit="mean seconds per session (s)",
            title="Seconds per session by phase",
        ),
        "what_if": charts.bars(
            what_if,
            unit="session speed-up if reasoning and generation were faster (x)",
            title="What-if: faster generation",
            start=1.0,
            colours=[colour for colour in charts.ARM_COLOURS for _ in range(2)],
            value_fmt=lambda v: f"{v:.2f}x",
        ),
        "throughput": charts.ecdf(
            [
                (column, [t for s in by_column[column] if (t := s.throughput_tok_s) is not None])
                for column in columns
            ],
            unit="session throughput (output tok/s)",
            title="Session throughput per arm",
        ),
        "ttft": charts.box_plot(ttft_groups, unit="time to first token (s)", title="TTFT per turn"),
        "decode": charts.box_plot(
            decode_groups, unit="decode rate per turn (tok/s)", title="Decode rate per turn"
        ),
        "window": charts.bars(
            per_window,
            unit=f"sessions per {window:g} s window (runs; tasks = runs x pass rate)",
            title="Runs and tasks per window",
            colours=[colour for colour in charts.ARM_COLOURS for _ in range(2)],
        ),
    }


def _phase_seconds(table: Table) -> list[charts.Group]:
    """A group per phase, a bar per column: its seconds, and for a candidate its difference
    (the summary table's own cells, so chart and table say the same)."""
    cells = {row[0]: row for row in table.cells()}
    columns = list(table.columns)
    diffs = table.differences
    groups: list[charts.Group] = []
    for phase in table.phases:
        row = cells[phase_seconds_label(phase)]
        bars: list[tuple[str, float | None, str]] = []
        for i, column in enumerate(columns):
            value = (table.summary[column].get("phase_s_per_session") or {}).get(phase)
            text = row[1 + i]
            shown = [
                row[1 + len(columns) + k] + ("" if len(diffs) == 1 else f" vs {base}")
                for k, (base, cand) in enumerate(diffs)
                if cand == column and row[1 + len(columns) + k]
            ]
            if shown:
                text += f" ({'; '.join(shown)})"
            bars.append((column, value, text))
        groups.append((charts.PHASE_LABELS[phase], charts.phase_fill(phase), bars))
    return groups


def _session(s: SessionRecord, names: Sequence[str]) -> dict[str, Any]:
    tools = Counter(call.name for turn in s.turns for call in turn.tool_calls)
    errors = [turn.error for turn in s.turns if turn.error]
    return {
        "id": s.id,
        "task": s.task,
        "arm": s.endpoint,
        "repeat": s.repeat,
        "arm_index": names.index(s.endpoint) if s.endpoint in names else 0,
        "outcome": s.outcome,
        "error": s.error,
        "turn_errors": errors,
        "wall_s": s.wall_s,
        "tokens": s.usage.output_tokens,
        "throughput": s.throughput_tok_s,
        "turns": len(s.turns),
        "tools": sorted(tools.items(), key=lambda kv: (-kv[1], kv[0])),
        "stop_reasons": sorted({t.stop_reason for t in s.turns if t.stop_reason}),
        "check_exit_code": s.check_exit_code,
        "waterfall": _waterfall(s),
        "not_streamed": [t.index + 1 for t in s.turns if not t.streamed],
        "side_requests": len(s.side_requests),
        "process": None if s.process is None else _process(s),
    }


def _waterfall(s: SessionRecord) -> Markup | None:
    """The session's turns; for an agent measured from outside, placed where they started,
    with its side requests and its non-streamed turns marked."""
    if not s.turns and not s.side_requests:
        return None
    if s.process is None and all(t.start_s is None for t in s.turns):
        return charts.waterfall([t.phases_s for t in s.turns], PHASES)
    starts, cumulative = [], 0.0
    for t in s.turns:
        starts.append(cumulative if t.start_s is None else t.start_s)
        cumulative = starts[-1] + t.wall_s
    return charts.waterfall(
        [t.phases_s for t in s.turns],
        [*PHASES, "agent"],
        starts=starts,
        side=[(r.start_s, r.wall_s, _side_label(r)) for r in s.side_requests],
        wall=s.wall_s,
        not_streamed={i for i, t in enumerate(s.turns) if not t.streamed},
    )


def _side_label(r: SideRequestRecord) -> str:
    """What a side request was: why it is no turn, and what it asked (``no tools · small``)."""
    what = r.model if r.model else f"{r.method} {r.path}"
    status = "" if r.status in (200, None) and r.error is None else f" · {r.error or r.status}"
    return f"{r.why} · {what}{status}"


def _process(s: SessionRecord) -> dict[str, Any]:
    """An external agent's process, as the session's detail shows it: its output's tail only
    when the session did not end normally, where it tells why."""
    p = s.process
    assert p is not None
    if p.timed_out:
        ended = "killed at the time limit"
    elif p.exit_code is None:
        ended = "exit status unknown"
    else:
        ended = f"exit code {p.exit_code}"
    return {
        "program": p.program,
        "ended": ended,
        "startup_s": p.startup_s,
        "winddown_s": p.winddown_s,
        "output_tail": p.output_tail if s.outcome in ("error", "timeout") else "",
    }


def _comparison_rows(c: Comparison) -> dict[str, Any]:
    def ratio_ci(ratio: float | None, ci: Sequence[float] | None) -> str:
        if ratio is None or not ci:
            return "-"
        return f"{ratio:.3f} [{ci[0]:.3f}-{ci[1]:.3f}]"

    welch = c.welch or None
    welch_text = (
        "-"
        if not welch
        else f"{ratio_ci(welch['ratio'], [welch['low'], welch['high']])}, "
        f"{p_equals(welch['p'], spaced=True)}"
    )
    design = "paired by slot" if c.paired else "independent arms"
    rows = [
        ("metric", c.metric),
        ("baseline / candidate", f"{c.baseline} / {c.candidate}"),
        ("against", c.against),
        ("design", f"{design}, n = {c.n[0]} / {c.n[1]}"),
        (f"ratio [{c.ci_level * 100:.0f}% CI]", ratio_ci(c.ratio, c.ci)),
        ("test", c.test.replace("_", " ")),
        ("p, candidate slower (one-sided)", format_p(c.p)),
        ("p, candidate faster (one-sided)", format_p(c.p_improved)),
        ("Brunner-Munzel p (direction of the estimate)", format_p(c.brunner_munzel_p)),
        ("Welch t on logs: ratio of geometric means, p (slower)", welch_text),
        (
            "minimum detectable effect (80% power)",
            "-" if c.mde is None else f"{c.mde * 100:.1f}%",
        ),
        (
            f"sessions per arm to detect a {c.margin * 100:g}% regression",
            "-" if c.sessions_needed is None else str(c.sessions_needed),
        ),
        ("pass rate (Fisher's exact p)", _rate_counts(c.pass_rate)),
        ("sessions ended by endpoint errors (Fisher's exact p)", _rate_counts(c.error_rate)),
        (
            "alpha / tolerance / margin",
            f"{c.alpha:g} / {c.tolerance * 100:g}% / {c.margin * 100:g}%",
        ),
    ]
    return {"verdict": c.verdict, "line": c.line, "rows": rows, "warnings": c.warnings}


def _environment(run: RunRecord) -> list[tuple[str, str]]:
    rows = [("created", run.created_at), ("pytest-agentspeed", run.agentspeed_version)]
    rows += [
        (str(k), (clock_words(run) or "-") if k == "clock" else _plain(v))
        for k, v in run.environment.items()
    ]
    rows += [(f"config: {k}", _plain(v)) for k, v in run.config.items()]
    return rows


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _rate_counts(check: RateCheck | None) -> str:
    """Sessions with the outcome per arm, and Fisher's p; ``-`` when an arm has none (or a run
    file written before the error-rate check has no such check)."""
    if check is None or None in check.rates:
        return "-"
    counts, sessions = check.counts, check.sessions
    return (
        f"{counts[0]}/{sessions[0]} vs {counts[1]}/{sessions[1]} ({p_equals(check.p, spaced=True)})"
    )
