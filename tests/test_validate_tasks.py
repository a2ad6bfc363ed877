"""Validating a task suite without a model: ``nop`` (every check must fail untouched) and
``oracle`` (every check must pass with the solution), in real pytest runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_plugin import make_task, read_run

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def body(check: str) -> str:
    return f'instruction = "Fix greeting.txt."\n[check]\ncommand = "{check}"\ntimeout_s = 30\n'


def validate(pytester: pytest.Pytester, agent: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--agentspeed-agent={agent}", "--agentspeed-json=run.json", "-p", "no:cacheprovider", *args
    )


def test_a_valid_suite_passes_under_nop_and_exits_0(
    pytester: pytest.Pytester, example_suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(pytester.mkdir("tmp")))
    result = validate(pytester, "nop", str(example_suite))
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "*agentspeed: 6 sessions with the nop agent (no model)*",
            "nop agent: 6 of 6 tasks valid (their check fails on the untouched workspace)",
        ]
    )
    # The run file stays honest: every check failed, as it should have.
    sessions = read_run(pytester.path / "run.json")["sessions"]
    assert [(s["agent"], s["outcome"]) for s in sessions] == [("nop", "failed")] * 6
    assert all(s["check_exit_code"] not in (0, None) for s in sessions)
    # nop changes nothing: no workspace is worth keeping.
    assert list((pytester.path / "tmp").iterdir()) == []


def test_a_task_whose_check_passes_untouched_fails_under_nop(pytester: pytest.Pytester) -> None:
    make_task(pytester.path, "valid")
    make_task(pytester.path, "broken", body=body("true"))
    result = validate(pytester, "nop")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "task 'broken' on nop: this task's check passes without any change",
            "nop agent: 1 of 2 tasks valid (their check fails on the untouched workspace)",
        ]
    )
    assert "workspace kept for" not in result.stdout.str()
    outcomes = {s["task"]: s["outcome"] for s in read_run(pytester.path / "run.json")["sessions"]}
    assert outcomes == {"valid": "failed", "broken": "passed"}


@pytest.mark.parametrize("agent", ["nop", "oracle"])
def test_a_check_that_cannot_run_is_said_so_under_both_agents(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, agent: str
) -> None:
    monkeypatch.setenv("TMPDIR", str(pytester.mkdir("tmp")))  # the oracle's workspaces stay
    make_task(pytester.path, "missing", body=body("no-such-command-agentspeed --check"))
    make_task(pytester.path, "noexec", body=body("./check.sh"))
    for task in ("missing", "noexec"):
        (pytester.path / task / "workspace" / "check.sh").write_text("#!/bin/sh\nexit 1\n")
    result = validate(pytester, agent)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"task 'missing' on {agent}: check command could not run "
            "(exit 127: command not found): no-such-command-agentspeed --check",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            f"task 'noexec' on {agent}: check command could not run (exit 126: not executable): "
            "./check.sh"
        ]
    )
    codes = {
        s["task"]: s["check_exit_code"] for s in read_run(pytester.path / "run.json")["sessions"]
    }
    assert codes == {"missing": 127, "noexec": 126}


def test_no_baseline_is_saved_from_an_agent_without_a_model(pytester: pytest.Pytester) -> None:
    make_task(pytester.path, "alpha")
    result = validate(pytester, "oracle", "--agentspeed-save=main")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["the oracle agent measures no model: no baseline saved or compared"]
    )
    assert "saved baseline" not in result.stdout.str()
    assert not (pytester.path / ".agentspeed" / "baselines" / "main.json").exists()
