"""How strict the gate is: ``--tolerance``, ``--margin``, ``--inconclusive`` and
``--gate-metric`` of ``agentspeed compare`` and ``agentspeed merge``, on run files built by hand
so each verdict is exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import agentspeed
from factories import arm, paired_arms, run_record, session

from pytest_agentspeed.records import SessionRecord
from pytest_agentspeed.runfile import write_run_file

USAGE_TAIL = "agentspeed compare: error: "


def verdict_block(stdout: str) -> list[str]:
    """The comparison's report line and what follows it (details, reasons, warnings)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if " -> " in line)
    return lines[start:]


@pytest.fixture
def slower_7(tmp_path: Path) -> tuple[Path, Path]:
    """A candidate 7% slower than its baseline, with little noise: significant."""
    base, cand = paired_arms(0.93, 0.02, 20)
    paths = tmp_path / "base.json", tmp_path / "cand.json"
    write_run_file(paths[0], run_record(arm("old", base)))
    write_run_file(paths[1], run_record(arm("new", cand)))
    return paths


@pytest.fixture
def same_speed(tmp_path: Path) -> tuple[Path, Path]:
    """A candidate as fast as its baseline, noisy enough that the MDE is 3.9%."""
    base, cand = paired_arms(1.0, 0.05, 20, seed=2)
    paths = tmp_path / "base.json", tmp_path / "same.json"
    write_run_file(paths[0], run_record(arm("old", base)))
    write_run_file(paths[1], run_record(arm("new", cand)))
    return paths


LINE_7 = "throughput ratio 0.93 [90% CI 0.92-0.94], p<1e-04, n=20/20 paired, MDE 1.6% -> "


def test_tolerance_decides_whether_a_7_percent_slowdown_fails(
    slower_7: tuple[Path, Path],
) -> None:
    base, cand = slower_7
    strict = agentspeed("compare", base, cand)  # the default tolerance, 5%
    assert strict.returncode == 1, strict.stderr
    assert verdict_block(strict.stdout)[0] == LINE_7 + "FAIL"
    assert verdict_block(strict.stdout)[2] == (
        "  new is 7% slower than old (CI 6-8%), beyond the 5% tolerance"
    )

    lenient = agentspeed("compare", base, cand, "--tolerance", "10%", "--margin", "20%")
    assert lenient.returncode == 0, lenient.stderr
    assert verdict_block(lenient.stdout)[0] == LINE_7 + "PASS"
    assert verdict_block(lenient.stdout)[2] == (
        "  any regression is smaller than the 20% margin (lower bound 0.92)"
    )


@pytest.mark.parametrize("given", ["6.5%", "0.065", " 6.5% "])
def test_tolerance_reads_percentages_and_fractions_alike(
    slower_7: tuple[Path, Path], given: str
) -> None:
    # 7% slower: beyond a 6.5% tolerance (not beyond 7.5%, below).
    result = agentspeed("compare", *slower_7, "--tolerance", given)
    assert result.returncode == 1, result.stderr
    assert verdict_block(result.stdout)[2] == (
        "  new is 7% slower than old (CI 6-8%), beyond the 6.5% tolerance"
    )
    wider = agentspeed("compare", *slower_7, "--tolerance", "7.5%", "--margin", "0.2")
    assert wider.returncode == 0, wider.stderr
    assert verdict_block(wider.stdout)[0] == LINE_7 + "PASS"


def test_margin_decides_between_pass_and_inconclusive(same_speed: tuple[Path, Path]) -> None:
    line = "throughput ratio 1.00 [90% CI 0.98-1.04], p=0.378, n=20/20 paired, MDE 3.9% -> "
    default = agentspeed("compare", *same_speed)
    assert default.returncode == 0, default.stderr
    assert verdict_block(default.stdout)[0] == line + "PASS"
    assert verdict_block(default.stdout)[2] == (
        "  any regression is smaller than the 10% margin (lower bound 0.98)"
    )

    six = agentspeed("compare", *same_speed, "--margin", "0.06")
    assert verdict_block(six.stdout)[2] == (
        "  any regression is smaller than the 6% margin (lower bound 0.98)"
    )

    # A 3% margin is below what 20 pairs can see (MDE 3.9%): no PASS.
    tight = agentspeed("compare", *same_speed, "--margin", "3%", "--tolerance", "1%")
    assert tight.returncode == 0, tight.stderr  # INCONCLUSIVE only warns by default
    assert verdict_block(tight.stdout)[0] == line + "INCONCLUSIVE"
    assert verdict_block(tight.stdout)[2] == (
        "  the run cannot tell a 3% regression from noise (MDE 3.9%); "
        "about 34 sessions per arm would decide it"
    )


def test_inconclusive_exits_1_only_when_asked(same_speed: tuple[Path, Path]) -> None:
    tight = ("--margin", "3%", "--tolerance", "1%")
    codes = {
        policy: agentspeed("compare", *same_speed, *tight, *extra).returncode
        for policy, extra in [
            ("default", ()),
            ("warn", ("--inconclusive", "warn")),
            ("fail", ("--inconclusive", "fail")),
        ]
    }
    assert codes == {"default": 0, "warn": 0, "fail": 1}
    # The policy changes the exit code, not the verdict: a PASS stays 0 under "fail".
    assert agentspeed("compare", *same_speed, "--inconclusive", "fail").returncode == 0


def sessions_of(name: str, walls: np.ndarray, throughputs: np.ndarray) -> list[SessionRecord]:
    return [
        session(name, i, float(tp), wall=float(w))
        for i, (w, tp) in enumerate(zip(walls, throughputs, strict=True))
    ]


def test_gate_metric_picks_what_is_compared(tmp_path: Path) -> None:
    """Sessions 30% longer at the same throughput (more tokens each): throughput PASSes,
    session time and tasks per window FAIL."""
    rng = np.random.default_rng(3)
    walls = 100 * np.exp(rng.normal(0, 0.2, 20))
    throughputs = 50 * np.exp(rng.normal(0, 0.2, 20))
    base = tmp_path / "base.json"
    cand = tmp_path / "cand.json"
    write_run_file(base, run_record(sessions_of("old", walls, throughputs)))
    longer = walls * 1.3 * np.exp(rng.normal(0, 0.02, 20))
    write_run_file(
        cand,
        run_record(sessions_of("new", longer, throughputs * np.exp(rng.normal(0, 0.02, 20)))),
    )
    lines = {}
    codes = {}
    for metric in ("throughput_tok_s", "session_wall_s", "tasks_per_window"):
        result = agentspeed("compare", base, cand, "--gate-metric", metric)
        lines[metric] = verdict_block(result.stdout)[0]
        codes[metric] = result.returncode
    assert lines == {
        "throughput_tok_s": "throughput ratio 0.99 [90% CI 0.98-1.00], p=0.101, "
        "n=20/20 paired, MDE 1.3% -> PASS",
        "session_wall_s": "session speed ratio 0.77 [90% CI 0.76-0.77], p<1e-04, "
        "n=20/20 paired, MDE 1.0% -> FAIL",
        "tasks_per_window": "tasks per window ratio 0.77 [90% CI 0.66-0.89], p=0.001, "
        "n=20/20 unpaired, MDE 19.7% -> FAIL",
    }
    assert codes == {"throughput_tok_s": 0, "session_wall_s": 1, "tasks_per_window": 1}
    # Without the option, the gate decides on throughput.
    default = agentspeed("compare", base, cand)
    assert verdict_block(default.stdout)[0] == lines["throughput_tok_s"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tolerance", "10%"], "the tolerance (10%) must be smaller than the margin (10%)"),
        (["--margin", "4%"], "the tolerance (5%) must be smaller than the margin (4%)"),
        (
            ["--tolerance", "0.2", "--margin", "15%"],
            "the tolerance (20%) must be smaller than the margin (15%)",
        ),
        (
            ["--tolerance", "7.5%", "--margin", "7%"],
            "the tolerance (7.5%) must be smaller than the margin (7%)",
        ),
    ],
)
def test_a_tolerance_not_below_the_margin_is_refused(
    same_speed: tuple[Path, Path], args: list[str], message: str
) -> None:
    result = agentspeed("compare", *same_speed, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"{USAGE_TAIL}{message}: slowdowns between the two are what INCONCLUSIVE is for\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--tolerance", "abc"],
            "argument --tolerance: expected a percentage like 5% or a fraction like 0.05, "
            "got 'abc'",
        ),
        (
            ["--tolerance", "0"],
            "argument --tolerance: expected a percentage like 5% or a fraction like 0.05, got '0'",
        ),
        (
            ["--margin", "100%"],
            "argument --margin: expected a percentage like 5% or a fraction like 0.05, got '100%'",
        ),
        (
            ["--margin", "1.5"],
            "argument --margin: expected a percentage like 5% or a fraction like 0.05, got '1.5'",
        ),
        (
            ["--gate-metric", "speed"],
            "argument --gate-metric: unknown metric 'speed'; accepted: throughput_tok_s, "
            "session_wall_s, tasks_per_window",
        ),
        (
            ["--inconclusive", "maybe"],
            "argument --inconclusive: unknown policy 'maybe'; accepted: warn, fail",
        ),
    ],
)
def test_bad_gate_option_values_are_usage_errors(
    same_speed: tuple[Path, Path], args: list[str], message: str
) -> None:
    result = agentspeed("compare", *same_speed, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: agentspeed compare ")
    assert result.stderr.splitlines()[-1] == USAGE_TAIL + message


def test_merge_applies_the_gate_options_to_its_comparisons(tmp_path: Path) -> None:
    """One file with both arms: merge recomputes the in-run comparison with the options."""
    base, cand = paired_arms(0.93, 0.02, 20)
    both = tmp_path / "both.json"
    write_run_file(both, run_record(arm("old", base) + arm("new", cand)))
    out = tmp_path / "merged.json"
    strict = agentspeed("merge", both, "-o", out)
    assert strict.returncode == 0, strict.stderr
    (comparison,) = json.loads(out.read_text())["comparisons"]
    assert (comparison["tolerance"], comparison["margin"]) == (0.05, 0.10)
    assert comparison["verdict"] == "FAIL"

    options = ("--tolerance", "7.5%", "--margin", "0.2", "--gate-metric", "session_wall_s")
    lenient = agentspeed("merge", both, "-o", out, *options)
    assert lenient.returncode == 0, lenient.stderr
    (comparison,) = json.loads(out.read_text())["comparisons"]
    assert comparison["tolerance"] == 0.075
    assert comparison["margin"] == 0.2
    assert comparison["metric"] == "session_wall_s"
    # Every session lasts 100 s in both arms: the session speed ratio is exactly 1.
    assert comparison["line"].startswith("session speed ratio 1.00 ")


# -- the gate's metric names are written once -------------------------------------------------


def test_the_options_accept_the_gate_metrics_the_analysis_defines() -> None:
    from pytest_agentspeed import settings
    from pytest_agentspeed.analysis import compare, gate
    from pytest_agentspeed.edge import options
    from pytest_agentspeed.errors import ConfigError
    from pytest_agentspeed.outputs import table

    assert options.GATE_METRICS is gate.GATE_METRICS
    assert settings.GATE_METRICS is gate.GATE_METRICS
    assert settings.INCONCLUSIVE_POLICIES is gate.INCONCLUSIVE_POLICIES
    for metric in gate.GATE_METRICS:
        assert settings.gate_settings(metric, None, None, None).metric == metric
    with pytest.raises(ConfigError, match=f"accepted: {', '.join(gate.GATE_METRICS)}$"):
        settings.parse_gate_metric("speed")
    # What is said of each metric elsewhere is said of exactly these.
    for per_metric in (gate.METRIC_DEFINITIONS, compare.LABELS, table.METRIC_ROWS):
        assert tuple(per_metric) == gate.GATE_METRICS


def test_the_gate_metric_names_are_listed_in_one_module() -> None:
    """No second tuple, list or set of the metric names, to be kept in step by hand: a literal
    that names two or more of them appears in ``analysis/gate.py`` only."""
    import ast

    import pytest_agentspeed
    from pytest_agentspeed.analysis.gate import GATE_METRICS

    package = Path(pytest_agentspeed.__file__).parent
    listing: list[str] = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if len(names & set(GATE_METRICS)) >= 2:
                    listing.append(path.relative_to(package).as_posix())
    assert listing == ["analysis/gate.py"]
