"""An external agent's session from what the proxy saw: turns, side requests and the session's
phases, on synthetic exchanges with exact expected numbers (all times in whole milliseconds, so
every expected value is the float the nanosecond arithmetic gives)."""

from __future__ import annotations

import pytest
from factories import MS, ev, exchange, text_stream, title_request

from pytest_agentspeed.agents.timeline import (
    OVERLAP_PRIORITY,
    main_model,
    process_spans,
    session_timeline,
)
from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import ALL_PHASES, PHASES


def ms(**values: int) -> dict[str, float]:
    """Phase seconds as the nanosecond arithmetic gives them."""
    return {k: v * MS / 1e9 for k, v in values.items()}


def session_phases(**values: int) -> dict[str, float]:
    return ms(**(dict.fromkeys(ALL_PHASES, 0) | values))


def turn_phases(**values: int) -> dict[str, float]:
    return ms(**(dict.fromkeys((*PHASES, "agent"), 0) | values))


def assert_sums(turn_or_timeline: object) -> None:
    """Phases sum to the wall time exactly, in nanoseconds."""
    phases: dict[str, float] = turn_or_timeline.phases_s  # type: ignore[attr-defined]
    wall: float = turn_or_timeline.wall_s  # type: ignore[attr-defined]
    assert sum(round(v * 1e9) for v in phases.values()) == round(wall * 1e9)


def test_sequential_turns_with_the_agents_time_between_them() -> None:
    # Turn 1: arrives at 100, sent 101, first token 200, stream end 300, forwarded by 301.
    # Turn 2 thinks from its first token (600) to 650, then writes text until 700.
    thinking = [
        ev(599, "message_start"),
        ev(590, "block_start", index=0, detail="thinking"),
        ev(600, "delta", index=0, detail="thinking_delta", nonempty=True),
        ev(650, "block_stop", index=0),
        ev(660, "block_start", index=1, detail="text"),
        ev(660, "delta", index=1, detail="text_delta", nonempty=True),
        ev(699, "message_stop"),
        ev(700, "stream_end"),
    ]
    turns, timeline = session_timeline(
        [
            exchange(100, text_stream(200, 300), end=301),
            exchange(500, thinking, end=702),
        ],
        started_ns=0,
        ended_ns=900 * MS,
    )

    assert [t.index for t in turns] == [0, 1]
    assert [t.start_s for t in turns] == [0.1, 0.5]
    assert [t.wall_s for t in turns] == [0.4, 0.202]
    assert turns[0].phases_s == turn_phases(overhead=2, ttft=99, generation=100, agent=199)
    assert turns[1].phases_s == turn_phases(
        overhead=3, ttft=99, reasoning=50, generation=50, agent=0
    )
    # Marks are from the turn's arrival, as the built-in agent's are from its start.
    assert turns[0].marks_s["request_sent"] == 0.001
    assert turns[0].marks_s["first_token"] == 0.1
    assert turns[0].marks_s["stream_end"] == 0.2
    assert all(t.streamed for t in turns)
    assert turns[0].usage == Usage(input_tokens=10, output_tokens=5)
    assert turns[0].stop_reason == "tool_use"

    assert timeline.wall_s == 0.9
    assert timeline.phases_s == session_phases(
        startup=100, overhead=5, ttft=198, reasoning=50, generation=150, agent=199, winddown=198
    )
    assert timeline.side_requests == ()
    assert timeline.usage == Usage(input_tokens=20, output_tokens=10)
    assert process_spans(timeline) == (0.1, 0.198)
    for part in (*turns, timeline):
        assert_sums(part)


def test_a_title_request_beside_turn_1_is_a_side_request_and_takes_no_phase_time() -> None:
    main = [
        exchange(100, text_stream(200, 300), end=301),
        exchange(500, text_stream(600, 700), end=701),
    ]
    title = title_request()
    turns, timeline = session_timeline([main[0], title, main[1]], started_ns=0, ended_ns=800 * MS)
    alone_turns, alone = session_timeline(main, started_ns=0, ended_ns=800 * MS)

    assert turns == alone_turns
    assert timeline.phases_s == alone.phases_s
    assert timeline.phases_s == session_phases(
        startup=100, overhead=4, ttft=198, generation=200, agent=199, winddown=99
    )
    (side,) = timeline.side_requests
    assert side.why == "no tools"
    assert side.start_s == 0.102
    assert side.wall_s == 0.079
    assert side.model == "small"
    assert side.marks_s["first_token"] == 0.048
    assert side.marks_s["stream_end"] == 0.078
    assert side.streamed is True
    assert side.status == 200
    assert side.error is None
    assert side.usage == Usage(input_tokens=3, output_tokens=7)
    assert timeline.usage == Usage(input_tokens=23, output_tokens=17)
    assert_sums(timeline)


def test_side_reasons_in_order() -> None:
    tools_main = exchange(100, text_stream(200, 300))
    structured = exchange(400, text_stream(450, 460), structured=True)
    other_model = exchange(500, text_stream(550, 560), model="small")
    no_tools = exchange(600, text_stream(650, 660), tools=(), structured=True)
    turns, timeline = session_timeline(
        [tools_main, structured, other_model, no_tools], started_ns=0, ended_ns=1000 * MS
    )
    assert len(turns) == 1
    assert [r.why for r in timeline.side_requests] == [
        "structured output",
        "other model",
        "no tools",
    ]


def test_the_main_model_is_the_most_frequent_tool_offering_model_ties_to_the_first() -> None:
    a, b = exchange(100, [], model="a"), exchange(200, [], model="b")
    assert main_model([b, a]) == "a"  # ordered by arrival: a first
    assert main_model([a, b, exchange(300, [], model="b")]) == "b"
    assert main_model([exchange(100, [], tools=())]) is None


def test_overlapping_main_requests_count_each_instant_once_by_priority() -> None:
    # A: sent at its arrival (100), first token 300, end 400. B (a parallel sub-agent): sent
    # at 200, first token 250, end 350.
    a = exchange(100, text_stream(300, 400), sent=100, headers=110)
    b = exchange(200, text_stream(250, 350), sent=200, headers=210)
    turns, timeline = session_timeline([b, a], started_ns=0, ended_ns=500 * MS)

    # [100, 250) waits for a first token; [250, 400) some model is generating.
    assert timeline.phases_s == session_phases(startup=100, ttft=150, generation=150, winddown=100)
    assert OVERLAP_PRIORITY[0] == "generation"
    assert [t.start_s for t in turns] == [0.1, 0.2]
    # A turn overlapped by the next keeps its own request part: no agent time, wall to its end.
    assert turns[0].wall_s == 0.3
    assert turns[0].phases_s == turn_phases(ttft=200, generation=100)
    assert turns[1].wall_s == 0.15
    assert turns[1].phases_s == turn_phases(ttft=50, generation=100)
    for part in (*turns, timeline):
        assert_sums(part)


def test_a_429_then_a_retried_success_is_one_turn_with_retry_wait() -> None:
    refused = exchange(
        100,
        # The error document's end is no response: left out.
        [ev(121, "response"), ev(121, "attempt_failed", detail="rate_limit_error")],
        headers=120,
        status=429,
        end=122,
        error="http 429",
    )
    retried = exchange(1100, text_stream(1200, 1300), end=1301)
    turns, timeline = session_timeline([refused, retried], started_ns=0, ended_ns=1400 * MS)

    (turn,) = turns
    assert turn.error is None
    assert turn.start_s == 0.1
    assert turn.wall_s == 1.201
    assert turn.phases_s == turn_phases(retry_wait=1000, ttft=99, generation=100, overhead=2)
    assert [(a.status, a.error) for a in turn.attempts] == [
        (429, "rate_limit_error"),
        (200, None),
    ]
    assert [a.sent_s for a in turn.attempts] == [0.001, 1.001]
    assert timeline.phases_s == session_phases(
        startup=100, overhead=2, retry_wait=1000, ttft=99, generation=100, winddown=99
    )
    assert timeline.usage == Usage(input_tokens=10, output_tokens=5)
    for part in (turn, timeline):
        assert_sums(part)


def test_a_turn_whose_every_attempt_failed_is_retry_wait_and_has_an_error() -> None:
    refused = exchange(100, [ev(130, "response")], headers=120, status=529, end=131)
    turns, timeline = session_timeline([refused], started_ns=0, ended_ns=200 * MS)
    (turn,) = turns
    assert turn.error == "http_529"
    assert turn.usage == Usage()
    # Sent at 101, the endpoint's last word (its headers) at 120.
    assert turn.phases_s == turn_phases(overhead=12, retry_wait=19)
    assert timeline.phases_s == session_phases(startup=100, overhead=12, retry_wait=19, winddown=69)
    assert_sums(timeline)


def test_a_request_after_an_answered_turn_is_a_new_turn_not_a_retry() -> None:
    refused = exchange(100, [], headers=120, status=500, end=121)
    answered = exchange(200, text_stream(250, 260))
    later = exchange(300, text_stream(350, 360))
    turns, _ = session_timeline([refused, answered, later], started_ns=0, ended_ns=400 * MS)
    # The 500 was retried by the request at 200; the one at 300 follows an answered turn.
    assert [len(t.attempts) for t in turns] == [2, 1]


def test_a_non_streamed_turn_is_all_ttft_and_flagged() -> None:
    x = exchange(100, [ev(400, "response")], streamed=False, end=401)
    turns, timeline = session_timeline([x], started_ns=0, ended_ns=500 * MS)
    (turn,) = turns
    assert turn.streamed is False
    assert turn.phases_s == turn_phases(overhead=2, ttft=299)
    assert turn.marks_s["first_token"] == 0.3
    assert timeline.phases_s == session_phases(startup=100, overhead=2, ttft=299, winddown=99)
    assert_sums(timeline)


def test_count_tokens_and_head_are_side_requests() -> None:
    head = exchange(
        10,
        [ev(20, "response")],
        method="HEAD",
        path="/",
        operation="other",
        model=None,
        tools=(),
        streamed=False,
        usage=Usage(),
    )
    count = exchange(
        50,
        [ev(60, "response")],
        path="/v1/messages/count_tokens",
        operation="count_tokens",
        streamed=False,
        usage=Usage(input_tokens=42),
    )
    turn = exchange(100, text_stream(200, 300))
    turns, timeline = session_timeline([head, count, turn], started_ns=0, ended_ns=400 * MS)
    assert len(turns) == 1
    assert [(r.method, r.path, r.why) for r in timeline.side_requests] == [
        ("HEAD", "/", "not a model request"),
        ("POST", "/v1/messages/count_tokens", "count_tokens"),
    ]
    assert [r.start_s for r in timeline.side_requests] == [0.01, 0.05]
    assert [r.streamed for r in timeline.side_requests] == [False, False]
    # Start-up runs to the first main request, whatever came before it.
    assert timeline.phases_s == session_phases(
        startup=100, overhead=1, ttft=99, generation=100, winddown=100
    )
    assert timeline.usage == Usage(input_tokens=52, output_tokens=5)


@pytest.mark.parametrize("only_side", [False, True])
def test_no_main_request_is_all_startup_and_no_turns(only_side: bool) -> None:
    side = [exchange(10, [ev(20, "response")], operation="other", tools=())] if only_side else []
    turns, timeline = session_timeline(side, started_ns=5 * MS, ended_ns=305 * MS)
    assert turns == ()
    assert timeline.wall_s == 0.3
    assert timeline.phases_s == session_phases(startup=300)
    assert len(timeline.side_requests) == int(only_side)
    assert process_spans(timeline) == (0.3, 0.0)


def test_a_process_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before it started"):
        session_timeline([], started_ns=10, ended_ns=5)
