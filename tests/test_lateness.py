"""A run that knows when its own clock was late: the monitor, what counts as too late, and the
warning in the terminal, the run file and the verdict line (``docs/timing.md``, "When the
clock is late")."""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import arm, run_record, session
from test_plugin import make_scripted_task, read_run

from pytest_agentspeed.analysis.clock import (
    LATE_LIMIT_MS,
    clock_summary,
    compromise,
    compromised,
    limit_ms,
    ran_late,
)
from pytest_agentspeed.analysis.compare import compare_arms
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.outputs.table import table_of
from pytest_agentspeed.outputs.terminal import clock_warning, markdown_report
from pytest_agentspeed.records import ClockRecord, Comparison, SessionRecord
from pytest_agentspeed.run.lateness import (
    LatenessMonitor,
    SessionClock,
    busy_share,
    clock_record,
    cpu_times,
)

MS = 1_000_000


class FakeTime:
    """A clock in nanoseconds and a sleeper that advances it by the time asked for plus the
    next scripted overshoot (ms): a process held up exactly as long as a test says."""

    def __init__(self, overshoots_ms: list[float]) -> None:
        self.now = 1_000 * MS
        self.overshoots_ms = list(overshoots_ms)

    def clock(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += round(seconds * 1e9) + round(self.overshoots_ms.pop(0) * MS)


def fake_monitor(overshoots_ms: list[float]) -> tuple[LatenessMonitor, FakeTime]:
    fake = FakeTime(overshoots_ms)
    return LatenessMonitor(0.02, clock=fake.clock, sleep=fake.sleep), fake


# -- the monitor's arithmetic ------------------------------------------------------------------


def test_each_wake_up_records_its_own_overshoot_and_a_stall_counts_once() -> None:
    """Each sleep is planned from its own start: one 80 ms stall is one sample of 80 ms, not
    four catching-up samples of 80, 60, 40 and 20."""
    monitor, fake = fake_monitor([0.1, 80.0, 0.2, 0.0])
    start = fake.clock()
    for _ in range(4):
        monitor.sample()
    assert [v / MS for v in monitor.window(start, fake.clock())] == [0.1, 80.0, 0.2, 0.0]
    # Wake-ups at 20.1, 120.1, 140.3 and 160.3 ms after the start.
    assert [v / MS for v in monitor.window(start + 100 * MS, start + 140_300_000)] == [80.0, 0.2]
    assert monitor.window(start + 161 * MS, start + 500 * MS) == []


def test_percentiles_of_a_sessions_window_are_numpys_linear_ones() -> None:
    """101 wake-ups late by 0, 0.1, ..., 10 ms: the median 5 ms, P99 9.9 ms, the largest 10 ms
    (order statistics 50 and 99 of 0..100, exactly)."""
    overshoots = [i / 10 for i in range(101)]
    monitor, fake = fake_monitor(overshoots[::-1])
    start = fake.clock()
    for _ in overshoots:
        monitor.sample()
    record = clock_record(
        monitor.window(start, fake.clock()),
        cpu_before=(100, 1_000),
        cpu_after=(250, 1_200),
        load_1m=3.5,
        cpus=2,
    )
    assert record == ClockRecord(
        samples=101,
        late_p50_ms=5.0,
        late_p99_ms=9.9,
        late_max_ms=10.0,
        cpu_busy=0.75,  # 150 busy ticks of 200
        load_1m=3.5,
        cpus=2,
    )
    # Interpolated between order statistics: 4 samples of 0, 0, 0, 40 ms give P99 38.8 ms.
    record = clock_record([0, 0, 0, 40 * MS], cpu_before=None, cpu_after=None, load_1m=None, cpus=1)
    assert record is not None
    assert (record.late_p50_ms, record.late_p99_ms, record.late_max_ms) == (0.0, 38.8, 40.0)
    assert record.cpu_busy is None
    # No wake-up in the window: nothing to say.
    assert clock_record([], cpu_before=None, cpu_after=None, load_1m=None, cpus=2) is None


class Unthreaded(LatenessMonitor):
    """A monitor whose samples the test takes itself, with no thread."""

    def start(self) -> None:
        pass


def test_a_session_clock_takes_its_own_window_and_forgets_the_ones_before() -> None:
    fake = FakeTime([1.0, 2.0, 30.0, 4.0, 5.0])
    monitor = Unthreaded(0.02, clock=fake.clock, sleep=fake.sleep)
    cpu = iter([(0, 100), (50, 200), (50, 200), (150, 300), None, None])
    clock = SessionClock(monitor, cpu=lambda: next(cpu), load=lambda: 1.5)
    clock.start()
    monitor.sample()
    monitor.sample()
    first = clock.stop()
    assert first is not None
    assert (first.samples, first.late_max_ms, first.cpu_busy) == (2, 2.0, 0.5)
    assert monitor.window(0, fake.clock()) == []  # forgotten: the next session starts later
    clock.start()
    for _ in range(3):
        monitor.sample()
    second = clock.stop()
    assert second is not None
    assert (second.samples, second.late_p50_ms, second.late_max_ms) == (3, 5.0, 30.0)
    assert (second.cpu_busy, second.load_1m) == (1.0, 1.5)
    clock.start()
    assert clock.stop() is None  # shorter than an interval: nothing to say


def test_the_monitor_thread_samples_until_stopped() -> None:
    monitor = LatenessMonitor(0.005)
    start = monitor.now()
    monitor.start()
    monitor.start()  # once only
    time.sleep(0.2)
    monitor.stop()
    samples = monitor.window(start, monitor.now())
    assert 10 <= len(samples) <= 40
    assert all(v >= 0 for v in samples)
    time.sleep(0.05)
    assert len(monitor.window(start, monitor.now())) == len(samples)  # stopped


def test_cpu_times_read_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 5 20 800 50 3 2 10 40 0\ncpu0 50 2 10 400 25 1 1 5 20 0\n")
    assert cpu_times(str(stat)) == (140, 990)  # busy: all but idle and iowait; guest not twice
    assert cpu_times(str(tmp_path / "missing")) is None
    assert busy_share((140, 990), (240, 1190)) == 0.5
    assert busy_share((140, 990), (140, 990)) is None


# -- what counts as late -----------------------------------------------------------------------


def clocked(record: SessionRecord, p99_ms: float, *, busy: float = 0.5) -> SessionRecord:
    clock = ClockRecord(
        samples=500,
        late_p50_ms=0.2,
        late_p99_ms=p99_ms,
        late_max_ms=p99_ms * 2,
        cpu_busy=busy,
        load_1m=1.0,
        cpus=2,
    )
    return replace(record, clock=clock)


def with_ttft(record: SessionRecord, ttft_s: float) -> SessionRecord:
    turn = record.turns[0]
    return replace(record, turns=(replace(turn, phases_s=turn.phases_s | {"ttft": ttft_s}),))


def test_the_limit_is_5_ms_or_a_twentieth_of_the_median_ttft_whichever_is_smaller() -> None:
    base = session("a", 0, 50.0)
    assert limit_ms(with_ttft(base, 2.0)) == LATE_LIMIT_MS
    assert limit_ms(with_ttft(base, 0.04)) == pytest.approx(2.0)  # 5% of 40 ms
    assert limit_ms(base) == LATE_LIMIT_MS  # no TTFT recorded: the absolute limit
    assert not ran_late(clocked(with_ttft(base, 2.0), 4.9))
    assert ran_late(clocked(with_ttft(base, 2.0), 5.1))
    assert ran_late(clocked(with_ttft(base, 0.04), 2.5))
    assert not ran_late(base)  # not measured


def test_a_tenth_of_the_sessions_late_compromises_them() -> None:
    quiet = [clocked(s, 0.4) for s in arm("a", [50.0] * 11)]
    one_late = [clocked(quiet[0], 12.34, busy=0.9), *quiet[1:]]
    assert compromise(quiet) is None
    assert compromise(one_late[:10]) == (
        "client clock late P99 12.3 ms (limit 5 ms) in 1 of 10 sessions"
    )
    assert compromise(one_late) is None  # 1 of 11: under a tenth
    assert compromise(arm("a", [50.0] * 3)) is None  # not measured
    summary = clock_summary(one_late[:10])
    assert summary is not None
    assert summary["late_sessions"] == 1
    assert summary["cpu_busy"] == pytest.approx(0.54)


def test_the_verdict_line_says_the_measurement_was_compromised_and_how() -> None:
    base, cand = arm("a", [50.0] * 8), arm("b", [50.0 + i for i in range(8)])

    def compared(base_p99_ms: float | None, cand_p99_ms: float | None) -> Comparison:
        return compare_arms(
            base if base_p99_ms is None else [clocked(s, base_p99_ms) for s in base],
            cand if cand_p99_ms is None else [clocked(s, cand_p99_ms) for s in cand],
            baseline="a",
            candidate="b",
            against="this run",
            settings=GateSettings(),
        )

    plain = compared(None, None)
    assert compared(0.5, 0.7) == plain  # a clock that kept time changes nothing
    late = compared(0.5, 12.3)
    words = (
        "measurement compromised: client clock late P99 12.3 ms (limit 5 ms) in 8 of 16 sessions"
    )
    assert late.line == f"{plain.line}; {words}"
    assert late.verdict == plain.verdict
    assert late.warnings == (
        *plain.warnings,
        f"{words}; their marks may be off by that much (docs/timing.md, When the clock is late)",
    )


def test_outputs_show_the_clock_only_when_the_run_measured_it() -> None:
    gate = GateSettings()
    sessions = arm("a", [50.0] * 5) + arm("b", [55.0] * 5)
    old = analysed(run_record(sessions), gate)
    assert "clock" not in old.environment
    assert clock_warning(old) is None
    labels = [row[0] for row in table_of(old).cells()]
    assert not any("clock" in label or "CPU" in label for label in labels)

    late = analysed(run_record([clocked(s, 9.0, busy=0.97) for s in sessions]), gate)
    assert late.environment["clock"]["compromised"] is True
    warning = clock_warning(late)
    assert warning == (
        "measurement compromised: client clock late P99 9.0 ms (limit 5 ms) in 10 of 10 "
        "sessions, CPU 97% busy on 2 cores; the marks may be off by that much "
        "(docs/timing.md, When the clock is late)"
    )
    cells = {row[0]: row[1:] for row in table_of(late).cells()}
    assert cells["clock late P99, worst session"] == ["9.0 ms", "9.0 ms", ""]
    assert cells["sessions with the clock late"] == ["5", "5", ""]
    assert cells["CPU busy, mean over sessions"] == ["97%", "97%", ""]
    markdown = markdown_report(table_of(late), late.comparisons, warning=warning)
    (comparison,) = late.comparisons
    assert markdown.startswith(
        f"## agentspeed\n\n**Warning:** {warning}\n\n**{comparison.verdict}** `{comparison.line}`"
    )
    assert comparison.line.endswith("in 10 of 10 sessions")
    # Round trip: the run file's sessions keep their clocks, old ones stay without.
    again = SessionRecord.from_json(json.loads(json.dumps(late.sessions[0].to_json())))
    assert again == late.sessions[0]
    assert "clock" not in old.sessions[0].to_json()


# -- in real pytest runs -----------------------------------------------------------------------

#: A conftest whose thread sorts a long list again and again while each session runs: each sort
#: holds the GIL for tens of milliseconds whatever the switch interval (the client lowers it
#: while it reads a stream), so every other thread of the process (the client reading its
#: stream, the monitor) gets to run that late, as behind a long C call or a collector pause.
#: The heavy modules are imported before (imports under the hog are slow).
HOG = """
    import random
    import sys
    import threading

    _hogs = []


    def _spin(stop):
        # One sort is one call into C that holds the GIL for tens of milliseconds, whatever
        # the switch interval: like a long C extension call or a collector pause.
        data = [random.random() for _ in range(200_000)]
        while not stop.is_set():
            sorted(data)


    def pytest_configure(config):
        import pytest_agentspeed.agents.builtin
        import pytest_agentspeed.clients.anthropic_client
        import pytest_agentspeed.run.runner


    def pytest_runtest_setup(item):
        stop = threading.Event()
        thread = threading.Thread(target=_spin, args=(stop,), daemon=True)
        _hogs.append((stop, thread))
        thread.start()


    def pytest_runtest_teardown(item):
        while _hogs:
            stop, thread = _hogs.pop()
            stop.set()
            thread.join()
"""


def ab_run(pytester: pytest.Pytester) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Two simulated endpoints on two short scripted tasks: a comparison of two pairs."""
    for name in ("alpha", "beta"):
        make_scripted_task(pytester.path, name, answer_words=40)
    result = pytester.runpytest_subprocess(
        "--agentspeed-endpoint=sim:standard?jitter=0",
        "--agentspeed-endpoint=sim:ultraspeed?jitter=0",
        "--agentspeed-time-scale=0.1",
        "--agentspeed-json=run.json",
        "--agentspeed-markdown=summary.md",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    return result, read_run(pytester.path / "run.json")


def test_a_run_whose_clock_was_held_up_says_so_everywhere(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(textwrap.dedent(HOG))
    result, run = ab_run(pytester)
    p99s = [s["clock"]["late_ms"]["p99"] for s in run["sessions"]]
    # Held up by the hog's sorts (tens of milliseconds each; how much of one a 20 ms sample
    # catches depends on where it falls): every session well past the 5 ms limit.
    assert all(p99 > 2 * LATE_LIMIT_MS for p99 in p99s), p99s
    clock = run["environment"]["clock"]
    assert (clock["compromised"], clock["late_sessions"], clock["sessions"]) == (True, 4, 4)
    assert clock["late_p99_ms"] == max(p99s)
    words = (
        f"measurement compromised: client clock late P99 {max(p99s):.1f} ms (limit 5 ms) "
        f"in 4 of 4 sessions"
    )
    (comparison,) = run["comparisons"]
    assert comparison["line"].endswith(f" -> {comparison['verdict']}; {words}")
    assert any(w.startswith(words) for w in comparison["warnings"])
    out = result.outlines
    assert any(line.startswith(f"warning: {words}, CPU ") for line in out), out
    assert comparison["line"] in out
    assert f"**Warning:** {words}" in (pytester.path / "summary.md").read_text()


def test_without_the_hog_the_outputs_say_what_the_clock_recorded(pytester: pytest.Pytester) -> None:
    """The same run without the hog: the outputs say late exactly when the recorded figures do.

    Whether a session here ran late depends on the machine (other processes on two cores can
    hold the monitor up), so the test does not assume a quiet machine: it recomputes from each
    session's recorded figures, by the documented rule, which sessions ran late, and checks
    that the run, the verdict line and every output say exactly that. On an ordinary machine no
    session is late (P99 0.3-1.5 ms against a 5 ms limit), and then nothing may say so.
    """
    result, run = ab_run(pytester)
    clocks = [s["clock"] for s in run["sessions"]]
    assert all(c["samples"] > 0 and c["cpus"] for c in clocks)
    late = [ran_late(SessionRecord.from_json(s)) for s in run["sessions"]]
    flagged = compromised(sum(late), len(late))
    assert run["environment"]["clock"]["compromised"] is flagged, clocks
    assert run["environment"]["clock"]["late_sessions"] == sum(late)
    (comparison,) = run["comparisons"]
    said = [
        "compromised" in comparison["line"],
        any("compromised" in w for w in comparison["warnings"]),
        any("compromised" in line for line in result.outlines),
        "compromised" in (pytester.path / "summary.md").read_text(),
    ]
    assert said == [flagged] * 4, (clocks, said)


def test_no_collection_runs_while_a_session_is_measured() -> None:
    """Inside a session the collector is off and what was alive before is frozen out of its
    reach; after it, collection is back on (and stays off where it was off)."""
    import gc

    from pytest_agentspeed.run.lateness import collector_held

    assert gc.isenabled()
    try:
        with collector_held():
            assert not gc.isenabled()
            assert gc.get_freeze_count() > 0
        assert gc.isenabled()
        gc.disable()
        with collector_held():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
