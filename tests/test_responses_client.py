"""The OpenAI Responses wire in the package: the stream's mapping onto marks, and the client
against an independent scripted server (``responses_server.py``).

The mapping is held to exact event sequences; the client's phases to the server's own send
log (within 3 ms, medians of five turns, three tries on a loaded machine); its retries, errors,
request body and connection reuse over real HTTP on loopback; the built-in agent's loop sends
the reasoning item it got back unchanged.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from responses_server import Reply, ResponsesServer, Script, text_reply, usage

from pytest_agentspeed.agents import AgentContext
from pytest_agentspeed.agents.builtin import SYSTEM_PROMPT, BuiltinAgent
from pytest_agentspeed.clients import ToolCall, TurnRequest
from pytest_agentspeed.clients.responses_client import ResponsesClient, to_responses_input
from pytest_agentspeed.clients.responses_stream import ResponsesStream, responses_usage
from pytest_agentspeed.clients.sse import SSEEvent
from pytest_agentspeed.endpoints import parse_endpoint
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import Usage
from pytest_agentspeed.run.pool import EndpointPool
from pytest_agentspeed.tasks import Limits, Task
from pytest_agentspeed.timing import Event, EventLog, reduce_turn

MS = 1_000_000
TOLERANCE_S = 0.003

# -- the stream's mapping -----------------------------------------------------------------

REASONING = {"id": "rs_1", "type": "reasoning", "summary": []}
REASONING_DONE = {
    "id": "rs_1",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "Let me look."}],
    "encrypted_content": "gAAAA-opaque",
}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress"}
MESSAGE_DONE = {
    **MESSAGE,
    "status": "completed",
    "content": [{"type": "output_text", "text": "Reading a.", "annotations": []}],
}
CALL = {
    "id": "fc_1",
    "type": "function_call",
    "status": "in_progress",
    "call_id": "call_a",
    "name": "read_file",
    "arguments": "",
}
CALL_DONE = {**CALL, "status": "completed", "arguments": '{"path": "a.py"}'}
USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 10},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 25},
    "total_tokens": 160,
}

#: (ms, event) of a whole stream: every event type the mapping knows, in OpenAI's order.
EVERY_EVENT: list[tuple[int, dict[str, Any]]] = [
    (1, {"type": "response.created", "response": {"id": "r", "status": "in_progress"}}),
    (2, {"type": "response.in_progress", "response": {"id": "r", "status": "in_progress"}}),
    (3, {"type": "response.output_item.added", "output_index": 0, "item": REASONING}),
    (4, {"type": "response.reasoning_summary_part.added", "output_index": 0, "summary_index": 0}),
    (5, {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "Let me"}),
    (6, {"type": "response.reasoning_text.delta", "output_index": 0, "delta": ""}),
    (7, {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": " look."}),
    (8, {"type": "response.reasoning_summary_text.done", "output_index": 0, "text": "..."}),
    (9, {"type": "response.reasoning_summary_part.done", "output_index": 0, "summary_index": 0}),
    (10, {"type": "response.output_item.done", "output_index": 0, "item": REASONING_DONE}),
    (11, {"type": "response.output_item.added", "output_index": 1, "item": {**MESSAGE}}),
    (12, {"type": "response.content_part.added", "output_index": 1, "content_index": 0}),
    (13, {"type": "response.output_text.delta", "output_index": 1, "delta": "Reading a."}),
    (14, {"type": "response.output_text.done", "output_index": 1, "text": "Reading a."}),
    (15, {"type": "response.content_part.done", "output_index": 1, "content_index": 0}),
    (16, {"type": "response.output_item.done", "output_index": 1, "item": MESSAGE_DONE}),
    (17, {"type": "response.output_item.added", "output_index": 2, "item": CALL}),
    (18, {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": '{"pa'}),
    (19, {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": ""}),
    (
        20,
        {
            "type": "response.function_call_arguments.delta",
            "output_index": 2,
            "delta": 'th": "a.py"}',
        },
    ),
    (21, {"type": "response.function_call_arguments.done", "output_index": 2, "arguments": "."}),
    (22, {"type": "response.output_item.done", "output_index": 2, "item": CALL_DONE}),
    (
        23,
        {
            "type": "response.completed",
            "response": {
                "id": "r",
                "status": "completed",
                "output": [REASONING_DONE, MESSAGE_DONE, CALL_DONE],
                "usage": USAGE,
            },
        },
    ),
]


def sse(t_ms: int, event: dict[str, Any], name: str | None = None) -> SSEEvent:
    return SSEEvent(name or event["type"], json.dumps(event).encode(), t_ms * MS)


def fold(events: list[tuple[int, dict[str, Any]]]) -> tuple[ResponsesStream, list[bool]]:
    stream = ResponsesStream(EventLog(clock=lambda: 0))
    return stream, [stream.feed(sse(t, e)) for t, e in events]


def kinds(log: EventLog) -> list[tuple[int, str, int, str, bool]]:
    return [(e.t_ns // MS, e.kind, e.index, e.detail, e.nonempty) for e in log.events]


def test_every_event_maps_onto_the_marks_of_the_other_wires() -> None:
    stream, ended = fold(EVERY_EVENT)
    assert ended == [False] * (len(EVERY_EVENT) - 1) + [True]
    assert kinds(stream.log) == [
        (1, "message_start", -1, "", False),
        (3, "block_start", 0, "thinking", False),
        (5, "delta", 0, "thinking_delta", True),
        (6, "delta", 0, "thinking_delta", False),
        (7, "delta", 0, "thinking_delta", True),
        (10, "block_stop", 0, "", False),
        (11, "block_start", 1, "text", False),
        (13, "delta", 1, "text_delta", True),
        (16, "block_stop", 1, "", False),
        (17, "block_start", 2, "tool_use", False),
        (18, "delta", 2, "input_json_delta", True),
        (19, "delta", 2, "input_json_delta", False),
        (20, "delta", 2, "input_json_delta", True),
        (22, "block_stop", 2, "", False),
        (23, "message_delta", -1, "", False),
        (23, "message_stop", -1, "", False),
    ]
    reply = stream.response()
    assert reply.content == [
        {
            "type": "thinking",
            "thinking": "Let me look.",
            "signature": "gAAAA-opaque",
            "item": REASONING_DONE,
        },
        {"type": "text", "text": "Reading a.", "item": MESSAGE_DONE},
        {
            "type": "tool_use",
            "id": "call_a",
            "name": "read_file",
            "input": {"path": "a.py"},
            "item": CALL_DONE,
        },
    ]
    assert reply.tool_calls == (ToolCall(id="call_a", name="read_file", input={"path": "a.py"}),)
    assert reply.stop_reason == "tool_use"
    assert reply.usage == Usage(
        input_tokens=30,
        cache_read_tokens=80,
        cache_write_tokens=10,
        output_tokens=40,
        thinking_tokens=25,
    )
    assert reply.usage_raw == USAGE
    # The reducer's phases, exactly: the first token is the first summary delta (5 ms), the
    # reasoning runs to the reasoning item's end (10 ms), generation to the body's end.
    events = [Event(0, "turn_start"), Event(0, "request_sent"), *stream.log.events]
    events += [Event(30 * MS, "stream_end"), Event(30 * MS, "turn_end")]
    timing = reduce_turn(events)
    assert timing.marks_s["first_event"] == 0.001
    assert timing.marks_s["first_token"] == 0.005
    assert timing.marks_s["first_output"] == 0.013
    assert timing.marks_s["last_token"] == 0.020
    assert timing.phases_s["ttft"] == 0.005
    assert timing.phases_s["reasoning"] == 0.005
    assert timing.phases_s["generation"] == 0.020


def test_lifecycle_events_are_never_tokens() -> None:
    empty_message = {"id": "m", "type": "message", "role": "assistant", "content": []}
    stream, ended = fold(
        [
            (1, {"type": "response.queued", "response": {}}),
            (2, {"type": "response.created", "response": {}}),
            (3, {"type": "response.in_progress", "response": {}}),
            (4, {"type": "response.output_item.added", "output_index": 0, "item": empty_message}),
            (5, {"type": "response.content_part.added", "output_index": 0, "part": {"text": ""}}),
            (6, {"type": "response.output_text.done", "output_index": 0, "text": ""}),
            (7, {"type": "response.content_part.done", "output_index": 0, "part": {"text": ""}}),
            (8, {"type": "response.output_text.annotation.added", "output_index": 0}),
            (9, {"type": "response.output_item.done", "output_index": 0, "item": empty_message}),
            (10, {"type": "response.completed", "response": {"output": [empty_message]}}),
        ]
    )
    assert ended[-1] is True
    assert [e for e in stream.log.events if e.kind == "delta"] == []
    assert [(t, k) for t, k, *_ in kinds(stream.log)] == [
        (2, "message_start"),
        (4, "block_start"),
        (9, "block_stop"),
        (10, "message_delta"),
        (10, "message_stop"),
    ]
    reply = stream.response()
    assert (reply.stop_reason, reply.tool_calls) == ("end_turn", ())
    assert reply.usage == Usage()


def test_items_that_arrive_whole_count_their_content_once() -> None:
    """A server that sends a function call's arguments only in ``output_item.done``, and a
    reasoning item with no summary at all (the model reasoned silently): the first is one
    token at its done event, the second a thinking block without deltas, whose start is the
    first token (as for Anthropic's redacted thinking)."""
    silent = {"id": "rs", "type": "reasoning", "summary": [], "encrypted_content": "e"}
    call = {"type": "function_call", "call_id": "c", "name": "run_command", "arguments": ""}
    whole_call = {**call, "arguments": '{"command": "ls"}'}
    stream, _ = fold(
        [
            (1, {"type": "response.created", "response": {}}),
            (2, {"type": "response.output_item.added", "output_index": 0, "item": silent}),
            (9, {"type": "response.output_item.done", "output_index": 0, "item": silent}),
            (10, {"type": "response.output_item.added", "output_index": 1, "item": call}),
            (12, {"type": "response.output_item.done", "output_index": 1, "item": whole_call}),
            (13, {"type": "response.completed", "response": {"status": "completed"}}),
        ]
    )
    assert [(t, k, d) for t, k, _, d, _ in kinds(stream.log) if k != "message_start"] == [
        (2, "block_start", "thinking"),
        (9, "block_stop", ""),
        (10, "block_start", "tool_use"),
        (12, "delta", "input_json_delta"),
        (12, "block_stop", ""),
        (13, "message_delta", ""),
        (13, "message_stop", ""),
    ]
    events = [Event(0, "turn_start"), Event(0, "request_sent"), *stream.log.events]
    timing = reduce_turn([*events, Event(14 * MS, "stream_end")])
    assert timing.marks_s["first_token"] == 0.002
    assert timing.phases_s["reasoning"] == 0.007
    reply = stream.response()
    assert reply.tool_calls == (ToolCall(id="c", name="run_command", input={"command": "ls"}),)
    assert reply.content[0]["signature"] == "e"


@pytest.mark.parametrize(
    ("reason", "stop"),
    [("max_output_tokens", "max_tokens"), ("content_filter", "refusal"), (None, "max_tokens")],
)
def test_an_incomplete_response_ends_the_stream_with_its_stop_reason(
    reason: str | None, stop: str
) -> None:
    details = {"reason": reason} if reason else None
    response = {"status": "incomplete", "incomplete_details": details, "usage": USAGE}
    stream, ended = fold(
        [
            (1, {"type": "response.created", "response": {}}),
            (2, {"type": "response.output_item.added", "output_index": 0, "item": MESSAGE}),
            (3, {"type": "response.output_text.delta", "output_index": 0, "delta": "Hal"}),
            (4, {"type": "response.incomplete", "response": response}),
        ]
    )
    assert ended == [False, False, False, True]
    # The open block closes with the stream.
    assert [k for _, k, *_ in kinds(stream.log)][-3:] == [
        "block_stop",
        "message_delta",
        "message_stop",
    ]
    reply = stream.response()
    assert reply.stop_reason == stop
    assert reply.content == [
        {
            "type": "text",
            "text": "Hal",
            "item": {
                **MESSAGE,
                "content": [{"type": "output_text", "text": "Hal", "annotations": []}],
            },
        }
    ]
    assert reply.usage.output_tokens == 40


def test_responses_usage_takes_cached_tokens_out_of_input_tokens() -> None:
    assert responses_usage(USAGE) == Usage(
        input_tokens=30,
        cache_read_tokens=80,
        cache_write_tokens=10,
        output_tokens=40,
        thinking_tokens=25,
    )
    assert responses_usage({"input_tokens": 7, "output_tokens": 3}) == Usage(
        input_tokens=7, output_tokens=3
    )


@pytest.mark.parametrize(
    ("event", "name", "error_type", "message"),
    [
        (
            {"type": "error", "code": "server_error", "message": "boom", "param": None},
            "error",
            "server_error",
            "boom",
        ),
        (
            {"error": {"type": "overloaded_error", "message": "busy"}},
            "error",
            "overloaded_error",
            "busy",
        ),
        ({"type": "error", "message": "odd"}, "", "stream_error", "odd"),
        (
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {"code": "rate_limit_exceeded", "message": "slow down"},
                },
            },
            "response.failed",
            "rate_limit_exceeded",
            "slow down",
        ),
        (
            {"type": "response.failed", "response": {"status": "failed", "error": None}},
            "response.failed",
            "response_failed",
            "error",
        ),
    ],
)
def test_errors_in_the_stream_are_failed_attempts_mid_stream(
    event: dict[str, Any], name: str, error_type: str, message: str
) -> None:
    stream = ResponsesStream(EventLog())
    stream.feed(sse(1, {"type": "response.created", "response": {}}))
    with pytest.raises(EndpointError) as caught:
        stream.feed(sse(2, event, name))
    assert (caught.value.error_type, caught.value.status, caught.value.mid_stream) == (
        error_type,
        200,
        True,
    )
    assert str(caught.value) == f"{error_type}: mid-stream: {message}"
    assert [(e.kind, e.detail, e.t_ns) for e in stream.log.events][-1] == (
        "attempt_failed",
        error_type,
        2 * MS,
    )


def test_a_stream_that_is_no_json_or_ends_early_is_a_protocol_error() -> None:
    stream = ResponsesStream(EventLog())
    with pytest.raises(EndpointError, match="protocol_error: an event is not JSON"):
        stream.feed(SSEEvent("response.created", b"{nope", 0))
    stream = ResponsesStream(EventLog())
    stream.feed(sse(1, {"type": "response.created", "response": {}}))
    with pytest.raises(EndpointError, match=r"ended before response\.completed"):
        stream.response()
    assert stream.log.events[-1].detail == "protocol_error"


def test_the_conversation_converts_to_input_items() -> None:
    items = to_responses_input(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "do it"},
                    {"type": "text", "text": "[budget]"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "x"},
                    {"type": "thinking", "thinking": "s", "signature": "e", "item": REASONING_DONE},
                    {"type": "text", "text": "ok"},
                    {"type": "tool_use", "id": "c1", "name": "read_file", "input": {"path": "a"}},
                    {"type": "tool_use", "id": "c2", "name": "x", "input": {}, "item": CALL_DONE},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "text of a"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "c2",
                        "content": [{"type": "text", "text": "x"}],
                        "is_error": True,
                    },
                    {
                        "type": "text",
                        "text": "[budget] 3 turns",
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
            {"role": "user", "content": "plain"},
        ]
    )
    assert items == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "do it"},
                {"type": "input_text", "text": "[budget]"},
            ],
        },
        REASONING_DONE,
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok"}],
        },
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "read_file",
            "arguments": '{"path": "a"}',
        },
        CALL_DONE,
        {"type": "function_call_output", "call_id": "c1", "output": "text of a"},
        {"type": "function_call_output", "call_id": "c2", "output": "x"},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "[budget] 3 turns"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "plain"}]},
    ]


# -- the client against the scripted server ---------------------------------------------------

REQUEST = TurnRequest(
    system=[{"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}}],
    messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    tools=[
        {
            "name": "read_file",
            "description": "Read.",
            "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"},
        }
    ],
    max_tokens=100,
    session_id="task[ep-r0]",
)


def client(url: str, **options: Any) -> ResponsesClient:
    return ResponsesClient(model="gpt-test", base_url=f"{url}/v1", api_key="sk-test", **options)


def turn(c: ResponsesClient, request: TurnRequest = REQUEST) -> tuple[Any, EventLog]:
    log = EventLog()
    log.add("turn_start")
    reply = c.complete(request, log)
    log.add("turn_end")
    return reply, log


def timed_reply() -> list[tuple[float, dict[str, Any]]]:
    """Headers at 5 ms, reasoning summary deltas from 40 ms, text from 85 ms, function-call
    arguments from 115 ms, completed at 125 ms, the body's end at 130 ms (``end_at``)."""
    script = Script().created(0.020)
    script.reasoning(0.025, [(0.040 + 0.010 * i, f"r{i} ") for i in range(3)], 0.070, "enc")
    script.message(0.072, [(0.085 + 0.008 * i, f"w{i} ") for i in range(4)], 0.110)
    script.call(0.112, "call_1", "read_file", [(0.115, '{"path"'), (0.120, ': "a.py"}')], 0.122)
    return script.completed(0.125, usage(reasoning=3))


def truth_s(server: ResponsesServer, n: int) -> dict[str, float]:
    """TTFT, reasoning and generation of request ``n`` by the server's send log."""
    writes = server.sent[n]
    first = next(w.t_ns for w in writes if w.label == "response.reasoning_summary_text.delta")
    reasoning_end = next(
        w.t_ns
        for w in writes
        if w.label == "response.output_item.done"
        and w.event
        and w.event["item"]["type"] == "reasoning"
    )
    (end,) = [w.t_ns for w in writes if w.label == "end"]
    return {
        "ttft": (first - server.arrivals[n]) / 1e9,
        "reasoning": (reasoning_end - first) / 1e9,
        "generation": (end - reasoning_end) / 1e9,
    }


def test_ttft_reasoning_and_generation_within_3_ms_of_the_servers_send_log() -> None:
    failures = []
    for _ in range(3):
        replies = [Reply(timed_reply(), headers_at=0.005, end_at=0.130) for _ in range(5)]
        with ResponsesServer(replies).running() as server:
            c = client(server.url)
            try:
                timings = [reduce_turn(turn(c)[1].events) for _ in range(5)]
            finally:
                c.close()
        off: dict[str, list[float]] = {"ttft": [], "reasoning": [], "generation": []}
        for n, timing in enumerate(timings):
            truth = truth_s(server, n)
            for phase in off:
                assert truth[phase] > 0.010  # each phase is real, scripted time
                off[phase].append(timing.phases_s[phase] - truth[phase])
            assert timing.streamed
            assert timing.marks_s["first_output"] is not None
        late = {
            phase: [round(d * 1e3, 2) for d in diffs]
            for phase, diffs in off.items()
            if abs(statistics.median(diffs)) >= TOLERANCE_S
        }
        if not late:
            return
        failures.append(late)
    pytest.fail(f"phases off the send log by 3 ms or more (ms): {failures}")


def test_the_request_body_and_one_connection_for_all_turns() -> None:
    with ResponsesServer([]).running() as server:
        c = client(
            server.url,
            extra_body={"reasoning": {"effort": "low", "summary": "auto"}, "store": False},
            extra_headers={"x-tenant": "t1"},
        )
        try:
            replies = [turn(c)[0] for _ in range(3)]
        finally:
            c.close()
    assert [r.content[0]["text"] for r in replies] == ["Done."] * 3
    assert server.paths == ["/v1/responses"] * 3
    assert len(set(server.peers)) == 1  # the stream was read to its end: the connection kept
    body = server.requests[0]
    assert body == {
        "model": "gpt-test",
        "instructions": "You are an agent.",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ],
        "tools": [
            {
                "type": "function",
                "name": "read_file",
                "description": "Read.",
                "parameters": {"type": "object"},
                "strict": False,
            }
        ],
        "max_output_tokens": 100,
        "stream": True,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "task[ep-r0]",
        "reasoning": {"effort": "low", "summary": "auto"},
    }
    headers = server.headers[0]
    assert (headers["authorization"], headers["x-tenant"]) == ("Bearer sk-test", "t1")
    assert headers["accept-encoding"] == "identity"


def attempts(log: EventLog) -> list[tuple[int | None, str | None]]:
    return [(a.status, a.error) for a in reduce_turn(log.events).attempts]


def test_retries_after_429_and_500_as_the_sdks_do() -> None:
    replies = [
        Reply(status=429, error_type="rate_limit_error", headers={"retry-after": "0.05"}),
        Reply(text_reply("one")),
        Reply(status=500, error_type="server_error", headers={"retry-after-ms": "30"}),
        Reply(text_reply("two")),
    ]
    with ResponsesServer(replies).running() as server:
        c = client(server.url)
        try:
            first, log1 = turn(c)
            second, log2 = turn(c)
        finally:
            c.close()
    assert (first.content[0]["text"], second.content[0]["text"]) == ("one", "two")
    assert attempts(log1) == [(429, "rate_limit_error"), (200, None)]
    assert attempts(log2) == [(500, "server_error"), (200, None)]
    # The client waited what the server asked between its attempts (a causal bound).
    assert server.arrivals[1] - server.arrivals[0] >= 50 * MS
    assert server.arrivals[3] - server.arrivals[2] >= 30 * MS
    assert reduce_turn(log1.events).phases_s["retry_wait"] >= 0.050


def test_a_status_that_is_not_retried_fails_at_once() -> None:
    with ResponsesServer([Reply(status=400, error_type="invalid_request_error")]).running() as s:
        c = client(s.url)
        with pytest.raises(EndpointError, match="invalid_request_error: HTTP 400: scripted"):
            turn(c)
        c.close()
    assert len(s.requests) == 1


STARTED = Script().created(0).message(0, [(0, "par")], 0).events[:4]


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (
            Reply([*STARTED, (0, {"type": "error", "code": "server_error", "message": "boom"})]),
            "server_error",
        ),
        (
            Reply(
                [
                    *STARTED,
                    (
                        0,
                        {
                            "type": "response.failed",
                            "response": {
                                "status": "failed",
                                "error": {"code": "server_error", "message": "boom"},
                            },
                        },
                    ),
                ]
            ),
            "server_error",
        ),
        (Reply(timed_reply(), drop_after=5), "connection_error"),
    ],
    ids=["error event", "response.failed", "dropped connection"],
)
def test_a_stream_that_breaks_off_is_a_mid_stream_error_not_retried_by_the_client(
    reply: Reply, error_type: str
) -> None:
    with ResponsesServer([reply]).running() as server:
        c = client(server.url)
        log = EventLog()
        log.add("turn_start")
        with pytest.raises(EndpointError) as caught:
            c.complete(REQUEST, log)
        c.close()
    assert (caught.value.error_type, caught.value.mid_stream) == (error_type, True)
    assert len(server.requests) == 1  # the agent loop decides whether to send it again
    assert attempts(log) == [(200, error_type)]
    assert [e.kind for e in log.events if e.kind == "message_start"] == ["message_start"]


def test_the_agent_sends_the_encrypted_reasoning_item_back_unchanged(tmp_path: Path) -> None:
    first = Script().created(0)
    first.reasoning(0, [(0, "Look first.")], 0, "gAAAA-encrypted-blob==")
    first.message(0, [(0, "Listing.")], 0)
    first.call(0, "call_ls", "list_files", [(0, "{}")], 0)
    turn1 = first.completed(0, usage(reasoning=4))
    items = first.output
    task = Task(
        id="t",
        instruction="Look around.",
        workspace={"a.txt": "a\n"},
        check="true",
        limits=Limits(),
    )
    (tmp_path / "a.txt").write_text("a\n")
    with ResponsesServer([Reply(turn1)]).running() as server:
        c = client(server.url)
        try:
            run = BuiltinAgent().run(
                AgentContext(task=task, workspace=tmp_path, session_id="t[x-r0]", client=c)
            )
        finally:
            c.close()
    assert run.stopped == "end_turn"
    assert [t.stop_reason for t in run.turns] == ["tool_use", "end_turn"]
    assert run.turns[0].usage.thinking_tokens == 4
    one, two = server.requests
    assert one["instructions"] == two["instructions"] == SYSTEM_PROMPT
    assert one["prompt_cache_key"] == "t[x-r0]"
    assert {t["name"] for t in one["tools"]} >= {"list_files", "read_file", "run_command"}
    # The second request: the first's input, then the three output items exactly as the
    # server sent them in output_item.done (the encrypted content untouched), then the tool's
    # output for the call's id, then the budget line.
    n = len(one["input"])
    assert two["input"][:n] == one["input"]
    assert two["input"][n : n + 3] == items
    assert items[0]["encrypted_content"] == "gAAAA-encrypted-blob=="
    output = two["input"][n + 3]
    assert (output["type"], output["call_id"]) == ("function_call_output", "call_ls")
    assert "a.txt" in output["output"]
    assert two["input"][n + 4]["role"] == "user"


def test_the_pool_makes_a_responses_client_and_proxies_the_wire(tmp_path: Path) -> None:
    endpoint = parse_endpoint("openai-responses:gpt-test@http://127.0.0.1:9/v1")
    pool = EndpointPool([endpoint], time_scale=1.0, shared_sim_file=None)
    try:
        made = pool.client(endpoint)
        assert isinstance(made, ResponsesClient)
        assert made.url == "http://127.0.0.1:9/v1/responses"
        session = pool.open_proxy(endpoint, tmp_path)
        assert (session.upstream.api, session.upstream.base_url) == (
            "responses",
            "http://127.0.0.1:9",
        )
    finally:
        pool.close()
