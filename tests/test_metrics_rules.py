"""Which turns the per-turn metrics leave out, with hand-computed values: a turn the endpoint
never served has no TTFT and no decode rate, and a turn with fewer than DECODE_MIN_TOKENS
output tokens says nothing about decode speed. Sessions themselves are never dropped."""

from __future__ import annotations

from dataclasses import replace

import pytest
from factories import session

from pytest_agentspeed.analysis.metrics import DECODE_MIN_TOKENS, summarize_arm
from pytest_agentspeed.records import SessionRecord, TurnRecord, Usage
from pytest_agentspeed.timing import PHASES


def turn(
    index: int,
    *,
    out: int,
    ttft: float = 0.0,
    reasoning: float = 0.0,
    generation: float = 0.0,
    cached: bool = False,
    failed: bool = False,
) -> TurnRecord:
    """A served turn; ``failed``: one the endpoint never served, as the agent records it (all
    retry wait, no tokens, an error)."""
    phases = dict.fromkeys(PHASES, 0.0)
    if failed:
        phases |= {"retry_wait": 29.8, "overhead": 0.2}
    else:
        phases |= {"ttft": ttft, "reasoning": reasoning, "generation": generation}
    usage = Usage(input_tokens=100, cache_read_tokens=900) if cached else Usage(input_tokens=1000)
    base = session("A", 0, 1.0).turns[0]
    return replace(
        base,
        index=index,
        wall_s=sum(phases.values()),
        phases_s=phases,
        usage=Usage() if failed else replace(usage, output_tokens=out),
        stop_reason=None if failed else "tool_use",
        error="timeout: the endpoint did not answer in time" if failed else None,
    )


def with_turns(slot: int, turns: list[TurnRecord], *, errored: bool = False) -> SessionRecord:
    record = session("A", slot, 1.0)
    return replace(
        record,
        outcome="error" if errored else "passed",
        error=turns[-1].error,
        wall_s=sum(t.wall_s for t in turns),
        usage=sum((t.usage for t in turns), Usage()),
        phases_s={p: sum(t.phases_s[p] for t in turns) for p in PHASES},
        turns=tuple(turns),
    )


SESSIONS = [
    with_turns(
        0,
        [
            turn(0, out=100, ttft=2.0, generation=1.0),  # 100 tok/s
            turn(1, out=DECODE_MIN_TOKENS, ttft=4.0, reasoning=1.0, generation=1.0, cached=True),
            turn(2, out=DECODE_MIN_TOKENS - 1, ttft=1.0, generation=0.5),  # 30 tok/s, left out
        ],
    ),
    with_turns(
        1,
        [turn(0, out=300, ttft=3.0, generation=2.0), turn(1, out=0, failed=True)],
        errored=True,
    ),
]


def test_the_decode_threshold_is_sixteen_tokens() -> None:
    assert DECODE_MIN_TOKENS == 16


def test_an_unserved_turn_has_no_ttft_and_no_tokens_per_turn() -> None:
    """The failed turn's TTFT phase is 0 s (its time is retry wait): counted, it would make the
    endpoint look faster to answer, and its 0 tokens would shrink the tokens per turn."""
    s = summarize_arm(SESSIONS, window_s=1800, concurrency=1)
    assert s["ttft_s"]["n"] == 4
    assert s["ttft_s"]["p50"] == 2.5
    assert s["ttft_s"]["p10"] == pytest.approx(1.3)
    assert s["ttft_s"]["mean"] == 2.5
    assert (s["ttft_s"]["cached"]["n"], s["ttft_s"]["cached"]["p50"]) == (1, 4.0)
    assert (s["ttft_s"]["cold"]["n"], s["ttft_s"]["cold"]["p50"]) == (3, 2.0)
    assert s["output_tokens_per_turn"] == (100 + 16 + 15 + 300) / 4


def test_the_session_of_an_unserved_turn_stays_in() -> None:
    s = summarize_arm(SESSIONS, window_s=1800, concurrency=1)
    assert s["outcomes"] == {"passed": 1, "failed": 0, "error": 1, "timeout": 0}
    assert s["turns_per_session"] == 2.5
    # Session walls: 3 + 6 + 1.5 = 10.5 s, and 5 + 30 = 35 s with the failed turn's wait.
    assert s["session_wall_s"]["mean"] == pytest.approx((10.5 + 35.0) / 2)
    assert s["throughput_tok_s"]["n"] == 2
    assert s["throughput_tok_s"]["mean"] == pytest.approx((131 / 10.5 + 300 / 35.0) / 2)


def test_decode_rates_leave_out_turns_under_the_threshold() -> None:
    """Decode: 100/1, 16/(1+1) and 300/2 tok/s; the 15-token turn (30 tok/s) is left out, the
    16-token one kept, reasoning time counted as decode time."""
    s = summarize_arm(SESSIONS, window_s=1800, concurrency=1)
    assert s["decode_tok_s"]["n"] == 3
    assert s["decode_tok_s"]["p50"] == 100.0
    assert s["decode_tok_s"]["mean"] == pytest.approx((100 + 8 + 150) / 3)
    assert s["decode_tok_s"]["p10"] == pytest.approx(8 + 0.2 * 92)
    assert s["decode_tok_s"]["burst"] is None
