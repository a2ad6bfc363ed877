"""Marks taken at the HTTP transport, shared by both wires' clients.

Each client installs httpx2 event hooks that call :func:`mark_attempt` for every HTTP attempt
and :func:`mark_headers` when the response headers are in. The attempt hook also hangs a
trace callback on the request, so ``request_sent`` and the headers' moment are taken by the
transport itself (``research/wire-spec.md`` section 5), not around a call that returns later.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx2

from pytest_agentspeed.timing import EventLog

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
