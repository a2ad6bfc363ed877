"""The gate in real pytest runs: in-run A/B, stored baselines, CI outputs, xdist, the CLI."""

from __future__ import annotations

import json
import math
import re
import statistics
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest
from conftest import agentspeed
from factories import arm, paired_arms, run_record
from test_plugin import make_scripted_task, make_task, read_run

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.runfile import write_run_file

FAST = "sim:ultraspeed?jitter=0"
SLOW = "sim:standard?jitter=0"


def tasks(pytester: pytest.Pytester, n: int = 3) -> None:
    """Scripted, tool-light tasks: session times are the simulated endpoint's, which a loaded
    machine does not stretch by much (a few percent), while ``FAST`` and ``SLOW`` differ by
    about 40% on each. So no pair flips under load, and a verdict has one expected value."""
    for name in ("alpha", "beta", "gamma", "delta")[:n]:
        make_scripted_task(pytester.path, name)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--agentspeed-time-scale=0.1", "--agentspeed-repeat=2", "-p", "no:cacheprovider", *args
    )


def expected_mde(base: list[dict[str, Any]], cand: list[dict[str, Any]]) -> str:
    """The MDE a paired comparison of these sessions must report, computed here from the
    textbook formula (DESIGN section 7): ``1 - exp(-(z_{1-size} + z_0.80) * sd(d) / sqrt(n))``,
    ``d`` the per-slot log ratios of throughput and ``size`` the exact signed-rank test's real
    level at alpha 0.05 (``exact_size``); formatted as the verdict line shows it."""
    tput = {
        (s["endpoint"], s["slot"]): s["usage"]["output_tokens"] / s["wall_s"] for s in base + cand
    }
    d = [
        math.log(tput[c["endpoint"], b["slot"]] / tput[b["endpoint"], b["slot"]])
        for b, c in zip(base, cand, strict=True)
    ]
    z = NormalDist().inv_cdf(1 - exact_size(len(d), 0.05)) + NormalDist().inv_cdf(0.80)
    mde = 1 - math.exp(-z * statistics.stdev(d) / math.sqrt(len(d)))
    return f"MDE {mde * 100:.1f}%"


def exact_size(n: int, alpha: float) -> float:
    """The largest one-sided p below ``alpha`` that the signed-rank test of ``n`` pairs can
    give: from the number of sign patterns of the ranks 1..n with each positive-rank sum,
    counted rank by rank (e.g. 3/64 for 6 pairs)."""
    ways = Counter({0: 1})
    for rank in range(1, n + 1):
        grown = Counter(ways)
        for total, count in ways.items():
            grown[total + rank] += count
        ways = grown
    below, seen = 0.0, 0
    for total in sorted(ways):
        seen += ways[total]
        if seen / 2**n >= alpha:
            return below
        below = seen / 2**n
    return below


def by_slot(sessions: list[dict[str, Any]], endpoint: str) -> list[dict[str, Any]]:
    return sorted((s for s in sessions if s["endpoint"] == endpoint), key=lambda s: s["slot"])


def last_lines(result: pytest.RunResult, n: int) -> list[str]:
    return [line for line in result.outlines if line.strip()][-n:]


def test_in_run_regression_fails_the_run_and_the_reverse_is_improved(
    pytester: pytest.Pytester,
) -> None:
    tasks(pytester)
    regress = run(
        pytester,
        f"--agentspeed-endpoint={FAST}",
        f"--agentspeed-endpoint={SLOW}",
        "--agentspeed-json=run.json",
    )
    assert regress.ret == pytest.ExitCode.TESTS_FAILED
    regress.assert_outcomes(passed=12)  # every task passed; the gate failed the run
    verdict = [line for line in regress.outlines if line.startswith("throughput ratio")]
    assert len(verdict) == 1
    sessions = read_run(pytester.path / "run.json")["sessions"]
    mde = expected_mde(by_slot(sessions, FAST), by_slot(sessions, SLOW))
    # Cut the suffix that says when the loaded machine held the measuring process up.
    assert (
        verdict[0]
        .partition("; measurement compromised")[0]
        .endswith(f"n=6/6 paired, {mde} -> FAIL")
    )
    # CI logs are read from the bottom: the verdict is among the last lines.
    assert verdict[0] in last_lines(regress, 6)

    improve = run(pytester, f"--agentspeed-endpoint={SLOW}", f"--agentspeed-endpoint={FAST}")
    assert improve.ret == pytest.ExitCode.OK
    improve.stdout.fnmatch_lines(["throughput ratio *, n=6/6 paired, MDE *-> IMPROVED*"])


def test_stored_baseline_fails_a_slower_endpoint_and_passes_the_same_one(
    pytester: pytest.Pytester,
) -> None:
    tasks(pytester)
    saved = run(pytester, f"--agentspeed-endpoint={FAST}", "--agentspeed-save=main")
    assert saved.ret == pytest.ExitCode.OK
    # The file to commit, as `git add` takes it from where pytest ran.
    saved.stdout.fnmatch_lines(["saved baseline 'main': .agentspeed/baselines/main.json"])
    baseline = pytester.path / ".agentspeed" / "baselines" / "main.json"
    assert read_run(baseline)["schema"] == "agentspeed.run/1"

    slower = run(pytester, f"--agentspeed-endpoint={SLOW}", "--agentspeed-compare=main")
    assert slower.ret == pytest.ExitCode.TESTS_FAILED
    slower.stdout.fnmatch_lines(
        [
            "throughput ratio *, n=6/6 paired, MDE *-> FAIL*",
            f"  {SLOW} vs {FAST} (baseline main)*",
        ]
    )

    same = run(
        pytester,
        f"--agentspeed-endpoint={FAST}",
        "--agentspeed-compare=main",
        "--agentspeed-json=run.json",
    )
    assert same.ret == pytest.ExitCode.OK
    (comparison,) = read_run(pytester.path / "run.json")["comparisons"]
    assert comparison["against"] == "baseline main"
    assert comparison["paired"] is True
    # The same endpoint again: within a few percent (the MDE), well inside the 10% margin.
    assert comparison["verdict"] == "PASS", comparison["line"]


def test_missing_baseline_is_a_notice_and_a_corrupt_one_an_early_usage_error(
    pytester: pytest.Pytester,
) -> None:
    tasks(pytester, 1)
    missing = run(pytester, "--agentspeed-compare=nightly")
    assert missing.ret == pytest.ExitCode.OK
    missing.stdout.fnmatch_lines(
        ["no baseline at *nightly.json, nothing to compare with; create it with *-save nightly"]
    )

    corrupt = pytester.path / "broken.json"
    corrupt.write_text('{"schema": "agentspeed.run/1", "sessions": [')
    result = run(pytester, f"--agentspeed-compare={corrupt}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --agentspeed-compare: *broken.json: not valid JSON*"])
    assert "Traceback" not in result.stderr.str()
    assert "PASSED" not in result.stdout.str()  # refused before any session ran


def test_markdown_step_summary_and_junit_properties(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks(pytester, 2)
    summary = pytester.path / "step-summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run(
        pytester,
        f"--agentspeed-endpoint={SLOW}",
        f"--agentspeed-endpoint={FAST}",
        "--agentspeed-markdown=out/summary.md",
        "--junitxml=junit.xml",
    )
    assert result.ret == pytest.ExitCode.OK
    markdown = (pytester.path / "out" / "summary.md").read_text()
    # 4 pairs: no exact test can reach p < 0.05 (the smallest p is 1/16), so no verdict.
    # A loaded machine may hold the measuring process up: then a warning comes first.
    assert re.match(
        r"## agentspeed\n\n(\*\*Warning:\*\* measurement compromised: .*\n\n)?"
        r"\*\*INCONCLUSIVE\*\* `throughput ratio ",
        markdown,
    ), markdown[:400]
    assert (
        "\n- 4 pairs cannot decide at alpha 0.05 (the smallest possible p is 0.0625); "
        "at least 5 pairs per arm are needed" in markdown
    )
    assert (
        f"\n\n|  | {SLOW} | {FAST} | difference |\n"
        "|---|---:|---:|---:|\n"
        "| **session throughput P50** | "
    ) in markdown
    assert "\n| sessions | 4 | 4 |  |\n" in markdown
    assert summary.read_text() == "# earlier step\n" + markdown

    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    props = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert len(props) == 8
    for p in props:
        assert p["agentspeed.outcome"] == "passed"
        assert float(p["agentspeed.throughput_tok_s"] or 0) > 0
        assert p["agentspeed.turns"] == "3"
    assert {p["agentspeed.endpoint"] for p in props} == {SLOW, FAST}


def test_xdist_runs_the_same_sessions_into_one_run_file_with_concurrency_2(
    pytester: pytest.Pytester,
) -> None:
    tasks(pytester, 2)
    serial = run(pytester, f"--agentspeed-endpoint={FAST}", "--agentspeed-json=serial.json")
    parallel = run(
        pytester, f"--agentspeed-endpoint={FAST}", "--agentspeed-json=parallel.json", "-n", "2"
    )
    assert serial.ret == parallel.ret == pytest.ExitCode.OK
    one, two = read_run(pytester.path / "serial.json"), read_run(pytester.path / "parallel.json")
    assert sorted(s["id"] for s in two["sessions"]) == sorted(s["id"] for s in one["sessions"])
    assert len(two["sessions"]) == 4
    assert one["environment"]["concurrency"] == 1
    assert two["environment"]["concurrency"] == 2
    stats = two["summary"][FAST]
    assert stats["concurrency"] == 2
    assert stats["runs_per_window"] == pytest.approx(1800 * 2 / stats["session_wall_s"]["mean"])
    parallel.stdout.fnmatch_lines(["*= agentspeed =*"])
    # What the run measures, said once by the controller (the workers' output is not shown).
    header = f"agentspeed: 4 sessions on {FAST}; 2 repeat(s); agent builtin; simulated delays x0.1"
    assert serial.outlines.count(header) == 1
    assert parallel.outlines.count(header) == 1


# -- agentspeed compare / show / merge --------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    base, slower = paired_arms(0.75, 0.08, 20)
    paths = {
        "base": tmp_path / "base.json",
        "slower": tmp_path / "slower.json",
        "same": tmp_path / "same.json",
        "fewer": tmp_path / "fewer.json",
    }
    write_run_file(paths["base"], run_record(arm("old", base)))
    write_run_file(paths["slower"], run_record(arm("new", slower)))
    write_run_file(paths["same"], run_record(arm("new", base * 1.01)))
    write_run_file(
        paths["fewer"], run_record(arm("new", base * 1.3, passed=[i < 10 for i in range(20)]))
    )
    return paths


def test_compare_exit_codes(files: dict[str, Path], tmp_path: Path) -> None:
    fail = agentspeed("compare", str(files["base"]), str(files["slower"]))
    assert fail.returncode == 1, fail.stderr
    lines = fail.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("throughput ratio"))
    # The verdict first; then its details (and a warning if the machine held the run up).
    assert len(lines) - at <= 5
    line = lines[at].partition("; measurement compromised")[0]
    assert line.startswith("throughput ratio 0.7")
    base, slower = (read_run(files[k])["sessions"] for k in ("base", "slower"))
    assert line.endswith(f"n=20/20 paired, {expected_mde(base, slower)} -> FAIL")

    ok = agentspeed("compare", str(files["base"]), str(files["same"]))
    assert ok.returncode == 0, ok.stdout
    assert "-> PASS" in ok.stdout

    fewer = agentspeed("compare", str(files["base"]), str(files["fewer"]))
    assert fewer.returncode == 1
    assert "pass rate fell from 100% to 50%" in fewer.stdout

    for bad, message in [
        (tmp_path / "missing.json", "no such file"),
        (files["base"].with_name("trunc.json"), "not valid JSON"),
        (files["base"].with_name("future.json"), "schema 'agentspeed.run/2' is not supported"),
    ]:
        if bad.name == "trunc.json":
            bad.write_text(files["base"].read_text()[:80])
        elif bad.name == "future.json":
            bad.write_text(json.dumps({"schema": "agentspeed.run/2"}))
        result = agentspeed("compare", str(files["base"]), str(bad))
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.strip().count("\n") == 0
        assert message in result.stderr
        assert "Traceback" not in result.stderr

    unknown = agentspeed(
        "compare", str(files["base"]), str(files["same"]), "--candidate-endpoint", "x"
    )
    assert unknown.returncode == 2
    assert "no endpoint 'x'; it has: new" in unknown.stderr


def test_show_and_merge(files: dict[str, Path], tmp_path: Path) -> None:
    base, _ = paired_arms(1.0, 0.1, 20)
    sessions = arm("A", base) + arm("B", base * 0.7)
    analysed_run = analysed(run_record(sessions), GateSettings())
    write_run_file(tmp_path / "analysed.json", analysed_run)
    shown = agentspeed("show", str(tmp_path / "analysed.json"))
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("  ")[0]: line.split() for line in shown.stdout.splitlines()}
    assert rows["sessions"][1:] == ["20", "20"]
    assert rows["pass rate"][2:] == ["100%", "100%", "+0", "pp"]
    summary = analysed_run.summary
    assert summary is not None
    p50 = [f"{summary[a]['throughput_tok_s']['p50']:.0f}" for a in ("A", "B")]
    assert rows["session throughput P50"][3:] == [p50[0], "tok/s", p50[1], "tok/s", "-30%"]
    # The stored verdict is shown as it was decided.
    (comparison,) = analysed_run.comparisons or ()
    assert comparison.verdict == "FAIL"
    assert comparison.line in shown.stdout

    shard_1 = run_record([s for s in sessions if s.task in ("t0", "t1")])
    shard_2 = run_record([s for s in sessions if s.task not in ("t0", "t1")])
    write_run_file(tmp_path / "s1.json", shard_1)
    write_run_file(tmp_path / "s2.json", shard_2)
    merged = agentspeed(
        "merge",
        str(tmp_path / "s1.json"),
        str(tmp_path / "s2.json"),
        "-o",
        str(tmp_path / "all.json"),
    )
    assert merged.returncode == 0, merged.stderr
    data = read_run(tmp_path / "all.json")
    assert len(data["sessions"]) == 40
    assert data["environment"]["shards"] == 2
    assert [c["verdict"] for c in data["comparisons"]] == ["FAIL"]
    assert data["summary"]["A"]["sessions"] == 20

    write_run_file(tmp_path / "other.json", run_record(list(shard_2.sessions), time_scale=0.1))
    refused = agentspeed(
        "merge",
        str(tmp_path / "s1.json"),
        str(tmp_path / "other.json"),
        "-o",
        str(tmp_path / "x.json"),
    )
    assert refused.returncode == 2
    assert "time scale differs (0.05 vs 0.1)" in refused.stderr
    twice = agentspeed(
        "merge",
        str(tmp_path / "s1.json"),
        str(tmp_path / "s1.json"),
        "-o",
        str(tmp_path / "x.json"),
    )
    assert twice.returncode == 2
    assert "is in both" in twice.stderr
    assert not (tmp_path / "x.json").exists()


def test_verdict_comes_after_the_failures_summary(pytester: pytest.Pytester) -> None:
    tasks(pytester, 3)
    make_task(
        pytester.path,
        "broken",
        body='instruction = "Task broken: nothing can fix it."\n[check]\ncommand = "exit 3"\n',
    )
    result = run(pytester, f"--agentspeed-endpoint={SLOW}", f"--agentspeed-endpoint={FAST}")
    result.assert_outcomes(passed=12, failed=4)
    lines = [line for line in result.outlines if line.strip()]
    summary_at = next(i for i, line in enumerate(lines) if "short test summary info" in line)
    verdict_at = next(i for i, line in enumerate(lines) if line.startswith("throughput ratio"))
    assert summary_at < verdict_at
    assert verdict_at >= len(lines) - 5
