"""One recorded session sent again to an endpoint, open loop, and measured like a live one.

SKELETON laid by the lead: the signatures are the contract; the bodies are to be written
(issue 16).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from pytest_agentspeed.agents import Progress
from pytest_agentspeed.clients import RawSender
from pytest_agentspeed.endpoints import Endpoint
from pytest_agentspeed.replay.recording import RecordedRequest, Recording
from pytest_agentspeed.run.runner import SessionResult

#: How the output length is held to the recorded one: ``max_tokens`` caps it (every wire);
#: ``exact`` also asks for at least as many (``min_tokens`` and ``ignore_eos``, which vLLM,
#: SGLang and the simulated endpoint honour).
Pin = Literal["max_tokens", "exact"]


def replay_body(
    request: RecordedRequest,
    *,
    endpoint: Endpoint,
    session_id: str,
    pin: Pin,
) -> dict[str, Any]:
    """The body to send for ``request`` to ``endpoint``: the recorded body with the
    endpoint's model and request options, the session's own id where the wire carries one
    (``metadata.user_id``, ``user``, ``prompt_cache_key``), a streamed answer, and the
    output length pinned to the recorded one."""
    raise NotImplementedError


def replay_session(
    recording: Recording,
    client: RawSender,
    *,
    endpoint: Endpoint,
    repeat: int,
    gaps: float = 1.0,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SessionResult:
    """Send ``recording``'s requests in order to ``endpoint`` through ``client``, each after
    its recorded gap times ``gaps`` (0: none), and measure them as a live session's turns.

    The record's task is the recording's name, its agent ``replay``; its outcome ``passed``
    when every request was answered, ``error`` (with the endpoint's one-line reason) at the
    first that was not, after which nothing more is sent. Its phases sum to its wall time:
    the requests' own phases, and the slept gaps in the phases the recording says filled them.
    """
    raise NotImplementedError
