"""The HTTP connection pool and the marks taken at it, shared by both wires' clients.

Each client sends through a :class:`MarkedHttp`: an httpx2 client whose event hooks call
:func:`mark_attempt` for every HTTP attempt and :func:`mark_headers` when the response
headers are in, on the event log of the turn being sent. The attempt hook also hangs a trace
callback on the request, so ``request_sent`` and the headers' moment are taken by the
transport itself (``research/wire-spec.md`` section 5), not around a call that returns later.

The body is read by a :class:`StampedBody`: a thread of its own that stamps every read the
moment it returns and hands (bytes, time) pairs to the consumer, so the stream's marks are
the bytes' arrival times however slowly the consumer parses them (``docs/timing.md``).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from queue import SimpleQueue
from typing import Any

import httpx2

from pytest_agentspeed.endpoints import strip_url_secrets
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.sent import api_path
from pytest_agentspeed.timing import AttemptRequest, Clock, EventLog


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
    """Record an ``attempt``, keep the request as sent (:attr:`EventLog.request`), and trace
    it through the transport."""
    log.add("attempt")
    log.request = sent_request(request)

    def trace(name: str, info: dict[str, Any]) -> None:
        if name in _SENT:
            log.add("request_sent")
        elif name in _HEADERS:
            # The response hook runs a little later; keep the transport's moment.
            request.extensions["agentspeed_headers_ns"] = log.clock()
        elif name == "connection.connect_tcp.complete":
            _no_delay(info.get("return_value"))

    request.extensions["trace"] = trace


def sent_request(request: httpx2.Request) -> AttemptRequest:
    """What a recording keeps of ``request``: method, API path, header names (never a value:
    ``x-api-key`` and ``authorization`` carry the key) and the body."""
    try:
        body = request.content
    except httpx2.RequestNotRead:  # a streamed body: the clients send none
        body = b""
    return AttemptRequest(
        method=request.method,
        path=api_path(request.url.raw_path.decode("ascii")),
        header_names=tuple(name.decode("latin-1").lower() for name, _ in request.headers.raw),
        body=body,
    )


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


#: The GIL switch interval while a body is read. A reader thread woken by arriving bytes must
#: take the GIL back before it can stamp them; when the consumer (or any other thread) is
#: running Python code, it gets it only after the switch interval (5 ms by default), which
#: would be the stamp's error. Measured in docs/timing.md ("Marks taken when bytes arrive").
READ_SWITCH_INTERVAL_S = 0.0005


class _SwitchInterval:
    """Lowers the GIL switch interval while at least one body is being read, then restores it.

    Counted, so concurrent readers (threads of one process) restore it only when the last one
    ends; a value someone set lower than ours is left alone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._saved = 0.0

    def enter(self) -> None:
        with self._lock:
            if self._readers == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, READ_SWITCH_INTERVAL_S))
            self._readers += 1

    @property
    def readers(self) -> int:
        """Bodies being read now."""
        return self._readers

    def exit(self) -> None:
        with self._lock:
            self._readers -= 1
            if self._readers == 0:
                sys.setswitchinterval(self._saved)


_SWITCH_INTERVAL = _SwitchInterval()


@contextmanager
def fast_handover() -> Iterator[None]:
    """Keep the GIL switch interval low (:data:`READ_SWITCH_INTERVAL_S`) while in the block.

    For a reader other than :class:`StampedBody` that stamps bytes as they arrive while other
    threads run Python code: the recording proxy, for each request it forwards.
    """
    _SWITCH_INTERVAL.enter()
    try:
        yield
    finally:
        _SWITCH_INTERVAL.exit()


def reading() -> bool:
    """Whether a response body is being read in this process now: the only time marks are
    taken (the run's lateness monitor counts its samples then)."""
    return _SWITCH_INTERVAL.readers > 0


class StampedBody:
    """A response body read on a thread of its own, each read stamped as it returns.

    Iterate it for ``(chunk, t_ns)`` pairs; the last pair has an empty chunk and the moment the
    end of the body was read. An error of the read (the connection dropped, a read timeout) is
    raised by the iteration, after the chunks read before it. :meth:`close` stops reading; it
    must be called (a ``with`` block does) so the thread never outlives the response.

    Why a thread: read lazily from the consumer's loop, bytes that arrive while the consumer is
    busy (parsing, a GC pause, a slow agent) are read, and so stamped, only when it comes back.
    The reader does nothing but read, stamp and put; the queue hands over without copying.

    :param response: an httpx2 response whose body has not been read.
    :param clock: the turn's clock (the event log's), called right after each read returns.
    """

    def __init__(self, response: httpx2.Response, clock: Clock) -> None:
        self._response = response
        self._clock = clock
        self._queue: SimpleQueue[tuple[bytes, int] | BaseException] = SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._read, name="agentspeed-reader", daemon=True)
        _SWITCH_INTERVAL.enter()
        self._thread.start()

    def _read(self) -> None:
        put, clock = self._queue.put, self._clock
        try:
            # iter_bytes yields what each read of the connection returned (no empty chunks),
            # with nothing done to it but undoing a content encoding (we ask for none), so the
            # stamp follows the read at once. Not iter_raw: a compressed body must be decoded,
            # and a body already in memory (a mock transport's) would not be read at all.
            for chunk in self._response.iter_bytes():
                put((chunk, clock()))
            put((b"", clock()))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        get = self._queue.get
        while True:
            item = get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if not item[0]:
                return

    def __enter__(self) -> StampedBody:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and wait for the reader; a read in progress is cut short."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            # Closing the response from here would not wake a thread blocked in recv();
            # shutting the socket down does (the read returns end of file at once).
            stream = self._response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):  # already closed by the peer or the reader
                    sock.shutdown(socket.SHUT_RDWR)
            self._thread.join(timeout=5.0)
        _SWITCH_INTERVAL.exit()
