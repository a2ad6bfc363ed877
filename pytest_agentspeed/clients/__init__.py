"""Endpoint clients: one per wire, all measuring the same marks.

A client sends one turn's request, and while doing so appends timestamped events to the
turn's :class:`~pytest_agentspeed.timing.EventLog`; it knows nothing about agents, phases or
records. :class:`ModelClient` is the seam the agent loop depends on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import EventLog


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRequest:
    """What the agent asks of the model in one turn (Anthropic-shaped; other wires convert)."""

    system: Sequence[dict[str, Any]]
    messages: Sequence[dict[str, Any]]
    tools: Sequence[dict[str, Any]]
    max_tokens: int
    #: Identifies the session to the endpoint (``metadata.user_id``); never a secret.
    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A tool call the model asked for."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    """One model reply, whatever the wire."""

    #: The assistant message's content blocks, to be sent back unmodified in the next request.
    content: list[dict[str, Any]]
    tool_calls: tuple[ToolCall, ...]
    stop_reason: str | None
    usage: Usage
    #: The usage object as the endpoint sent it.
    usage_raw: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class RawRequest:
    """A request body to send as it is, on the client's own wire (a replay's)."""

    #: From ``/v1/`` on, with the query: ``/v1/messages?beta=true``, ``/v1/chat/completions``,
    #: ``/v1/responses``. It must be the client's wire's path.
    path: str
    #: The whole body, sent as it is; it asks for a streamed answer.
    body: dict[str, Any]


class RawSender(Protocol):
    """Sends a body as it is, with the same marks, retries and errors as a turn."""

    retry_wait_s: float

    def send_raw(self, request: RawRequest, log: EventLog) -> ModelResponse:
        """Send ``request`` and return the reply, marking ``log`` as :meth:`ModelClient.complete`
        does.

        :raises pytest_agentspeed.errors.EndpointError: when the endpoint could not serve it.
        """
        ...


class ModelClient(RawSender, Protocol):
    """Sends turns to one endpoint, recording timing events as it goes (and, for a replay,
    bodies as they are: :class:`RawSender`)."""

    #: How long the agent loop waits before sending a turn whose stream broke off again
    #: (doubled for each further try). Scaled with a simulated endpoint's time scale.
    retry_wait_s: float

    def complete(self, request: TurnRequest, log: EventLog) -> ModelResponse:
        """Send one turn and return the reply.

        :raises pytest_agentspeed.errors.EndpointError: when the endpoint could not serve it.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
