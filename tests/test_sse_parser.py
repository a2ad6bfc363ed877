"""The SSE parser on its own: bytes with arrival times in, timed events out.

The main property: a stream built from known events, cut into chunks at any offsets with any
increasing arrival times, gives exactly those events, each timed at the arrival of the chunk
holding the first byte of its terminating blank line's line end (the byte that completes
it: with CRLF framing the CR already ends the line, so a chunk boundary between CR and LF
does not move the event). Framing varies per stream (LF, CRLF or CR) and per line (a space
after the colon or not); comments, events without data (which the spec does not dispatch) and
unknown fields come between the events; values hold characters ``str.splitlines`` would cut
at, and multi-byte UTF-8 that the cuts can split.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentspeed.clients.sse import SSEEvent, SSEParser

# No CR or LF (they end lines); the rest is fair game, U+2028 and friends included.
VALUE_CHARS = st.one_of(
    st.sampled_from("\u2028\u2029\x85\x0b\x1c:é€😀 "),
    st.characters(codec="utf-8", exclude_characters="\r\n"),
)
VALUES = st.text(VALUE_CHARS, max_size=12)
NAMES = st.text(VALUE_CHARS, min_size=1, max_size=8)


@dataclass(frozen=True)
class Stream:
    """An encoded stream and what it must parse into."""

    body: bytes
    #: (event name, data) of each dispatched event, in order.
    expected: tuple[tuple[str, str], ...]
    #: Offset of the byte that completes each expected event.
    ends: tuple[int, ...]


def field(name: str, value: str, space: bool) -> str:
    # The parser drops one space after the colon: a value that starts with a space is
    # written with the separating space, or it would lose its own.
    return f"{name}: {value}" if space or value.startswith(" ") else f"{name}:{value}"


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    body = bytearray()
    expected: list[tuple[str, str]] = []
    ends: list[int] = []

    def line(text: str) -> None:
        body.extend((text + newline).encode())

    for _ in range(draw(st.integers(0, 6))):
        for _ in range(draw(st.integers(0, 2))):  # noise between events
            kind = draw(st.sampled_from(["comment", "no_data", "unknown"]))
            if kind == "comment":
                line(":" + draw(VALUES))
                line("")
            elif kind == "no_data":  # an event name alone is not dispatched
                line(field("event", draw(NAMES), draw(st.booleans())))
                line("")
            else:
                line(field("id", draw(VALUES), True))
                line(field("retry", "10", False))
                line("")
        name = draw(st.one_of(st.just(""), NAMES))
        data = draw(st.lists(VALUES, min_size=1, max_size=3))
        lines = [field("data", d, draw(st.booleans())) for d in data]
        if name:
            lines.insert(
                draw(st.integers(0, len(lines))), field("event", name, draw(st.booleans()))
            )
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), ": comment inside")
        for text in lines:
            line(text)
        ends.append(len(body))  # the blank line's first line-end byte
        line("")
        expected.append((name, "\n".join(data)))
    return Stream(bytes(body), tuple(expected), tuple(ends))


def parse(chunks: list[tuple[bytes, int]]) -> list[SSEEvent]:
    parser = SSEParser()
    events = [e for chunk, t in chunks for e in parser.feed(chunk, t)]
    end = chunks[-1][1] if chunks else 0
    assert parser.close(end) is None  # every event here was terminated
    return events


@settings(max_examples=300, deadline=None)
@given(stream=streams(), data=st.data())
def test_any_cut_gives_the_same_events_timed_by_the_chunk_completing_them(
    stream: Stream, data: st.DataObject
) -> None:
    size = len(stream.body)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, size - 1)), max_size=30))))
    bounds = [0, *(c for c in cuts if 0 < c < size), size]
    # Arrival times: increasing, 1 ms apart, so each chunk's time names it.
    chunks = [
        (stream.body[a:b], (k + 1) * 1_000_000)
        for k, (a, b) in enumerate(itertools.pairwise(bounds))
        if b > a
    ]
    events = parse(chunks)
    assert [(e.event, e.data) for e in events] == list(stream.expected)
    starts = [a for a, b in itertools.pairwise(bounds) if b > a]
    for event, end in zip(events, stream.ends, strict=True):
        holding = max(k for k, a in enumerate(starts) if a <= end)
        assert event.t_ns == chunks[holding][1]


@settings(max_examples=100, deadline=None)
@given(stream=streams())
def test_byte_by_byte_reads_give_the_events_of_the_whole_body(stream: Stream) -> None:
    whole = parse([(stream.body, 7)]) if stream.body else []
    bytewise = parse([(stream.body[i : i + 1], 7) for i in range(len(stream.body))])
    assert bytewise == whole
    assert [(e.event, e.data) for e in whole] == list(stream.expected)


def test_a_crlf_cut_between_cr_and_lf_neither_doubles_nor_delays_the_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\n\r", 1) == [SSEEvent("", b"a", 1)]
    # The LF belongs to the CR before it: not a second blank line, not a new event.
    assert parser.feed(b"\ndata: b\r", 2) == []
    assert parser.feed(b"\n", 3) == []
    assert parser.feed(b"\r\n", 4) == [SSEEvent("", b"b", 4)]


def test_utf8_split_across_chunks_and_line_breaks_only_at_cr_and_lf() -> None:
    body = 'event: ünïcode\ndata: {"t": "a\u2028b€"}\n\n'.encode()
    cut = body.index("€".encode()) + 1  # inside the euro sign
    parser = SSEParser()
    assert parser.feed(body[:cut], 1) == []
    (event,) = parser.feed(body[cut:], 2)
    assert (event.event, event.json(), event.t_ns) == ("ünïcode", {"t": "a\u2028b€"}, 2)


def test_fields_as_the_spec_reads_them() -> None:
    parser = SSEParser()
    body = (
        b"\xef\xbb\xbfdata:no space\n"  # a BOM opens the stream; no space after the colon
        b"data:  two spaces\n"  # only one space is dropped
        b"data\n"  # a field name alone: an empty value
        b": a comment\n"
        b"event:named\n"
        b"\n"
        b"event: lost\n\n"  # no data: not dispatched
        b"data: [DONE]"  # no blank line before the end of the body
    )
    assert parser.feed(body, 5) == [SSEEvent("named", b"no space\n two spaces\n", 5)]
    # The spec drops an unterminated last event; close() hands it over for lenient callers.
    assert parser.close(6) == SSEEvent("", b"[DONE]", 6)
    assert parser.close(7) is None
