"""CPU time per streamed event: the project's clients beside the SDKs and a minimal loop.

Each consumer reads streams of 20,000 small deltas (and of 1 delta, the baseline that takes out
the request, the connection and the fixed events) from a canned-bytes server on loopback, in a
process of its own, so only the consumer's CPU is counted: process CPU time
(``time.process_time``), which includes the client's reader thread. A consumer's cost per
event is (median CPU of 5 long streams - median CPU of 5 one-delta streams) / 19,999.

The server writes every event with its own ``send`` (as an endpoint flushing per event does)
as fast as it can, so the client's reads hold one event or many depending on how the two
processes are scheduled: the figures are for a fast stream. ``--gap-ms`` paces the events
instead, so that (at a gap well above the client's cost) every read holds one event: each
event then also pays the reader thread's hand-over (use fewer deltas: the stream takes
deltas x gap).

Rows, per wire (Anthropic Messages, Chat Completions, Responses): the project's client; the
official SDK's raw stream (``create(stream=True)``, one model object per event) and its helper
(``messages.stream()``, ``chat.completions.stream()``, ``responses.stream()``, which also
accumulate the message); and a minimal httpx2 loop
(``iter_lines`` + ``json.loads``), the floor for pure-Python parsing. Exits 1 when a project
client costs more than 10 us per event.

    python benchmarks/client_cost.py [--deltas N] [--runs R] [--gap-ms G]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TARGET_US = 10.0
DELTAS = 20_000
RUNS = 5

Consumer = Callable[[str, int], None]


# -- the canned streams --------------------------------------------------------------------


def anthropic_events(deltas: int) -> list[bytes]:
    """One text block of ``deltas`` one-word deltas, framed as the Messages API sends them."""
    usage = {"input_tokens": 10, "output_tokens": 1}
    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "bench",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}
    events += [delta | {"delta": {"type": "text_delta", "text": " word"}}] * deltas
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": deltas},
        },
        {"type": "message_stop"},
    ]
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def openai_events(deltas: int) -> list[bytes]:
    """A role chunk, ``deltas`` one-word content chunks, the finish and usage chunks, [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "bench",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    usage = {"prompt_tokens": 10, "completion_tokens": deltas, "total_tokens": 10 + deltas}
    chunks: list[Any] = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": " word"})] * deltas
    chunks += [chunk({}, "stop"), {"id": "chatcmpl-bench", "choices": [], "usage": usage}]
    out = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    return [*out, b"data: [DONE]\n\n"]


def responses_events(deltas: int) -> list[bytes]:
    """A message item of ``deltas`` one-word ``output_text`` deltas, framed as the Responses API
    sends it: lifecycle events, the item and its part opened and closed, then
    ``response.completed`` with the output and usage."""
    seq = iter(range(deltas + 16))
    text = " word" * deltas
    item = {"id": "msg_b", "type": "message", "role": "assistant", "status": "in_progress"}
    part = {"type": "output_text", "text": "", "annotations": []}
    done_item = dict(item, status="completed", content=[dict(part, text=text)])

    def response(status: str, **more: Any) -> dict[str, Any]:
        return {
            "id": "resp_bench",
            "object": "response",
            "created_at": 1,
            "status": status,
            "model": "bench",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            **more,
        }

    def event(kind: str, **data: Any) -> bytes:
        body = json.dumps({"type": kind, **data, "sequence_number": next(seq)})
        return f"event: {kind}\ndata: {body}\n\n".encode()

    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": deltas,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10 + deltas,
    }
    where = {"item_id": "msg_b", "output_index": 0, "content_index": 0}
    return [
        event("response.created", response=response("in_progress")),
        event("response.in_progress", response=response("in_progress")),
        event("response.output_item.added", output_index=0, item=dict(item, content=[])),
        event("response.content_part.added", part=part, **where),
        *[event("response.output_text.delta", delta=" word", logprobs=[], **where)] * deltas,
        event("response.output_text.done", text=text, logprobs=[], **where),
        event("response.content_part.done", part=dict(part, text=text), **where),
        event("response.output_item.done", output_index=0, item=done_item),
        event(
            "response.completed", response=response("completed", output=[done_item], usage=usage)
        ),
    ]


# -- the server (a process of its own: its CPU must not count) -----------------------------


def serve(gap_s: float) -> None:
    """Serve canned streams on loopback, ``gap_s`` between events; the path's first segment
    is ``n<deltas>``."""
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    cache: dict[tuple[str, int], list[bytes]] = {}

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            path = head.split(b" ", 2)[1].decode()
            deltas = int(path.split("/")[1][1:])
            wire = path.rsplit("/", 1)[1]  # messages, completions or responses
            if (wire, deltas) not in cache:
                make = {"completions": openai_events, "responses": responses_events}.get(
                    wire, anthropic_events
                )
                cache[wire, deltas] = make(deltas)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
            )
            for event in cache[wire, deltas]:
                conn.sendall(event)
                if gap_s:
                    time.sleep(gap_s)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


# -- the consumers -------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "hi"}]


def project_client(wire: str) -> Consumer:
    """The package's own client of ``wire`` (``anthropic``, ``openai``, ``responses``)."""

    def consume(base: str, deltas: int) -> None:
        from pytest_agentspeed.clients import ModelClient, TurnRequest
        from pytest_agentspeed.clients.anthropic_client import AnthropicClient
        from pytest_agentspeed.clients.openai_client import OpenAIClient
        from pytest_agentspeed.clients.responses_client import ResponsesClient
        from pytest_agentspeed.timing import EventLog

        url = f"{base}/n{deltas}"
        client: ModelClient = (
            AnthropicClient(model="bench", base_url=url, api_key="k")
            if wire == "anthropic"
            else (OpenAIClient if wire == "openai" else ResponsesClient)(
                model="bench", base_url=f"{url}/v1", api_key="k"
            )
        )
        request = TurnRequest(system=[], messages=MESSAGES, tools=[], max_tokens=10, session_id="s")
        try:
            client.complete(request, EventLog())
        finally:
            client.close()

    return consume


def anthropic_raw(base: str, deltas: int) -> None:
    import anthropic

    with anthropic.Anthropic(base_url=f"{base}/n{deltas}", api_key="k") as client:
        for _ in client.messages.create(
            model="bench", max_tokens=10, messages=MESSAGES, stream=True
        ):
            pass


def anthropic_helper(base: str, deltas: int) -> None:
    import anthropic

    with (
        anthropic.Anthropic(base_url=f"{base}/n{deltas}", api_key="k") as client,
        client.messages.stream(model="bench", max_tokens=10, messages=MESSAGES) as stream,
    ):
        for _ in stream:
            pass
        stream.get_final_message()


def openai_raw(base: str, deltas: int) -> None:
    import openai

    with openai.OpenAI(base_url=f"{base}/n{deltas}/v1", api_key="k") as client:
        for _ in client.chat.completions.create(
            model="bench",
            messages=MESSAGES,
            stream=True,  # type: ignore[arg-type]
        ):
            pass


def openai_helper(base: str, deltas: int) -> None:
    import openai

    with (
        openai.OpenAI(base_url=f"{base}/n{deltas}/v1", api_key="k") as client,
        client.chat.completions.stream(
            model="bench",
            messages=MESSAGES,  # type: ignore[arg-type]
        ) as stream,
    ):
        for _ in stream:
            pass
        stream.get_final_completion()


def responses_raw(base: str, deltas: int) -> None:
    import openai

    with openai.OpenAI(base_url=f"{base}/n{deltas}/v1", api_key="k") as client:
        for _ in client.responses.create(model="bench", input="hi", stream=True):
            pass


def responses_helper(base: str, deltas: int) -> None:
    import openai

    with (
        openai.OpenAI(base_url=f"{base}/n{deltas}/v1", api_key="k") as client,
        client.responses.stream(model="bench", input="hi") as stream,
    ):
        for _ in stream:
            pass
        stream.get_final_response()


def minimal_loop(path: str) -> Consumer:
    def consume(base: str, deltas: int) -> None:
        import httpx2

        url = f"{base}/n{deltas}{path}"
        with httpx2.Client() as client, client.stream("POST", url, json={}) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    json.loads(line[6:])

    return consume


@dataclass(frozen=True)
class Row:
    wire: str
    consumer: str
    run: Consumer
    #: The project's own client, held to the target.
    project: bool = False


ROWS = (
    Row("anthropic", "project client", project_client("anthropic"), project=True),
    Row("anthropic", "SDK create(stream=True), raw events", anthropic_raw),
    Row("anthropic", "SDK messages.stream() helper", anthropic_helper),
    Row("anthropic", "httpx2 iter_lines + json.loads", minimal_loop("/v1/messages")),
    Row("openai", "project client", project_client("openai"), project=True),
    Row("openai", "SDK create(stream=True), raw chunks", openai_raw),
    Row("openai", "SDK chat.completions.stream() helper", openai_helper),
    Row("openai", "httpx2 iter_lines + json.loads", minimal_loop("/v1/chat/completions")),
    Row("responses", "project client", project_client("responses"), project=True),
    Row("responses", "SDK create(stream=True), raw events", responses_raw),
    Row("responses", "SDK responses.stream() helper", responses_helper),
    Row("responses", "httpx2 iter_lines + json.loads", minimal_loop("/v1/responses")),
)


def cpu_s(run: Consumer, base: str, deltas: int) -> float:
    """Process CPU seconds of one stream (every thread of the process)."""
    started = time.process_time()
    run(base, deltas)
    return time.process_time() - started


def per_event_us(long_s: list[float], short_s: list[float], deltas: int) -> float:
    """Microseconds of CPU per delta: median long stream less median one-delta stream."""
    return (statistics.median(long_s) - statistics.median(short_s)) / (deltas - 1) * 1e6


def measure(row: Row, base: str, deltas: int, runs: int) -> float:
    row.run(base, 1)  # imports, lazily built models, the first connection
    short = [cpu_s(row.run, base, 1) for _ in range(runs)]
    long = [cpu_s(row.run, base, deltas) for _ in range(runs)]
    return per_event_us(long, short, deltas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=int, default=DELTAS)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.gap_ms / 1000)
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--gap-ms", str(args.gap_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        print(f"CPU per event, us: median of {args.runs} streams of {args.deltas:,} deltas")
        print(f"less the median of {args.runs} one-delta streams; target {TARGET_US:g} us")
        if args.gap_ms:
            print(f"events paced {args.gap_ms:g} ms apart")
        print(f"{'wire':10} {'consumer':38} {'us/event':>9}")
        over = []
        for row in ROWS:
            us = measure(row, base, args.deltas, args.runs)
            mark = ""
            if row.project and us > TARGET_US:
                over.append(f"{row.wire} {row.consumer}")
                mark = "  over target"
            print(f"{row.wire:10} {row.consumer:38} {us:9.1f}{mark}", flush=True)
    finally:
        server.kill()
        server.wait()
    if over:
        print(f"over {TARGET_US:g} us per event: {', '.join(over)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
