"""``--agentspeed-benchmark-json``: github-action-benchmark's custom format and the Bencher
Metric Format, validated against their documented shapes (vendored JSON Schemas in
``tests/data``), with the run file's figures and the median's exact confidence intervals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from factories import arm, run_record
from test_plugin import make_scripted_task, make_task

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.metrics import median_ci
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.outputs.benchmark_json import BenchmarkJson, smaller_path
from pytest_agentspeed.outputs.exporters import run_finished
from pytest_agentspeed.records import RunRecord
from pytest_agentspeed.runfile import write_run_file

DATA = Path(__file__).parent / "data"
GITHUB_SCHEMA = json.loads((DATA / "github-action-benchmark-custom.schema.json").read_text())
BMF_SCHEMA = json.loads((DATA / "bencher-metric-format.schema.json").read_text())
GATE = GateSettings()


def load(path: Path) -> Any:
    return json.loads(path.read_text())


# -- the median's interval --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        # 90%: each tail may hold at most 5%. P(Bin(n, 1/2) <= k - 1) for the k-th order
        # statistic: n=4: 1/16 > 5%, none; n=5: 1/32; n=10: 11/1024 (56/1024 > 5%);
        # n=20: 21700/2**20 (60460/2**20 > 5%).
        (4, None),
        (5, (1.0, 5.0)),
        (10, (2.0, 9.0)),
        (20, (6.0, 15.0)),
    ],
)
def test_median_ci_takes_the_binomial_order_statistics(
    n: int, expected: tuple[float, float] | None
) -> None:
    values = [float(v) for v in range(n, 0, -1)]  # unsorted on purpose
    assert median_ci(values, 0.90) == expected


def test_median_ci_widens_with_the_level() -> None:
    values = [float(v) for v in range(1, 21)]
    # 95%: 2.5% per tail: P(<= 4) = 6196/2**20 = 0.59%, P(<= 5) = 2.07%, P(<= 6) = 5.77%.
    assert median_ci(values, 0.95) == (6.0, 15.0)
    # 99%: 0.5% per tail: P(<= 3) = 1351/2**20 = 0.13%, P(<= 4) = 0.59%.
    assert median_ci(values, 0.99) == (4.0, 17.0)


# -- both formats on a synthetic run: exact values, round trip through the run file -----------

A = [40.0, 44.0, 41.0, 49.0, 42.0, 47.0, 43.0, 46.0, 45.0, 48.0]
B = [30.0, 31.0, 32.0, 33.0, 34.0]


def synthetic_run(tmp_path: Path) -> tuple[RunRecord, dict[str, Any]]:
    """Two arms (10 and 5 sessions of 100 s each, one turn), analysed and written as a run
    file; the record the exporters get and the run file as JSON."""
    run = analysed(run_record([*arm("a", A), *arm("b", B)]), GATE)
    write_run_file(tmp_path / "run.json", run)
    return run, load(tmp_path / "run.json")


def test_github_action_benchmark_files_hold_the_run_files_figures(tmp_path: Path) -> None:
    run, run_file = synthetic_run(tmp_path)
    target = tmp_path / "bench.json"
    BenchmarkJson(target, format="github-action-benchmark", ci_level=GATE.ci_level).run_finished(
        run
    )
    bigger, smaller = load(target), load(tmp_path / "bench.smaller.json")
    jsonschema.validate(bigger, GITHUB_SCHEMA)
    jsonschema.validate(smaller, GITHUB_SCHEMA)

    summary = run_file["summary"]
    (comparison,) = run_file["comparisons"]
    when = "run 2026-11-29T00:00:00+00:00, pytest-agentspeed 0.1.0"
    gate_b = f"gate vs a (this run): {comparison['line']}"
    assert bigger == [
        {
            "name": "session throughput P50 [a]",
            "unit": "tok/s",
            "value": summary["a"]["throughput_tok_s"]["p50"],
            "range": "90% CI 41-48",
            "extra": f"n=10 sessions\nthe baseline arm of this run\n{when}",
        },
        {
            "name": "tasks per window [a]",
            "unit": "tasks",
            "value": summary["a"]["tasks_per_window"],
            "extra": f"n=10 sessions\nthe baseline arm of this run\n{when}",
        },
        {
            "name": "session throughput P50 [b]",
            "unit": "tok/s",
            "value": summary["b"]["throughput_tok_s"]["p50"],
            "range": "90% CI 30-34",
            "extra": f"n=5 sessions\n{gate_b}\n{when}",
        },
        {
            "name": "tasks per window [b]",
            "unit": "tasks",
            "value": summary["b"]["tasks_per_window"],
            "extra": f"n=5 sessions\n{gate_b}\n{when}",
        },
    ]
    # The figures themselves, computed here: medians of A and B, 1800 s / 100 s per session.
    assert [e["value"] for e in bigger] == [44.5, 18.0, 32.0, 18.0]
    assert [(e["name"], e["value"], e.get("range")) for e in smaller] == [
        ("median session time [a]", summary["a"]["session_wall_s"]["median"], "90% CI 100-100"),
        ("TTFT P50 [a]", summary["a"]["ttft_s"]["p50"], "90% CI 0-0"),
        ("median session time [b]", summary["b"]["session_wall_s"]["median"], "90% CI 100-100"),
        ("TTFT P50 [b]", summary["b"]["ttft_s"]["p50"], "90% CI 0-0"),
    ]
    assert [e["value"] for e in smaller] == [100.0, 0.0, 100.0, 0.0]
    assert [e["unit"] for e in smaller] == ["s"] * 4
    assert smaller[1]["extra"].startswith("n=10 turns\n")


def test_bencher_metric_format_holds_the_run_files_figures(tmp_path: Path) -> None:
    run, run_file = synthetic_run(tmp_path)
    target = tmp_path / "bench.json"
    BenchmarkJson(target, format="bencher", ci_level=GATE.ci_level).run_finished(run)
    bmf = load(target)
    jsonschema.validate(bmf, BMF_SCHEMA)
    assert not smaller_path(target).exists()
    s = run_file["summary"]
    assert bmf == {
        arm_name: {
            "session-throughput": {
                "value": s[arm_name]["throughput_tok_s"]["p50"],
                "lower_value": lo,
                "upper_value": hi,
            },
            "tasks-per-window": {"value": s[arm_name]["tasks_per_window"]},
            "session-time": {
                "value": s[arm_name]["session_wall_s"]["median"],
                "lower_value": 100.0,
                "upper_value": 100.0,
            },
            "ttft": {"value": s[arm_name]["ttft_s"]["p50"], "lower_value": 0.0, "upper_value": 0.0},
        }
        for arm_name, (lo, hi) in {"a": (41.0, 48.0), "b": (30.0, 34.0)}.items()
    }
    assert list(bmf) == ["a", "b"]


def test_the_schemas_reject_what_the_tools_would_not_read() -> None:
    """The vendored schemas are not vacuous: a value as a string, a missing unit, a metric
    without a value each fail."""
    entry = {"name": "x", "unit": "s", "value": 1.0}
    jsonschema.validate([entry], GITHUB_SCHEMA)
    for broken in ({**entry, "value": "1.0"}, {"name": "x", "value": 1.0}, {**entry, "n": 3}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate([broken], GITHUB_SCHEMA)
    jsonschema.validate({"arm": {"ttft": {"value": 1.0, "lower_value": 0.5}}}, BMF_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"arm": {"ttft": {"lower_value": 0.5}}}, BMF_SCHEMA)


def test_an_arm_without_figures_is_left_out(tmp_path: Path) -> None:
    """An arm whose every session errored has no throughput or tasks per window: no entry
    (the action needs a number), and no failure."""
    errored = [replace(s, outcome="error", turns=()) for s in arm("b", B)]
    run = analysed(run_record([*arm("a", B), *errored]), GATE)
    target = tmp_path / "bench.json"
    BenchmarkJson(target, format="bencher", ci_level=GATE.ci_level).run_finished(run)
    assert list(load(target)) == ["a"]


def test_smaller_path_puts_smaller_before_the_suffix() -> None:
    assert smaller_path(Path("out/bench.json")) == Path("out/bench.smaller.json")
    assert smaller_path(Path("bench")) == Path("bench.smaller")


# -- paths that cannot be written -------------------------------------------------------------


def test_a_file_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    run, _ = synthetic_run(tmp_path)
    (tmp_path / "afile").write_text("")
    blocked = BenchmarkJson(tmp_path / "afile" / "b.json", format="bencher", ci_level=0.9)
    failure = run_finished([blocked], run)
    assert failure is not None
    assert failure.target == tmp_path / "afile" / "b.json"
    # The sibling of the smaller-is-better figures is named when it is the one that fails.
    (tmp_path / "b.smaller.json").mkdir()
    sibling = BenchmarkJson(tmp_path / "b.json", format="github-action-benchmark", ci_level=0.9)
    failure = run_finished([sibling], run)
    assert failure is not None
    assert failure.target == tmp_path / "b.smaller.json"
    assert isinstance(failure.error, IsADirectoryError)


def test_a_directory_is_a_usage_error_and_an_unwritable_path_an_output_error(
    pytester: pytest.Pytester,
) -> None:
    """The oracle agent (no model, no server) is enough to reach the end of a run."""
    make_task(pytester.path, "alpha")
    (pytester.path / "outputs").mkdir()
    early = pytester.runpytest_subprocess(
        "--agentspeed-agent=oracle", "--agentspeed-benchmark-json=outputs"
    )
    assert early.ret == pytest.ExitCode.USAGE_ERROR
    early.stderr.fnmatch_lines(
        ["ERROR: --agentspeed-benchmark-json outputs: is a directory; give a file path"]
    )
    (pytester.path / "afile").write_text("")
    late = pytester.runpytest_subprocess(
        "--agentspeed-agent=oracle",
        "--agentspeed-benchmark-json=afile/b.json",
        "-p",
        "no:cacheprovider",
    )
    assert late.ret == pytest.ExitCode.USAGE_ERROR
    late.stdout.fnmatch_lines(["ERROR: cannot write afile/b.json: *; the run's sessions are kept*"])
    assert "Traceback" not in late.stdout.str() + late.stderr.str()


# -- one real run ------------------------------------------------------------------------------


def test_a_real_run_writes_the_run_files_figures(pytester: pytest.Pytester) -> None:
    """One scripted task (the gate tests', tool-light: a few seconds) on two simulated
    endpoints, two sessions each: the files validate, and hold the run file's figures for
    both arms (too few sessions for a throughput CI; the turns give TTFT one)."""
    make_scripted_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess(
        "--agentspeed-endpoint=sim:standard",
        "--agentspeed-endpoint=sim:ultraspeed",
        "--agentspeed-repeat=2",
        "--agentspeed-time-scale=0.05",
        "--agentspeed-json=run.json",
        "--agentspeed-benchmark-json=bench.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    run_file = load(pytester.path / "run.json")
    bigger = load(pytester.path / "bench.json")
    smaller = load(pytester.path / "bench.smaller.json")
    jsonschema.validate(bigger, GITHUB_SCHEMA)
    jsonschema.validate(smaller, GITHUB_SCHEMA)
    by_name = {e["name"]: e for e in bigger + smaller}
    for name, s in run_file["summary"].items():
        assert by_name[f"session throughput P50 [{name}]"]["value"] == s["throughput_tok_s"]["p50"]
        assert by_name[f"tasks per window [{name}]"]["value"] == s["tasks_per_window"]
        assert by_name[f"median session time [{name}]"]["value"] == s["session_wall_s"]["median"]
        ttft = by_name[f"TTFT P50 [{name}]"]
        assert ttft["value"] == s["ttft_s"]["p50"]
        assert ttft["range"].startswith("90% CI ")
        assert ttft["extra"].startswith(f"n={s['ttft_s']['n']} turns\n")
        assert "range" not in by_name[f"session throughput P50 [{name}]"]
    assert len(bigger) == len(smaller) == 4
    (comparison,) = run_file["comparisons"]
    assert by_name["TTFT P50 [sim:ultraspeed]"]["extra"].splitlines()[1] == (
        f"gate vs sim:standard (this run): {comparison['line']}"
    )
