"""A stored baseline recorded under other conditions gives no verdict: refused, with its own
exit status, before any session runs (pytest) or instead of a verdict (agentspeed compare).
Differences that only weaken a comparison still warn and still give a verdict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import agentspeed
from factories import arm, paired_arms, run_record
from test_plugin import make_task

from pytest_agentspeed.runfile import write_run_file

#: The documented exit status of a refused baseline (docs/errors.md), spelled out so these
#: tests also run against code that does not define it.
NOT_COMPARED_EXIT = 6
FAST = "sim:ultraspeed?jitter=0"
VERDICTS = ("-> FAIL", "-> PASS", "-> IMPROVED", "-> INCONCLUSIVE")


def run(pytester: pytest.Pytester, *args: str, scale: str = "0.05") -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--agentspeed-time-scale={scale}",
        f"--agentspeed-endpoint={FAST}",
        "-p",
        "no:cacheprovider",
        *args,
    )


def last_lines(result: pytest.RunResult, n: int) -> list[str]:
    return [line for line in result.outlines if line.strip()][-n:]


def save_main(pytester: pytest.Pytester, *names: str, repeat: int = 1) -> Path:
    for name in names:
        make_task(pytester.path, name)
    saved = run(pytester, "--agentspeed-save=main", f"--agentspeed-repeat={repeat}")
    assert saved.ret == pytest.ExitCode.OK, saved.stdout.str()
    return pytester.path / ".agentspeed" / "baselines" / "main.json"


def edit(path: Path, change: dict[str, Any], *, section: str = "config") -> None:
    data = json.loads(path.read_text())
    data[section].update(change)
    data[section] = {k: v for k, v in data[section].items() if v is not ...}
    path.write_text(json.dumps(data))


def assert_refused_early(result: pytest.RunResult, line: str) -> None:
    """Refused before any session: the reason is the last line before pytest's count, the
    distinct exit status, no verdict anywhere."""
    assert result.ret == NOT_COMPARED_EXIT
    assert last_lines(result, 2)[0] == line
    assert "PASSED" not in result.stdout.str()
    assert "passed" not in last_lines(result, 1)[0]
    assert "deselected" in last_lines(result, 1)[0]
    for verdict in VERDICTS:
        assert verdict not in result.stdout.str()


def test_another_time_scale_is_refused_before_any_session_runs(
    pytester: pytest.Pytester,
) -> None:
    baseline = save_main(pytester, "alpha", "beta")
    assert json.loads(baseline.read_text())["config"]["metric_definitions"] == {
        "throughput_tok_s": 1,
        "session_wall_s": 1,
        "tasks_per_window": 1,
    }
    result = run(pytester, "--agentspeed-compare=main", "--agentspeed-json=run.json", scale="0.1")
    assert_refused_early(
        result,
        "not compared: the baseline 'main' ran at time scale 0.05 and this run at 0.1; "
        "record a new baseline (no session was run)",
    )
    result.assert_outcomes(deselected=2)
    assert not (pytester.path / "run.json").exists()  # nothing was measured


def test_a_disjoint_task_set_is_refused_before_any_session_runs(
    pytester: pytest.Pytester,
) -> None:
    save_main(pytester, "alpha")
    shutil.rmtree(pytester.path / "alpha")
    make_task(pytester.path, "beta")
    result = run(pytester, "--agentspeed-compare=main")
    assert_refused_early(
        result,
        "not compared: the baseline 'main' and this run have no task in common (alpha; beta); "
        "record a new baseline (no session was run)",
    )


def test_another_agent_or_metric_definition_is_refused(pytester: pytest.Pytester) -> None:
    baseline = save_main(pytester, "alpha")
    original = baseline.read_text()
    edit(baseline, {"agent": "smart"})
    agent = run(pytester, "--agentspeed-compare=main")
    assert_refused_early(
        agent,
        "not compared: the baseline 'main' ran the smart agent and this run the builtin "
        "agent; record a new baseline (no session was run)",
    )

    baseline.write_text(original)
    edit(baseline, {"metric_definitions": {"throughput_tok_s": 0}})
    metric = run(pytester, "--agentspeed-compare=main")
    assert_refused_early(
        metric,
        "not compared: the baseline 'main' measured throughput_tok_s by definition 0 and this "
        "run by definition 1; record a new baseline (no session was run)",
    )

    # A run file from before the field existed reads as definition 1: compared, a verdict.
    baseline.write_text(original)
    edit(baseline, {"metric_definitions": ...})
    assert "metric_definitions" not in json.loads(baseline.read_text())["config"]
    old = run(pytester, "--agentspeed-compare=main")
    assert old.ret == pytest.ExitCode.OK
    assert any(v in old.stdout.str() for v in VERDICTS)
    assert "not compared" not in old.stdout.str()


def test_weakening_differences_warn_and_still_decide(pytester: pytest.Pytester) -> None:
    # Baseline: alpha and beta, 2 repeats, recorded with 2 sessions in parallel. This run:
    # beta and gamma, 1 repeat, 1 at a time. One common slot (beta/r0) cannot pair: the arms
    # are compared unpaired, and 4 against 2 sessions are too few for a verdict other than
    # INCONCLUSIVE, which says so; the point is that it is a comparison, with warnings.
    baseline = save_main(pytester, "alpha", "beta", repeat=2)
    edit(baseline, {"concurrency": 2}, section="environment")
    shutil.rmtree(pytester.path / "alpha")
    make_task(pytester.path, "gamma")
    result = run(pytester, "--agentspeed-compare=main", "--agentspeed-json=run.json")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=2)
    (comparison,) = json.loads((pytester.path / "run.json").read_text())["comparisons"]
    assert comparison["refused"] == []
    assert comparison["verdict"] == "INCONCLUSIVE"
    assert comparison["n"] == [4, 2]
    assert comparison["reasons"][0].startswith(
        "4 and 2 sessions cannot decide at alpha 0.05 (the smallest possible p is 0.0667)"
    )
    # (A loaded machine may add the clock's warning; it is not what this test is about.)
    assert [w for w in comparison["warnings"] if "measurement compromised" not in w] == [
        "baseline fingerprint: task set differs (only in the baseline: alpha; "
        "only in the candidate: gamma)",
        "baseline fingerprint: concurrency differs: 2 vs 1",
        "baseline fingerprint: repeat differs: 2 vs 1",
    ]
    assert "not compared" not in result.stdout.str()
    result.stdout.fnmatch_lines(["throughput ratio *-> *", "  warning: baseline fingerprint: *"])


# -- agentspeed compare ------------------------------------------------------------------------


def test_agentspeed_compare_refuses_with_exit_6(tmp_path: Path) -> None:
    base, slower = paired_arms(0.70, 0.05, 10)
    paths = {name: tmp_path / f"{name}.json" for name in ("base", "scale", "agent", "tasks")}
    write_run_file(paths["base"], run_record(arm("old", base), time_scale=1.0))
    write_run_file(paths["scale"], run_record(arm("new", slower), time_scale=0.05))
    other_agent = run_record(arm("new", slower), time_scale=1.0)
    write_run_file(paths["agent"], other_agent)
    edit(paths["agent"], {"agent": "oracle"})
    other_tasks = [s for s in arm("new", slower) if s.task == "t0"]
    write_run_file(
        paths["tasks"],
        run_record([s for s in arm("old", base) if s.task != "t0"], time_scale=1.0),
    )
    cases = {
        "scale": (
            paths["base"],
            paths["scale"],
            f"the baseline {paths['base']} ran at time scale 1 and the candidate "
            f"{paths['scale']} at 0.05",
        ),
        "agent": (
            paths["base"],
            paths["agent"],
            f"the baseline {paths['base']} ran the builtin agent and the candidate "
            f"{paths['agent']} the oracle agent",
        ),
    }
    # Disjoint tasks: the baseline ran t1..t4, the candidate only t0.
    write_run_file(tmp_path / "t0.json", run_record(other_tasks, time_scale=1.0))
    cases["tasks"] = (
        paths["tasks"],
        tmp_path / "t0.json",
        f"the baseline {paths['tasks']} and the candidate {tmp_path / 't0.json'} have no task "
        "in common (t1, t2, t3, t4; t0)",
    )
    for base_path, cand_path, reason in cases.values():
        result = agentspeed("compare", str(base_path), str(cand_path))
        assert result.returncode == NOT_COMPARED_EXIT, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        line = f"not compared: {reason}; record a new baseline"
        # The line, then the arms it concerns: the last lines printed.
        assert lines[-2:] == [line, f"  new vs old ({base_path})"]
        for verdict in VERDICTS:
            assert verdict not in result.stdout
        assert result.stderr == ""


def test_agentspeed_compare_weakening_difference_warns_and_fails(tmp_path: Path) -> None:
    base, slower = paired_arms(0.70, 0.05, 10)
    write_run_file(tmp_path / "base.json", run_record(arm("old", base), concurrency=2))
    write_run_file(tmp_path / "cand.json", run_record(arm("new", slower)))
    result = agentspeed("compare", str(tmp_path / "base.json"), str(tmp_path / "cand.json"))
    assert result.returncode == 1
    assert "-> FAIL" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "  warning: baseline fingerprint: concurrency differs: 2 vs 1"
    )


def test_html_and_markdown_show_the_refusal(tmp_path: Path) -> None:
    from pytest_agentspeed.analysis.compare import compare_runs
    from pytest_agentspeed.analysis.gate import GateSettings
    from pytest_agentspeed.analysis.summary import analysed
    from pytest_agentspeed.outputs.html_report import render_report
    from pytest_agentspeed.outputs.table import table_of
    from pytest_agentspeed.outputs.terminal import markdown_report

    base, slower = paired_arms(0.70, 0.05, 10)
    baseline = analysed(run_record(arm("old", base), time_scale=1.0), GateSettings())
    run = analysed(run_record(arm("new", slower), time_scale=0.05), GateSettings())
    line = (
        "not compared: the baseline base.json ran at time scale 1 and this run at 0.05; "
        "record a new baseline"
    )
    html = render_report(run, baseline=baseline, baseline_name="baseline base.json")
    assert '<div class="banner v-NOT-COMPARED">' in html
    assert f"<code>{line}</code>" in html
    comparison = compare_runs(
        baseline,
        run,
        baseline_arm="old",
        candidate_arm="new",
        against="baseline base.json",
        settings=GateSettings(),
        baseline_label="the baseline base.json",
    )
    markdown = markdown_report(table_of(run), [comparison])
    assert f"**NOT COMPARED** `{line}`" in markdown
