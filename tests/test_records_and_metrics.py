"""Run-file records, metrics with hand-computed values, and the terminal table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pytest_agentspeed
from pytest_agentspeed import RunFileError
from pytest_agentspeed.metrics import percentile, summarize_arm, summarize_run
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
from pytest_agentspeed.terminal import summary_table
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
