"""Session and run records built by hand, for tests of what is computed from them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np

from pytest_agentspeed.agents.timeline import process_spans, session_timeline
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.clients.openai_client import OpenAIClient, to_openai_messages, to_openai_tool
from pytest_agentspeed.clients.responses_client import (
    ResponsesClient,
    to_responses_input,
    to_responses_tool,
)
from pytest_agentspeed.endpoints import Api, Endpoint, SimOptions
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
from pytest_agentspeed.replay.recording import RecordedRequest, Recording
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


# A relay that keeps what a server received.


@contextmanager
def tcp_relay(upstream_port: int) -> Iterator[tuple[int, bytearray]]:
    """A TCP relay on loopback in front of ``upstream_port`` that keeps every byte sent through
    it: what the upstream received, headers included; yields its port and those bytes."""
    seen = bytearray()
    lock = threading.Lock()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    opened: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def pipe(src: socket.socket, dst: socket.socket, keep: bool) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                if keep:
                    with lock:
                        seen.extend(data)
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(("127.0.0.1", upstream_port))
            opened.extend((client, server))
            for args in ((client, server, True), (server, client, False)):
                thread = threading.Thread(target=pipe, args=args, daemon=True)
                thread.start()
                threads.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        stop.set()
        acceptor.join()
        listener.close()
        for sock in opened:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        for sock in opened:
            sock.close()


# Recorded sessions, shaped like the built-in agent's on each wire, and what replays them.


WIRES: tuple[Api, ...] = ("anthropic", "openai", "responses")
PATHS: dict[Api, str] = {
    "anthropic": "/v1/messages?beta=true",
    "openai": "/v1/chat/completions",
    "responses": "/v1/responses",
}
TOOLS = [
    {
        "name": "read_file",
        "description": "Read a file.",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
    }
]
SYSTEM = [{"type": "text", "text": "You are a careful coding agent."}]


def tool_conversation(turns: int) -> list[dict[str, Any]]:
    """The Anthropic-shaped conversation before turn ``turns``: the task, then one tool call
    and its result per earlier turn (so the simulator counts ``turns`` assistant messages)."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Fix the bug in app.py."}]}
    ]
    for k in range(turns):
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Looking at part {k}."},
                    {"type": "tool_use", "id": f"toolu_{k}", "name": "read_file", "input": {}},
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": f"line {k}"}
                ],
            }
        )
    return messages


def wire_body(wire: Api, turns: int, *, max_tokens: int = 4096) -> dict[str, Any]:
    """The body the wire's live client would have sent for turn ``turns``."""
    messages = tool_conversation(turns)
    if wire == "anthropic":
        return {
            "model": "recorded-model",
            "max_tokens": max_tokens,
            "system": SYSTEM,
            "messages": messages,
            "tools": TOOLS,
            "metadata": {"user_id": "recorded-session"},
            "stream": True,
        }
    if wire == "openai":
        return {
            "model": "recorded-model",
            "messages": to_openai_messages(SYSTEM, messages),
            "tools": [to_openai_tool(t) for t in TOOLS],
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "recorded-session",
        }
    return {
        "model": "recorded-model",
        "instructions": SYSTEM[0]["text"],
        "input": to_responses_input(messages),
        "tools": [to_responses_tool(t) for t in TOOLS],
        "max_output_tokens": max_tokens,
        "stream": True,
        "store": False,
        "prompt_cache_key": "recorded-session",
    }


def recorded(wire: Api, index: int, *, output: int, gap: float = 0.0, **kw: Any) -> RecordedRequest:
    """Request ``index`` of a recorded session (a turn unless ``kind`` says otherwise),
    answered with ``output`` tokens after a gap of ``gap`` s (3/4 tool after the first);
    ``kw`` overrides any field."""
    fields: dict[str, Any] = {
        "kind": "turn",
        "index": index,
        "method": "POST",
        "path": PATHS[wire],
        "header_names": ("content-type",),
        "body": wire_body(wire, index),
        "gap_s": gap,
        "gap_phases": {"tool": gap * 0.75, "overhead": gap * 0.25} if index else {"overhead": gap},
        "wall_s": 0.5,
        "status": 200,
        "usage": Usage(input_tokens=100, output_tokens=output),
        "stop_reason": "tool_use",
    }
    return RecordedRequest(**(fields | kw))


def recording(
    wire: Api, requests: tuple[RecordedRequest, ...], *, tail_s: float = 0.0
) -> Recording:
    """A recorded session of ``requests`` on ``wire``; its tail half tool, half overhead."""
    return Recording(
        name=f"fix-{wire}.rec-r0",
        session=f"fix-{wire}[rec-r0]",
        task=f"fix-{wire}",
        agent="builtin",
        wire=wire,
        model="recorded-model",
        endpoint="rec",
        recorded_at=0.0,
        outcome="passed",
        wall_s=3.0,
        requests=requests,
        tail_s=tail_s,
        tail_phases={"tool": tail_s / 2, "overhead": tail_s / 2},
    )


def sim_endpoint(wire: Api, name: str = "sim") -> Endpoint:
    """A simulated endpoint on ``wire`` (ultraspeed, time scale 0.01, no jitter)."""
    return Endpoint(
        name=name,
        api=wire,
        model="sim-model",
        sim=SimOptions(profile="ultraspeed", time_scale=0.01, jitter=False, api_given=True),
    )


def client_for(wire: Api, base_url: str, **options: Any) -> Any:
    """The wire's client for a server at ``base_url`` (its root, without ``/v1``)."""
    if wire == "anthropic":
        return AnthropicClient(model="unused", base_url=base_url, api_key="sk-test", **options)
    cls = OpenAIClient if wire == "openai" else ResponsesClient
    return cls(model="unused", base_url=f"{base_url}/v1", api_key=None, **options)
