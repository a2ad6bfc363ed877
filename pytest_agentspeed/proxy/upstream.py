"""The endpoint's side of the proxy: where a session's requests go, and pooled connections there.

Requests go upstream on the standard library's :mod:`http.client`: it speaks HTTP/1.1 and TLS,
decodes chunked bodies, and its ``read1`` returns what one read of the socket gave, so every
chunk is forwarded (and stamped) the moment it arrives. Connections are kept alive and reused
across an agent's turns: a new handshake would land inside the time to first token.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pytest_agentspeed.endpoints import APIS, Api, strip_url_secrets

#: Idle connections kept per upstream host.
MAX_IDLE = 32
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """The endpoint a session's requests are forwarded to.

    :param base_url: the endpoint's root, *without* ``/v1``: the agent's path (``/v1/messages``,
        ``/v1/chat/completions``) is appended to it. ``http`` or ``https``.
    :param api: the wire the endpoint speaks, ``anthropic`` or ``openai``.
    :param model: the model name the endpoint is configured with (given to the agent).
    :param key: the real key, put on each forwarded request (:meth:`key_headers`); ``None``
        sends none. Never shown in a repr.
    :param headers: added to each forwarded request (``x-agentspeed-workspace``, a named
        endpoint's extra headers); they replace an agent's header of the same name.
    """

    base_url: str
    api: Api
    model: str
    key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = strip_url_secrets(self.base_url)
            raise ValueError(f"an upstream base URL must be http(s)://HOST[:PORT][/PATH]: {shown}")
        for name, value in self.headers.items():
            if any(c in name + value for c in "\r\n") or not name or ":" in name:
                raise ValueError(f"a header to add upstream is malformed: {name!r}")
        if self.api not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, not {self.api!r}")

    def key_headers(self) -> list[tuple[str, str]]:
        """The headers that carry the real key upstream (none without a key): ``Authorization:
        Bearer`` on both wires, as the package's clients send it (vLLM and SGLang accept only
        that), and on the Anthropic wire ``x-api-key`` too, which Anthropic's API and its
        gateways take."""
        if not self.key:
            return []
        bearer = ("authorization", f"Bearer {self.key}")
        return [("x-api-key", self.key), bearer] if self.api == "anthropic" else [bearer]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where connections go: scheme, host and port of an upstream, and its path prefix."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def of(cls, base_url: str) -> Origin:
        parts = urlsplit(base_url)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        return cls(parts.scheme, parts.hostname or "", port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


class ConnectionPool:
    """Idle upstream connections, per origin; thread-safe.

    :param timeout_s: how long a read may wait for the upstream (a stream's silences included).
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def get(self, origin: Origin) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``origin``, and whether it was used before (it may have been closed
        by the upstream meanwhile: a request that fails on it at once may be sent again).

        :raises OSError: no connection could be made.
        """
        key = (origin.scheme, origin.host, origin.port)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        return self._connect(origin), False

    def _connect(self, origin: Origin) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if origin.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            conn = http.client.HTTPSConnection(
                origin.host, origin.port, timeout=CONNECT_TIMEOUT_S, context=self._tls
            )
        else:
            conn = http.client.HTTPConnection(origin.host, origin.port, timeout=CONNECT_TIMEOUT_S)
        conn.connect()  # sets TCP_NODELAY: the body must not wait for the headers' ACK
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout_s)
        return conn

    def put(self, origin: Origin, conn: http.client.HTTPConnection) -> None:
        """Give back a connection whose response was read to its end."""
        key = (origin.scheme, origin.host, origin.port)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


def is_stale(exc: BaseException) -> bool:
    """An error a reused connection gives when the upstream had closed it while idle (a
    timeout is not one: the request may have reached it)."""
    return isinstance(
        exc,
        (
            http.client.RemoteDisconnected,
            http.client.BadStatusLine,
            BrokenPipeError,
            ConnectionResetError,
            ConnectionAbortedError,
        ),
    )
