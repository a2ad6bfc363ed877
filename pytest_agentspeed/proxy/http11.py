"""The agent's side of the proxy: HTTP/1.1 requests read off a socket, responses framed onto it.

Just enough of RFC 9112 for a reverse proxy in front of API clients: a request line and
headers, a body by ``Content-Length`` or ``chunked`` transfer coding, ``Expect: 100-continue``,
keep-alive, and the hop-by-hop headers a proxy must not forward (RFC 9110 section 7.6.1).
The moment a request has been fully received is stamped right after the read that completed
it.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

#: Headers that concern one connection, not the message (RFC 9110 7.6.1): never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
MAX_HEAD = 256 * 1024
READ_SIZE = 256 * 1024

Headers = list[tuple[str, str]]


class BadRequest(Exception):
    """The agent sent something that is not an HTTP/1.1 request this proxy can take."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class PeerClosed(Exception):
    """The agent closed its connection (between or inside requests)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request from the agent."""

    method: str
    #: The request target as sent (``/s/TOKEN/v1/messages?beta=true``).
    target: str
    #: ``HTTP/1.1`` or ``HTTP/1.0``.
    version: str
    #: In the order sent, names lower-cased.
    headers: Headers
    body: bytes
    #: When its last byte was read (``perf_counter_ns``).
    received_ns: int
    #: The agent wants the connection kept open after the response.
    keep_alive: bool

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class AgentConnection:
    """Reads requests off one accepted connection, in turn."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def _fill(self) -> None:
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise PeerClosed
        self._buffer += data

    def read_request(self) -> Request:
        """The next request.

        :raises PeerClosed: the agent closed the connection.
        :raises BadRequest: the request cannot be read.
        """
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD:
                raise BadRequest(431, "the request head is too large")
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(400, "not an HTTP/1.x request line")
        method, target, version = parts
        headers: Headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            # A bare CR or LF inside a line would split it in two upstream (injection).
            if not colon or not name or name != name.strip() or "\n" in line or "\r" in line:
                raise BadRequest(400, "a malformed header line")
            headers.append((name.lower(), value.strip()))
        values = dict(reversed(headers))  # the first of repeated headers
        if values.get("expect", "").lower() == "100-continue":
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in values.get("transfer-encoding", "").lower():
            body = self._chunked_body()
        elif "content-length" in values:
            try:
                length = int(values["content-length"])
            except ValueError:
                raise BadRequest(400, "a malformed Content-Length") from None
            if length < 0:
                raise BadRequest(400, "a malformed Content-Length")
            while len(self._buffer) < length:
                self._fill()
            body, self._buffer = self._buffer[:length], self._buffer[length:]
        else:
            body = b""
        received_ns = time.perf_counter_ns()
        connection = values.get("connection", "").lower()
        keep_alive = (
            "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
        )
        return Request(method, target, version, headers, body, received_ns, keep_alive)

    def _chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            while b"\r\n" not in self._buffer:
                self._fill()
            line, _, self._buffer = self._buffer.partition(b"\r\n")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, "a malformed chunk size") from None
            if size == 0:
                # Trailers, if any, up to the blank line; dropped (hop-by-hop).
                while not self._buffer.startswith(b"\r\n"):
                    while b"\r\n" not in self._buffer:
                        self._fill()
                    _, _, self._buffer = self._buffer.partition(b"\r\n")
                self._buffer = self._buffer[2:]
                return b"".join(parts)
            while len(self._buffer) < size + 2:
                self._fill()
            parts.append(self._buffer[:size])
            self._buffer = self._buffer[size + 2 :]


def connection_headers(headers: Headers) -> frozenset[str]:
    """The headers not to forward: hop-by-hop ones and those the ``Connection`` header names."""
    named = {
        token.strip().lower()
        for key, value in headers
        if key == "connection"
        for token in value.split(",")
    }
    return HOP_BY_HOP | named


def response_head(status: int, reason: str, headers: Headers) -> bytes:
    """A status line and headers, ready to send."""
    lines = [f"HTTP/1.1 {status} {reason or 'Unknown'}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of the chunked transfer coding."""
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
