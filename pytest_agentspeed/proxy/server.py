"""The recording reverse proxy: a threaded HTTP/1.1 server on 127.0.0.1 that forwards each
session's requests to its endpoint and records an :class:`~pytest_agentspeed.exchanges.Exchange`
per request.

Why this server: what it adds to the time to first token is the measurement's own error, so
it does as little as possible between bytes in and bytes out. One thread per agent connection
reads the request off a raw socket (no framework, no event loop to hand over to), sends it
upstream on a pooled, kept-alive :mod:`http.client` connection with ``TCP_NODELAY``, and
forwards the response: headers as soon as they are parsed, then each read of the upstream
socket, as it returns, in one ``sendall`` (a chunk of the chunked coding when the upstream did
not give a length). Recording comes after each send: the stamp is taken right after the read,
the bytes go to the agent, and only then are they parsed (the clients' SSE parser and event
mapping); the request body is parsed for its facts after the response. Python threads suit
the load (a few agents, each waiting on the endpoint most of the time); while requests are in
flight the GIL switch interval is lowered, as for the clients' readers, so a forwarding thread
woken by bytes is not held 5 ms behind another thread (``benchmarks/proxy_overhead.py``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from pytest_agentspeed.endpoints import redact, strip_url_secrets
from pytest_agentspeed.exchanges import Exchange
from pytest_agentspeed.proxy.http11 import (
    LAST_CHUNK,
    READ_SIZE,
    AgentConnection,
    BadRequest,
    Headers,
    PeerClosed,
    Request,
    chunk,
    connection_headers,
    response_head,
)
from pytest_agentspeed.proxy.recording import ResponseRecorder, operation_of, request_facts
from pytest_agentspeed.proxy.upstream import ConnectionPool, Origin, Upstream, is_stale
from pytest_agentspeed.timing import EventLog

#: The key an agent is given: worthless anywhere but at the proxy, which drops it.
PLACEHOLDER_KEY = "sk-agentspeed-placeholder"
#: Headers of the agent's request the proxy replaces: credentials (the placeholder), and what
#: it sets itself (the upstream's host, the body's length, no compression, which would hold
#: stream bytes back and hide them from the parser).
_REPLACED = frozenset(
    {"host", "content-length", "expect", "x-api-key", "authorization", "accept-encoding"}
)
_NO_BODY_STATUS = frozenset({204, 304})


class ProxySession:
    """One session's endpoint at the proxy: a base URL of its own, and what went through it.
    A :class:`~pytest_agentspeed.agents.seam.ProxiedEndpoint`, made by
    :meth:`RecordingProxy.open_session`; thread-safe."""

    def __init__(self, proxy: RecordingProxy, token: str, upstream: Upstream) -> None:
        self._proxy = proxy
        self.token = token
        self.upstream = upstream
        self.origin = Origin.of(upstream.base_url)
        #: ``http://127.0.0.1:PORT/s/TOKEN``: no trailing slash, no ``/v1``.
        self.base_url = f"{proxy.url}/s/{token}"
        self.api: str = upstream.api
        self.model = upstream.model
        self.placeholder_key = PLACEHOLDER_KEY
        self.on_exchange: Callable[[Exchange], None] | None = None
        self._exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._in_flight = 0  # requests being forwarded: exchanges() waits for them
        self._settled = threading.Condition(self._lock)

    def __repr__(self) -> str:
        return f"ProxySession({self.base_url!r}, {self.upstream!r})"

    def exchanges(self, wait_s: float = 5.0) -> tuple[Exchange, ...]:
        """The requests this session made, in the order they were received. One still being
        forwarded is waited for, up to ``wait_s``: the agent has a response's last bytes a
        moment before the proxy has recorded it, and must not lose its last turn by exiting."""
        with self._settled:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout=wait_s)
            done = list(self._exchanges)
        return tuple(sorted(done, key=lambda e: e.received_ns))

    def close(self) -> None:
        """Stop serving this session's prefix (later requests get 404); its exchanges stay."""
        self._proxy._forget(self.token)

    @contextlib.contextmanager
    def _forwarding(self) -> Iterator[None]:
        """Counts a request as in flight until its exchange is recorded (or it failed)."""
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._settled:
                self._in_flight -= 1
                self._settled.notify_all()

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)
        listener = self.on_exchange
        if listener is not None:
            listener(exchange)


class RecordingProxy:
    """The proxy, listening on ``127.0.0.1`` (an ephemeral port) from construction on.

    One per process is enough: sessions are told apart by their path prefix
    (:meth:`open_session`). Thread-safe. :meth:`close` stops it (also a context manager).

    :param timeout_s: how long to wait for the endpoint on one read (a stream's silences
        included) before the exchange fails.
    """

    def __init__(self, *, timeout_s: float = 600.0) -> None:
        # Imported here: the transport loads httpx2, which the plugin's import must not.
        from pytest_agentspeed.clients.transport import fast_handover

        self._fast_handover: Callable[[], AbstractContextManager[None]] = fast_handover
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))  # loopback only (DESIGN section 12)
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        #: ``http://127.0.0.1:PORT``.
        self.url = f"http://127.0.0.1:{self.port}"
        self._pool = ConnectionPool(timeout_s)
        self._sessions: dict[str, ProxySession] = {}
        self._agents: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="agentspeed-proxy", daemon=True)
        self._thread.start()

    def open_session(self, upstream: Upstream) -> ProxySession:
        """A new session forwarding to ``upstream``, under a random path prefix."""
        token = secrets.token_urlsafe(12)
        session = ProxySession(self, token, upstream)
        with self._lock:
            if self._closed:
                raise RuntimeError("the recording proxy is closed")
            self._sessions[token] = session
        return session

    def close(self) -> None:
        """Stop listening, cut open agent connections, close upstream connections."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            agents = list(self._agents)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in agents:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5.0)
        self._pool.close()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _forget(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:  # closed
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    sock.close()
                    return
                self._agents.add(sock)
            threading.Thread(
                target=self._serve, args=(sock,), name="agentspeed-proxy-conn", daemon=True
            ).start()

    def _serve(self, sock: socket.socket) -> None:
        """Serve one agent connection, request after request, until either side closes it."""
        agent = AgentConnection(sock)
        try:
            while True:
                try:
                    request = agent.read_request()
                except BadRequest as exc:
                    _send_error(sock, exc.status, "invalid_request_error", exc.message, False)
                    return
                if not self._handle(sock, request):
                    return
        except (PeerClosed, OSError):
            return
        finally:
            with self._lock:
                self._agents.discard(sock)
            sock.close()

    def _handle(self, sock: socket.socket, request: Request) -> bool:
        """Answer one request; whether the connection stays open."""
        target = request.target
        if target.startswith(("http://", "https://")):  # absolute form: keep the path
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        token, rest = _split_session(target)
        with self._lock:
            session = self._sessions.get(token) if token else None
        if session is None:
            message = "no proxy session at this path (a session's base URL is /s/TOKEN)"
            _send_error(sock, 404, "not_found_error", message, request.keep_alive)
            return request.keep_alive
        with self._fast_handover(), session._forwarding():
            return _Forwarding(self._pool, session, sock, request, rest).run()


def _split_session(target: str) -> tuple[str, str]:
    """``/s/TOKEN/rest?q`` -> (``TOKEN``, ``/rest?q``); ``("", "")`` for another path."""
    if not target.startswith("/s/"):
        return "", ""
    inside = target[3:]
    cut = min((i for i in (inside.find("/"), inside.find("?")) if i >= 0), default=len(inside))
    token, rest = inside[:cut], inside[cut:]
    if not rest.startswith("/"):
        rest = "/" + rest
    return token, rest


class _Forwarding:
    """One request forwarded upstream and its response forwarded back, recorded as it goes."""

    def __init__(
        self,
        pool: ConnectionPool,
        session: ProxySession,
        sock: socket.socket,
        request: Request,
        rest: str,
    ) -> None:
        self.pool = pool
        self.session = session
        self.sock = sock
        self.request = request
        self.rest = rest
        self.wire, self.operation = operation_of(rest)
        self.log = EventLog()
        self.log.add("attempt", t_ns=request.received_ns)
        upstream = session.upstream
        self.secrets = [upstream.key] if upstream.key else []

    def run(self) -> bool:
        """Forward and record; whether the agent connection stays open."""
        request = self.request
        try:
            conn, response, sent_ns, headers_ns = self._send()
        except (OSError, http.client.HTTPException) as exc:
            return self._unreachable(exc)
        status = response.status
        request_id = response.getheader("request-id") or response.getheader("x-request-id")
        self.log.add("request_sent", t_ns=sent_ns)
        self.log.add("headers", status=status, detail=request_id or "", t_ns=headers_ns)
        content_type = (response.getheader("content-type") or "").lower()
        recorder = ResponseRecorder(
            wire=self.wire,
            operation=self.operation,
            log=self.log,
            status=status,
            streamed=content_type.startswith("text/event-stream"),
            secrets=self.secrets,
        )
        keep, clean = False, False
        try:
            keep, clean = self._relay(response, recorder, request.keep_alive)
        except OSError:  # the agent went away before the body could be sent
            recorder.broke(time.perf_counter_ns(), "the agent closed the connection")
        finally:
            if clean and not response.will_close:
                response.close()
                self.pool.put(self.session.origin, conn)
            else:
                conn.close()
        self._finish(recorder, status, request_id)
        return keep

    def _send(self) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, int, int]:
        """Send the request upstream; the connection, the response (headers read), and when the
        request was sent and the headers were in. A pooled connection the upstream had closed
        is replaced once."""
        origin = self.session.origin
        for _ in range(2):
            conn, reused = self.pool.get(origin)
            try:
                conn.putrequest(
                    self.request.method,
                    origin.path + self.rest,
                    skip_host=True,
                    skip_accept_encoding=True,
                )
                for name, value in self._headers():
                    conn.putheader(name, value)
                body = self.request.body
                conn.endheaders(body if body else None)
                sent_ns = time.perf_counter_ns()
                response = conn.getresponse()
                return conn, response, sent_ns, time.perf_counter_ns()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if not (reused and is_stale(exc)):
                    raise
        raise AssertionError("unreachable: the second try raises")

    def _headers(self) -> Headers:
        """The agent's headers as they go upstream: hop-by-hop ones and the placeholder key
        dropped, the real key and the session's headers added."""
        request, upstream = self.request, self.session.upstream
        extra = {name.lower(): value for name, value in upstream.headers.items()}
        drop = connection_headers(request.headers) | _REPLACED | extra.keys()
        headers = [(k, v) for k, v in request.headers if k not in drop]
        headers.append(("host", self.session.origin.host_header))
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            headers.append(("content-length", str(len(request.body))))
        headers.append(("accept-encoding", "identity"))
        headers += extra.items()
        headers += upstream.key_headers()
        return headers

    def _relay(
        self, response: http.client.HTTPResponse, recorder: ResponseRecorder, keep: bool
    ) -> tuple[bool, bool]:
        """Forward the response to the agent, recording each chunk after it went out; whether
        the agent connection stays open, and whether the upstream one can be reused."""
        status, method = response.status, self.request.method
        upstream_headers = [(k.lower(), v) for k, v in response.getheaders()]
        drop = connection_headers(upstream_headers)
        headers = [(k, v) for k, v in upstream_headers if k not in drop]
        if method == "HEAD" or status in _NO_BODY_STATUS or status < 200:
            headers.append(("connection", "keep-alive" if keep else "close"))
            self.sock.sendall(response_head(status, response.reason, headers))
            recorder.end(time.perf_counter_ns())
            return keep, True
        if status >= 400 and self.secrets:
            return self._relay_error(response, recorder, headers, keep)
        if response.length is not None:
            framing = "length"
        elif self.request.version == "HTTP/1.1":
            framing = "chunked"
            headers = [(k, v) for k, v in headers if k != "content-length"]
            headers.append(("transfer-encoding", "chunked"))
        else:  # an HTTP/1.0 agent: the end of the body is the end of the connection
            framing, keep = "close", False
        headers.append(("connection", "keep-alive" if keep else "close"))
        self.sock.sendall(response_head(status, response.reason, headers))
        send, read1, clock = self.sock.sendall, response.read1, time.perf_counter_ns
        while True:
            try:
                data = read1(READ_SIZE)
            except (OSError, http.client.HTTPException) as exc:
                recorder.broke(clock(), _broken(exc))
                return False, False
            t_ns = clock()
            if not data:
                break
            try:
                send(chunk(data) if framing == "chunked" else data)
            except OSError:
                recorder.broke(t_ns, "the agent closed the connection mid-response")
                return False, False
            recorder.chunk(data, t_ns)
        if response.length:  # the upstream ended the body short of its Content-Length
            recorder.broke(t_ns, "the endpoint closed the connection mid-response")
            return False, False
        if framing == "chunked":
            send(LAST_CHUNK)
        recorder.end(t_ns)
        return keep, True

    def _relay_error(
        self,
        response: http.client.HTTPResponse,
        recorder: ResponseRecorder,
        headers: Headers,
        keep: bool,
    ) -> tuple[bool, bool]:
        """An error response, read whole and sent with the real key blanked out (an endpoint
        may quote the key it refused)."""
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            recorder.broke(time.perf_counter_ns(), _broken(exc))
            return False, False
        t_ns = time.perf_counter_ns()
        for secret in self.secrets:
            data = data.replace(secret.encode(), b"***")
        headers = [(k, v) for k, v in headers if k != "content-length"]
        headers += [
            ("content-length", str(len(data))),
            ("connection", "keep-alive" if keep else "close"),
        ]
        self.sock.sendall(response_head(response.status, response.reason, headers) + data)
        recorder.chunk(data, t_ns)
        recorder.end(t_ns)
        return keep, True

    def _unreachable(self, exc: BaseException) -> bool:
        """No response came: a 502 (504 on a timeout) to the agent, and the exchange's error."""
        t_ns = time.perf_counter_ns()
        timeout = isinstance(exc, TimeoutError)
        self.log.add(
            "attempt_failed", detail="timeout" if timeout else "connection_error", t_ns=t_ns
        )
        where = strip_url_secrets(self.session.upstream.base_url)
        what = "did not answer in time" if timeout else "cannot be reached"
        message = redact(f"the endpoint at {where} {what} ({type(exc).__name__})", self.secrets)
        keep = self.request.keep_alive
        with contextlib.suppress(OSError):
            _send_error(self.sock, 504 if timeout else 502, "api_error", message, keep)
        self._record(status=None, error=message, end_ns=time.perf_counter_ns())
        return keep

    def _finish(self, recorder: ResponseRecorder, status: int, request_id: str | None) -> None:
        self._record(
            status=status,
            error=recorder.error,
            end_ns=time.perf_counter_ns(),
            streamed=recorder.streamed,
            recorder=recorder,
            request_id=request_id,
        )

    def _record(
        self,
        *,
        status: int | None,
        error: str | None,
        end_ns: int,
        streamed: bool = False,
        recorder: ResponseRecorder | None = None,
        request_id: str | None = None,
    ) -> None:
        facts = request_facts(self.request.body)
        self.session._record(
            Exchange(
                method=self.request.method,
                path=self.rest,
                wire=self.wire,
                operation=self.operation,
                model=facts.model,
                stream_requested=facts.stream_requested,
                tools=facts.tools,
                structured_output=facts.structured_output,
                received_ns=self.request.received_ns,
                end_ns=end_ns,
                events=tuple(self.log.events),
                status=status,
                streamed=streamed,
                usage=recorder.usage if recorder else None,
                usage_raw=recorder.usage_raw if recorder else {},
                stop_reason=recorder.stop_reason if recorder else None,
                error=error,
                request_id=request_id,
                body=self.request.body,
                header_names=tuple(name for name, _ in self.request.headers),
            )
        )


def _broken(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "the endpoint went silent mid-response (timeout)"
    return f"the endpoint broke off the response ({type(exc).__name__})"


def _send_error(sock: socket.socket, status: int, kind: str, message: str, keep: bool) -> None:
    """A JSON error in the shape both wires' SDKs read (``error.type``, ``error.message``)."""
    body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    reasons = {400: "Bad Request", 404: "Not Found", 431: "Request Header Fields Too Large"}
    reasons |= {502: "Bad Gateway", 504: "Gateway Timeout"}
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("connection", "keep-alive" if keep else "close"),
    ]
    sock.sendall(response_head(status, reasons.get(status, ""), headers) + body)
