"""Run-file records, metrics with hand-computed values, and the terminal table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import pytest_agentspeed
from pytest_agentspeed import RunFileError
from pytest_agentspeed.analysis.metrics import (
    BURST_MIN_TOKENS,
    DECODE_MIN_TOKENS,
    WHAT_IF_FACTORS,
    decode_rate,
    distribution,
    is_cached,
    mean,
    percentile,
    summarize_arm,
    summarize_run,
)
from pytest_agentspeed.outputs.table import summary_table
from pytest_agentspeed.records import (
    AttemptRecord,
    EndpointRecord,
    RunRecord,
    SessionRecord,
    ToolCallRecord,
    TurnRecord,
    Usage,
)
from pytest_agentspeed.runfile import read_run_file, write_run_file
from pytest_agentspeed.timing import MARKS, PHASES


def turn(
    index: int,
    *,
    ttft: float,
    generation: float,
    tool: float,
    out: int,
    read: int = 0,
    uncached: int = 100,
    reasoning: float = 0.0,
) -> TurnRecord:
    phases = dict.fromkeys(PHASES, 0.0)
    phases |= {"ttft": ttft, "generation": generation, "tool": tool, "reasoning": reasoning}
    wall = sum(phases.values())
    return TurnRecord(
        index=index,
        wall_s=wall,
        marks_s=dict.fromkeys(MARKS, None),
        phases_s=phases,
        usage=Usage(input_tokens=uncached, cache_read_tokens=read, output_tokens=out),
        usage_raw={"output_tokens": out},
        stop_reason="tool_use",
        streamed=True,
        attempts=(
            AttemptRecord(
                started_s=0, sent_s=0, headers_s=0.1, status=200, request_id="r", error=None
            ),
        ),
        tool_calls=(ToolCallRecord(name="read_file", start_s=0.5, wall_s=tool, ok=True),),
    )


def session(
    endpoint: str, repeat: int, turns: list[TurnRecord], outcome: str = "passed"
) -> SessionRecord:
    return SessionRecord(
        id=f"t[{endpoint}-r{repeat}]",
        task="t",
        endpoint=endpoint,
        repeat=repeat,
        slot=f"t/r{repeat}",
        outcome=outcome,  # type: ignore[arg-type]
        error=None,
        wall_s=sum(t.wall_s for t in turns),
        setup_s=0.01,
        check_s=0.2,
        check_exit_code=0 if outcome == "passed" else 1,
        usage=sum((t.usage for t in turns), Usage()),
        phases_s={p: sum(t.phases_s[p] for t in turns) for p in PHASES},
        turns=tuple(turns),
    )


SLOW = [
    session(
        "A",
        0,
        [
            turn(0, ttft=3.0, generation=1.0, tool=1.0, out=100),
            turn(1, ttft=2.0, generation=3.0, tool=0.0, out=600, read=900),
        ],
    ),
    session("A", 1, [turn(0, ttft=4.0, generation=1.0, tool=5.0, out=100)], outcome="failed"),
]


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 10) == pytest.approx(1.3)
    assert percentile([4.0, 1.0, 3.0, 2.0], 90) == pytest.approx(3.7)


def test_arm_summary_has_hand_computed_values() -> None:
    s = summarize_arm(SLOW, window_s=1800, concurrency=1)
    # Session 0: 700 tokens / 10 s = 70 tok/s; session 1: 100 tokens / 10 s = 10 tok/s.
    assert s["throughput_tok_s"]["p50"] == pytest.approx(40.0)
    assert s["throughput_tok_s"]["mean"] == pytest.approx(40.0)
    assert s["throughput_tok_s"]["p10"] == pytest.approx(16.0)
    assert s["session_wall_s"] == {"mean": pytest.approx(10.0), "median": pytest.approx(10.0)}
    assert s["pass_rate"] == 0.5
    assert s["error_rate"] == 0.0
    assert s["outcomes"] == {"passed": 1, "failed": 1, "error": 0, "timeout": 0}
    assert s["output_tokens_per_session"] == 400.0
    assert s["turns_per_session"] == 1.5
    assert s["output_tokens_per_turn"] == pytest.approx(800 / 3)
    assert s["ttft_s"]["p50"] == 3.0
    # The 900-token cache read of turn 1 makes it the only cached turn.
    assert s["ttft_s"]["cached"]["p50"] == 2.0
    assert s["ttft_s"]["cold"]["n"] == 2
    # Decode: 100/1, 600/3, 100/1 tok/s; burst only over the 600-token turn.
    assert s["decode_tok_s"]["p50"] == 100.0
    assert s["decode_tok_s"]["burst"] == 200.0
    assert s["phase_share"]["ttft"] == pytest.approx(9 / 20)
    assert s["phase_share"]["tool"] == pytest.approx(6 / 20)
    assert s["phase_share"]["generation"] == pytest.approx(5 / 20)
    assert s["runs_per_window"] == pytest.approx(180.0)
    assert s["tasks_per_window"] == pytest.approx(90.0)
    assert s["cache_hit_ratio"] == pytest.approx(900 / 1200)
    # Amdahl: 5 s of generation out of 20 s; 2x faster saves 2.5 s, 10x saves 4.5 s.
    assert s["what_if"]["2x"] == pytest.approx(20 / 17.5)
    assert s["what_if"]["10x"] == pytest.approx(20 / 15.5)


def test_table_shows_each_arm_and_the_difference() -> None:
    fast = [
        session(
            "B",
            0,
            [
                turn(0, ttft=1.0, generation=0.5, tool=1.0, out=100),
                turn(1, ttft=1.0, generation=0.5, tool=0.0, out=600),
            ],
        ),
        session("B", 1, [turn(0, ttft=2.0, generation=0.5, tool=2.5, out=100)]),
    ]
    summary = summarize_run([*SLOW, *fast], ["A", "B"], window_s=1800, concurrency=1)
    lines = summary_table(summary, ["A", "B"])
    assert lines[0].split() == ["A", "B", "difference"]
    rows = {line[:30].strip(): line[30:].split() for line in lines[1:]}
    assert rows["sessions"] == ["2", "2"]
    assert rows["pass rate"] == ["50%", "100%", "+50", "pp"]
    # B: sessions of 4 s (700 tokens) and 5 s (100 tokens).
    assert rows["mean session time"] == ["10.00", "s", "4.50", "s", "-55%"]
    assert rows["session throughput P50"] == ["40", "tok/s", "98", "tok/s", "+144%"]
    assert rows["decode burst (P90, 500+ tok)"] == ["200", "tok/s", "1,200", "tok/s", "+500%"]
    assert rows["share: retry wait"] == ["0%", "0%", "+0", "pp"]


def test_run_file_round_trip_and_refusals(tmp_path: Path) -> None:
    run = RunRecord(
        created_at="2026-11-29T00:00:00+00:00",
        agentspeed_version=pytest_agentspeed.__version__,
        environment={"python": "3.11"},
        config={"repeat": 2},
        endpoints=(
            EndpointRecord(name="A", api="anthropic", model="m", base_url=None, profile="standard"),
        ),
        sessions=tuple(SLOW),
        summary=summarize_run(SLOW, ["A"], window_s=1800, concurrency=1),
    )
    path = tmp_path / "deep" / "run.json"
    write_run_file(path, run)
    assert read_run_file(path) == run
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]  # no temporary left behind

    data = json.loads(path.read_text())
    data["schema"] = "agentspeed.run/2"
    path.write_text(json.dumps(data))
    with pytest.raises(
        RunFileError,
        match=r"schema 'agentspeed.run/2' is not supported .* reads agentspeed.run/1.x",
    ):
        read_run_file(path)
    data["schema"] = "agentspeed.run/1.3"
    path.write_text(json.dumps(data))
    assert read_run_file(path).schema == "agentspeed.run/1.3"

    path.write_text(path.read_text()[:100])
    with pytest.raises(RunFileError, match=r"not valid JSON .*truncated"):
        read_run_file(path)
    path.write_text('{"schema": "agentspeed.run/1", "sessions": [{"id": 1}]}')
    with pytest.raises(RunFileError, match="malformed run file"):
        read_run_file(path)
    with pytest.raises(RunFileError, match="no such file"):
        read_run_file(tmp_path / "nope.json")
    path.write_text("[]")
    with pytest.raises(RunFileError, match="not an agentspeed run file"):
        read_run_file(path)


def test_public_api_is_sorted_and_complete() -> None:
    assert pytest_agentspeed.__all__ == sorted(pytest_agentspeed.__all__)
    for name in pytest_agentspeed.__all__:
        assert hasattr(pytest_agentspeed, name)


def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path) -> None:
    import os
    import stat

    from pytest_agentspeed.runfile import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "report.html", "<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644


# -- exact values and thresholds of the metrics (mutation testing, docs/testing.md) -------------


def _turn(out: int, *, read: int = 0, uncached: int = 100, written: int = 0) -> TurnRecord:
    base = turn(0, ttft=1.0, generation=1.0, tool=0.0, out=out, read=read, uncached=uncached)
    usage = Usage(
        input_tokens=uncached, cache_read_tokens=read, cache_write_tokens=written, output_tokens=out
    )
    return replace(base, usage=usage)


def test_a_cached_turn_reads_at_least_half_its_input_from_the_cache() -> None:
    # Exactly half: cached. One token short of half: cold. Cache writes count as input.
    assert is_cached(_turn(10, read=100, uncached=100))
    assert not is_cached(_turn(10, read=99, uncached=101))
    assert not is_cached(_turn(10, read=100, uncached=50, written=51))
    assert is_cached(_turn(10, read=101, uncached=50, written=51))
    assert is_cached(_turn(10, read=1, uncached=0))
    assert not is_cached(_turn(10, read=0, uncached=0))


def test_the_decode_rate_counts_reasoning_and_needs_sixteen_tokens() -> None:
    t = turn(0, ttft=1.0, generation=3.0, tool=0.0, out=DECODE_MIN_TOKENS, reasoning=1.0)
    assert decode_rate(t) == DECODE_MIN_TOKENS / 4.0
    assert decode_rate(replace(t, usage=Usage(output_tokens=DECODE_MIN_TOKENS - 1))) is None
    no_time = dict(t.phases_s) | {"generation": 0.0, "reasoning": 0.0}
    assert decode_rate(replace(t, phases_s=no_time)) is None
    only_reasoning = dict(t.phases_s) | {"generation": 0.0, "reasoning": 2.0}
    assert decode_rate(replace(t, phases_s=only_reasoning)) == DECODE_MIN_TOKENS / 2.0


def test_burst_speed_counts_turns_of_five_hundred_tokens_and_more() -> None:
    assert BURST_MIN_TOKENS == 500
    turns = [
        turn(0, ttft=1.0, generation=1.0, tool=0.0, out=500),  # 500 tok/s, counted
        turn(1, ttft=1.0, generation=2.0, tool=0.0, out=499),  # 249.5 tok/s, not counted
    ]
    s = summarize_arm([session("A", 0, turns)], window_s=1800, concurrency=1)
    assert s["decode_tok_s"]["burst"] == 500.0
    assert s["decode_tok_s"]["n"] == 2


def test_every_summary_field_of_a_small_arm() -> None:
    cached = turn(1, ttft=2.0, generation=3.0, tool=0.0, out=600, read=900, reasoning=1.0)
    sessions = [
        session("A", 0, [turn(0, ttft=3.0, generation=1.0, tool=1.0, out=100), cached]),
        session("A", 1, [turn(0, ttft=4.0, generation=1.0, tool=5.0, out=100)], "failed"),
        session("A", 2, [turn(0, ttft=1.0, generation=1.0, tool=0.0, out=20)], "error"),
        session("A", 3, [turn(0, ttft=1.0, generation=1.0, tool=0.0, out=20)], "timeout"),
    ]
    s = summarize_arm(sessions, window_s=600, concurrency=3)
    walls = [11.0, 10.0, 2.0, 2.0]
    assert s["sessions"] == 4
    assert s["outcomes"] == {"passed": 1, "failed": 1, "error": 1, "timeout": 1}
    assert s["pass_rate"] == 0.25
    assert s["error_rate"] == 0.25
    assert s["session_wall_s"] == {"mean": 25 / 4, "median": 6.0}
    # Little's law: 600 s x 3 in parallel / 6.25 s per session.
    assert s["runs_per_window"] == pytest.approx(600 * 3 / 6.25)
    assert s["tasks_per_window"] == pytest.approx(600 * 3 / 6.25 * 0.25)
    assert s["window_s"] == 600
    assert s["concurrency"] == 3
    assert s["output_tokens_per_session"] == 840 / 4
    assert s["turns_per_session"] == 5 / 4
    assert s["output_tokens_per_turn"] == 840 / 5
    assert s["throughput_tok_s"]["mean"] == pytest.approx((700 / 11 + 10 + 10 + 10) / 4)
    assert s["ttft_s"]["n"] == 5
    assert s["ttft_s"]["cached"]["n"] == 1
    assert s["ttft_s"]["cold"]["mean"] == pytest.approx(9 / 4)
    assert s["decode_tok_s"]["mean"] == pytest.approx((100 + 150 + 100 + 20 + 20) / 5)
    totals = {"ttft": 11.0, "generation": 7.0, "tool": 6.0, "reasoning": 1.0}
    for phase, total in totals.items():
        assert s["phase_share"][phase] == pytest.approx(total / sum(walls))
        assert s["phase_s_per_session"][phase] == pytest.approx(total / 4)
    assert s["cache_hit_ratio"] == pytest.approx(900 / 1400)
    # Amdahl over reasoning + generation, 8 s of 25.
    assert s["what_if"] == {
        "2x": pytest.approx(25 / (25 - 8 + 8 / 2)),
        "10x": pytest.approx(25 / (25 - 8 + 8 / 10)),
    }
    assert WHAT_IF_FACTORS == (2, 10)


def test_an_arm_without_sessions_or_completed_runs() -> None:
    empty = summarize_arm([], window_s=1800, concurrency=1)
    assert empty["sessions"] == 0
    assert empty["pass_rate"] is None
    assert empty["error_rate"] is None
    assert empty["runs_per_window"] is None
    assert empty["tasks_per_window"] is None
    assert empty["cache_hit_ratio"] is None
    assert empty["what_if"] == {"2x": None, "10x": None}
    assert empty["phase_share"]["ttft"] is None
    assert empty["phase_s_per_session"]["ttft"] is None
    assert empty["session_wall_s"] == {"mean": None, "median": None}
    assert empty["throughput_tok_s"] == {
        "p10": None,
        "p50": None,
        "p90": None,
        "mean": None,
        "n": 0,
    }
    # Every session errored: no runs per window (not a huge number from short sessions).
    errored = [session("A", 0, [turn(0, ttft=1.0, generation=1.0, tool=0.0, out=5)], "error")]
    s = summarize_arm(errored, window_s=1800, concurrency=1)
    assert s["runs_per_window"] is None
    assert s["tasks_per_window"] is None
    # One completed session is enough.
    s = summarize_arm([*errored, SLOW[1]], window_s=1800, concurrency=1)
    assert s["runs_per_window"] == pytest.approx(1800 / 6)


def test_percentile_ends_and_mean() -> None:
    values = [3.0, 1.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 3.0
    assert percentile(values, 75) == 2.5
    assert mean([]) is None
    assert mean([1.0, 2.0]) == 1.5
    assert distribution([2.0, 4.0]) == {"p10": 2.2, "p50": 3.0, "p90": 3.8, "mean": 3.0, "n": 2}


def test_run_summary_keeps_arm_order_and_membership() -> None:
    b = session("B", 0, [turn(0, ttft=1.0, generation=1.0, tool=0.0, out=50)])
    summary = summarize_run([*SLOW, b], ["B", "A", "C"], window_s=1800, concurrency=1)
    assert list(summary) == ["B", "A", "C"]
    assert (summary["A"]["sessions"], summary["B"]["sessions"], summary["C"]["sessions"]) == (
        2,
        1,
        0,
    )


def test_phases_missing_from_an_old_session_count_as_zero() -> None:
    old = replace(SLOW[1], phases_s={"ttft": 4.0, "generation": 1.0, "tool": 5.0})
    s = summarize_arm([old], window_s=1800, concurrency=1)
    assert s["phase_s_per_session"]["retry_wait"] == 0.0
    assert s["phase_s_per_session"]["ttft"] == 4.0


def test_burst_is_the_ninetieth_percentile_of_long_turns() -> None:
    turns = [
        turn(0, ttft=1.0, generation=1.0, tool=0.0, out=500),  # 500 tok/s
        turn(1, ttft=1.0, generation=1.0, tool=0.0, out=1000),  # 1000 tok/s
    ]
    s = summarize_arm([session("A", 0, turns)], window_s=1800, concurrency=1)
    assert s["decode_tok_s"]["burst"] == pytest.approx(950.0)


def test_shares_and_what_if_of_sessions_under_a_second() -> None:
    short = session("A", 0, [turn(0, ttft=0.2, generation=0.2, tool=0.0, out=20)])
    s = summarize_arm([short], window_s=1800, concurrency=1)
    assert s["phase_share"]["ttft"] == pytest.approx(0.5)
    assert s["what_if"]["2x"] == pytest.approx(0.4 / 0.3)
