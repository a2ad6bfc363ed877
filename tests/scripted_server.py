"""A small, independent Anthropic-wire server for tests: scripted replies at scripted times.

Written on the standard library's ``http.server``, sharing no code with the package's own
simulator, so it shows that the plugin measures any server that speaks the wire. Each request
takes the next :class:`Reply`; the server records what it received, and when it received each
request and wrote each event (its send log), so that tests can hold what the client measured
against what the server actually did rather than against what it was scripted to do: on a
loaded machine a sleeping server thread wakes late.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted response.

    ``events`` are (seconds after the request arrived, event dict) pairs; an HTTP error is
    given by ``status`` and ``error_type`` instead.
    """

    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    error_type: str = ""
    error_message: str = "scripted"
    headers: dict[str, str] = field(default_factory=dict)


def message_start(input_tokens: int = 10) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": "scripted",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }


def text_reply(
    *,
    first_event: float,
    first_token: float,
    step: float,
    pieces: list[str],
    tool: tuple[str, dict[str, Any]] | None = None,
) -> list[tuple[float, dict[str, Any]]]:
    """message_start, one text block streamed in pieces, end_turn.

    With ``tool``, a tool_use block follows the text at once and the stop reason is tool_use.
    """
    events: list[tuple[float, dict[str, Any]]] = [(first_event, message_start())]
    events.append(
        (
            first_token,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
    )
    t = first_token
    for piece in pieces:
        events.append(
            (
                t,
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        )
        t += step
    end = t - step
    events.append((end, {"type": "content_block_stop", "index": 0}))
    if tool is not None:
        name, tool_input = tool
        events += [
            (
                end,
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_t",
                        "name": name,
                        "input": {},
                    },
                },
            ),
            (
                end,
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(tool_input)},
                },
            ),
            (end, {"type": "content_block_stop", "index": 1}),
        ]
    events += [
        (
            end,
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "end_turn" if tool is None else "tool_use",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": len(pieces) + (tool is not None)},
            },
        ),
        (end, {"type": "message_stop"}),
    ]
    return events


def tool_reply(calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]:
    """message_start, one tool_use block per call, stop_reason tool_use; no delays."""
    events: list[tuple[float, dict[str, Any]]] = [(0.0, message_start())]
    for i, (name, tool_input) in enumerate(calls):
        events += [
            (
                0.0,
                {
                    "type": "content_block_start",
                    "index": i,
                    "content_block": {
                        "type": "tool_use",
                        "id": f"toolu_{i}",
                        "name": name,
                        "input": {},
                    },
                },
            ),
            (
                0.0,
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(tool_input)},
                },
            ),
            (0.0, {"type": "content_block_stop", "index": i}),
        ]
    events += [
        (
            0.0,
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 20},
            },
        ),
        (0.0, {"type": "message_stop"}),
    ]
    return events


class ScriptedServer:
    """Serves the scripted replies in order, then a plain end_turn text forever."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        #: The request paths, with their queries.
        self.paths: list[str] = []
        #: Per request, in arrival order: when it arrived (``time.perf_counter()``) and, in
        #: seconds after that, when each event of its reply had been written and flushed.
        self.arrivals: list[float] = []
        self.sent: list[list[float]] = []
        self.lock = threading.Lock()
        self.url = ""

    def next_reply(self) -> Reply:
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
        return Reply(text_reply(first_event=0, first_token=0, step=0, pieces=["Done."]))

    @contextmanager
    def running(self) -> Iterator[ScriptedServer]:
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                arrival = time.perf_counter()
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                with script.lock:
                    script.requests.append(body)
                    script.headers.append({k.lower(): v for k, v in self.headers.items()})
                    script.paths.append(self.path)
                    script.arrivals.append(arrival)
                    sent: list[float] = []
                    script.sent.append(sent)
                reply = script.next_reply()
                if reply.status != 200:
                    payload = json.dumps(
                        {
                            "type": "error",
                            "error": {"type": reply.error_type, "message": reply.error_message},
                        }
                    ).encode()
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("request-id", f"req_scripted_{len(script.requests)}")
                self.end_headers()
                self.wfile.flush()
                for at, event in reply.events:
                    delay = arrival + at - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    data = json.dumps(event)
                    self.wfile.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
                    self.wfile.flush()
                    sent.append(time.perf_counter() - arrival)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
