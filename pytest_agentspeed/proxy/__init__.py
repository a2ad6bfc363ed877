"""The recording reverse proxy between an external agent and the endpoint under test.

An agent in another process (Claude Code, mini-swe-agent, any command) is given a session's
base URL at the proxy and a placeholder key; the proxy forwards its requests, bytes unchanged
and streamed as they arrive, to the session's endpoint with the real key, and records an
:class:`~pytest_agentspeed.exchanges.Exchange` per request, with the marks the in-process
clients take, mapped from the stream by the clients' own code
(:mod:`pytest_agentspeed.clients.streams`)::

    proxy = RecordingProxy()                      # 127.0.0.1, ephemeral port; one per process
    session = proxy.open_session(Upstream(base_url=..., api="anthropic", model=..., key=...))
    # run the agent with session.base_url and session.placeholder_key ...
    exchanges = session.exchanges()
    session.close()
    proxy.close()

Requests under ``/s/TOKEN`` go to the session's upstream base URL plus the rest of the path
(query kept); any other path gets a 404 JSON error. An endpoint that cannot be reached gives
the agent a 502 JSON error and the exchange an error. The real key never appears in what the
agent receives or in an exchange. See ``docs/architecture.md``.
"""

from __future__ import annotations

from pytest_agentspeed.proxy.server import PLACEHOLDER_KEY, ProxySession, RecordingProxy
from pytest_agentspeed.proxy.upstream import Upstream

__all__ = ["PLACEHOLDER_KEY", "ProxySession", "RecordingProxy", "Upstream"]
