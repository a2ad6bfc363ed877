"""What a session sent to its endpoint, byte for byte: the material of a recording.

A session run with ``--agentspeed-record`` keeps every model request it sent
(:class:`SentRequest`): the body as it went on the wire, the path, the header *names* (never a
value: one of them carries the key), and when it left and when its answer ended, on the same
monotonic clock as every mark (``time.perf_counter_ns``). The built-in agent's clients take
them at the HTTP attempt (:func:`pytest_agentspeed.clients.transport.mark_attempt`), the
recording proxy from the requests an external agent makes. The session's
:class:`SentLog` goes with its :class:`~pytest_agentspeed.agents.AgentRun`;
:mod:`pytest_agentspeed.replay.recording` joins it with the session's record into a recording.

Plain data, in the base layer: clients, agents and the proxy write it, the replay reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: A main-loop turn (``index`` is its turn's index) or a request beside the main loop
#: (``index`` is its place among the session's side requests).
SentKind = Literal["turn", "side"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SentRequest:
    """One model request as it was sent, and when."""

    kind: SentKind
    #: The turn's index in the session's turns, or the side request's among its side requests.
    index: int
    method: str
    #: From ``/v1/`` on, with the query string (``/v1/messages?beta=true``): the API's path,
    #: whatever prefix the base URL had (a simulated endpoint's mount, the proxy's session).
    path: str
    #: The request's header names, lower case, in the order sent; never their values.
    header_names: tuple[str, ...]
    #: The body exactly as sent (JSON for every model request).
    body: bytes
    #: When its first attempt went out (``perf_counter_ns``).
    started_ns: int
    #: When its answer had been read to the end, or the request failed for good.
    ended_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SentLog:
    """Everything one session sent, with the session's bounds on the same clock."""

    #: When the session started: the built-in agent's first turn, an external agent's
    #: process start.
    started_ns: int
    #: When it ended: the built-in agent's last turn end, an external agent's exit.
    ended_ns: int
    #: In the order they were sent (by ``started_ns``).
    requests: tuple[SentRequest, ...]
    #: Who filled the time between requests: ``tool`` for the built-in agent, whose tool
    #: calls are timed, ``agent`` for an agent measured from outside (its tools and its own
    #: time are one).
    gaps_are: Literal["tool", "agent"] = "tool"


def api_path(path: str) -> str:
    """``path`` from its ``/v1/`` on (a base URL's own prefix dropped); unchanged when it has
    none."""
    at = path.find("/v1/")
    return path if at < 0 else path[at:]
