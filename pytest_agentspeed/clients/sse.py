"""Server-sent events from timed bytes: (chunk, arrival time) in, timed events out.

A pure parser, independent of any HTTP client: whoever reads the bytes (the clients' reader
thread, or a recording proxy forwarding an agent's stream) stamps each chunk with the moment it
was read and feeds it here. An event's time is the arrival time of the chunk that *completed*
it, the one holding its terminating blank line, so parsing late (a busy consumer, a GC pause)
never moves it.

Framing follows the WHATWG event-stream grammar (html.spec.whatwg.org, "Parsing an event
stream"): lines end at CRLF, LF or CR; ``:`` starts a comment; ``field: value`` drops one space
after the colon; ``data`` lines of one event are joined with ``\\n``; a blank line dispatches
the event when it had at least one ``data`` field. Only these three characters end a line:
lines are cut as bytes (``bytes.splitlines`` knows no other line breaks, unlike
``str.splitlines``, which would cut JSON holding a raw U+2028), and decoded as UTF-8 only once
whole, so a multi-byte character split across chunks is never seen in halves.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from jiter import from_json

_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """One dispatched event.

    A named tuple, not a dataclass: one is built per streamed event, and a tuple is the
    cheapest object Python builds (``benchmarks/client_cost.py``).
    """

    #: The ``event:`` field, ``""`` when the event had none (the spec's default "message").
    event: str
    #: The ``data:`` lines joined with ``\n``, as they came (UTF-8).
    raw: bytes
    #: Arrival time (the reader's clock, ns) of the chunk holding the event's last line end.
    t_ns: int

    @property
    def data(self) -> str:
        """The data as text."""
        return self.raw.decode("utf-8", "replace")

    def json(self) -> Any:
        """The data parsed as JSON (with ``jiter``, the anthropic SDK's own parser: several
        times faster than the standard library's on small objects).

        :raises ValueError: when it is not JSON.
        """
        return from_json(self.raw)


class SSEParser:
    """Feeds on timed chunks of one stream; returns the events each chunk completed."""

    __slots__ = ("_after_cr", "_data", "_event", "_started", "_tail")

    def __init__(self) -> None:
        self._tail = b""  # an incomplete last line, waiting for its end
        self._after_cr = False  # the last chunk ended with CR: a leading LF belongs to it
        self._started = False  # the stream's first bytes were seen (a BOM may open them)
        self._event = b""
        self._data: bytes | None = None  # None until the event's first data field

    def feed(self, chunk: bytes, t_ns: int) -> list[SSEEvent]:
        """Take one chunk, read at ``t_ns``; the events whose last line it completed."""
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[0] == 0x0A:  # the LF of a CRLF cut between two chunks
                chunk = chunk[1:]
        if not chunk:
            return []
        buffer = self._tail + chunk if self._tail else chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._tail = buffer  # maybe a BOM, cut
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        if b"\r" in buffer:
            lines = buffer.splitlines()
            if buffer[-1] in (0x0A, 0x0D):
                self._tail = b""
                self._after_cr = buffer[-1] == 0x0D
            else:
                self._tail = lines.pop()
        else:  # LF framing, the common case: a plain split is the cheapest cut
            lines = buffer.split(b"\n")
            self._tail = lines.pop()
        return self._lines(lines, t_ns)

    def close(self, t_ns: int) -> SSEEvent | None:
        """End of stream: the event it left without a terminating blank line, if any.

        The spec discards such an event; a caller that wants to be lenient with servers that
        end the body right after their last ``data:`` line (some OpenAI-compatible ones do)
        can use it.
        """
        lines = [self._tail, b""] if self._tail else [b""]
        self._tail = b""
        events = self._lines(lines, t_ns)
        return events[0] if events else None

    def _lines(self, lines: list[bytes], t_ns: int) -> list[SSEEvent]:
        """Fold whole lines (without their line ends) into the event being built."""
        events: list[SSEEvent] = []
        data, event = self._data, self._event
        for line in lines:
            if not line:  # a blank line dispatches the event, if it had data
                if data is not None:
                    events.append(SSEEvent(event.decode("utf-8", "replace"), data, t_ns))
                data, event = None, b""
                continue
            if line[0] == 0x3A:  # ":" a comment (keep-alives)
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data = value if data is None else data + b"\n" + value
            elif name == b"event":
                event = value
            # id and retry concern reconnecting EventSource clients; others are ignored.
        self._data, self._event = data, event
        return events
