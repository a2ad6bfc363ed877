"""The plugin's options in real pytest runs: gate options and the window passed through,
``[tool.agentspeed]`` values and the command line over them, paths relative to the file, bad
values; per-task ``[speed]`` limits; fingerprint warnings against a stored baseline."""

from __future__ import annotations

import html
import json
import textwrap
from pathlib import Path

import pytest
from factories import run_record
from test_plugin import CHECK, assert_usage_error, make_task, read_run

from pytest_agentspeed.runfile import write_run_file

FAST = "sim:ultraspeed?jitter=0"

GATE_PYPROJECT = f"""
[tool.pytest.ini_options]
addopts = "-p no:cacheprovider"

[tool.agentspeed]
endpoint = ["{FAST}", "{FAST}"]
time_scale = 0.01
window = 900
json = "out/run.json"
gate_metric = "session_wall_s"
tolerance = "7%"
margin = 0.2
inconclusive = "fail"
"""


def test_pyproject_gate_options_reach_the_run_and_the_command_line_wins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An A/A run of one task: one pair, so the in-run comparison is INCONCLUSIVE whatever
    the timings, and only the options decide the exit code."""
    pytester.makepyprojecttoml(GATE_PYPROJECT)
    tasks = pytester.path / "tasks"
    make_task(tasks, "alpha")
    # Run from below the pyproject: its relative paths are the file's, not the directory's.
    monkeypatch.chdir(tasks)

    from_file = pytester.runpytest_subprocess()
    from_file.assert_outcomes(passed=2)
    # Every session passed; INCONCLUSIVE fails the run under `inconclusive = "fail"`.
    assert from_file.ret == pytest.ExitCode.TESTS_FAILED
    # (A suffix says when the machine held the measuring process up: the line is the same.)
    from_file.stdout.fnmatch_lines(["session speed ratio -, n=1/1 -> INCONCLUSIVE*"])
    assert not (tasks / "out").exists()
    run = read_run(pytester.path / "out" / "run.json")
    assert run["config"]["window_s"] == 900.0
    for stats in run["summary"].values():
        assert stats["window_s"] == 900.0
        assert stats["runs_per_window"] == pytest.approx(900 / stats["session_wall_s"]["mean"])
    (comparison,) = run["comparisons"]
    assert {k: comparison[k] for k in ("metric", "tolerance", "margin", "verdict")} == {
        "metric": "session_wall_s",
        "tolerance": 0.07,
        "margin": 0.2,
        "verdict": "INCONCLUSIVE",
    }

    (pytester.path / "out" / "run.json").unlink()
    from_cli = pytester.runpytest_subprocess(
        "--agentspeed-inconclusive=warn",
        "--agentspeed-gate-metric=tasks_per_window",
        "--agentspeed-tolerance=3%",
        "--agentspeed-margin=0.15",
        "--agentspeed-window=600",
        "--agentspeed-json=cli.json",
    )
    from_cli.assert_outcomes(passed=2)
    assert from_cli.ret == pytest.ExitCode.OK  # INCONCLUSIVE only warns now
    from_cli.stdout.fnmatch_lines(["tasks per window ratio -, n=1/1 -> INCONCLUSIVE*"])
    # A path on the command line is the working directory's; the file's json is not written.
    assert not (pytester.path / "out" / "run.json").exists()
    run = read_run(tasks / "cli.json")
    assert run["config"]["window_s"] == 600.0
    for stats in run["summary"].values():
        assert stats["runs_per_window"] == pytest.approx(600 / stats["session_wall_s"]["mean"])
    (comparison,) = run["comparisons"]
    assert {k: comparison[k] for k in ("metric", "tolerance", "margin")} == {
        "metric": "tasks_per_window",
        "tolerance": 0.03,
        "margin": 0.15,
    }


TOLERANCE_WORDS = "expected a percentage like 5% or a fraction like 0.05"
REFUSED = "slowdowns between the two are what INCONCLUSIVE is for"


@pytest.mark.parametrize(
    ("table", "args", "expected"),
    [
        ('tolerance = "abc"', [], f"[[]tool.agentspeed[]] tolerance: {TOLERANCE_WORDS}, got 'abc'"),
        ("margin = 1.5", [], f"[[]tool.agentspeed[]] margin: {TOLERANCE_WORDS}, got 1.5"),
        ("tolerance = true", [], f"[[]tool.agentspeed[]] tolerance: {TOLERANCE_WORDS}, got True"),
        (
            'gate_metric = "speed"',
            [],
            "[[]tool.agentspeed[]] gate_metric: unknown metric 'speed'; "
            "accepted: throughput_tok_s, session_wall_s, tasks_per_window",
        ),
        (
            'inconclusive = "maybe"',
            [],
            "[[]tool.agentspeed[]] inconclusive: unknown policy 'maybe'; accepted: warn, fail",
        ),
        ("window = 0", [], "[[]tool.agentspeed[]] window: expected a positive number, got 0"),
        (
            'tolerance = "10%"',
            [],
            f"the tolerance (10%) must be smaller than the margin (10%): {REFUSED}",
        ),
        (
            'margin = "20%"',
            ["--agentspeed-tolerance=25%"],
            f"the tolerance (25%) must be smaller than the margin (20%): {REFUSED}",
        ),
        (
            "",
            ["--agentspeed-tolerance=0.1", "--agentspeed-margin=0.05"],
            f"the tolerance (10%) must be smaller than the margin (5%): {REFUSED}",
        ),
    ],
    ids=[
        "tolerance word",
        "margin above 1",
        "tolerance boolean",
        "metric",
        "policy",
        "window",
        "tolerance at default margin",
        "file margin, cli tolerance",
        "cli both",
    ],
)
def test_bad_gate_values_in_the_file_or_on_the_command_line_are_usage_errors(
    pytester: pytest.Pytester, table: str, args: list[str], expected: str
) -> None:
    pytester.makepyprojecttoml(f"[tool.agentspeed]\n{table}\n")
    make_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    prefix = "" if expected.startswith("the tolerance") else f"{pytester.path}/pyproject.toml: "
    result.stderr.fnmatch_lines([f"ERROR: {prefix}{expected}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "PASSED" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--agentspeed-tolerance=abc"],
            f"*argument --agentspeed-tolerance: {TOLERANCE_WORDS}, got 'abc'",
        ),
        (["--agentspeed-window=0"], "*argument --agentspeed-window: expected a positive number*"),
        (
            ["--agentspeed-gate-metric=speed"],
            "*argument --agentspeed-gate-metric: unknown metric 'speed'; accepted: *",
        ),
        (
            ["--agentspeed-inconclusive=maybe"],
            "*argument --agentspeed-inconclusive: unknown policy 'maybe'; accepted: warn, fail",
        ),
    ],
)
def test_bad_gate_options_are_one_line_usage_errors(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    assert_usage_error(pytester, args, expected)


def speed_task(root: Path, name: str, speed: str) -> None:
    body = f"""
        instruction = "Task {name}: fix the typos in greeting.txt."
        [check]
        command = "{CHECK}"
        timeout_s = 30
        [speed]
        {speed}
    """
    make_task(root, name, body=textwrap.dedent(body))


def test_speed_limits_fail_a_passed_session_that_breaks_them(pytester: pytest.Pytester) -> None:
    speed_task(pytester.path, "roomy", "max_session_s = 3600\nmin_throughput_tok_s = 0.001")
    speed_task(pytester.path, "hurried", "max_session_s = 0.001")
    speed_task(pytester.path, "greedy", "min_throughput_tok_s = 1e9")
    result = pytester.runpytest_subprocess(
        f"--agentspeed-endpoint={FAST}",
        "--agentspeed-time-scale=0.01",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=2)
    sessions = {s["task"]: s for s in read_run(pytester.path / "run.json")["sessions"]}
    # The limits fail the item, not the session: each one's check passed.
    assert {task: s["outcome"] for task, s in sessions.items()} == dict.fromkeys(
        ("roomy", "hurried", "greedy"), "passed"
    )
    wall = sessions["hurried"]["wall_s"]
    throughput = sessions["greedy"]["usage"]["output_tokens"] / sessions["greedy"]["wall_s"]
    label = f"{FAST}-r0"
    # The reason is the failure's first line (and, cut to the terminal's width, the summary's).
    assert f"task 'hurried' on {label}: session took {wall:.2f} s > max_session_s 0.001" in (
        result.outlines
    )
    assert (
        f"task 'greedy' on {label}: throughput {throughput:.1f} tok/s < min_throughput_tok_s 1e+09"
        in result.outlines
    )
    failed = sorted(line.split(" ")[1] for line in result.outlines if line.startswith("FAILED "))
    assert failed == [
        f"greedy/agenttask.toml::greedy[{label}]",
        f"hurried/agenttask.toml::hurried[{label}]",
    ]


def test_fingerprint_differences_are_warned_in_every_output(pytester: pytest.Pytester) -> None:
    """A stored baseline made with another repeat count, concurrency and (partly) task set:
    the comparison is made, and the differences are written wherever its verdict is."""
    make_task(pytester.path, "alpha")
    make_task(pytester.path, "beta")
    common = (f"--agentspeed-endpoint={FAST}", "--agentspeed-time-scale=0.01", "-p")
    saved = pytester.runpytest_subprocess(
        *common, "no:cacheprovider", "--agentspeed-repeat=2", "--agentspeed-save=main", "-n", "2"
    )
    assert saved.ret == pytest.ExitCode.OK
    baseline = read_run(pytester.path / ".agentspeed" / "baselines" / "main.json")
    assert baseline["environment"]["concurrency"] == 2

    # The candidate: beta dropped, gamma added, one repeat, no parallel workers.
    for path in sorted((pytester.path / "beta").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (pytester.path / "beta").rmdir()
    make_task(pytester.path, "gamma")
    result = pytester.runpytest_subprocess(
        *common,
        "no:cacheprovider",
        "--agentspeed-compare=main",
        "--agentspeed-json=run.json",
        "--agentspeed-markdown=summary.md",
        "--agentspeed-html=report.html",
    )
    result.assert_outcomes(passed=2)
    warnings = [
        "baseline fingerprint: task set differs (only in the baseline: beta; "
        "only in the candidate: gamma)",
        "baseline fingerprint: concurrency differs: 2 vs 1",
        "baseline fingerprint: repeat differs: 2 vs 1",
    ]
    (comparison,) = read_run(pytester.path / "run.json")["comparisons"]
    assert comparison["against"] == "baseline main"
    # The fingerprint's warnings, first; a loaded machine may add one that says the
    # measuring process was held up (tests/test_lateness.py checks those).
    assert comparison["warnings"][: len(warnings)] == warnings
    assert all("measurement compromised" in w for w in comparison["warnings"][len(warnings) :])
    warnings = comparison["warnings"]

    lines = result.outlines
    at = lines.index(comparison["line"])
    shown = [line for line in lines[at:] if line.startswith("  warning: ")]
    assert shown == [f"  warning: {w}" for w in warnings]

    markdown = (pytester.path / "summary.md").read_text()
    assert "\n".join(f"- warning: {w}" for w in warnings) in markdown

    report = (pytester.path / "report.html").read_text()
    for warning in warnings:
        assert f"<li>warning: {html.escape(warning)}</li>" in report


def test_a_stored_baseline_without_sessions_is_a_notice(pytester: pytest.Pytester) -> None:
    make_task(pytester.path, "alpha")
    write_run_file(pytester.path / ".agentspeed" / "baselines" / "empty.json", run_record([]))
    result = pytester.runpytest_subprocess(
        f"--agentspeed-endpoint={FAST}",
        "--agentspeed-time-scale=0.01",
        "--agentspeed-compare=empty",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["baseline 'empty' has no sessions; nothing to compare with"])
    assert read_run(pytester.path / "run.json")["comparisons"] == []
    assert (
        json.loads((pytester.path / ".agentspeed/baselines/empty.json").read_text())["sessions"]
        == []
    )
