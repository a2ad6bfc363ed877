"""A ground-truth endpoint for the proxy's tests: raw sockets, scripted delays, a send log.

Run as a program (``python tests/ground_truth_server.py``), so it shares neither the tests'
process (nor its GIL) nor any code with the package: it prints its port, then serves each
connection on a thread of its own. Every write is stamped with ``time.perf_counter_ns()``
*just before* it is handed to the kernel (on Linux the clock is system-wide, so the test can
hold the proxy's stamps against it: a byte cannot be read before it was sent).

Paths (below any prefix):

* ``/v1/messages``: an Anthropic stream, thinking then text, one event per write at
  :data:`ANTHROPIC` delays, in the chunked transfer coding;
* ``/v1/chat/completions``: an OpenAI stream, reasoning then content, one chunk per write at
  :data:`OPENAI` delays, ended by closing the connection (no length, no chunks);
* ``/v1/responses``: an OpenAI Responses stream, a reasoning summary then text then a function
  call, one event per write at :data:`RESPONSES` delays, in the chunked transfer coding; with
  ``"stream": false`` in the request, the whole response (:data:`RESPONSES_WHOLE`) at once;
* ``/bad-stream/...``: an event stream that breaks the Anthropic grammar;
* ``/unauthorized``: a 401 whose body quotes the key it was sent;
* ``HEAD /`` and anything else: 404 with an empty JSON body;
* ``GET /__log``: the send log as JSON (requests, with their headers, target and writes).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from typing import Any

#: When the response headers go out, after the request arrived: as a real endpoint's, not at
#: once (a thread that has just sent a request can wait a scheduler slice for its next turn on a
#: busy core, which would time the machine, not the proxy).
HEADERS_S = 0.005
#: (seconds after the request arrived, label, event dict) for the Anthropic stream.
ANTHROPIC: list[tuple[float, str, dict[str, Any]]] = []
_message = {
    "id": "msg_gt",
    "type": "message",
    "role": "assistant",
    "model": "ground-truth",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {"input_tokens": 21, "cache_read_input_tokens": 4, "output_tokens": 1},
}
ANTHROPIC += [
    (0.030, "message_start", {"type": "message_start", "message": _message}),
    (
        0.031,
        "block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
    ),
]
ANTHROPIC += [
    (
        0.045 + 0.010 * i,
        "thinking_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": f"hm{i} "},
        },
    )
    for i in range(3)
]
ANTHROPIC += [
    (
        0.070,
        "signature_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "c2ln"},
        },
    ),
    (0.071, "block_stop", {"type": "content_block_stop", "index": 0}),
    (
        0.072,
        "block_start",
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    ),
]
ANTHROPIC += [
    (
        0.085 + 0.008 * i,
        "text_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": f"word{i} "},
        },
    )
    for i in range(5)
]
ANTHROPIC += [
    (0.130, "block_stop", {"type": "content_block_stop", "index": 1}),
    (
        0.131,
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 17},
        },
    ),
    (0.140, "message_stop", {"type": "message_stop"}),
]
ANTHROPIC_END_S = 0.150


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-gt",
        "object": "chat.completion.chunk",
        "model": "ground-truth",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


#: (seconds after the request arrived, label, data) for the OpenAI stream.
OPENAI: list[tuple[float, str, Any]] = [
    (0.025, "role", _chunk({"role": "assistant", "content": ""})),
]
OPENAI += [
    (0.040 + 0.010 * i, "thinking_delta", _chunk({"reasoning_content": f"r{i} "})) for i in range(3)
]
OPENAI += [(0.075 + 0.008 * i, "text_delta", _chunk({"content": f"w{i} "})) for i in range(4)]
OPENAI += [
    (0.110, "finish", _chunk({}, "stop")),
    (
        0.111,
        "usage",
        {
            "id": "chatcmpl-gt",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {
                "prompt_tokens": 30,
                "completion_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 10},
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
        },
    ),
    (0.112, "done", "[DONE]"),
]
OPENAI_END_S = 0.120


def _responses_event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


_REASONING = {
    "id": "rs_gt",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "s0 s1 s2 "}],
    "encrypted_content": "gt-encrypted",
}
_MESSAGE = {
    "id": "msg_gt",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "t0 t1 t2 ", "annotations": []}],
}
_CALL = {
    "id": "fc_gt",
    "type": "function_call",
    "status": "completed",
    "call_id": "call_gt",
    "name": "exec_command",
    "arguments": '{"cmd": "ls"}',
}
#: The Responses usage both the stream and the whole response report.
RESPONSES_USAGE = {
    "input_tokens": 50,
    "input_tokens_details": {"cached_tokens": 20},
    "output_tokens": 15,
    "output_tokens_details": {"reasoning_tokens": 6},
    "total_tokens": 65,
}
RESPONSES_WHOLE = {
    "id": "resp_gt",
    "object": "response",
    "status": "completed",
    "model": "ground-truth",
    "output": [_REASONING, _MESSAGE, _CALL],
    "usage": RESPONSES_USAGE,
}
_started = {**RESPONSES_WHOLE, "status": "in_progress", "output": []}
#: (seconds after the request arrived, label, event) for the Responses stream.
RESPONSES: list[tuple[float, str, dict[str, Any]]] = [
    (0.020, "created", _responses_event("response.created", response=_started)),
    (0.021, "lifecycle", _responses_event("response.in_progress", response=_started)),
    (
        0.025,
        "block_start",
        _responses_event(
            "response.output_item.added",
            output_index=0,
            item={"id": "rs_gt", "type": "reasoning", "summary": []},
        ),
    ),
    (
        0.026,
        "lifecycle",
        _responses_event(
            "response.reasoning_summary_part.added",
            item_id="rs_gt",
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        ),
    ),
]
RESPONSES += [
    (
        0.040 + 0.010 * i,
        "thinking_delta",
        _responses_event(
            "response.reasoning_summary_text.delta",
            item_id="rs_gt",
            output_index=0,
            summary_index=0,
            delta=f"s{i} ",
        ),
    )
    for i in range(3)
]
RESPONSES += [
    (
        0.070,
        "block_stop",
        _responses_event("response.output_item.done", output_index=0, item=_REASONING),
    ),
    (
        0.072,
        "block_start",
        _responses_event(
            "response.output_item.added",
            output_index=1,
            item={**_MESSAGE, "status": "in_progress", "content": []},
        ),
    ),
]
RESPONSES += [
    (
        0.085 + 0.008 * i,
        "text_delta",
        _responses_event(
            "response.output_text.delta",
            item_id="msg_gt",
            output_index=1,
            content_index=0,
            delta=f"t{i} ",
            logprobs=[],
        ),
    )
    for i in range(3)
]
RESPONSES += [
    (
        0.105,
        "block_stop",
        _responses_event("response.output_item.done", output_index=1, item=_MESSAGE),
    ),
    (
        0.106,
        "block_start",
        _responses_event(
            "response.output_item.added",
            output_index=2,
            item={**_CALL, "status": "in_progress", "arguments": ""},
        ),
    ),
    (
        0.110,
        "args_delta",
        _responses_event(
            "response.function_call_arguments.delta",
            item_id="fc_gt",
            output_index=2,
            delta='{"cmd": "ls"}',
        ),
    ),
    (
        0.112,
        "block_stop",
        _responses_event("response.output_item.done", output_index=2, item=_CALL),
    ),
    (0.115, "completed", _responses_event("response.completed", response=RESPONSES_WHOLE)),
]
RESPONSES = [
    (t, label, {**event, "sequence_number": n}) for n, (t, label, event) in enumerate(RESPONSES)
]
RESPONSES_END_S = 0.125

_log: list[dict[str, Any]] = []
_log_lock = threading.Lock()


def _read_request(sock: socket.socket, buffer: bytes) -> tuple[dict[str, Any], bytes] | None:
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ")
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (x.partition(":") for x in lines[1:])]
    length = int(dict(headers).get("content-length", "0"))
    while len(buffer) < length:
        buffer += sock.recv(65536)
    body, buffer = buffer[:length], buffer[length:]
    entry = {
        "method": method,
        "target": target,
        "headers": headers,
        "body": body.decode("utf-8", "replace"),
        "received_ns": time.perf_counter_ns(),
        "writes": [],
    }
    return entry, buffer


def _write(
    sock: socket.socket, entry: dict[str, Any], label: str, data: bytes, body: bytes
) -> None:
    """Send ``data`` (whose body part is ``body``), stamped just before."""
    entry["writes"].append(
        {"t_ns": time.perf_counter_ns(), "label": label, "body": body.decode("latin-1")}
    )
    sock.sendall(data)


def _sleep_until(t_ns: int) -> None:
    left = (t_ns - time.perf_counter_ns()) / 1e9
    if left > 0:
        time.sleep(left)


def _serve(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    with sock:
        while True:
            read = _read_request(sock, buffer)
            if read is None:
                return
            entry, buffer = read
            path = entry["target"].partition("?")[0]
            if path == "/__log":
                with _log_lock:
                    body = json.dumps(_log).encode()
                sock.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%b" % (len(body), body)
                )
                continue
            with _log_lock:
                _log.append(entry)
            start = entry["received_ns"]
            if path.startswith("/bad-stream"):
                _bad_stream(sock, entry)
            elif path.endswith("/v1/messages"):
                _anthropic(sock, entry, start)
            elif path.endswith("/v1/responses"):
                _responses(sock, entry, start)
            elif path.endswith("/v1/chat/completions"):
                _openai(sock, entry, start)
                return  # close-delimited: the connection is over
            elif path.endswith("/unauthorized"):
                quoted = dict(entry["headers"]).get("x-api-key", "")
                quoted += dict(entry["headers"]).get("authorization", "")
                body = json.dumps(
                    {"type": "error", "error": {"type": "authentication_error", "message": quoted}}
                ).encode()
                head = b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
                head += b"content-length: %d\r\n\r\n" % len(body)
                _write(sock, entry, "whole", head + body, body)
            else:
                body = b"" if entry["method"] == "HEAD" else b"{}"
                head = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                head += b"content-length: 2\r\n\r\n"
                _write(sock, entry, "whole", head + body, body)


def _anthropic(sock: socket.socket, entry: dict[str, Any], start: int) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"request-id: req_gt_1\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    _sleep_until(start + int(HEADERS_S * 1e9))
    _write(sock, entry, "headers", head, b"")
    for delay, label, event in ANTHROPIC:
        _sleep_until(start + int(delay * 1e9))
        payload = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
        _write(sock, entry, label, b"%x\r\n%b\r\n" % (len(payload), payload), payload)
    _sleep_until(start + int(ANTHROPIC_END_S * 1e9))
    _write(sock, entry, "end", b"0\r\n\r\n", b"")


def _openai(sock: socket.socket, entry: dict[str, Any], start: int) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"x-request-id: req_gt_2\r\nconnection: close\r\n\r\n"
    )
    _sleep_until(start + int(HEADERS_S * 1e9))
    _write(sock, entry, "headers", head, b"")
    for delay, label, data in OPENAI:
        _sleep_until(start + int(delay * 1e9))
        text = data if isinstance(data, str) else json.dumps(data)
        payload = f"data: {text}\n\n".encode()
        _write(sock, entry, label, payload, payload)
    _sleep_until(start + int(OPENAI_END_S * 1e9))
    entry["writes"].append({"t_ns": time.perf_counter_ns(), "label": "end", "body": ""})
    sock.shutdown(socket.SHUT_WR)


def _responses(sock: socket.socket, entry: dict[str, Any], start: int) -> None:
    _sleep_until(start + int(HEADERS_S * 1e9))
    if json.loads(entry["body"]).get("stream") is not True:
        body = json.dumps(RESPONSES_WHOLE).encode()
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        head += b"x-request-id: req_gt_4\r\ncontent-length: %d\r\n\r\n" % len(body)
        _write(sock, entry, "whole", head + body, body)
        return
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"x-request-id: req_gt_3\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    _write(sock, entry, "headers", head, b"")
    for delay, label, event in RESPONSES:
        _sleep_until(start + int(delay * 1e9))
        payload = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
        _write(sock, entry, label, b"%x\r\n%b\r\n" % (len(payload), payload), payload)
    _sleep_until(start + int(RESPONSES_END_S * 1e9))
    _write(sock, entry, "end", b"0\r\n\r\n", b"")


def _bad_stream(sock: socket.socket, entry: dict[str, Any]) -> None:
    # A delta before any message_start: the SDK would fail on it.
    payload = (
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}'
        b'\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    head += b"content-length: %d\r\n\r\n" % len(payload)
    _write(sock, entry, "whole", head + payload, payload)


def main() -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=_serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
