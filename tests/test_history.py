"""``agentspeed report --history DIR``: the gate metric's trend over saved runs, each step
judged as ``agentspeed compare`` judges it, drawn in the report and checked in real Chromium."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import arm, run_record
from test_report import browser, open_page  # noqa: F401  (browser is a fixture)

from pytest_agentspeed.analysis.compare import compare_runs
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.history import history_of, read_history
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.cli import main
from pytest_agentspeed.records import RunRecord
from pytest_agentspeed.runfile import read_run_file, write_run_file

ENDPOINT = "sim:standard"
#: Five runs of ten sessions: three around 50 tok/s, then a step down to about 35.
LEVELS = (50.0, 50.0, 50.0, 35.0, 35.0)
#: File names out of time order, so the history must sort by the runs' own times.
NAMES = ("c-run.json", "a-run.json", "e-run.json", "b-run.json")


def throughputs(k: int) -> list[float]:
    """Run ``k``'s sessions: its level, each slot within 4% of it (deterministic)."""
    return [LEVELS[k] * (1 + 0.04 * math.sin(3 * j + 7 * k)) for j in range(10)]


def saved_run(k: int, extra: list[Any] | None = None) -> RunRecord:
    sessions = arm(ENDPOINT, throughputs(k)) + (extra or [])
    run = replace(run_record(sessions), created_at=f"2026-11-0{k + 1}T08:00:00+00:00")
    return analysed(run, GateSettings())


@pytest.fixture
def history_dir(tmp_path: Path) -> tuple[Path, Path]:
    """The first four runs in DIR (and another tool's JSON beside them), the fifth as RUN.json
    outside it."""
    directory = tmp_path / "runs"
    for k, name in enumerate(NAMES):
        write_run_file(directory / name, saved_run(k))
    (directory / "bench.json").write_text('[{"name": "throughput", "value": 50}]')
    current = tmp_path / "run.json"
    write_run_file(current, saved_run(4))
    return directory, current


def test_history_marks_the_step_and_renders_in_chromium(
    history_dir: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    browser: Any,  # noqa: F811
) -> None:
    directory, current = history_dir
    report = tmp_path / "report.html"
    assert main(["report", str(current), "-o", str(report), "--history", str(directory)]) == 0
    out, err = capsys.readouterr()
    assert err == (
        f"agentspeed report: note: skipped {directory / 'bench.json'}: not an agentspeed run file "
        "(top level is not an object)\n"
    )
    assert out.splitlines()[1] == "history: 5 runs, 1 endpoint(s), 1 step(s) the gate calls FAIL"

    # The analysis: time order (not file-name order), RUN.json last, the summary's estimate.
    runs, _ = read_history(directory, current, read_run_file(current))
    assert [r.label for r in runs] == [*NAMES, "run.json"]
    (trend,) = history_of(runs, GateSettings()).trends
    assert trend.endpoint == ENDPOINT
    for k, (saved, point) in enumerate(zip(runs, trend.points, strict=True)):
        stored = saved.run.summary[ENDPOINT]["throughput_tok_s"]["p50"]
        assert point.value == stored  # the run file's own summary, exactly
        ordered = sorted(s.throughput_tok_s or 0.0 for s in saved.run.sessions)
        assert point.value == pytest.approx((ordered[4] + ordered[5]) / 2, abs=1e-12)
        # Ten sessions at alpha 0.05: P(Binomial(10, 1/2) <= 1) = 11/1024 < 0.05 <= 56/1024,
        # so the sign test's CI runs from the 2nd to the 9th of the sorted values.
        assert point.ci == (ordered[1], ordered[8])
        assert point.sessions == 10
        assert point.value is not None
        assert abs(point.value / LEVELS[k] - 1) < 0.05
    verdicts = [step.verdict for step in trend.steps]
    assert verdicts == ["PASS", "PASS", "FAIL", "PASS"]
    # Each step is the comparison `agentspeed compare` makes of the two files.
    fail = trend.steps[2]
    direct = compare_runs(
        runs[2].run,
        runs[3].run,
        baseline_arm=ENDPOINT,
        candidate_arm=ENDPOINT,
        against=runs[2].label,
        settings=GateSettings(),
    )
    assert (fail.ratio, fail.ci, fail.p, fail.line) == (
        direct.ratio,
        direct.ci,
        direct.p,
        direct.line,
    )
    assert fail.paired
    assert fail.ratio is not None
    assert 0.65 < fail.ratio < 0.75

    page, errors, requests, _ = open_page(browser, report)
    assert errors == []
    assert requests == [report.as_uri()]
    section = page.locator("#history")
    assert section.locator("h3").all_text_contents() == [f"{ENDPOINT} 1 FAIL"]
    chart = section.locator("svg.chart")
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert box["height"] > 150
    points = chart.locator("circle.history-point")
    assert points.evaluate_all("els => els.map(e => e.dataset.run)") == [*NAMES, "run.json"]
    shown = [float(v) for v in points.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert shown == [p.value for p in trend.points]
    # Exactly one marker, over the run after the step.
    step = chart.locator("g.history-step")
    assert step.count() == 1
    assert step.get_attribute("data-verdict") == "FAIL"
    marker_x = float(re.match(r"translate\(([\d.]+),", step.get_attribute("transform") or "")[1])  # type: ignore[index]
    assert marker_x == float(points.nth(3).get_attribute("cx") or "nan")
    # The points climb and fall as the values do (SVG y grows downwards).
    ys = [float(points.nth(i).get_attribute("cy") or "nan") for i in range(5)]
    assert ys[3] > ys[2]
    assert ys[4] > ys[1]
    rows = section.locator("table.history-table tbody tr")
    assert rows.evaluate_all("els => els.map(e => e.dataset.verdict || '')") == [
        "",
        "PASS",
        "PASS",
        "FAIL",
        "PASS",
    ]
    assert rows.nth(3).locator("td").nth(4).text_content() == (
        f"{fail.ratio:.2f} [{fail.ci[0]:.2f}-{fail.ci[1]:.2f}]"  # type: ignore[index]
    )
    page.close()


def test_an_endpoint_is_compared_only_with_its_own_runs(tmp_path: Path) -> None:
    """A second endpoint in runs 1 and 3 only: its one step joins those two runs, and the
    latest run's endpoints come first."""
    other = arm("sim:fast", throughputs(0))
    directory = tmp_path / "runs"
    write_run_file(directory / "r0.json", saved_run(0))
    write_run_file(directory / "r1.json", saved_run(1, other))
    write_run_file(directory / "r2.json", saved_run(2))
    current = tmp_path / "run.json"
    write_run_file(current, saved_run(3, other))
    runs, notes = read_history(directory, current, read_run_file(current))
    assert notes == []
    history = history_of(runs, GateSettings())
    assert [t.endpoint for t in history.trends] == [ENDPOINT, "sim:fast"]
    fast = history.trends[1]
    assert [p.run for p in fast.points] == ["r1.json", "run.json"]
    assert [s.against for s in fast.steps] == ["r1.json"]
    assert len(history.trends[0].steps) == 3


def test_session_time_history_states_the_summary_mean(history_dir: tuple[Path, Path]) -> None:
    directory, current = history_dir
    runs, _ = read_history(directory, current, read_run_file(current))
    gate = GateSettings(metric="session_wall_s")
    (trend,) = history_of(runs, gate).trends
    for saved, point in zip(runs, trend.points, strict=True):
        assert point.value == saved.run.summary[ENDPOINT]["session_wall_s"]["mean"] == 100.0
        assert point.ci == (100.0, 100.0)  # every session took 100 s: no spread to resample


def test_a_copy_of_the_run_in_dir_is_one_point(history_dir: tuple[Path, Path]) -> None:
    directory, current = history_dir
    (directory / "copy.json").write_bytes(current.read_bytes())
    runs, _ = read_history(directory, current, read_run_file(current))
    assert [r.label for r in runs] == [*NAMES, "run.json"]
    # RUN.json inside DIR is read once, under its name there.
    inside = directory / "run.json"
    inside.write_bytes(current.read_bytes())
    runs, _ = read_history(directory, inside, read_run_file(inside))
    assert len(runs) == 5
    assert runs[-1].path == inside


#: Each bad input and the message after ``agentspeed report: error: `` (``{dir}``: DIR).
BAD_HISTORY = {
    "missing": "--history {dir}: no such directory",
    "a file": "--history {dir}: not a directory",
    "no run files": "--history {dir}: no run files (*.json) in it",
    "truncated": "{dir}/b-run.json: not valid JSON (it stops mid-document at line 3; is the "
    "file truncated?)",
    "newer schema": "{dir}/b-run.json: schema 'agentspeed.run/2' is not supported by this "
    "version (it reads agentspeed.run/1.x); upgrade pytest-agentspeed",
    "bad time": "{dir}/b-run.json: created_at 'yesterday' is not an ISO 8601 time",
}


@pytest.mark.parametrize("case", BAD_HISTORY)
def test_bad_history_input_is_one_line_and_exit_2(
    case: str,
    history_dir: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory, current = history_dir
    bad = directory / "b-run.json"
    if case == "missing":
        directory = tmp_path / "nowhere"
    elif case == "a file":
        directory = current
    elif case == "no run files":
        directory = tmp_path / "empty"
        directory.mkdir()
        (directory / "notes.txt").write_text("{}")
    elif case == "truncated":
        bad.write_text(bad.read_text()[:40])
    elif case == "newer schema":
        bad.write_text(bad.read_text().replace('"agentspeed.run/1', '"agentspeed.run/2', 1))
    else:
        bad.write_text(bad.read_text().replace("2026-11-04T08:00:00+00:00", "yesterday"))
    report = tmp_path / "report.html"
    code = main(["report", str(current), "-o", str(report), "--history", str(directory)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err == f"agentspeed report: error: {BAD_HISTORY[case].format(dir=directory)}\n"
    assert not report.exists()
