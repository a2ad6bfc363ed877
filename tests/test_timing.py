"""The timing reducer on recorded event sequences, with exact expected marks and phases."""

from __future__ import annotations

import pytest

from pytest_agentspeed.timing import MARKS, PHASES, Event, EventLog, reduce_turn

MS = 1_000_000  # nanoseconds


def ev(t_ms: float, kind: str, **kw: object) -> Event:
    return Event(int(t_ms * MS), kind, **kw)  # type: ignore[arg-type]


def approx_ms(**values_ms: float | None) -> dict[str, object]:
    return {
        k: (None if v is None else pytest.approx(v / 1000, abs=1e-12)) for k, v in values_ms.items()
    }


def head(sent: float = 2, headers: float = 30, first_event: float = 31) -> list[Event]:
    return [
        ev(0, "turn_start"),
        ev(1, "attempt"),
        ev(sent, "request_sent"),
        ev(headers, "headers", status=200, detail="req_1"),
        ev(first_event, "message_start"),
    ]


def tail(stream_end: float) -> list[Event]:
    return [
        ev(stream_end - 1, "message_delta"),
        ev(stream_end - 1, "message_stop"),
        ev(stream_end, "stream_end"),
    ]


def test_text_reply() -> None:
    events = [
        *head(),
        ev(100, "block_start", index=0, detail="text"),
        ev(100, "delta", index=0, detail="text_delta", nonempty=True),
        ev(150, "delta", index=0, detail="text_delta", nonempty=True),
        ev(150, "block_stop", index=0),
        *tail(152),
        ev(153, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert timing.wall_s == pytest.approx(0.153, abs=1e-12)
    assert timing.phases_s == approx_ms(
        retry_wait=0, ttft=98, reasoning=0, generation=52, tool=0, overhead=3
    )
    assert timing.marks_s == approx_ms(
        request_sent=2,
        headers=30,
        first_event=31,
        first_token=100,
        first_output=100,
        last_token=150,
        stream_end=152,
        tools_end=None,
    )
    assert timing.streamed
    assert [(a.status, a.request_id, a.error) for a in timing.attempts] == [(200, "req_1", None)]


def test_tool_use_reply_ignores_the_empty_first_fragment() -> None:
    events = [
        *head(),
        ev(80, "block_start", index=0, detail="tool_use"),
        ev(80, "delta", index=0, detail="input_json_delta", nonempty=False),
        ev(120, "delta", index=0, detail="input_json_delta", nonempty=True),
        ev(140, "delta", index=0, detail="input_json_delta", nonempty=True),
        ev(141, "block_stop", index=0),
        *tail(145),
        ev(146, "tool_start", index=0, detail="read_file"),
        ev(346, "tool_end", index=0, ok=True),
        ev(350, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert timing.phases_s == approx_ms(
        retry_wait=0, ttft=118, reasoning=0, generation=25, tool=200, overhead=7
    )
    assert timing.marks_s["first_token"] == pytest.approx(0.120)
    assert timing.marks_s["first_output"] == pytest.approx(0.120)
    assert timing.marks_s["tools_end"] == pytest.approx(0.346)
    assert [(t.name, t.wall_s, t.ok) for t in timing.tools] == [
        ("read_file", pytest.approx(0.2), True)
    ]


def test_thinking_then_tool_use() -> None:
    events = [
        *head(),
        ev(90, "block_start", index=0, detail="thinking"),
        ev(100, "delta", index=0, detail="thinking_delta", nonempty=True),
        ev(200, "delta", index=0, detail="thinking_delta", nonempty=True),
        ev(250, "delta", index=0, detail="signature_delta", nonempty=True),
        ev(251, "block_stop", index=0),
        ev(260, "block_start", index=1, detail="tool_use"),
        ev(270, "delta", index=1, detail="input_json_delta", nonempty=True),
        ev(300, "delta", index=1, detail="input_json_delta", nonempty=True),
        ev(301, "block_stop", index=1),
        *tail(305),
        ev(306, "tool_start", index=0, detail="run_command"),
        ev(406, "tool_end", index=0, ok=False),
        ev(410, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert timing.phases_s == approx_ms(
        retry_wait=0, ttft=98, reasoning=151, generation=54, tool=100, overhead=7
    )
    assert timing.marks_s["first_token"] == pytest.approx(0.100)
    assert timing.marks_s["first_output"] == pytest.approx(0.270)
    assert timing.marks_s["last_token"] == pytest.approx(0.300)
    assert timing.tools[0].ok is False


def test_thinking_block_without_deltas_starts_the_first_token() -> None:
    # display: "omitted" - the block opens, a signature arrives, the block closes.
    events = [
        *head(),
        ev(90, "block_start", index=0, detail="thinking"),
        ev(240, "delta", index=0, detail="signature_delta", nonempty=True),
        ev(241, "block_stop", index=0),
        ev(250, "block_start", index=1, detail="text"),
        ev(260, "delta", index=1, detail="text_delta", nonempty=True),
        ev(280, "delta", index=1, detail="text_delta", nonempty=True),
        ev(281, "block_stop", index=1),
        *tail(285),
        ev(290, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert timing.phases_s == approx_ms(
        retry_wait=0, ttft=88, reasoning=151, generation=44, tool=0, overhead=7
    )
    assert timing.marks_s["first_token"] == pytest.approx(0.090)
    assert timing.marks_s["first_output"] == pytest.approx(0.260)
    assert timing.marks_s["last_token"] == pytest.approx(0.280)


def test_retried_attempt_counts_as_retry_wait() -> None:
    events = [
        ev(0, "turn_start"),
        ev(1, "attempt"),
        ev(2, "request_sent"),
        ev(30, "headers", status=529, detail="req_a"),
        ev(530, "attempt"),
        ev(531, "request_sent"),
        ev(560, "headers", status=200, detail="req_b"),
        ev(561, "message_start"),
        ev(700, "block_start", index=0, detail="text"),
        ev(700, "delta", index=0, detail="text_delta", nonempty=True),
        ev(750, "delta", index=0, detail="text_delta", nonempty=True),
        ev(750, "block_stop", index=0),
        *tail(752),
        ev(753, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert timing.phases_s == approx_ms(
        retry_wait=529, ttft=169, reasoning=0, generation=52, tool=0, overhead=3
    )
    assert timing.marks_s["request_sent"] == pytest.approx(0.531)
    assert timing.marks_s["headers"] == pytest.approx(0.560)
    assert [(a.sent_s, a.status, a.request_id, a.error) for a in timing.attempts] == [
        (pytest.approx(0.002), 529, "req_a", "http_529"),
        (pytest.approx(0.531), 200, "req_b", None),
    ]


def test_a_turn_the_endpoint_never_served_is_retry_wait() -> None:
    events = [
        ev(0, "turn_start"),
        ev(1, "attempt"),
        ev(2, "request_sent"),
        ev(30, "headers", status=529),
        ev(400, "attempt"),
        ev(401, "request_sent"),
        ev(430, "headers", status=529),
        ev(431, "attempt_failed", detail="overloaded_error"),
        ev(432, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert timing.phases_s == approx_ms(
        retry_wait=431 - 2, ttft=0, reasoning=0, generation=0, tool=0, overhead=3
    )
    assert timing.attempts[-1].error == "overloaded_error"


def test_a_stream_that_broke_before_the_retry_is_not_the_final_response() -> None:
    # The first attempt streamed some text, then died; only the second attempt's events count.
    events = [
        ev(0, "turn_start"),
        ev(1, "attempt"),
        ev(2, "request_sent"),
        ev(30, "headers", status=200),
        ev(31, "message_start"),
        ev(50, "block_start", index=0, detail="text"),
        ev(60, "delta", index=0, detail="text_delta", nonempty=True),
        ev(70, "attempt_failed", detail="overloaded_error"),
        ev(100, "attempt"),
        ev(101, "request_sent"),
        ev(130, "headers", status=200),
        ev(131, "message_start"),
        ev(200, "block_start", index=0, detail="text"),
        ev(200, "delta", index=0, detail="text_delta", nonempty=True),
        ev(220, "block_stop", index=0),
        *tail(222),
        ev(223, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert timing.phases_s == approx_ms(
        retry_wait=99, ttft=99, reasoning=0, generation=22, tool=0, overhead=3
    )
    assert timing.marks_s["first_event"] == pytest.approx(0.131)
    assert timing.attempts[0].error == "overloaded_error"


def test_non_streamed_response_is_all_ttft_and_flagged() -> None:
    events = [
        ev(0, "turn_start"),
        ev(1, "attempt"),
        ev(2, "request_sent"),
        ev(480, "headers", status=200),
        ev(500, "response"),
        ev(501, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert not timing.streamed
    assert timing.phases_s == approx_ms(
        retry_wait=0, ttft=498, reasoning=0, generation=0, tool=0, overhead=3
    )
    assert timing.marks_s["first_token"] == timing.marks_s["stream_end"] == pytest.approx(0.5)


def test_overlapping_tools_count_once() -> None:
    events = [
        *head(),
        ev(100, "block_start", index=0, detail="text"),
        ev(100, "delta", index=0, detail="text_delta", nonempty=True),
        *tail(110),
        ev(120, "tool_start", index=0, detail="run_command"),
        ev(130, "tool_start", index=1, detail="read_file"),
        ev(150, "tool_end", index=1),
        ev(220, "tool_end", index=0),
        ev(230, "tool_start", index=2, detail="list_files"),
        ev(240, "tool_end", index=2),
        ev(250, "turn_end"),
    ]
    timing = reduce_turn(events)
    assert timing.phases_s["tool"] == pytest.approx(0.110)
    assert [t.name for t in timing.tools] == ["read_file", "run_command", "list_files"]


def test_phases_and_marks_of_a_live_log_on_a_ticking_clock() -> None:
    """The log's own clock, one tick per event: every phase and mark is a whole number of
    ticks, known exactly (that the phases sum to the wall holds by construction)."""
    tick = 7_919
    ticks = iter(range(0, 10**9, tick))
    log = EventLog(clock=lambda: next(ticks))
    for kind in ("turn_start", "attempt", "request_sent"):
        log.add(kind)  # type: ignore[arg-type]
    log.add("headers", status=200)
    log.add("message_start")
    log.add("block_start", index=0, detail="text")
    for _ in range(5):
        log.add("delta", index=0, detail="text_delta", nonempty=True)
    for kind in ("block_stop", "message_delta", "message_stop", "stream_end"):
        log.add(kind, index=0)  # type: ignore[arg-type]
    log.add("tool_start", index=0, detail="x")
    log.add("tool_end", index=0)
    log.add("turn_end")
    timing = reduce_turn(log.events)

    # Ticks: 0 turn_start, 1 attempt, 2 request_sent, 3 headers, 4 message_start,
    # 5 block_start, 6-10 deltas, 11 block_stop, 12 message_delta, 13 message_stop,
    # 14 stream_end, 15 tool_start, 16 tool_end, 17 turn_end.
    def s(n: int) -> float:
        return n * tick / 1e9

    assert timing.wall_s == s(17)
    assert timing.phases_s == {
        "retry_wait": 0.0,
        "ttft": s(6 - 2),
        "reasoning": 0.0,
        "generation": s(14 - 6),
        "tool": s(16 - 15),
        "overhead": s(2 + 1 + 1),  # building the request; between stream, tool and turn end
    }
    assert timing.marks_s == {
        "request_sent": s(2),
        "headers": s(3),
        "first_event": s(4),
        "first_token": s(6),
        "first_output": s(6),
        "last_token": s(10),
        "stream_end": s(14),
        "tools_end": s(16),
    }
    assert list(timing.phases_s) == list(PHASES)
    assert list(timing.marks_s) == list(MARKS)


def test_turn_start_is_required() -> None:
    with pytest.raises(ValueError, match="turn_start"):
        reduce_turn([ev(1, "turn_end")])
