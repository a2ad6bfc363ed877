"""Turn timing: timestamped events in, marks and phases out.

The endpoint clients and the agent loop only *observe*: each appends :class:`Event` values,
stamped with one monotonic clock (``time.perf_counter_ns``), to an :class:`EventLog`. After the
turn, :func:`reduce_turn` folds the log into :class:`TurnTiming`. The reducer is a pure
function, so recorded event sequences can be replayed in tests with exact expected numbers.

Marks (seconds from the turn's start) and phases follow DESIGN section 6:

* ``retry_wait``: first attempt sent to final attempt sent (failed attempts and back-off);
* ``ttft``: final ``request_sent`` to ``first_token`` (network, queue, prefill);
* ``reasoning``: time inside thinking blocks after ``first_token``;
* ``generation``: ``first_token`` to ``stream_end``, minus ``reasoning``;
* ``tool``: union of tool execution intervals;
* ``overhead``: everything else (building requests, parsing, bookkeeping).

All arithmetic is done in integer nanoseconds, so the phases of a turn sum to its wall time
exactly before the final conversion to seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

EventKind = Literal[
    "turn_start",  # the agent starts building the request
    "attempt",  # an HTTP request of the turn is handed to the client (one per attempt)
    "request_sent",  # that request's body was fully handed to the transport
    "headers",  # its response headers arrived; ``status`` set, ``detail`` = request id
    "attempt_failed",  # the attempt ended without a usable response; ``detail`` = error type
    "message_start",  # SSE ``message_start`` (or first OpenAI chunk) parsed
    "block_start",  # ``content_block_start``; ``index``, ``detail`` = block type
    "delta",  # ``content_block_delta``; ``index``, ``detail`` = delta type, ``nonempty``
    "block_stop",  # ``content_block_stop``; ``index``
    "message_delta",  # ``message_delta`` parsed
    "message_stop",  # ``message_stop`` / ``[DONE]`` parsed
    "stream_end",  # the response body was read to its end
    "response",  # a non-streamed response body arrived whole
    "tool_start",  # a tool call starts; ``index`` = position of the call in the turn
    "tool_end",  # that tool call finished; ``ok`` tells whether it succeeded
    "turn_end",  # the turn is over (tools done, next request not started)
]

#: Delta types that carry content: the model produced tokens.
CONTENT_DELTAS = frozenset({"text_delta", "thinking_delta", "input_json_delta"})
#: Delta types that carry visible output (text or a tool call), as opposed to reasoning.
OUTPUT_DELTAS = frozenset({"text_delta", "input_json_delta"})
#: Block types whose time counts as reasoning.
THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})

MARKS = (
    "request_sent",
    "headers",
    "first_event",
    "first_token",
    "first_output",
    "last_token",
    "stream_end",
    "tools_end",
)
PHASES = ("retry_wait", "ttft", "reasoning", "generation", "tool", "overhead")
#: The phases of an agent measured from outside (``docs/agents.md``), beside :data:`PHASES`:
#: its process's time before its first request (``startup``), from a main response's end to
#: its next main request (``agent``: its tools and its harness, which cannot be told apart from
#: outside), and after its last response (``winddown``).
EXTERNAL_PHASES = ("startup", "agent", "winddown")
#: Every phase a session can have, in the order tables and charts show them.
ALL_PHASES = PHASES + EXTERNAL_PHASES

_STREAM_KINDS = frozenset(
    {"message_start", "block_start", "delta", "block_stop", "message_delta", "message_stop"}
)

Clock = Callable[[], int]


@dataclass(frozen=True, slots=True)
class Event:
    """One observed fact of a turn, stamped in nanoseconds of the monotonic clock."""

    #: When it was observed (``time.perf_counter_ns()``).
    t_ns: int
    #: What was observed.
    kind: EventKind
    #: Content block index for block events; tool call position for tool events.
    index: int = -1
    #: Block type, delta type, error type, or tool name, depending on ``kind``.
    detail: str = ""
    #: For ``delta``: whether it carried non-empty content.
    nonempty: bool = False
    #: For ``headers``: the HTTP status.
    status: int = 0
    #: For ``tool_end``: whether the tool call succeeded.
    ok: bool = True


@dataclass(frozen=True, slots=True)
class AttemptRequest:
    """The HTTP request of an attempt as it went out: what a recording keeps of it
    (:class:`pytest_agentspeed.sent.SentRequest`)."""

    method: str
    #: From ``/v1/`` on, with the query string.
    path: str
    #: Lower case, in the order sent; never a value (one of them carries the key).
    header_names: tuple[str, ...]
    #: The body as sent.
    body: bytes


class EventLog:
    """Collects the events of one turn; the clock is injected so tests can drive it."""

    def __init__(self, clock: Clock = time.perf_counter_ns) -> None:
        self.clock = clock
        self.events: list[Event] = []
        #: The request of the turn's latest attempt (set by the client's transport), for the
        #: session's recording; ``None`` until one was sent.
        self.request: AttemptRequest | None = None

    def add(
        self,
        kind: EventKind,
        *,
        index: int = -1,
        detail: str = "",
        nonempty: bool = False,
        status: int = 0,
        ok: bool = True,
        t_ns: int | None = None,
    ) -> int:
        """Stamp and append an event; returns its timestamp."""
        t = self.clock() if t_ns is None else t_ns
        self.events.append(Event(t, kind, index, detail, nonempty, status, ok))
        return t


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptTiming:
    """One HTTP request of a turn."""

    #: Handed to the client, seconds from turn start.
    started_s: float
    #: Body handed to the transport (``None`` when it never got that far).
    sent_s: float | None
    #: Response headers arrived.
    headers_s: float | None
    #: HTTP status of the response (``None`` without a response).
    status: int | None
    #: The endpoint's id for the request (``request-id`` header), when it sent one.
    request_id: str | None
    #: Error type when the attempt failed, else ``None``.
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolTiming:
    """One tool call of a turn."""

    index: int
    name: str
    start_s: float
    wall_s: float
    ok: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnTiming:
    """Marks and phases of one turn (seconds)."""

    wall_s: float
    #: Mark name -> seconds from turn start; ``None`` when the turn had no such moment.
    marks_s: dict[str, float | None]
    #: Phase name -> seconds; exclusive, they sum to ``wall_s``.
    phases_s: dict[str, float]
    attempts: tuple[AttemptTiming, ...]
    tools: tuple[ToolTiming, ...]
    #: False when the response was not streamed (all of its time counts as ttft).
    streamed: bool


def reduce_turn(events: Sequence[Event]) -> TurnTiming:
    """Fold one turn's events into marks and phases.

    :param events: the turn's events in the order they were observed; must contain
        ``turn_start``; ``turn_end`` defaults to the last event.
    :returns: the turn's timing; phases sum to the wall time exactly.
    :raises ValueError: when there is no ``turn_start`` event.
    """
    starts = [e.t_ns for e in events if e.kind == "turn_start"]
    if not starts:
        raise ValueError("a turn's events must include turn_start")
    t0 = starts[0]
    ends = [e.t_ns for e in events if e.kind == "turn_end"]
    t_end = ends[-1] if ends else max(e.t_ns for e in events)

    attempts = _attempts(events, t0)
    sent = [e.t_ns for e in events if e.kind == "request_sent"]
    final_sent = sent[-1] if sent else None
    first_sent = sent[0] if sent else None

    # Only what the final attempt's response said counts for the stream marks: events of
    # failed attempts (a stream that broke off and was retried) are part of retry_wait.
    after = [e for e in events if final_sent is None or e.t_ns >= final_sent]
    headers = _first(e.t_ns for e in after if e.kind == "headers")
    stream = [e for e in after if e.kind in _STREAM_KINDS]
    response = _first(e.t_ns for e in after if e.kind == "response")
    stream_end = _first(e.t_ns for e in after if e.kind == "stream_end")
    if stream_end is None and stream:
        stops = [e.t_ns for e in stream if e.kind == "message_stop"]
        stream_end = stops[-1] if stops else None
    streamed = response is None
    if not streamed:
        stream_end = response

    first_event = stream[0].t_ns if stream else response
    content = [e for e in stream if e.kind == "delta" and e.nonempty and e.detail in CONTENT_DELTAS]
    windows = thinking_windows(stream, stream_end)
    silent_thinking_starts = [start for start, _, had_deltas in windows if not had_deltas]
    token_times = [e.t_ns for e in content] + silent_thinking_starts
    first_token = min(token_times) if token_times else None
    if not streamed:
        first_token = response
    first_output = _first(e.t_ns for e in content if e.detail in OUTPUT_DELTAS)
    last_token = content[-1].t_ns if content else None

    tools = _tools(events, t0)
    tool_ns = _union_ns(_tool_intervals(events))
    tool_ends = [e.t_ns for e in events if e.kind == "tool_end"]
    tools_end = max(tool_ends) if tool_ends else None

    retry_wait = (
        (final_sent - first_sent) if final_sent is not None and first_sent is not None else 0
    )
    ttft = reasoning = generation = 0
    if final_sent is not None and stream_end is not None:
        # A response without any token (e.g. an empty message) has its first token at the end.
        token_at = first_token if first_token is not None else stream_end
        ttft = token_at - final_sent
        if streamed:
            for start, stop, _ in windows:
                lo, hi = max(start, token_at), min(stop, stream_end)
                reasoning += max(0, hi - lo)
            generation = stream_end - token_at - reasoning
    elif final_sent is not None:
        # No usable response at all: the endpoint failed the turn. Everything from the first
        # attempt on was lost to it, so it is retry_wait, not a (never seen) first token.
        last_response_time = max(
            (e.t_ns for e in events if e.kind != "turn_end" and e.t_ns >= final_sent),
            default=final_sent,
        )
        retry_wait += last_response_time - final_sent

    wall = t_end - t0
    overhead = wall - retry_wait - ttft - reasoning - generation - tool_ns
    phases_ns = {
        "retry_wait": retry_wait,
        "ttft": ttft,
        "reasoning": reasoning,
        "generation": generation,
        "tool": tool_ns,
        "overhead": overhead,
    }
    marks_ns = {
        "request_sent": final_sent,
        "headers": headers,
        "first_event": first_event,
        "first_token": first_token,
        "first_output": first_output,
        "last_token": last_token,
        "stream_end": stream_end,
        "tools_end": tools_end,
    }
    return TurnTiming(
        wall_s=_s(wall),
        marks_s={k: (None if v is None else _s(v - t0)) for k, v in marks_ns.items()},
        phases_s={k: _s(v) for k, v in phases_ns.items()},
        attempts=attempts,
        tools=tools,
        streamed=streamed,
    )


def _s(ns: int) -> float:
    return ns / 1e9


def _first(values: Iterable[int]) -> int | None:
    return next(iter(values), None)


def thinking_windows(
    stream: Sequence[Event], stream_end: int | None
) -> list[tuple[int, int, bool]]:
    """(start, stop, had content deltas) of every thinking block among ``stream``'s events
    (the final response's, as :func:`reduce_turn` selects them), in nanoseconds.

    Public so that a session's timeline (:mod:`pytest_agentspeed.agents.timeline`) places the
    reasoning of its turns where :func:`reduce_turn` found it.
    """
    open_blocks: dict[int, tuple[int, bool]] = {}
    windows: list[tuple[int, int, bool]] = []
    for e in stream:
        if e.kind == "block_start" and e.detail in THINKING_BLOCKS:
            # A redacted block carries its (opaque) content in the start event itself.
            open_blocks[e.index] = (e.t_ns, e.detail == "redacted_thinking")
        elif e.kind == "delta" and e.index in open_blocks and e.nonempty:
            if e.detail in CONTENT_DELTAS:
                start, _ = open_blocks[e.index]
                open_blocks[e.index] = (start, True)
        elif e.kind == "block_stop" and e.index in open_blocks:
            start, had = open_blocks.pop(e.index)
            windows.append((start, e.t_ns, had))
    # A block the stream never closed ends with the stream.
    end = stream_end if stream_end is not None else (stream[-1].t_ns if stream else 0)
    windows.extend((start, end, had) for start, had in open_blocks.values())
    return windows


@dataclass(slots=True)
class _OpenAttempt:
    started: int
    sent: int | None = None
    headers: int | None = None
    status: int | None = None
    request_id: str | None = None
    error: str | None = None

    def timing(self, t0: int) -> AttemptTiming:
        return AttemptTiming(
            started_s=_s(self.started - t0),
            sent_s=None if self.sent is None else _s(self.sent - t0),
            headers_s=None if self.headers is None else _s(self.headers - t0),
            status=self.status,
            request_id=self.request_id,
            error=self.error,
        )


def _attempts(events: Sequence[Event], t0: int) -> tuple[AttemptTiming, ...]:
    attempts: list[_OpenAttempt] = []
    for e in events:
        current = attempts[-1] if attempts else None
        # A client that does not report "attempt" still starts one with each request sent.
        if e.kind == "attempt" or (
            e.kind == "request_sent" and (current is None or current.sent is not None)
        ):
            current = _OpenAttempt(started=e.t_ns)
            attempts.append(current)
        if current is None:
            continue
        if e.kind == "request_sent":
            current.sent = e.t_ns
        elif e.kind == "headers" and current.headers is None:
            current.headers, current.status = e.t_ns, e.status
            current.request_id = e.detail or None
            if e.status >= 400:
                current.error = f"http_{e.status}"
        elif e.kind == "attempt_failed":
            current.error = e.detail or "error"
    for a in attempts[:-1]:
        # An attempt that got no response but was followed by another one failed to connect.
        if a.headers is None and a.error is None:
            a.error = "no_response"
    return tuple(a.timing(t0) for a in attempts)


def _tool_intervals(events: Sequence[Event]) -> list[tuple[int, int]]:
    starts: dict[int, int] = {}
    intervals: list[tuple[int, int]] = []
    for e in events:
        if e.kind == "tool_start":
            starts[e.index] = e.t_ns
        elif e.kind == "tool_end" and e.index in starts:
            intervals.append((starts.pop(e.index), e.t_ns))
    return intervals


def _tools(events: Sequence[Event], t0: int) -> tuple[ToolTiming, ...]:
    starts: dict[int, Event] = {}
    out: list[ToolTiming] = []
    for e in events:
        if e.kind == "tool_start":
            starts[e.index] = e
        elif e.kind == "tool_end" and e.index in starts:
            s = starts.pop(e.index)
            out.append(
                ToolTiming(
                    index=e.index,
                    name=s.detail,
                    start_s=_s(s.t_ns - t0),
                    wall_s=_s(e.t_ns - s.t_ns),
                    ok=e.ok,
                )
            )
    return tuple(out)


def _union_ns(intervals: Iterable[tuple[int, int]]) -> int:
    """Total length of the union of intervals (tools may overlap when run in parallel)."""
    total = 0
    cur_lo: int | None = None
    cur_hi = 0
    for lo, hi in sorted(intervals):
        if cur_lo is None or lo > cur_hi:
            if cur_lo is not None:
                total += cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    if cur_lo is not None:
        total += cur_hi - cur_lo
    return total
