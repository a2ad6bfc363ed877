"""Comparisons in the run file: typed records written and read byte for byte, run files of
older versions read as they were shown, and no output reading a verdict back out of a line."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from factories import arm, run_record

from pytest_agentspeed import RunFileError, cli
from pytest_agentspeed.analysis.compare import compare_arms
from pytest_agentspeed.analysis.fingerprint import not_compared
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.outputs.html_report import render_report
from pytest_agentspeed.outputs.table import table_of
from pytest_agentspeed.outputs.terminal import markdown_report, scale_note, verdict_lines
from pytest_agentspeed.records import NOT_COMPARED, Comparison, RateCheck, RunRecord
from pytest_agentspeed.runfile import read_run_file, write_run_file

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def golden(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``tests/golden/inputs.py``: the run the golden files were written from."""
    # It imports ``tests.factories``: the repository root must be importable.
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1]))
    return importlib.import_module("tests.golden.inputs")


def test_the_run_file_is_written_byte_for_byte_and_reads_typed(
    golden: ModuleType, tmp_path: Path
) -> None:
    run, _ = golden.inputs()
    path = tmp_path / "run.json"
    write_run_file(path, run)
    assert path.read_bytes() == (GOLDEN / "run.json").read_bytes()

    read = read_run_file(path)
    assert all(isinstance(c, Comparison) for c in read.comparisons)
    assert [c.verdict for c in read.comparisons] == ["FAIL", "INCONCLUSIVE", "INCONCLUSIVE"]
    assert read.comparisons[0].error_rate == RateCheck(
        what="errors", counts=(0, 0), sessions=(10, 10), p=1.0, regressed=False
    )
    assert read.comparisons == run.comparisons
    again = tmp_path / "again.json"
    write_run_file(again, read)
    assert again.read_bytes() == path.read_bytes()


def test_markdown_and_html_are_the_same_from_memory_and_from_the_file(
    golden: ModuleType, tmp_path: Path
) -> None:
    run, stored = golden.inputs()
    against = f"baseline {golden.BASELINE_NAME}"
    write_run_file(tmp_path / "run.json", run)
    write_run_file(tmp_path / "stored.json", stored)
    from_file = read_run_file(tmp_path / "run.json"), read_run_file(tmp_path / "stored.json")
    for r, s in ((run, stored), from_file):
        table = table_of(r, s, against, metric=golden.GATE.metric)
        markdown = markdown_report(table, r.comparisons, note=scale_note(r))
        assert markdown == (GOLDEN / "summary.md").read_text()
        html = render_report(r, baseline=s, baseline_name=against, gate=golden.GATE)
        assert html == (GOLDEN / "report.html").read_text()


#: The first comparison's report line in the shape of the first gate's (no MDE).
OLD_LINE = "throughput ratio 0.90 [90% CI 0.85-0.95], p=0.003, n=10/10 paired -> FAIL"


def _older(data: dict[str, Any]) -> dict[str, Any]:
    """A comparison as the first gate wrote it: no p in the estimate's direction, no
    error-rate check, no refusals."""
    return {k: v for k, v in data.items() if k not in ("p_shown", "error_rate", "refused")}


def test_a_run_file_of_an_older_version_reads_and_shows_as_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads((GOLDEN / "run.json").read_text())
    now = RunRecord.from_json(data)
    data["comparisons"] = [_older(c) for c in data["comparisons"]]
    data["comparisons"][0]["line"] = OLD_LINE
    old = RunRecord.from_json(data)
    first = old.comparisons[0]
    assert (first.verdict, first.error_rate, first.refused) == ("FAIL", None, ())
    assert first.p_shown == now.comparisons[0].p_shown

    # The line the file holds, verbatim; then the same details (no session ended in errors).
    lines = verdict_lines(old.comparisons)
    assert lines[0] == OLD_LINE
    assert lines[1:] == verdict_lines(now.comparisons)[1:]

    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    assert cli.main(["show", str(path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[1] == "simulated delays x0.05"
    assert shown[-len(lines) :] == lines

    html = render_report(old)
    assert "<td>sessions ended by endpoint errors (Fisher&#39;s exact p)</td><td>-</td>" in html


def test_a_comparison_without_its_line_is_a_malformed_run_file() -> None:
    data = json.loads((GOLDEN / "run.json").read_text())
    del data["comparisons"][0]["line"]
    with pytest.raises(RunFileError, match=r"^x\.json: malformed run file \(missing key 'line'\)$"):
        RunRecord.from_json(data, source="x.json")


def test_an_undefined_statistic_is_none_in_memory_as_in_the_file() -> None:
    # Arms that do not overlap: Brunner-Munzel's variance estimate is zero, its p undefined.
    made = compare_arms(
        arm("A", [50.0 + i for i in range(10)]),
        arm("B", [100.0 + i for i in range(10)]),
        baseline="A",
        candidate="B",
        against="this run",
        settings=GateSettings(),
    )
    assert made.brunner_munzel_p is None
    assert "Brunner-Munzel p=n/a" in verdict_lines([made])[1]
    assert Comparison.from_json(made.to_json()) == made


def test_a_refused_comparison_round_trips() -> None:
    sessions = arm("A", [50.0] * 3)
    refused = not_compared(
        sessions,
        sessions,
        baseline="A",
        candidate="A",
        against="baseline main",
        settings=GateSettings(),
        refused=["the baseline ran at time scale 1 and this run at 0.05"],
    )
    data = refused.to_json()
    assert data["verdict"] == NOT_COMPARED
    assert data["pass_rate"]["p"] is None
    again = Comparison.from_json(json.loads(json.dumps(data)))
    assert math.isnan(again.pass_rate.p)
    assert again.to_json() == data
    assert verdict_lines([again]) == [
        "not compared: the baseline ran at time scale 1 and this run at 0.05; "
        "record a new baseline",
        "  A vs A (baseline main)",
    ]


def test_a_run_without_comparisons_writes_an_empty_list(tmp_path: Path) -> None:
    write_run_file(tmp_path / "run.json", run_record(arm("A", [50.0] * 2)))
    assert json.loads((tmp_path / "run.json").read_text())["comparisons"] == []
    assert read_run_file(tmp_path / "run.json").comparisons == ()
