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

from pytest_agentspeed import charts
from pytest_agentspeed.analysis import arms
from pytest_agentspeed.compare import GateSettings, compare_runs
from pytest_agentspeed.metrics import decode_rate, is_cached, served_turns
from pytest_agentspeed.records import RunRecord, SessionRecord
from pytest_agentspeed.terminal import format_p, p_equals, table_cells
from pytest_agentspeed.timing import PHASES

#: Order of the verdicts in the banner: the one that needs attention first.
_SEVERITY = {"FAIL": 0, "NOT COMPARED": 1, "INCONCLUSIVE": 2, "PASS": 3, "IMPROVED": 4}


def render_report(
    run: RunRecord,
    *,
    baseline: RunRecord | None = None,
    baseline_name: str = "baseline",
    gate: GateSettings | None = None,
) -> str:
    """The report of ``run`` as one HTML document.

    :param baseline: another run to compare every arm of ``run`` with (its arm of the same
        name, else its first arm); shown as an extra column.
    """
    names = arms(run)
    comparisons = list(run.comparisons)
    summary: dict[str, Mapping[str, Any]] = {name: run.summary.get(name, {}) for name in names}
    columns = list(names)
    if baseline is not None:
        base_arms = arms(baseline)
        if base_arms:
            label = f"{baseline_name}: {base_arms[0]}"
            summary = {label: baseline.summary.get(base_arms[0], {}), **summary}
            columns = [label, *columns]
            for name in names:
                comparisons.append(
                    compare_runs(
                        baseline,
                        run,
                        baseline_arm=name if name in base_arms else base_arms[0],
                        candidate_arm=name,
                        against=baseline_name,
                        baseline_label=f"the {baseline_name}",
                        settings=gate or GateSettings(),
                    ).to_json()
                )
    by_arm = {name: [s for s in run.sessions if s.endpoint == name] for name in names}
    window = float(run.config.get("window_s") or 1800.0)
    context = {
        "run": run,
        "columns": columns,
        "table": table_cells(summary, columns),
        "banner": sorted(comparisons, key=lambda c: _SEVERITY.get(c["verdict"], 9)),
        "comparisons": [_comparison_rows(c) for c in comparisons],
        "charts": _charts(summary, columns, names, by_arm, window),
        "sessions": [_session(s, names) for s in run.sessions],
        "environment": _environment(run),
        "endpoints": run.endpoints,
        "time_scale": run.config.get("time_scale"),
        "pattern_defs": charts.PATTERN_DEFS,
        "phase_legend": [(charts.phase_fill(p), charts.PHASE_LABELS[p]) for p in PHASES],
    }
    return _environment_jinja().get_template("report.html.j2").render(**context)


def _environment_jinja() -> Environment:
    # autoescape=True, not select_autoescape(): the template's name ends in .j2.
    return Environment(
        loader=PackageLoader("pytest_agentspeed", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _charts(
    summary: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str],
    names: Sequence[str],
    by_arm: Mapping[str, Sequence[SessionRecord]],
    window: float,
) -> dict[str, Markup]:
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
    for i, name in enumerate(names):
        turns = served_turns(by_arm[name])
        ttft_groups.append(
            (f"{name} · cached", [t.phases_s["ttft"] for t in turns if is_cached(t)], i)
        )
        ttft_groups.append(
            (f"{name} · cold", [t.phases_s["ttft"] for t in turns if not is_cached(t)], i)
        )
        rates = [r for t in turns if (r := decode_rate(t)) is not None]
        decode_groups.append((name, rates, i))
    return {
        "phases": charts.phase_shares(
            [(c, summary[c].get("phase_share") or {}) for c in columns], PHASES
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
                (name, [t for s in by_arm[name] if (t := s.throughput_tok_s) is not None])
                for name in names
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


def _session(s: SessionRecord, names: Sequence[str]) -> dict[str, Any]:
    tools = Counter(call.name for turn in s.turns for call in turn.tool_calls)
    errors = [turn.error for turn in s.turns if turn.error]
    return {
        "id": s.id,
        "task": s.task,
        "arm": s.endpoint,
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
        "waterfall": charts.waterfall([t.phases_s for t in s.turns], PHASES) if s.turns else None,
    }


def _comparison_rows(c: Mapping[str, Any]) -> dict[str, Any]:
    def ratio_ci(ratio: float | None, ci: Sequence[float] | None) -> str:
        if ratio is None or not ci:
            return "-"
        return f"{ratio:.3f} [{ci[0]:.3f}-{ci[1]:.3f}]"

    welch = c.get("welch_log") or None
    welch_text = (
        "-"
        if not welch
        else f"{ratio_ci(welch['ratio'], [welch['low'], welch['high']])}, "
        f"{p_equals(welch['p'], spaced=True)}"
    )
    design = "paired by slot" if c["paired"] else "independent arms"
    rates = c["pass_rate"]["rates"]
    passed, sessions = c["pass_rate"]["passed"], c["pass_rate"]["sessions"]
    rows = [
        ("metric", c["metric"]),
        ("baseline / candidate", f"{c['baseline']} / {c['candidate']}"),
        ("against", c["against"]),
        ("design", f"{design}, n = {c['n'][0]} / {c['n'][1]}"),
        (f"ratio [{c['ci_level'] * 100:.0f}% CI]", ratio_ci(c.get("ratio"), c.get("ci"))),
        ("test", c["test"].replace("_", " ")),
        ("p, candidate slower (one-sided)", format_p(c.get("p"))),
        ("p, candidate faster (one-sided)", format_p(c.get("p_improved"))),
        ("Brunner-Munzel p (direction of the estimate)", format_p(c.get("brunner_munzel_p"))),
        ("Welch t on logs: ratio of geometric means, p (slower)", welch_text),
        (
            "minimum detectable effect (80% power)",
            "-" if c.get("mde") is None else f"{c['mde'] * 100:.1f}%",
        ),
        (
            f"sessions per arm to detect a {c['margin'] * 100:g}% regression",
            "-" if c.get("sessions_needed") is None else str(c["sessions_needed"]),
        ),
        (
            "pass rate (Fisher's exact p)",
            "-"
            if None in rates
            else f"{passed[0]}/{sessions[0]} vs {passed[1]}/{sessions[1]} "
            f"({p_equals(c['pass_rate'].get('p'), spaced=True)})",
        ),
        (
            "sessions ended by endpoint errors (Fisher's exact p)",
            _error_counts(c.get("error_rate")),
        ),
        (
            "alpha / tolerance / margin",
            f"{c['alpha']:g} / {c['tolerance'] * 100:g}% / {c['margin'] * 100:g}%",
        ),
    ]
    return {"verdict": c["verdict"], "line": c["line"], "rows": rows, "warnings": c["warnings"]}


def _environment(run: RunRecord) -> list[tuple[str, str]]:
    rows = [("created", run.created_at), ("pytest-agentspeed", run.agentspeed_version)]
    rows += [(str(k), _plain(v)) for k, v in run.environment.items()]
    rows += [(f"config: {k}", _plain(v)) for k, v in run.config.items()]
    return rows


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _error_counts(check: dict[str, Any] | None) -> str:
    """Errored sessions per arm; run files written before the check have none."""
    if not check or None in check["rates"]:
        return "-"
    errors, sessions = check["errors"], check["sessions"]
    return (
        f"{errors[0]}/{sessions[0]} vs {errors[1]}/{sessions[1]} "
        f"({p_equals(check.get('p'), spaced=True)})"
    )
