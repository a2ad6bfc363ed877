"""Time to first token added by the recording proxy: direct against through it, in one run.

Three processes on loopback, as in a real run: a canned Anthropic-stream server (raw sockets,
first token a fixed delay after the request), the recording proxy (``pytest_agentspeed.proxy``,
one session forwarding to that server), and this process as the agent, which sends the same
streamed request alternately straight to the server and through the proxy, each on its own
kept-alive connection. TTFT is measured by the agent: from just before the request is written
to just after the read that holds the first ``text_delta``. Prints median and P99 of each path
and what the proxy adds; exits 1 when the added median is over 1 ms.

    python benchmarks/proxy_overhead.py [--requests N] [--first-token-ms D]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from urllib.parse import urlsplit

TARGET_MS = 1.0

_EVENTS = [
    {
        "type": "message_start",
        "message": {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "model": "bench",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    *[{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "w "}}]
    * 5,
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    },
    {"type": "message_stop"},
]
STREAM = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in _EVENTS]


def serve(first_token_s: float) -> None:
    """The canned server (run in a child process): per request, headers at once, then
    message_start and the first text delta after ``first_token_s``, the rest right after."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)

    def connection(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = sock.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                buffer += sock.recv(65536)
            buffer = buffer[length:]
            start = time.perf_counter()
            sock.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            time.sleep(max(0.0, first_token_s - (time.perf_counter() - start)))
            first = b"".join(STREAM[:3])
            sock.sendall(b"%x\r\n%b\r\n" % (len(first), first))
            rest = b"".join(STREAM[3:])
            sock.sendall(b"%x\r\n%b\r\n0\r\n\r\n" % (len(rest), rest))

    while True:
        sock, _ = listener.accept()
        threading.Thread(target=connection, args=(sock,), daemon=True).start()


PROXY = textwrap.dedent(
    """
    import json, sys, time
    from pytest_agentspeed.proxy import RecordingProxy, Upstream
    proxy = RecordingProxy()
    session = proxy.open_session(Upstream(base_url=sys.argv[1], api="anthropic", model="bench",
                                          key="sk-bench"))
    print(session.base_url, flush=True)
    sys.stdin.read()  # until the benchmark closes it
    def at(exchange, kind):
        if kind == "first_token":
            return next(e.t_ns for e in exchange.events if e.kind == "delta" and e.nonempty)
        return next(e.t_ns for e in exchange.events if e.kind == kind)
    exchanges = session.exchanges()
    spans = {}
    for a, b in (("attempt", "request_sent"), ("request_sent", "headers"),
                 ("headers", "first_token"), ("first_token", "stream_end")):
        spans[f"{a}->{b}"] = sorted(at(x, b) - at(x, a) for x in exchanges)[len(exchanges) // 2]
    print(json.dumps({"recorded": len(exchanges), "spans_ns": spans}), flush=True)
    """
)

BODY = json.dumps(
    {
        "model": "bench",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "hi " * 2000}],  # ~6 KB, as agents send more
    }
).encode()


def ttft_ms(conn: http.client.HTTPConnection, path: str) -> float:
    """One streamed request on a kept-alive connection; ms to the first text delta."""
    start = time.perf_counter()
    conn.request("POST", path, body=BODY, headers={"content-type": "application/json"})
    response = conn.getresponse()
    seen = b""
    first = None
    while data := response.read1(65536):
        if first is None:
            seen += data
            if b"text_delta" in seen:
                first = time.perf_counter()
    assert first is not None, "no text delta in the stream"
    return (first - start) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:  # the canned server's own process
        serve(float(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="per path (default 500)")
    parser.add_argument("--first-token-ms", type=float, default=5.0)
    args = parser.parse_args()

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.first_token_ms / 1000)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    upstream = f"http://127.0.0.1:{int(server.stdout.readline())}"
    proxy = subprocess.Popen(
        [sys.executable, "-c", PROXY, upstream],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proxy.stdin is not None
    assert proxy.stdout is not None
    session_url = proxy.stdout.readline().strip()
    try:
        parts = {"direct": urlsplit(upstream), "proxy": urlsplit(session_url)}
        conns = {
            name: http.client.HTTPConnection(url.hostname or "", url.port)
            for name, url in parts.items()
        }
        paths = {name: url.path + "/v1/messages" for name, url in parts.items()}
        times: dict[str, list[float]] = {"direct": [], "proxy": []}
        for _ in range(20):  # warm up both paths (connections, first imports)
            for name in times:
                ttft_ms(conns[name], paths[name])
        for i in range(args.requests):
            order = ("direct", "proxy") if i % 2 == 0 else ("proxy", "direct")
            for name in order:
                times[name].append(ttft_ms(conns[name], paths[name]))
        proxy.stdin.close()
        recorded = json.loads(proxy.stdout.readline())
    finally:
        proxy.terminate()
        server.terminate()
        proxy.wait(timeout=10)
        server.wait(timeout=10)

    print(
        f"TTFT, ms: {args.requests} streamed requests per path, alternated; server's first "
        f"token {args.first_token_ms:g} ms after the request"
    )
    print(f"{'path':<8} {'median':>8} {'p99':>8}")
    for name, values in times.items():
        print(f"{name:<8} {statistics.median(values):8.3f} {percentile(values, 0.99):8.3f}")
    spans = ", ".join(f"{k} {v / 1e6:.3f}" for k, v in recorded["spans_ns"].items())
    print(f"proxy's own marks, median ms ({recorded['recorded']} exchanges): {spans}")
    added_median = statistics.median(times["proxy"]) - statistics.median(times["direct"])
    added_p99 = percentile(times["proxy"], 0.99) - percentile(times["direct"], 0.99)
    print(f"{'added':<8} {added_median:8.3f} {added_p99:8.3f}   (target: median <= {TARGET_MS} ms)")
    return 0 if added_median <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
