"""Session and run records built by hand, for tests of what is computed from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pytest_agentspeed.agents.timeline import process_spans, session_timeline
from pytest_agentspeed.exchanges import Exchange
from pytest_agentspeed.records import (
    EndpointRecord,
    Outcome,
    ProcessRecord,
    RunRecord,
    SessionRecord,
    TurnRecord,
    Usage,
)
from pytest_agentspeed.timing import MARKS, PHASES, Event

TASKS = 5


def conversation(instruction: str, assistant_turns: int) -> list[dict[str, Any]]:
    """A conversation after ``assistant_turns`` replies (the simulator only counts them)."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": instruction}]
    for i in range(assistant_turns):
        messages.append({"role": "assistant", "content": f"step {i}"})
        messages.append({"role": "user", "content": "go on"})
    return messages


def session(
    arm: str, slot: int, throughput: float, *, passed: bool = True, wall: float = 100.0
) -> SessionRecord:
    """A one-turn session with the given throughput (output tokens / wall time).

    Slot ``i`` is task ``t{i % 5}``, repeat ``i // 5``.
    """
    tokens = round(throughput * wall)
    phases = dict.fromkeys(PHASES, 0.0) | {"generation": wall}
    turn = TurnRecord(
        index=0,
        wall_s=wall,
        marks_s=dict.fromkeys(MARKS, None),
        phases_s=phases,
        usage=Usage(output_tokens=tokens),
        usage_raw={},
        stop_reason="end_turn",
        streamed=True,
        attempts=(),
        tool_calls=(),
    )
    task, repeat = f"t{slot % TASKS}", slot // TASKS
    return SessionRecord(
        id=f"{task}[{arm}-r{repeat}]",
        task=task,
        endpoint=arm,
        repeat=repeat,
        slot=f"{task}/r{repeat}",
        outcome="passed" if passed else "failed",
        error=None,
        wall_s=wall,
        setup_s=0.0,
        check_s=0.0,
        check_exit_code=0 if passed else 1,
        usage=Usage(output_tokens=tokens),
        phases_s=phases,
        turns=(turn,),
        started_at=float(slot),
    )


def arm(
    name: str, values: Sequence[float], *, passed: Sequence[bool] | None = None
) -> list[SessionRecord]:
    flags = passed if passed is not None else [True] * len(values)
    return [
        session(name, i, float(v), passed=p)
        for i, (v, p) in enumerate(zip(values, flags, strict=True))
    ]


def paired_arms(ratio: float, sigma: float, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Throughputs with a per-slot (task) effect shared by both arms, like real A/B runs."""
    rng = np.random.default_rng(seed)
    slot_effect = rng.normal(0, 0.4, n)
    base = np.exp(np.log(50) + slot_effect + rng.normal(0, sigma, n))
    cand = np.exp(np.log(50 * ratio) + slot_effect + rng.normal(0, sigma, n))
    return base, cand


def run_record(
    sessions: Sequence[SessionRecord], *, time_scale: float | None = 0.05, concurrency: int = 1
) -> RunRecord:
    names = list(dict.fromkeys(s.endpoint for s in sessions))
    return RunRecord(
        created_at="2026-11-29T00:00:00+00:00",
        agentspeed_version="0.1.0",
        environment={"concurrency": concurrency},
        config={"window_s": 1800.0, "repeat": 1, "time_scale": time_scale, "agent": "builtin"},
        endpoints=tuple(
            EndpointRecord(name=n, api="anthropic", model="m", base_url=None) for n in names
        ),
        sessions=tuple(sessions),
    )


# An agent measured from outside: what the recording proxy saw, and the sessions made of it.

MS = 1_000_000  # nanoseconds


def ev(t_ms: int, kind: str, **kw: object) -> Event:
    return Event(t_ms * MS, kind, **kw)  # type: ignore[arg-type]


def text_stream(first: int, stream_end: int) -> list[Event]:
    return [
        ev(first - 1, "message_start"),
        ev(first, "block_start", index=0, detail="text"),
        ev(first, "delta", index=0, detail="text_delta", nonempty=True),
        ev(stream_end - 1, "block_stop", index=0),
        ev(stream_end - 1, "message_stop"),
        ev(stream_end, "stream_end"),
    ]


def exchange(
    rx: int,
    body: Sequence[Event],
    *,
    sent: int | None = None,
    headers: int | None = None,
    end: int | None = None,
    status: int | None = 200,
    model: str | None = "big",
    tools: tuple[str, ...] = ("Bash", "Read"),
    operation: str = "messages",
    method: str = "POST",
    path: str = "/v1/messages?beta=true",
    structured: bool = False,
    streamed: bool = True,
    usage: Usage | None = None,
    error: str | None = None,
) -> Exchange:
    """A request received at ``rx`` ms, sent upstream 1 ms later, with ``body``'s events."""
    sent = rx + 1 if sent is None else sent
    headers = sent + 10 if headers is None else headers
    events = [
        ev(rx, "attempt"),
        ev(sent, "request_sent"),
        ev(headers, "headers", status=status or 0, detail="req"),
        *body,
    ]
    last = max(e.t_ns for e in events) // MS
    return Exchange(
        method=method,
        path=path,
        wire="other" if operation == "other" else "anthropic",
        operation=operation,  # type: ignore[arg-type]
        model=model,
        stream_requested=streamed,
        tools=tools,
        structured_output=structured,
        received_ns=rx * MS,
        end_ns=(last if end is None else end) * MS,
        events=tuple(events),
        status=status,
        streamed=streamed,
        usage=Usage(input_tokens=10, output_tokens=5) if usage is None else usage,
        usage_raw={"input_tokens": 10, "output_tokens": 5},
        stop_reason="tool_use" if status == 200 else None,
        error=error,
    )


def title_request() -> Exchange:
    """Claude Code's session title request, beside a turn arriving at 100 ms: a small model,
    no tools, a JSON schema; from 102 to 181 ms, first token at 150."""
    return exchange(
        102,
        text_stream(150, 180),
        model="small",
        tools=(),
        structured=True,
        end=181,
        usage=Usage(input_tokens=3, output_tokens=7),
    )


def external_session(
    arm: str,
    slot: int,
    *,
    outcome: Outcome = "passed",
    streamed: bool = True,
    output_tail: str = "done",
) -> SessionRecord:
    """A session of an external agent (``claude``) as the agent module makes it: three turns
    with the agent's own time between them, a title request beside turn 1 (a side request), a
    start-up of 0.1 s and a wind-down of 0.2 s. ``streamed=False`` makes turn 2 non-streamed.

    Times (ms from process start): turns arrive at 100, 500 and 900; each is sent 1 ms later,
    its first token comes 100 ms after that and its stream ends 100 ms later, forwarded 1 ms
    on; the title request runs from 102 to 181; the process exits at 1400.
    """
    second = text_stream(601, 701) if streamed else [ev(701, "response")]
    exchanges = [
        exchange(100, text_stream(201, 301), end=302),
        title_request(),
        exchange(500, second, end=702, streamed=streamed),
        exchange(900, text_stream(1001, 1101), end=1102),
    ]
    turns, timeline = session_timeline(exchanges, started_ns=0, ended_ns=1400 * MS)
    startup, winddown = process_spans(timeline)
    task, repeat = f"t{slot % TASKS}", slot // TASKS
    return SessionRecord(
        id=f"{task}[{arm}-r{repeat}]",
        task=task,
        endpoint=arm,
        repeat=repeat,
        slot=f"{task}/r{repeat}",
        agent="claude-code",
        outcome=outcome,
        error=None if outcome in ("passed", "failed") else "the agent exited with code 1",
        wall_s=timeline.wall_s,
        setup_s=0.0,
        check_s=0.0,
        check_exit_code=0 if outcome == "passed" else None,
        usage=timeline.usage,
        phases_s=dict(timeline.phases_s),
        turns=turns,
        started_at=float(slot),
        side_requests=timeline.side_requests,
        process=ProcessRecord(
            program="claude",
            exit_code=0 if outcome in ("passed", "failed") else 1,
            timed_out=False,
            startup_s=startup,
            winddown_s=winddown,
            output_tail=output_tail,
        ),
    )
