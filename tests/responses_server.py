"""A small, independent OpenAI Responses server for tests: scripted streams at scripted times.

Written on the standard library's ``http.server``, sharing no code with the package (nor with
its simulator), so it shows that the Responses client measures any server speaking the wire.
HTTP/1.1 with keep-alive and chunked bodies, as OpenAI's servers send them, so a client that
reads each stream to its end keeps its connection. Each request takes the next :class:`Reply`;
the server records each request's body and headers, when it arrived, and when each of its
writes went out (the send log: ``time.perf_counter_ns()`` just before the bytes are handed to
the kernel), so that tests hold what the client measured against what the server did rather
than against the script: on a loaded machine a sleeping server thread wakes late.

:class:`Script` builds the event sequences OpenAI's API sends (``response.created``,
``output_item.added`` / ``done`` around each item, content and summary parts, deltas, the
``*.done`` events, ``response.completed`` with the output and usage), numbered by
``sequence_number``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Event = dict[str, Any]


@dataclass
class Reply:
    """One scripted response.

    ``events`` are (seconds after the request arrived, event) pairs; an HTTP error is given by
    ``status`` (with ``error_type`` and ``headers``) instead. ``drop_after`` closes the
    connection after that many events, without ending the chunked body.
    """

    events: list[tuple[float, Event]] = field(default_factory=list)
    status: int = 200
    error_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    #: When the response headers go out, seconds after the request arrived.
    headers_at: float = 0.0
    #: When the body's end goes out (``None``: right after the last event).
    end_at: float | None = None
    drop_after: int | None = None


@dataclass
class Write:
    """One write of a response, in the send log."""

    t_ns: int
    #: ``headers``, ``end``, or the event's type.
    label: str
    event: Event | None = None


class Script:
    """A Responses event stream being written down, with each event's time."""

    def __init__(self, response_id: str = "resp_1") -> None:
        self.id = response_id
        self.events: list[tuple[float, Event]] = []
        self.output: list[Event] = []

    def at(self, t: float, event: Event) -> None:
        self.events.append((t, {**event, "sequence_number": len(self.events)}))

    def response(self, status: str, **more: Any) -> Event:
        return {
            "id": self.id,
            "object": "response",
            "created_at": 1,
            "model": "scripted",
            "status": status,
            "output": list(self.output) if status != "in_progress" else [],
            **more,
        }

    def created(self, t: float) -> Script:
        self.at(t, {"type": "response.created", "response": self.response("in_progress")})
        self.at(t, {"type": "response.in_progress", "response": self.response("in_progress")})
        return self

    def reasoning(
        self, added: float, deltas: list[tuple[float, str]], done: float, encrypted: str
    ) -> Script:
        """A reasoning item whose summary streams in ``deltas``."""
        index, item_id = len(self.output), f"rs_{len(self.output)}"
        item: Event = {"id": item_id, "type": "reasoning", "summary": []}
        where = {"item_id": item_id, "output_index": index}
        self.at(added, {"type": "response.output_item.added", "output_index": index, "item": item})
        part = {"type": "summary_text", "text": ""}
        self.at(
            added,
            {
                "type": "response.reasoning_summary_part.added",
                **where,
                "summary_index": 0,
                "part": part,
            },
        )
        for t, text in deltas:
            self.at(
                t,
                {
                    "type": "response.reasoning_summary_text.delta",
                    **where,
                    "summary_index": 0,
                    "delta": text,
                },
            )
        text = "".join(d for _, d in deltas)
        whole = {"type": "summary_text", "text": text}
        self.at(
            done,
            {
                "type": "response.reasoning_summary_text.done",
                **where,
                "summary_index": 0,
                "text": text,
            },
        )
        self.at(
            done,
            {
                "type": "response.reasoning_summary_part.done",
                **where,
                "summary_index": 0,
                "part": whole,
            },
        )
        final = {**item, "summary": [whole], "encrypted_content": encrypted}
        self.at(done, {"type": "response.output_item.done", "output_index": index, "item": final})
        self.output.append(final)
        return self

    def message(self, added: float, deltas: list[tuple[float, str]], done: float) -> Script:
        """An assistant message whose text streams in ``deltas``."""
        index, item_id = len(self.output), f"msg_{len(self.output)}"
        item: Event = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.at(added, {"type": "response.output_item.added", "output_index": index, "item": item})
        empty = {"type": "output_text", "text": "", "annotations": []}
        self.at(added, {"type": "response.content_part.added", **where, "part": empty})
        for t, text in deltas:
            self.at(
                t, {"type": "response.output_text.delta", **where, "delta": text, "logprobs": []}
            )
        text = "".join(d for _, d in deltas)
        part = {"type": "output_text", "text": text, "annotations": []}
        self.at(done, {"type": "response.output_text.done", **where, "text": text})
        self.at(done, {"type": "response.content_part.done", **where, "part": part})
        final = {**item, "status": "completed", "content": [part]}
        self.at(done, {"type": "response.output_item.done", "output_index": index, "item": final})
        self.output.append(final)
        return self

    def call(
        self, added: float, call_id: str, name: str, deltas: list[tuple[float, str]], done: float
    ) -> Script:
        """A function call whose arguments stream in ``deltas``."""
        index, item_id = len(self.output), f"fc_{len(self.output)}"
        item: Event = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        }
        self.at(added, {"type": "response.output_item.added", "output_index": index, "item": item})
        for t, text in deltas:
            self.at(
                t,
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item_id,
                    "output_index": index,
                    "delta": text,
                },
            )
        arguments = "".join(d for _, d in deltas)
        self.at(
            done,
            {
                "type": "response.function_call_arguments.done",
                "item_id": item_id,
                "output_index": index,
                "arguments": arguments,
            },
        )
        final = {**item, "status": "completed", "arguments": arguments}
        self.at(done, {"type": "response.output_item.done", "output_index": index, "item": final})
        self.output.append(final)
        return self

    def completed(
        self, t: float, usage: Event, *, incomplete: str | None = None
    ) -> list[tuple[float, Event]]:
        """The closing event; the script's events."""
        if incomplete is None:
            self.at(
                t,
                {"type": "response.completed", "response": self.response("completed", usage=usage)},
            )
        else:
            details = {"reason": incomplete}
            self.at(
                t,
                {
                    "type": "response.incomplete",
                    "response": self.response(
                        "incomplete", usage=usage, incomplete_details=details
                    ),
                },
            )
        return self.events


def usage(
    input_tokens: int = 100, cached: int = 0, output_tokens: int = 10, reasoning: int = 0
) -> Event:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def text_reply(text: str = "Done.") -> list[tuple[float, Event]]:
    """A plain message, no delays."""
    return Script().created(0).message(0, [(0, text)], 0).completed(0, usage())


class ResponsesServer:
    """Serves the scripted replies in order, then a plain text reply forever."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        #: Per request: when it had arrived whole (``perf_counter_ns``), and its writes.
        self.arrivals: list[int] = []
        self.sent: list[list[Write]] = []
        #: The client port of each request's connection (one per kept-alive connection).
        self.peers: list[int] = []
        self.lock = threading.Lock()
        self.url = ""

    def next_reply(self) -> Reply:
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
        return Reply(text_reply())

    @contextmanager
    def running(self) -> Iterator[ResponsesServer]:
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def write(
                self, sent: list[Write], label: str, data: bytes, event: Event | None = None
            ) -> None:
                sent.append(Write(time.perf_counter_ns(), label, event))
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                arrival = time.perf_counter_ns()
                sent: list[Write] = []
                with script.lock:
                    script.requests.append(body)
                    script.paths.append(self.path)
                    script.headers.append({k.lower(): v for k, v in self.headers.items()})
                    script.arrivals.append(arrival)
                    script.sent.append(sent)
                    script.peers.append(self.client_address[1])
                reply = script.next_reply()

                def wait(at: float) -> None:
                    left = (arrival + int(at * 1e9) - time.perf_counter_ns()) / 1e9
                    if left > 0:
                        time.sleep(left)

                if reply.status != 200:
                    error = {"type": reply.error_type, "message": "scripted", "code": None}
                    payload = json.dumps({"error": error}).encode()
                    head = f"HTTP/1.1 {reply.status} Scripted\r\ncontent-type: application/json\r\n"
                    head += f"content-length: {len(payload)}\r\n"
                    head += "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                    self.write(sent, "whole", head.encode() + b"\r\n" + payload)
                    return
                wait(reply.headers_at)
                head = (
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                    f"x-request-id: req_responses_{len(script.requests)}\r\n"
                    "transfer-encoding: chunked\r\n\r\n"
                )
                self.write(sent, "headers", head.encode())
                for n, (at, event) in enumerate(reply.events):
                    if reply.drop_after is not None and n == reply.drop_after:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        sent.append(Write(time.perf_counter_ns(), "dropped"))
                        return
                    wait(at)
                    payload = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                    chunk = b"%x\r\n%b\r\n" % (len(payload), payload)
                    self.write(sent, event["type"], chunk, event)
                if reply.end_at is not None:
                    wait(reply.end_at)
                self.write(sent, "end", b"0\r\n\r\n")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
