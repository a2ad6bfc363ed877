"""The HTTP connection pool and the marks taken at it, shared by both wires' clients.

Each client sends through a :class:`MarkedHttp`: an httpx2 client whose event hooks call
:func:`mark_attempt` for every HTTP attempt and :func:`mark_headers` when the response
headers are in, on the event log of the turn being sent. The attempt hook also hangs a trace
callback on the request, so ``request_sent`` and the headers' moment are taken by the
transport itself (``research/wire-spec.md`` section 5), not around a call that returns later.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx2

from pytest_agentspeed.endpoints import strip_url_secrets
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.timing import EventLog


class MarkedHttp:
    """A pooled httpx2 client that marks each attempt on the log of the turn being sent.

    :param timeout_s: per-request timeout (connecting: 10 s at most).
    :param headers: sent with every request.
    :param transport: an httpx2 transport to use instead of the network (tests).
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        headers: Mapping[str, str] | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self._log: EventLog | None = None
        self.timeout = httpx2.Timeout(timeout_s, connect=10.0)
        self.client = httpx2.Client(
            transport=transport,
            headers=dict(headers or {}),
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
            # Agents spend seconds in tools between calls; the default 5 s keep-alive would
            # make turns silently pay a new connection (wire-spec.md 5.1, lesson 3).
            limits=httpx2.Limits(max_keepalive_connections=10, keepalive_expiry=600.0),
            timeout=self.timeout,
        )

    @contextmanager
    def marking(self, log: EventLog) -> Iterator[None]:
        """Mark the attempts made inside the block on ``log``."""
        self._log = log
        try:
            yield
        finally:
            self._log = None

    def close(self) -> None:
        self.client.close()

    def _on_request(self, request: httpx2.Request) -> None:
        if self._log is not None:
            mark_attempt(self._log, request)

    def _on_response(self, response: httpx2.Response) -> None:
        if self._log is not None:
            mark_headers(self._log, response)


def broken_stream(log: EventLog, exc: httpx2.TransportError) -> EndpointError:
    """Record a stream that broke off after the response started; the error to raise.

    Neither SDK retries these (the response had begun); the agent loop sends the turn again.
    """
    kind = "timeout" if isinstance(exc, httpx2.TimeoutException) else "connection_error"
    log.add("attempt_failed", detail=kind)
    return EndpointError(kind, f"the stream broke off ({type(exc).__name__})", mid_stream=True)


def unreachable(base_url: str, cause: BaseException) -> EndpointError:
    """The error of an endpoint no connection could be made to: it names the URL tried
    (without credentials or query, which may carry a key) and what went wrong."""
    return EndpointError(
        "connection_error",
        f"cannot reach the endpoint at {strip_url_secrets(base_url)} ({type(cause).__name__})",
    )


_SENT = ("http11.send_request_body.complete", "http2.send_request_body.complete")
_HEADERS = ("http11.receive_response_headers.complete", "http2.receive_response_headers.complete")


def mark_attempt(log: EventLog, request: httpx2.Request) -> None:
    """Record an ``attempt`` and trace the request through the transport."""
    log.add("attempt")

    def trace(name: str, info: dict[str, Any]) -> None:
        if name in _SENT:
            log.add("request_sent")
        elif name in _HEADERS:
            # The response hook runs a little later; keep the transport's moment.
            request.extensions["agentspeed_headers_ns"] = log.clock()
        elif name == "connection.connect_tcp.complete":
            _no_delay(info.get("return_value"))

    request.extensions["trace"] = trace


def mark_headers(log: EventLog, response: httpx2.Response) -> None:
    """Record ``headers`` with the status and the endpoint's request id, at the traced moment."""
    request_id = response.headers.get("request-id") or response.headers.get("x-request-id")
    log.add(
        "headers",
        status=response.status_code,
        detail=request_id or "",
        t_ns=response.request.extensions.get("agentspeed_headers_ns"),
    )


def _no_delay(stream: Any) -> None:
    """Send small writes at once on a new connection.

    Request headers and body go out in separate writes; with Nagle's algorithm the body can
    wait for the headers' acknowledgement, which would land in the measured time to first
    token. Set here, on the default transport, so proxies from the environment still apply.
    """
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
