"""Property tests: an SSE stream cut at any byte boundary parses and times like the uncut one.

Both clients read server-sent events from a body that arrives in reads of arbitrary size. These
properties feed one event sequence as different reads and check that nothing else changes.

Each SSE event is one server *write* with its own moment. A write is cut into pieces at offsets
hypothesis draws, and every piece carries its write's moment: the fake clock is set to it just
before the transport hands the piece over. Pieces never merge bytes of two writes, because
bytes sent at different moments cannot arrive in one read unless the reader is late (and a late
reader measures late by design). So the read that completes an event still happens at that
event's moment, and the marks and phases must be exactly those of the uncut stream (one piece
per write), which are also known from the schedule. A separate property lets pieces span writes
(random chunking of the whole body, as a late reader gets it) and checks only what does not
depend on time: no crash and the same reply.

Between the events, at positions hypothesis draws, go what servers add and clients must skip:
``event: ping`` (Anthropic), ``: keepalive`` comments (both wires), events of an unknown type
(Anthropic) and chunks with unknown fields (OpenAI). The whole stream may use CRLF framing, and
its JSON may be ASCII-escaped or raw UTF-8 (as servers serialising with pydantic or orjson send
it), so a cut can also split a multi-byte character.

``httpx2.MockTransport`` fires no trace callbacks, and without ``request_sent`` the reducer puts
the whole turn into overhead; the handler fires the two callbacks a real connection would, so
ttft, reasoning and generation are measured and checked against the schedule.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentspeed.clients import ModelClient, ModelResponse, ToolCall, TurnRequest
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.clients.openai_client import OpenAIClient
from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import EventLog, TurnTiming, reduce_turn

MS = 1_000_000  # nanoseconds
SENT_MS, HEADERS_MS, TURN_END_MS = 1, 2, 130
SIGNATURE = "c2lnbmF0dXJl"
TOOL_ID, TOOL_NAME = "toolu_01", "read_file"
REASONING_TOKENS = 5

# Line breaks to str.splitlines but not to SSE (U+2028, U+2029, U+0085, \v, \x1c), characters
# JSON must escape, and characters of several UTF-8 bytes (a cut can fall inside them).
TRICKY = '\n\r\u2028\u2029\x85\x0b\x1c"\\:é€😀'
CHARS = st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8"))
# Non-empty: an empty delta is not a token, and the schedule below fixes where tokens are.
TEXT = st.text(CHARS, min_size=1, max_size=8)
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(CHARS, max_size=8))

REQUEST = TurnRequest(
    system=[{"type": "text", "text": "sys"}],
    messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    tools=[{"name": TOOL_NAME, "description": "d", "input_schema": {"type": "object"}}],
    max_tokens=100,
    session_id="s1",
)

# What the schedules below must give, in ms. Both: request sent at 1, headers at 2, the first
# token at 60, the last token at 120, the stream's last event at 123, the turn's end at 130.
# Anthropic: the thinking block runs 51..72 (reasoning from the first token: 60..72).
ANTHROPIC_PHASES_MS = {
    "retry_wait": 0,
    "ttft": 59,
    "reasoning": 12,
    "generation": 51,
    "tool": 0,
    "overhead": 8,
}
ANTHROPIC_MARKS_MS = {"first_event": 50, "first_output": 90}
# OpenAI: reasoning deltas open the thinking block at 60 and content closes it at 80.
OPENAI_PHASES_MS = {
    "retry_wait": 0,
    "ttft": 59,
    "reasoning": 20,
    "generation": 43,
    "tool": 0,
    "overhead": 8,
}
# first_event is left out: an unknown-field chunk before the role chunk is the first event.
OPENAI_MARKS_MS = {"first_output": 80}
COMMON_MARKS_MS: dict[str, int | None] = {
    "request_sent": SENT_MS,
    "headers": HEADERS_MS,
    "first_token": 60,
    "last_token": 120,
    "stream_end": 123,
    "tools_end": None,
}

ANTHROPIC_NOISE = {
    "ping": 'event: ping\ndata: {"type": "ping"}\n\n',
    "comment": ": keepalive\n\n",
    "unknown": 'event: future_thing\ndata: {"type": "future_thing", "detail": {"n": 1}}\n\n',
}
OPENAI_NOISE = {
    "comment": ": keepalive\n\n",
    "unknown": (
        'data: {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], '
        '"usage": null, "future_thing": {"n": [1, 2]}}\n\n'
    ),
}


@dataclass(frozen=True)
class Reply:
    """The content of one streamed reply: thinking, text and one tool call."""

    thinking: tuple[str, str]
    text: tuple[str, str]
    tool_input: dict[str, Any]
    #: Where the tool input's JSON is cut into its two argument fragments.
    split: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int

    @property
    def arguments(self) -> tuple[str, str]:
        raw = json.dumps(self.tool_input, ensure_ascii=False)
        return raw[: self.split], raw[self.split :]


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    tool_input = draw(st.dictionaries(st.text(CHARS, max_size=4), JSON_VALUES, max_size=3))
    arguments = json.dumps(tool_input, ensure_ascii=False)
    return Reply(
        thinking=(draw(TEXT), draw(TEXT)),
        text=(draw(TEXT), draw(TEXT)),
        tool_input=tool_input,
        # Both fragments non-empty, so the last token is the second one's.
        split=draw(st.integers(1, len(arguments) - 1)),
        input_tokens=draw(st.integers(0, 10**6)),
        cached_tokens=draw(st.integers(0, 10**6)),
        output_tokens=draw(st.integers(1, 10**5)),
    )


def anthropic_events(reply: Reply) -> list[tuple[int, dict[str, Any]]]:
    """The stream's events and when the server writes them (ms)."""

    def start(index: int, block: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_start", "index": index, "content_block": block}

    def delta(index: int, body: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": index, "delta": body}

    def stop(index: int) -> dict[str, Any]:
        return {"type": "content_block_stop", "index": index}

    usage = {
        "input_tokens": reply.input_tokens,
        "cache_read_input_tokens": reply.cached_tokens,
        "output_tokens": 1,
    }
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    first, second = reply.arguments
    return [
        (50, {"type": "message_start", "message": message}),
        (51, start(0, {"type": "thinking", "thinking": "", "signature": ""})),
        (60, delta(0, {"type": "thinking_delta", "thinking": reply.thinking[0]})),
        (70, delta(0, {"type": "thinking_delta", "thinking": reply.thinking[1]})),
        (71, delta(0, {"type": "signature_delta", "signature": SIGNATURE})),
        (72, stop(0)),
        (73, start(1, {"type": "text", "text": ""})),
        (90, delta(1, {"type": "text_delta", "text": reply.text[0]})),
        (100, delta(1, {"type": "text_delta", "text": reply.text[1]})),
        (101, stop(1)),
        (102, start(2, {"type": "tool_use", "id": TOOL_ID, "name": TOOL_NAME, "input": {}})),
        # The usual empty first fragment: not a token.
        (103, delta(2, {"type": "input_json_delta", "partial_json": ""})),
        (110, delta(2, {"type": "input_json_delta", "partial_json": first})),
        (120, delta(2, {"type": "input_json_delta", "partial_json": second})),
        (121, stop(2)),
        (
            122,
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": reply.output_tokens},
            },
        ),
        (123, {"type": "message_stop"}),
    ]


def openai_events(reply: Reply, extras: bool) -> list[tuple[int, Any]]:
    """The chunks and when the server writes them (ms); ``extras`` adds unknown fields."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish,
        }
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [choice],
        }
        if extras:
            body |= {"obfuscation": "Zx9q", "future_field": {"n": [1, 2]}}
            choice["future_choice_field"] = True
            delta |= {"refusal": None, "future_delta_field": "x"}
        return body

    def fragment(arguments: str) -> dict[str, Any]:
        return chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]})

    head = {
        "index": 0,
        "id": TOOL_ID,
        "type": "function",
        "function": {"name": TOOL_NAME, "arguments": ""},
    }
    usage = {
        "prompt_tokens": reply.input_tokens + reply.cached_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.cached_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": REASONING_TOKENS},
    }
    first, second = reply.arguments
    return [
        (50, chunk({"role": "assistant", "content": ""})),  # the role chunk is not a token
        (60, chunk({"reasoning_content": reply.thinking[0]})),
        (70, chunk({"reasoning": reply.thinking[1]})),  # vLLM's newer field name
        (80, chunk({"content": reply.text[0]})),
        (90, chunk({"content": reply.text[1]})),
        (100, chunk({"tool_calls": [head]})),
        (110, fragment(first)),
        (120, fragment(second)),
        (121, chunk({}, "tool_calls")),
        (122, {"id": "chatcmpl-1", "choices": [], "usage": usage}),
        (123, "[DONE]"),
    ]


@dataclass(frozen=True)
class Scenario:
    """One stream as the server writes it, and where the reads cut each write."""

    reply: Reply
    #: (moment in ns, bytes) of each server write, in order.
    writes: tuple[tuple[int, bytes], ...]
    #: Offsets inside each write where a read ends.
    cuts: tuple[frozenset[int], ...]
    #: Read every write one byte at a time instead (the cuts are then ignored).
    bytewise: bool = False

    def whole(self) -> list[tuple[int, bytes]]:
        return list(self.writes)

    def pieces(self) -> list[tuple[int, bytes]]:
        out = []
        for (t_ns, data), cuts in zip(self.writes, self.cuts, strict=True):
            inner = (
                range(1, len(data)) if self.bytewise else sorted(c for c in cuts if c < len(data))
            )
            bounds = [0, *inner, len(data)]
            out += [(t_ns, data[a:b]) for a, b in itertools.pairwise(bounds)]
        return out

    def coalesced(self, cuts: Sequence[int]) -> list[tuple[int, bytes]]:
        """The body cut anywhere; a read arrives when the last of its bytes was written."""
        body = b"".join(data for _, data in self.writes)
        ends = list(itertools.accumulate(len(data) for _, data in self.writes))
        bounds = [0, *sorted({c for c in cuts if 0 < c < len(body)}), len(body)]
        return [
            (self.writes[bisect.bisect_left(ends, b)][0], body[a:b])
            for a, b in itertools.pairwise(bounds)
        ]


@st.composite
def scenarios(draw: st.DrawFn, wire: str) -> Scenario:
    reply = draw(replies())
    ascii_json = draw(st.booleans())
    events: list[tuple[int, str]]
    if wire == "anthropic":
        noise_kinds = ANTHROPIC_NOISE
        events = [
            (t, f"event: {e['type']}\ndata: {json.dumps(e, ensure_ascii=ascii_json)}\n\n")
            for t, e in anthropic_events(reply)
        ]
    else:
        noise_kinds = OPENAI_NOISE
        events = [
            (t, f"data: {c if isinstance(c, str) else json.dumps(c, ensure_ascii=ascii_json)}\n\n")
            for t, c in openai_events(reply, extras=draw(st.booleans()))
        ]
    # Noise goes before one of the events, never after the last: a trailing write would move
    # the end of the body, which the schedule fixes.
    noise = draw(
        st.lists(
            st.tuples(st.integers(0, len(events) - 1), st.sampled_from(sorted(noise_kinds))),
            max_size=6,
        )
    )
    crlf = draw(st.booleans())
    writes: list[tuple[int, bytes]] = []
    for k, (t_ms, text) in enumerate(events):
        before = [noise_kinds[kind] for at, kind in noise if at == k]
        # Strictly between the previous event and this one, 10 us apart, in order.
        times = [t_ms * MS - 10_000 * (len(before) - j) for j in range(len(before))]
        for t_ns, chunk in [*zip(times, before, strict=True), (t_ms * MS, text)]:
            framed = chunk.replace("\n", "\r\n") if crlf else chunk
            writes.append((t_ns, framed.encode()))
    bytewise = draw(st.booleans())
    cuts = tuple(
        frozenset() if bytewise else draw(st.frozensets(st.integers(1, len(data)), max_size=5))
        for _, data in writes
    )
    return Scenario(reply=reply, writes=tuple(writes), cuts=cuts, bytewise=bytewise)


class FakeClock:
    """The turn's clock, moved by the response body as its pieces arrive."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class TimedBody(httpx2.SyncByteStream):
    """A response body handed over piece by piece, each at its own moment."""

    def __init__(self, pieces: Sequence[tuple[int, bytes]], clock: FakeClock) -> None:
        self.pieces = pieces
        self.clock = clock

    def __iter__(self) -> Iterator[bytes]:
        for t_ns, piece in self.pieces:
            self.clock.now = t_ns
            yield piece


def run_turn(wire: str, pieces: Sequence[tuple[int, bytes]]) -> tuple[ModelResponse, TurnTiming]:
    """One turn of ``wire`` over a body arriving as ``pieces``: the reply and its timing."""
    clock = FakeClock()

    def handler(request: httpx2.Request) -> httpx2.Response:
        # Play the connection's part: the mock transport fires no trace callbacks.
        trace = request.extensions["trace"]
        clock.now = SENT_MS * MS
        trace("http11.send_request_body.complete", {})
        clock.now = HEADERS_MS * MS
        trace("http11.receive_response_headers.complete", {})
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=TimedBody(pieces, clock)
        )

    transport = httpx2.MockTransport(handler)
    client: ModelClient
    if wire == "anthropic":
        client = AnthropicClient(
            model="m",
            base_url="http://server.invalid",
            api_key="k",
            max_retries=0,
            transport=transport,
        )
    else:
        client = OpenAIClient(
            model="m",
            base_url="http://server.invalid/v1",
            api_key="k",
            max_retries=0,
            transport=transport,
        )
    log = EventLog(clock)
    log.add("turn_start")
    try:
        response = client.complete(REQUEST, log)
    finally:
        client.close()
    clock.now = TURN_END_MS * MS
    log.add("turn_end")
    return response, reduce_turn(log.events)


def seconds(values_ms: Mapping[str, int | None]) -> dict[str, float | None]:
    # The reducer's own conversion, so equal nanoseconds compare equal as floats.
    return {k: None if v is None else v * MS / 1e9 for k, v in values_ms.items()}


def check_reply(wire: str, response: ModelResponse, reply: Reply) -> None:
    """The reply carries exactly the streamed content, tool call, stop reason and usage."""
    text = {"type": "text", "text": "".join(reply.text)}
    tool = {"type": "tool_use", "id": TOOL_ID, "name": TOOL_NAME, "input": reply.tool_input}
    if wire == "anthropic":
        thinking = {"type": "thinking", "thinking": "".join(reply.thinking)}
        assert response.content == [thinking | {"signature": SIGNATURE}, text, tool]
        thinking_tokens = None
    else:
        assert response.content == [text, tool]  # reasoning is not sent back on this wire
        thinking_tokens = REASONING_TOKENS
    assert response.tool_calls == (ToolCall(id=TOOL_ID, name=TOOL_NAME, input=reply.tool_input),)
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(
        input_tokens=reply.input_tokens,
        cache_read_tokens=reply.cached_tokens,
        output_tokens=reply.output_tokens,
        thinking_tokens=thinking_tokens,
    )


WIRES = ["anthropic", "openai"]


@pytest.mark.parametrize("wire", WIRES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_cut_stream_parses_and_times_like_the_uncut_stream(wire: str, data: st.DataObject) -> None:
    scenario = data.draw(scenarios(wire), label="scenario")
    whole, whole_timing = run_turn(wire, scenario.whole())
    cut, cut_timing = run_turn(wire, scenario.pieces())

    check_reply(wire, whole, scenario.reply)
    assert cut == whole
    phases = ANTHROPIC_PHASES_MS if wire == "anthropic" else OPENAI_PHASES_MS
    assert whole_timing.phases_s == seconds(phases)
    assert cut_timing.phases_s == whole_timing.phases_s
    marks = COMMON_MARKS_MS | (ANTHROPIC_MARKS_MS if wire == "anthropic" else OPENAI_MARKS_MS)
    assert {k: whole_timing.marks_s[k] for k in marks} == seconds(marks)
    assert cut_timing.marks_s == whole_timing.marks_s
    assert cut_timing.wall_s == whole_timing.wall_s == TURN_END_MS * MS / 1e9


@pytest.mark.parametrize("wire", WIRES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_reads_spanning_events_give_the_same_reply(wire: str, data: st.DataObject) -> None:
    scenario = data.draw(scenarios(wire), label="scenario")
    size = sum(len(b) for _, b in scenario.writes)
    cuts = data.draw(st.lists(st.integers(1, size - 1), max_size=40), label="cuts")
    whole, _ = run_turn(wire, scenario.whole())
    coalesced, _ = run_turn(wire, scenario.coalesced(cuts))
    check_reply(wire, coalesced, scenario.reply)
    assert coalesced == whole
