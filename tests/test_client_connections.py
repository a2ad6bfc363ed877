"""The clients' connections: one kept-alive TCP connection across turns and tool gaps, sent
without Nagle's delay, and a stream that goes silent mid-response ends the attempt in time.

The server here is a stdlib HTTP/1.1 server on loopback (the scripted server speaks HTTP/1.0
and closes every connection, so it cannot show reuse); it records the client's address of
every request, so "one connection" is what the server saw, not what the client says.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore2._sync.http11
import pytest
from httpcore2._backends.base import NetworkStream
from httpcore2._backends.sync import SyncBackend
from scripted_server import message_start, text_reply

from pytest_agentspeed.clients import TurnRequest
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.clients.transport import MarkedHttp
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.timing import EventLog

#: How long the stalling server holds a stream open at most (the test releases it sooner).
STALL_S = 10.0

REQUEST = TurnRequest(
    system=[{"type": "text", "text": "Be brief."}],
    messages=[{"role": "user", "content": [{"type": "text", "text": "Say done."}]}],
    tools=[],
    max_tokens=100,
    session_id="t[x-r0]",
)


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class KeepAliveServer:
    """Answers every POST with one complete Anthropic stream, keeping the connection open.

    :param stall: send the headers and ``message_start``, then go silent (until released).
    """

    def __init__(self, *, stall: bool = False) -> None:
        self.stall = stall
        #: The client's (host, port) of each request, in order.
        self.peers: list[tuple[str, int]] = []
        self.release = threading.Event()
        self.url = ""

    @contextmanager
    def running(self) -> Iterator[KeepAliveServer]:
        owner = self
        reply = b"".join(
            _sse(e) for _, e in text_reply(first_event=0, first_token=0, step=0, pieces=["Done."])
        )

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                owner.peers.append(self.client_address[:2])
                if not owner.stall:
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                # Headers and the first event in one write: the client's read timeout can
                # only run out in the silence after them, however loaded the machine.
                first = _sse(message_start())
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(first), first)
                )
                owner.release.wait(STALL_S)
                self.close_connection = True

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            server.shutdown()
            server.server_close()


class ShiftedClock:
    """``time.monotonic`` moved ahead by ``offset`` seconds: a tool gap without the wait."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def _client(url: str, **kw: Any) -> AnthropicClient:
    return AnthropicClient(model="m", base_url=url, api_key="sk-test", **kw)


def test_turns_of_one_client_share_one_tcp_connection() -> None:
    with KeepAliveServer().running() as server:
        client = _client(server.url)
        try:
            for _ in range(3):
                reply = client.complete(REQUEST, EventLog())
                assert reply.stop_reason == "end_turn"
        finally:
            client.close()
    assert len(server.peers) == 3
    assert len(set(server.peers)) == 1, server.peers


def test_the_connection_outlives_a_long_tool_gap_but_not_ten_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Agents spend minutes in tools between turns; httpx's 5 s keep-alive would drop the
    connection and make the next turn pay a new one. The pool keeps it 600 s.

    The connection's expiry clock is shifted instead of waited out.
    """
    clock = ShiftedClock()
    monkeypatch.setattr(httpcore2._sync.http11, "time", clock)
    with KeepAliveServer().running() as server:
        client = _client(server.url)
        try:
            client.complete(REQUEST, EventLog())
            clock.offset += 599.0
            client.complete(REQUEST, EventLog())
            clock.offset += 601.0
            client.complete(REQUEST, EventLog())
        finally:
            client.close()
    first, after_gap, after_expiry = server.peers
    assert after_gap == first
    assert after_expiry != first


def test_connections_send_small_writes_without_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """TCP_NODELAY is on the socket the client really sends on (Nagle's algorithm would hold
    the request body back until the headers' acknowledgement, inside the measured TTFT).

    httpcore2's own socket backend sets it too; the network backend here leaves it off, as
    other backends and versions may, to show the client does not depend on that.
    """
    connect_tcp = SyncBackend.connect_tcp

    def nagle_on(backend: SyncBackend, *args: Any, **kwargs: Any) -> NetworkStream:
        stream = connect_tcp(backend, *args, **kwargs)
        stream.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        return stream

    monkeypatch.setattr(SyncBackend, "connect_tcp", nagle_on)
    with KeepAliveServer().running() as server:
        http = MarkedHttp(timeout_s=10.0)
        try:
            with http.marking(EventLog()):
                response = http.client.post(f"{server.url}/v1/messages", content=b"{}")
            sock = response.extensions["network_stream"].get_extra_info("socket")
            assert isinstance(sock, socket.socket)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            http.close()


def test_a_stream_that_goes_silent_ends_in_a_mid_stream_timeout() -> None:
    """Headers and the first event arrive, then nothing: after the read timeout the turn
    fails as a broken stream (for the agent loop to send again), not a hang, and the SDK does
    not retry it by itself."""
    with KeepAliveServer(stall=True).running() as server:
        client = _client(server.url, timeout_s=1.0)
        log = EventLog()
        try:
            with pytest.raises(EndpointError) as caught:
                client.complete(REQUEST, log)
        finally:
            server.release.set()
            client.close()
    error = caught.value
    assert (error.error_type, error.mid_stream, error.status) == ("timeout", True, None)
    assert str(error) == "timeout: the stream broke off (ReadTimeout)"
    kinds = [e.kind for e in log.events]
    assert kinds == ["attempt", "request_sent", "headers", "message_start", "attempt_failed"]
    assert log.events[-1].detail == "timeout"
    assert len(server.peers) == 1
