"""What the recording proxy saw of one request an external agent made: an :class:`Exchange`.

An agent that runs in another process (Claude Code, mini-swe-agent, any command) reaches the
endpoint under test through a recording reverse proxy (:mod:`pytest_agentspeed.proxy`). For each
request it forwards, the proxy keeps an :class:`Exchange`: what was asked (wire, path, model,
tools offered, streamed or not) and what came back (status, usage, stop reason), with the
timing events of the exchange stamped on the same monotonic clock as the in-process clients
(``time.perf_counter_ns``), in the same vocabulary (:class:`~pytest_agentspeed.timing.Event`).
The agent's timeline (:mod:`pytest_agentspeed.agents.timeline`) turns a session's exchanges
into turns, side requests and phases.

Plain data, in the base layer: the proxy writes it, the agents read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import Event

#: The wire a request spoke, from its path; ``other`` for a path that is no model request
#: (``HEAD /``, a model list): forwarded and recorded all the same.
ExchangeWire = Literal["anthropic", "openai", "responses", "other"]
#: What a request asked for, from its path.
Operation = Literal["messages", "chat", "responses", "count_tokens", "other"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One request through the proxy and its response.

    Events (``perf_counter_ns``, as a client's :class:`~pytest_agentspeed.timing.EventLog`
    holds them): ``attempt`` when the request was fully received from the agent,
    ``request_sent`` when it was fully sent upstream, ``headers`` when the upstream response
    headers arrived (``status``, ``detail`` = request id), then the stream's events mapped by the
    clients' own code (``message_start``, ``block_start``, ``delta``, ...), and ``stream_end``
    when the body had been read to its end, or ``response`` for a body that was not an event
    stream. ``attempt_failed`` (``detail`` = error type) when the upstream refused, failed or
    broke off.
    """

    #: ``POST``, ``HEAD``, ...
    method: str
    #: The path the agent asked for, below its session's prefix, with the query string
    #: (``/v1/messages?beta=true``).
    path: str
    wire: ExchangeWire
    #: ``messages`` (Anthropic), ``chat`` (OpenAI chat completions), ``responses`` (OpenAI
    #: Responses API), ``count_tokens``, or ``other``.
    operation: Operation
    #: The ``model`` of the request body, when it had one.
    model: str | None
    #: Whether the request asked for a streamed response (``"stream": true``).
    stream_requested: bool
    #: Names of the tools the request offered, in order.
    tools: tuple[str, ...]
    #: Whether the request asked for structured output (a JSON schema to answer in:
    #: Anthropic ``output_config.format`` / ``output_format``, OpenAI ``response_format``).
    structured_output: bool
    #: When the request was fully received from the agent (``perf_counter_ns``).
    received_ns: int
    #: When the response had been forwarded whole to the agent, or the exchange ended in error.
    end_ns: int
    #: The timing events, in the order they were taken (see the class docstring).
    events: tuple[Event, ...]
    #: The upstream's HTTP status; ``None`` when no response came (connection failed).
    status: int | None = None
    #: The response was an event stream (``text/event-stream``).
    streamed: bool = False
    usage: Usage | None = None
    #: The usage object as the endpoint sent it.
    usage_raw: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    #: What went wrong, when something did (upstream unreachable, an error status, a stream
    #: that broke off); never holds a key.
    error: str | None = None
    #: The upstream's request id (``request-id`` / ``x-request-id``), when it sent one.
    request_id: str | None = None
    #: The request body as the agent sent it, for the session's recording.
    body: bytes = b""
    #: The names of the request's headers as the agent sent them, lower case, in order; never
    #: a value (the agent's placeholder key is one).
    header_names: tuple[str, ...] = ()

    @property
    def is_model_request(self) -> bool:
        """A request for a model response (not a probe, a model list or a token count)."""
        return self.operation in ("messages", "chat", "responses")

    @property
    def ok(self) -> bool:
        """The endpoint served it: status 200 and no error on the way."""
        return self.status == 200 and self.error is None
