"""A session as OpenTelemetry GenAI spans and metric points: plain descriptions, no SDK.

:func:`session_trace` maps one :class:`~pytest_agentspeed.records.SessionRecord` onto the
GenAI semantic conventions (``docs/otel.md``): an ``invoke_agent`` root span, a ``chat`` span
per model request (side requests included, marked as such), and either an ``execute_tool``
span per tool call (an agent in this process) or ``agent_time`` spans between requests (an
agent measured from outside). :func:`metric_points` gives the GenAI client metrics' values
for the same requests. :mod:`pytest_agentspeed.outputs.otel` hands both to the SDK; keeping
the mapping free of it makes it testable with exact values and cheap to import.

Times are absolute, in integer nanoseconds since the epoch: the session's agent starts at
``started_at + setup_s`` (the record's wall clock, plus the workspace copy that comes first),
and every turn, mark and tool call is placed from there by the record's own offsets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal
from urllib.parse import urlsplit

from pytest_agentspeed.analysis.metrics import decode_rate
from pytest_agentspeed.records import (
    EndpointRecord,
    SessionRecord,
    SideRequestRecord,
    ToolCallRecord,
    TurnRecord,
    Usage,
)

#: The project's own attribute namespace (the semantic conventions reserve ``gen_ai.*``).
PREFIX = "agentspeed."
#: The GenAI instrumentations' standard switch for exporting message content.
CAPTURE_CONTENT_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

#: The four GenAI client metrics, with their units.
OPERATION_DURATION = "gen_ai.client.operation.duration"
TOKEN_USAGE = "gen_ai.client.token.usage"
TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"
TIME_PER_OUTPUT_TOKEN = "gen_ai.server.time_per_output_token"
METRIC_UNITS = {
    OPERATION_DURATION: "s",
    TOKEN_USAGE: "{token}",
    TIME_TO_FIRST_TOKEN: "s",
    TIME_PER_OUTPUT_TOKEN: "s",
}

AttributeValue = str | bool | int | float | tuple[str, ...]
Attributes = dict[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A span event: one of our marks, at its absolute time."""

    name: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class Measures:
    """What a model request contributes to the GenAI client metrics."""

    duration_s: float
    #: ``None`` for a request that failed (no usage to count).
    input_tokens: int | None
    output_tokens: int | None
    ttft_s: float | None
    time_per_output_token_s: float | None
    #: The metrics' attributes (operation, provider, model, server, ``error.type``).
    attributes: Attributes


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanSpec:
    """One span to emit: name, kind, absolute times, attributes, events, status."""

    name: str
    kind: Literal["internal", "client"]
    start_ns: int
    end_ns: int
    attributes: Attributes
    events: tuple[SpanEvent, ...] = ()
    #: Set when the span's status is ERROR: the description (never a secret: records hold
    #: none).
    error: str | None = None
    #: A model request's contribution to the metrics; ``None`` for other spans.
    measures: Measures | None = None


@dataclass(frozen=True, slots=True)
class SessionTrace:
    """A session's trace: the ``invoke_agent`` root and its children, in time order."""

    root: SpanSpec
    children: tuple[SpanSpec, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value recorded on one of the four histograms."""

    name: str
    value: float
    attributes: Attributes


def seconds_ns(seconds: float) -> int:
    """``seconds`` in integer nanoseconds, from the float's exact value (a product in floats
    would be off by hundreds of nanoseconds at epoch magnitudes)."""
    return round(Fraction(seconds) * 1_000_000_000)


def provider_name(api: str) -> str:
    """``gen_ai.provider.name`` for a wire: Anthropic Messages, or one of OpenAI's two."""
    return "anthropic" if api == "anthropic" else "openai"


def session_trace(
    session: SessionRecord, endpoint: EndpointRecord | None, *, instruction: str | None = None
) -> SessionTrace:
    """The spans of one session (``docs/otel.md`` lists every attribute).

    :param endpoint: the session's endpoint as the run file describes it (provider, model,
        server); ``None`` when the run does not list it.
    :param instruction: the task's instruction, exported only when given (the user opted in
        to content capture).
    """
    origin = seconds_ns(session.started_at) + seconds_ns(session.setup_s)
    end = origin + seconds_ns(session.wall_s)
    request = _request_attributes(endpoint)
    model = endpoint.model if endpoint is not None else None
    root_attributes: Attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": session.agent,
        "gen_ai.conversation.id": session.id,
        **request,
        **_usage_attributes(session.usage),
        **_session_attributes(session, endpoint),
    }
    if instruction is not None:
        message = {"role": "user", "parts": [{"type": "text", "content": instruction}]}
        root_attributes["gen_ai.input.messages"] = json.dumps([message])
    failed = session.outcome in ("error", "timeout")
    if failed:
        root_attributes["error.type"] = session.outcome
    root = SpanSpec(
        name=f"invoke_agent {session.agent}",
        kind="internal",
        start_ns=origin,
        end_ns=end,
        attributes=root_attributes,
        error=(session.error or session.outcome) if failed else None,
    )
    children: list[SpanSpec] = []
    starts = _turn_starts(session, origin)
    for turn, start in zip(session.turns, starts, strict=True):
        children.append(_chat_span(turn, start, model, request, session.id))
        if session.process is None:
            children.extend(_tool_span(turn.index, call, start) for call in turn.tool_calls)
    for side in session.side_requests:
        children.append(_side_span(side, origin, model, request, session.id))
    if session.process is not None:
        children.extend(_agent_time_spans(session, origin, end, starts))
    children.sort(key=lambda span: (span.start_ns, span.end_ns))
    return SessionTrace(root, tuple(children))


def metric_points(traces: Sequence[SessionTrace]) -> list[MetricPoint]:
    """The GenAI client metrics' values: one per model request and metric it has a value for
    (token usage: two, ``gen_ai.token.type`` input and output)."""
    points: list[MetricPoint] = []
    for trace in traces:
        for span in trace.children:
            m = span.measures
            if m is None:
                continue
            points.append(MetricPoint(OPERATION_DURATION, m.duration_s, m.attributes))
            for kind, tokens in (("input", m.input_tokens), ("output", m.output_tokens)):
                if tokens is not None:
                    attrs = m.attributes | {"gen_ai.token.type": kind}
                    points.append(MetricPoint(TOKEN_USAGE, tokens, attrs))
            if m.ttft_s is not None:
                points.append(MetricPoint(TIME_TO_FIRST_TOKEN, m.ttft_s, m.attributes))
            if m.time_per_output_token_s is not None:
                points.append(
                    MetricPoint(TIME_PER_OUTPUT_TOKEN, m.time_per_output_token_s, m.attributes)
                )
    return points


# -- the parts ------------------------------------------------------------------------------


def _turn_starts(session: SessionRecord, origin: int) -> list[int]:
    """Each turn's absolute start: an agent measured from outside records it (``start_s``);
    the built-in agent's turns follow each other from the agent's start, each starting when
    the one before ended (``docs/timing.md``)."""
    starts: list[int] = []
    running = origin
    for turn in session.turns:
        starts.append(origin + seconds_ns(turn.start_s) if turn.start_s is not None else running)
        running += seconds_ns(turn.wall_s)
    return starts


def _request_end_s(turn: TurnRecord) -> float:
    """When the turn's model request ended, from the turn's start: its stream's end, else
    (a failed or non-streamed answer) the turn's end before its tools or the agent's time."""
    stream_end = turn.marks_s.get("stream_end")
    if stream_end is not None:
        return stream_end
    return turn.wall_s - turn.phases_s.get("tool", 0.0) - turn.phases_s.get("agent", 0.0)


def _chat_span(
    turn: TurnRecord, start: int, model: str | None, request: Attributes, conversation: str
) -> SpanSpec:
    first = turn.attempts[0].started_s if turn.attempts else 0.0
    span_start = start + seconds_ns(first)
    span_end = max(span_start, start + seconds_ns(_request_end_s(turn)))
    final = turn.attempts[-1] if turn.attempts else None
    attributes: Attributes = {
        "gen_ai.operation.name": "chat",
        **request,
        "gen_ai.conversation.id": conversation,
        f"{PREFIX}turn.index": turn.index,
        f"{PREFIX}turn.wall_s": turn.wall_s,
        f"{PREFIX}turn.streamed": turn.streamed,
        f"{PREFIX}attempts": len(turn.attempts),
        **{f"{PREFIX}phase.{name}_s": value for name, value in turn.phases_s.items()},
    }
    if final is not None and final.status is not None:
        attributes["http.response.status_code"] = final.status
    error_type = _error_type(turn.error, final.status if final else None)
    if error_type is None:
        attributes |= _usage_attributes(turn.usage)
        if turn.stop_reason:
            attributes["gen_ai.response.finish_reasons"] = (turn.stop_reason,)
    else:
        attributes["error.type"] = error_type
    rate = decode_rate(turn) if error_type is None else None
    ttft = turn.phases_s.get("ttft") if error_type is None and turn.streamed else None
    return SpanSpec(
        name=_chat_name(model),
        kind="client",
        start_ns=span_start,
        end_ns=span_end,
        attributes=attributes,
        events=_mark_events(turn.marks_s, start),
        error=turn.error,
        measures=_measures(span_start, span_end, turn.usage, error_type, ttft, rate, request),
    )


def _side_span(
    side: SideRequestRecord,
    origin: int,
    model: str | None,
    request: Attributes,
    conversation: str,
) -> SpanSpec:
    start = origin + seconds_ns(side.start_s)
    end = start + seconds_ns(side.wall_s)
    if side.model is not None:
        request = request | {"gen_ai.request.model": side.model}
    attributes: Attributes = {
        "gen_ai.operation.name": "chat",
        **request,
        "gen_ai.conversation.id": conversation,
        f"{PREFIX}side_request": True,
        f"{PREFIX}side_request.why": side.why,
        f"{PREFIX}turn.streamed": side.streamed,
        "http.request.method": side.method,
    }
    if side.status is not None:
        attributes["http.response.status_code"] = side.status
    error_type = _error_type(side.error, side.status)
    if error_type is None:
        attributes |= _usage_attributes(side.usage)
        if side.stop_reason:
            attributes["gen_ai.response.finish_reasons"] = (side.stop_reason,)
    else:
        attributes["error.type"] = error_type
    sent, first = side.marks_s.get("request_sent"), side.marks_s.get("first_token")
    ttft = first - sent if error_type is None and sent is not None and first is not None else None
    return SpanSpec(
        name=_chat_name(side.model or model),
        kind="client",
        start_ns=start,
        end_ns=end,
        attributes=attributes,
        events=_mark_events(side.marks_s, start),
        error=side.error,
        measures=_measures(start, end, side.usage, error_type, ttft, None, request),
    )


def _tool_span(turn_index: int, call: ToolCallRecord, turn_start: int) -> SpanSpec:
    start = turn_start + seconds_ns(call.start_s)
    attributes: Attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.type": "function",
        f"{PREFIX}turn.index": turn_index,
        f"{PREFIX}tool.ok": call.ok,
    }
    if not call.ok:
        attributes["error.type"] = "tool_error"
    return SpanSpec(
        name=f"execute_tool {call.name}",
        kind="internal",
        start_ns=start,
        end_ns=start + seconds_ns(call.wall_s),
        attributes=attributes,
        error=None if call.ok else "the tool call failed",
    )


def _agent_time_spans(
    session: SessionRecord, origin: int, end: int, starts: Sequence[int]
) -> list[SpanSpec]:
    """An agent measured from outside: its start-up, its time between a main response's end
    and its next main request (each turn's ``agent`` phase, at the turn's end), and its
    wind-down: its tools and harness, which cannot be told apart from outside."""
    process = session.process
    assert process is not None
    spans: list[SpanSpec] = []

    def add(kind: str, start: int, stop: int) -> None:
        if stop > start:
            spans.append(
                SpanSpec(
                    name="agent_time",
                    kind="internal",
                    start_ns=start,
                    end_ns=stop,
                    attributes={
                        "gen_ai.agent.name": session.agent,
                        f"{PREFIX}agent_time.kind": kind,
                    },
                )
            )

    add("startup", origin, origin + seconds_ns(process.startup_s))
    for turn, start in zip(session.turns, starts, strict=True):
        turn_end = start + seconds_ns(turn.wall_s)
        add("between_requests", turn_end - seconds_ns(turn.phases_s.get("agent", 0.0)), turn_end)
    add("winddown", end - seconds_ns(process.winddown_s), end)
    return spans


def _mark_events(marks: dict[str, float | None], start: int) -> tuple[SpanEvent, ...]:
    events = [SpanEvent(name, start + seconds_ns(t)) for name, t in marks.items() if t is not None]
    return tuple(sorted(events, key=lambda e: e.time_ns))


def _measures(
    start: int,
    end: int,
    usage: Usage,
    error_type: str | None,
    ttft: float | None,
    rate: float | None,
    request: Attributes,
) -> Measures:
    served = error_type is None
    attributes: Attributes = {"gen_ai.operation.name": "chat", **request}
    if not served:
        attributes["error.type"] = error_type or "error"
    return Measures(
        duration_s=(end - start) / 1e9,
        input_tokens=usage.all_input_tokens if served else None,
        output_tokens=usage.output_tokens if served else None,
        ttft_s=ttft,
        time_per_output_token_s=None if rate is None else 1 / rate,
        attributes=attributes,
    )


def _chat_name(model: str | None) -> str:
    return f"chat {model}" if model else "chat"


def _error_type(error: str | None, status: int | None) -> str | None:
    """``error.type`` of a failed request: its HTTP status when it had one, else a fixed
    low-cardinality name (the message itself goes in the span's status)."""
    if error is None:
        return None
    return str(status) if status is not None and status >= 400 else "endpoint_error"


def _request_attributes(endpoint: EndpointRecord | None) -> Attributes:
    if endpoint is None:
        return {}
    attributes: Attributes = {
        "gen_ai.provider.name": provider_name(endpoint.api),
        "gen_ai.request.model": endpoint.model,
    }
    if endpoint.base_url:
        parts = urlsplit(endpoint.base_url)
        if parts.hostname:
            attributes["server.address"] = parts.hostname
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
            if port is not None:
                attributes["server.port"] = port
    return attributes


def _usage_attributes(usage: Usage) -> Attributes:
    # gen_ai.usage.input_tokens counts every input token, cached ones included; the cache
    # attributes say how many of them were read from or written to the cache.
    attributes: Attributes = {
        "gen_ai.usage.input_tokens": usage.all_input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
    }
    if usage.thinking_tokens is not None:
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.thinking_tokens
    return attributes


def _session_attributes(session: SessionRecord, endpoint: EndpointRecord | None) -> Attributes:
    attributes: Attributes = {
        f"{PREFIX}task": session.task,
        f"{PREFIX}endpoint": session.endpoint,
        f"{PREFIX}repeat": session.repeat,
        f"{PREFIX}slot": session.slot,
        f"{PREFIX}outcome": session.outcome,
        f"{PREFIX}session.wall_s": session.wall_s,
        f"{PREFIX}session.setup_s": session.setup_s,
        f"{PREFIX}session.check_s": session.check_s,
        f"{PREFIX}turns": len(session.turns),
        **{f"{PREFIX}phase.{name}_s": value for name, value in session.phases_s.items()},
    }
    if session.check_exit_code is not None:
        attributes[f"{PREFIX}session.check_exit_code"] = session.check_exit_code
    throughput = session.throughput_tok_s
    if throughput is not None:
        attributes[f"{PREFIX}session.throughput_tok_s"] = throughput
    if endpoint is not None and endpoint.profile is not None:
        attributes[f"{PREFIX}endpoint.profile"] = endpoint.profile
    return attributes
