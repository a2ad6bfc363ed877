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

import json
from dataclasses import dataclass
from typing import Any

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event."""

    #: The ``event:`` field, ``""`` when the event had none (the spec's default "message").
    event: str
    #: The ``data:`` lines joined with ``\n``.
    data: str
    #: Arrival time (the reader's clock, ns) of the chunk holding the event's last line end.
    t_ns: int

    def json(self) -> Any:
        """The data parsed as JSON.

        :raises ValueError: when it is not JSON.
        """
        return json.loads(self.data)


class SSEParser:
    """Feeds on timed chunks of one stream; returns the events each chunk completed."""

    __slots__ = ("_after_cr", "_data", "_event", "_started", "_tail")

    def __init__(self) -> None:
        self._tail = b""  # an incomplete last line, waiting for its end
        self._after_cr = False  # the last chunk ended with CR: a leading LF belongs to it
        self._started = False  # a line was seen (a BOM may open only the first one)
        self._event = b""
        self._data: list[bytes] | None = None  # None until the event's first data field

    def feed(self, chunk: bytes, t_ns: int) -> list[SSEEvent]:
        """Take one chunk, read at ``t_ns``; the events whose last line it completed."""
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[0] == 0x0A:  # the LF of a CRLF cut between two chunks
                chunk = chunk[1:]
        if not chunk:
            return []
        buffer = self._tail + chunk if self._tail else chunk
        lines = buffer.splitlines(keepends=True)
        if lines[-1][-1] not in (0x0A, 0x0D):
            self._tail = lines.pop()
        else:
            self._tail = b""
            self._after_cr = buffer[-1] == 0x0D
        events: list[SSEEvent] = []
        for line in lines:
            event = self._line(line.rstrip(b"\r\n"), t_ns)
            if event is not None:
                events.append(event)
        return events

    def close(self, t_ns: int) -> SSEEvent | None:
        """End of stream: the event it left without a terminating blank line, if any.

        The spec discards such an event; a caller that wants to be lenient with servers that
        end the body right after their last ``data:`` line (some OpenAI-compatible ones do)
        can use it.
        """
        if self._tail:
            self._line(self._tail, t_ns)
            self._tail = b""
        return self._line(b"", t_ns)

    def _line(self, line: bytes, t_ns: int) -> SSEEvent | None:
        if not self._started:
            self._started = True
            if line.startswith(_BOM):
                line = line[3:]
        if not line:
            return self._dispatch(t_ns)
        if line[0] == 0x3A:  # ":" a comment (keep-alives)
            return None
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            if self._data is None:
                self._data = [value]
            else:
                self._data.append(value)
        elif name == b"event":
            self._event = value
        # id and retry concern reconnecting EventSource clients; unknown fields are ignored.
        return None

    def _dispatch(self, t_ns: int) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event = None, b""
        if data is None:
            return None
        text = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", "replace")
        return SSEEvent(event.decode("utf-8", "replace"), text, t_ns)
