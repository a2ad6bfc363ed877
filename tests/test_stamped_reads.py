"""Marks are taken when the bytes arrive, not when a slow consumer gets to them.

A real client reads a real loopback stream from the independent scripted server, which logs
when it wrote each event. The consumer (the client's own loop, through the event log it records
into) is made slow on purpose: 20 ms per event while the server sends one every 5 ms, so the
bytes pile up unread by it. Each event's mark must still be the moment its bytes arrived: the
server's send time plus the loopback delay. The delay is not observable on its own, so every
mark is held against the median of (mark - send) over the stream, within 0.5 ms, and that
median must itself be below 0.5 ms. Read lazily in the consumer's loop (the client before
issue 13), the marks fall 15 ms further behind with each event.

On a loaded machine a thread can miss its turn on a core for a few milliseconds, the server's
as well as the reader's; such a stream is measured again (three tries): a client that stamps
late does so on every try.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import pytest
from scripted_server import Reply, ScriptedServer, message_start, text_reply

from pytest_agentspeed.clients import TurnRequest
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.timing import EventKind, EventLog

STREAM_KINDS = {"message_start", "block_start", "delta", "block_stop", "message_delta"}
STREAM_KINDS |= {"message_stop"}
CONSUMER_S = 0.020
STEP_S = 0.005
PIECES = 20
TOLERANCE_MS = 0.5

REQUEST = TurnRequest(
    system=[{"type": "text", "text": "sys"}],
    messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    tools=[],
    max_tokens=100,
    session_id="s1",
)


class SlowLog(EventLog):
    """An event log whose owner takes 20 ms over every stream event it records."""

    def add(self, kind: EventKind, **fields: Any) -> int:
        if kind in STREAM_KINDS:
            time.sleep(CONSUMER_S)
        return super().add(kind, **fields)


def offsets_ms() -> tuple[list[float], float]:
    """Mark minus server send time of every event of one stream (ms); and how long after
    the server's last send the slow consumer finished (s)."""
    reply = Reply(
        text_reply(first_event=0.02, first_token=0.03, step=STEP_S, pieces=["w"] * PIECES)
    )
    with ScriptedServer([reply]).running() as script:
        client = AnthropicClient(model="m", base_url=script.url, api_key="k", max_retries=0)
        log = SlowLog()
        log.add("turn_start")
        try:
            client.complete(REQUEST, log)
        finally:
            client.close()
        done = time.perf_counter()
    marks = [e.t_ns for e in log.events if e.kind in STREAM_KINDS]
    (sent,) = script.sent
    (arrival,) = script.arrivals
    assert len(marks) == len(sent) == PIECES + 5
    offsets = [m / 1e6 - (arrival + s) * 1e3 for m, s in zip(marks, sent, strict=True)]
    return offsets, done - (arrival + sent[-1])


def test_marks_are_byte_arrival_times_however_slow_the_consumer() -> None:
    failures = []
    for _ in range(3):
        offsets, backlog_s = offsets_ms()
        # The consumer really was behind: it finished long after the last bytes were sent.
        assert backlog_s > (PIECES + 5) * CONSUMER_S - (PIECES * STEP_S) - 0.05
        median = statistics.median(offsets)
        worst = max(abs(o - median) for o in offsets)
        if abs(median) <= TOLERANCE_MS and worst <= TOLERANCE_MS:
            return
        failures.append(f"median {median:.3f} ms, worst deviation {worst:.3f} ms")
    pytest.fail("marks are not the bytes' arrival times: " + "; ".join(failures))


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "agentspeed-reader" and t.is_alive()]


def test_an_error_event_ends_the_turn_at_once_though_the_server_keeps_the_stream_open() -> None:
    """The reader is blocked in a read of a stream the server holds open; the consumer must
    not wait for it (the server's next write is seconds away)."""
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    reply = Reply([(0.0, message_start()), (0.01, error), (3.0, {"type": "ping"})])
    with ScriptedServer([reply]).running() as script:
        client = AnthropicClient(model="m", base_url=script.url, api_key="k", max_retries=0)
        log = EventLog()
        log.add("turn_start")
        started = time.perf_counter()
        with pytest.raises(EndpointError) as caught:
            client.complete(REQUEST, log)
        took = time.perf_counter() - started
        client.close()
    assert (caught.value.error_type, caught.value.status, caught.value.mid_stream) == (
        "overloaded_error",
        200,
        True,
    )
    assert str(caught.value).endswith("mid-stream: Overloaded")
    assert took < 1.0
    assert _reader_threads() == []


def test_no_reader_outlives_its_turn() -> None:
    reply = Reply(text_reply(first_event=0, first_token=0, step=0, pieces=["a", "b"]))
    with ScriptedServer([reply]).running() as script:
        client = AnthropicClient(model="m", base_url=script.url, api_key="k", max_retries=0)
        log = EventLog()
        log.add("turn_start")
        response = client.complete(REQUEST, log)
        client.close()
    assert response.content == [{"type": "text", "text": "ab"}]
    assert _reader_threads() == []
