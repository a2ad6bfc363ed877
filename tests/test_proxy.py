"""The recording proxy: bytes through unchanged, marks against a server's own send log, the key
kept upstream, sessions kept apart, and every odd request answered.

The ground truth is ``ground_truth_server.py``, a raw-socket server in a process of its own
that stamps each write just before it goes out: a mark the proxy takes when bytes arrive can
be no earlier than that, and (medians, so a loaded machine's odd late wake-up does not decide)
no more than 2 ms later.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import openai
import pytest

from pytest_agentspeed.agents.timeline import main_model, session_timeline, side_reason
from pytest_agentspeed.clients import TurnRequest
from pytest_agentspeed.clients.responses_client import ResponsesClient
from pytest_agentspeed.exchanges import Exchange
from pytest_agentspeed.proxy import PLACEHOLDER_KEY, RecordingProxy, Upstream
from pytest_agentspeed.records import Usage
from pytest_agentspeed.simulator import MountConfig
from pytest_agentspeed.timing import EventLog

REAL_KEY = "sk-real-0123456789abcdef"
TOLERANCE_NS = 2_000_000
SERVER = Path(__file__).resolve().parent / "ground_truth_server.py"


@pytest.fixture(scope="module")
def ground_truth() -> Iterator[str]:
    """The ground-truth server's root URL."""
    proc = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


@pytest.fixture(scope="module")
def proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy() as running:
        yield running


def server_log(root: str) -> list[dict[str, Any]]:
    """What the ground-truth server received and sent, straight from it."""
    parts = urlsplit(root)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    conn.request("GET", "/__log")
    log: list[dict[str, Any]] = json.loads(conn.getresponse().read())
    conn.close()
    return log


def entry_for(root: str, marker: str) -> dict[str, Any]:
    """The server's log entry of the request whose body holds ``marker``."""
    (entry,) = [e for e in server_log(root) if marker in e["body"]]
    return entry


class Reply:
    """A response as the agent received it, bytes and all."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        self.body = dechunk(rest) if self.headers.get("transfer-encoding") == "chunked" else rest

    def json(self) -> Any:
        return json.loads(self.body)


def dechunk(data: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out, data = out + data[:size], data[size + 2 :]


def send(
    url: str,
    body: dict[str, Any] | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request on a fresh connection (``connection: close``), read to its end."""
    parts = urlsplit(url)
    data = json.dumps(body).encode() if body is not None else b""
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = f"{method} {target} HTTP/1.1\r\nhost: agent\r\nconnection: close\r\n"
    head += f"content-length: {len(data)}\r\n" if method != "HEAD" else ""
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    raw = b""
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(head.encode() + b"\r\n" + data)
        while chunk := sock.recv(65536):
            raw += chunk
    return Reply(raw)


def marks(exchange: Exchange) -> dict[str, int]:
    """The proxy's marks of a streamed exchange."""
    tokens = [e.t_ns for e in exchange.events if e.kind == "delta" and e.nonempty]
    (headers,) = [e.t_ns for e in exchange.events if e.kind == "headers"]
    (end,) = [e.t_ns for e in exchange.events if e.kind == "stream_end"]
    return {"headers": headers, "first_token": tokens[0], "last_token": tokens[-1], "end": end}


def sent(entry: dict[str, Any]) -> dict[str, int]:
    """The same moments in the server's send log."""
    writes = entry["writes"]
    tokens = [
        w["t_ns"] for w in writes if w["label"] in ("thinking_delta", "text_delta", "args_delta")
    ]
    (headers,) = [w["t_ns"] for w in writes if w["label"] == "headers"]
    (end,) = [w["t_ns"] for w in writes if w["label"] == "end"]
    return {"headers": headers, "first_token": tokens[0], "last_token": tokens[-1], "end": end}


def late_marks(pairs: list[tuple[dict[str, int], dict[str, int]]]) -> list[str]:
    """Every mark after its bytes were sent (else the test fails at once); the marks whose
    median lag over the requests is beyond the tolerance."""
    late = []
    for mark in ("headers", "first_token", "last_token", "end"):
        lags = [proxy[mark] - server[mark] for proxy, server in pairs]
        assert min(lags) > 0, (mark, lags)
        if statistics.median(lags) >= TOLERANCE_NS:
            late.append(f"{mark}: {[round(lag / 1e6, 2) for lag in lags]} ms")
    return late


def agree_with_send_log(
    measure: Callable[[int], list[tuple[dict[str, int], dict[str, int]]]],
) -> None:
    """Measure five requests; on a loaded machine, where a thread can miss its turn on a core
    for a few milliseconds, up to three times: a proxy that stamps late does so every time."""
    failures = []
    for attempt in range(3):
        late = late_marks(measure(attempt))
        if not late:
            return
        failures.append("; ".join(late))
    pytest.fail("marks later than the bytes: " + " | ".join(failures))


ANTHROPIC_TOOLS = [
    {"name": "Bash", "input_schema": {"type": "object"}},
    {"name": "Read", "input_schema": {"type": "object"}},
]


def anthropic_body(marker: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gt-model",
        "max_tokens": 100,
        "stream": True,
        "tools": ANTHROPIC_TOOLS,
        "metadata": {"user_id": marker},
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def test_anthropic_stream_marks_agree_with_the_servers_send_log(
    proxy: RecordingProxy, ground_truth: str
) -> None:
    session = proxy.open_session(
        Upstream(base_url=f"{ground_truth}/gt", api="anthropic", model="m", key=REAL_KEY)
    )

    def measure(attempt: int) -> list[tuple[dict[str, int], dict[str, int]]]:
        pairs = []
        for i in range(5):
            marker = f"anthropic-{attempt}-{i}"
            reply = send(
                f"{session.base_url}/v1/messages?beta=true",
                anthropic_body(marker),
                headers={"x-api-key": PLACEHOLDER_KEY, "anthropic-beta": "b1,b2"},
            )
            entry = entry_for(ground_truth, marker)
            # The bytes the agent got are the bytes the server sent.
            assert reply.status == 200
            assert reply.body == "".join(w["body"] for w in entry["writes"]).encode("latin-1")
            assert REAL_KEY.encode() not in reply.raw
            # Forwarded to the upstream's prefix plus the path, query kept, with the real key.
            assert entry["target"] == "/gt/v1/messages?beta=true"
            received = dict(entry["headers"])
            assert received["x-api-key"] == REAL_KEY
            assert received["authorization"] == f"Bearer {REAL_KEY}"
            assert received["anthropic-beta"] == "b1,b2"
            assert PLACEHOLDER_KEY not in json.dumps(entry["headers"])
            pairs.append((marks(session.exchanges()[-1]), sent(entry)))
        return pairs

    agree_with_send_log(measure)

    exchange = session.exchanges()[0]
    assert REAL_KEY not in repr(exchange)
    assert (exchange.method, exchange.path, exchange.wire, exchange.operation) == (
        "POST",
        "/v1/messages?beta=true",
        "anthropic",
        "messages",
    )
    assert (exchange.model, exchange.stream_requested, exchange.tools) == (
        "gt-model",
        True,
        ("Bash", "Read"),
    )
    assert not exchange.structured_output
    assert (exchange.status, exchange.streamed, exchange.error) == (200, True, None)
    assert exchange.request_id == "req_gt_1"
    assert exchange.usage == Usage(input_tokens=21, cache_read_tokens=4, output_tokens=17)
    assert exchange.usage_raw["output_tokens"] == 17
    assert exchange.stop_reason == "end_turn"
    kinds = [e.kind for e in exchange.events]
    assert kinds[:4] == ["attempt", "request_sent", "headers", "message_start"]
    assert kinds[-1] == "stream_end"
    deltas = [e.detail for e in exchange.events if e.kind == "delta"]
    assert deltas == ["thinking_delta"] * 3 + ["signature_delta"] + ["text_delta"] * 5
    assert exchange.received_ns == exchange.events[0].t_ns < exchange.end_ns


def test_phases_through_the_proxy_agree_with_the_servers_own_timeline(
    proxy: RecordingProxy, ground_truth: str
) -> None:
    """A turn's phases, from the proxy's exchange through the agent's timeline, against the
    same phases read off the server's send log: TTFT from the request's arrival to the first
    thinking delta, reasoning to the thinking block's end, generation to the body's end. Each
    within 2 ms (medians of five requests; three tries on a loaded machine)."""
    session = proxy.open_session(
        Upstream(base_url=f"{ground_truth}/gt", api="anthropic", model="m", key=REAL_KEY)
    )
    failures = []
    for attempt in range(3):
        off: dict[str, list[float]] = {"ttft": [], "reasoning": [], "generation": []}
        for i in range(5):
            marker = f"phases-{attempt}-{i}"
            reply = send(
                f"{session.base_url}/v1/messages",
                anthropic_body(marker),
                headers={"x-api-key": PLACEHOLDER_KEY},
            )
            assert reply.status == 200
            entry = entry_for(ground_truth, marker)
            writes: dict[str, list[int]] = {}
            for write in entry["writes"]:
                writes.setdefault(write["label"], []).append(write["t_ns"])
            truth_ns = {
                "ttft": writes["thinking_delta"][0] - entry["received_ns"],
                "reasoning": writes["block_stop"][0] - writes["thinking_delta"][0],
                "generation": writes["end"][0] - writes["block_stop"][0],
            }
            exchange = session.exchanges()[-1]
            (turn,), _ = session_timeline(
                [exchange], started_ns=exchange.received_ns, ended_ns=exchange.end_ns
            )
            for phase, ns in truth_ns.items():
                assert ns > 5_000_000  # the script's delays: each phase is real time
                off[phase].append(turn.phases_s[phase] - ns / 1e9)
        late = {
            phase: [round(d * 1e3, 2) for d in diffs]
            for phase, diffs in off.items()
            if abs(statistics.median(diffs)) >= TOLERANCE_NS / 1e9
        }
        if not late:
            return
        failures.append(late)
    pytest.fail(f"phases off by more than 2 ms (ms): {failures}")


def test_openai_stream_marks_agree_with_the_servers_send_log(
    proxy: RecordingProxy, ground_truth: str
) -> None:
    session = proxy.open_session(
        Upstream(base_url=ground_truth, api="openai", model="m", key=REAL_KEY)
    )

    def measure(attempt: int) -> list[tuple[dict[str, int], dict[str, int]]]:
        pairs = []
        for i in range(5):
            marker = f"openai-{attempt}-{i}"
            body = {
                "model": "gt-chat",
                "stream": True,
                "user": marker,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "bash", "parameters": {}}}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
            }
            reply = send(
                f"{session.base_url}/v1/chat/completions",
                body,
                headers={"authorization": f"Bearer {PLACEHOLDER_KEY}"},
            )
            entry = entry_for(ground_truth, marker)
            assert reply.status == 200
            # The server closed the connection to end the body; an HTTP/1.1 agent gets chunks.
            assert reply.headers["transfer-encoding"] == "chunked"
            assert reply.body == "".join(w["body"] for w in entry["writes"]).encode("latin-1")
            assert REAL_KEY.encode() not in reply.raw
            assert dict(entry["headers"])["authorization"] == f"Bearer {REAL_KEY}"
            assert "x-api-key" not in dict(entry["headers"])
            pairs.append((marks(session.exchanges()[-1]), sent(entry)))
        return pairs

    agree_with_send_log(measure)

    exchange = session.exchanges()[0]
    assert (exchange.wire, exchange.operation, exchange.model) == ("openai", "chat", "gt-chat")
    assert (exchange.tools, exchange.structured_output) == (("bash",), True)
    assert exchange.request_id == "req_gt_2"
    assert exchange.usage == Usage(
        input_tokens=20, cache_read_tokens=10, output_tokens=12, thinking_tokens=5
    )
    assert exchange.stop_reason == "end_turn"
    assert exchange.error is None
    blocks = [e.detail for e in exchange.events if e.kind == "block_start"]
    assert blocks == ["thinking", "text"]


STREAM_KINDS = {"message_start", "block_start", "delta", "block_stop", "message_delta"}
STREAM_KINDS |= {"message_stop"}


def responses_body(marker: str, *, stream: bool = True) -> dict[str, Any]:
    """A request as Codex CLI sends it (``tests/data/codex_request.json``), in short."""
    return {
        "model": "gt-responses",
        "stream": stream,
        "prompt_cache_key": marker,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "parameters": {}, "strict": False},
            {"type": "web_search", "external_web_access": True},
        ],
        "reasoning": {"summary": "auto"},
    }


def test_responses_stream_marks_agree_with_the_send_log_and_with_the_client(
    proxy: RecordingProxy, ground_truth: str
) -> None:
    """The proxy maps a Responses stream it forwards onto the marks the package's own client
    takes from the same stream (the same events, in the same order), each mark within 2 ms
    after its bytes were sent."""
    session = proxy.open_session(
        Upstream(base_url=ground_truth, api="responses", model="m", key=REAL_KEY)
    )

    def measure(attempt: int) -> list[tuple[dict[str, int], dict[str, int]]]:
        pairs = []
        for i in range(5):
            marker = f"responses-{attempt}-{i}"
            reply = send(
                f"{session.base_url}/v1/responses",
                responses_body(marker),
                headers={"authorization": f"Bearer {PLACEHOLDER_KEY}"},
            )
            entry = entry_for(ground_truth, marker)
            assert reply.status == 200
            assert reply.body == "".join(w["body"] for w in entry["writes"]).encode("latin-1")
            assert dict(entry["headers"])["authorization"] == f"Bearer {REAL_KEY}"
            assert "x-api-key" not in dict(entry["headers"])
            pairs.append((marks(session.exchanges()[-1]), sent(entry)))
        return pairs

    agree_with_send_log(measure)

    exchange = session.exchanges()[0]
    assert (exchange.wire, exchange.operation, exchange.model) == (
        "responses",
        "responses",
        "gt-responses",
    )
    assert exchange.is_model_request
    assert (exchange.tools, exchange.structured_output) == (("exec_command",), False)
    assert exchange.request_id == "req_gt_3"
    assert exchange.usage == Usage(
        input_tokens=30, cache_read_tokens=20, output_tokens=15, thinking_tokens=6
    )
    assert (exchange.stop_reason, exchange.error) == ("tool_use", None)
    # A main-loop request of the session (tools, no structured output, its main model).
    assert main_model(session.exchanges()) == "gt-responses"
    assert side_reason(exchange, "gt-responses") is None

    client = ResponsesClient(model="gt-responses", base_url=f"{ground_truth}/v1", api_key=None)
    log = EventLog()
    log.add("turn_start")
    try:
        reply = client.complete(
            TurnRequest(system=[], messages=[], tools=[], max_tokens=10, session_id="direct"),
            log,
        )
    finally:
        client.close()
    assert reply.usage == exchange.usage
    assert reply.stop_reason == exchange.stop_reason

    def stream_events(events: Any) -> list[tuple[str, int, str, bool]]:
        return [(e.kind, e.index, e.detail, e.nonempty) for e in events if e.kind in STREAM_KINDS]

    assert stream_events(exchange.events) == stream_events(log.events)
    assert [e[2] for e in stream_events(log.events) if e[0] == "block_start"] == [
        "thinking",
        "text",
        "tool_use",
    ]


def test_a_whole_responses_body_and_a_structured_output_ask(
    proxy: RecordingProxy, ground_truth: str
) -> None:
    session = proxy.open_session(Upstream(base_url=ground_truth, api="responses", model="m"))
    body = responses_body("responses-whole", stream=False)
    body["text"] = {"format": {"type": "json_schema", "name": "title", "schema": {}}}
    reply = send(f"{session.base_url}/v1/responses", body)
    assert reply.status == 200
    (exchange,) = session.exchanges()
    assert (exchange.operation, exchange.streamed, exchange.stream_requested) == (
        "responses",
        False,
        False,
    )
    assert exchange.structured_output
    assert [e.kind for e in exchange.events] == ["attempt", "request_sent", "headers", "response"]
    assert exchange.usage == Usage(
        input_tokens=30, cache_read_tokens=20, output_tokens=15, thinking_tokens=6
    )
    assert exchange.usage_raw["input_tokens"] == 50
    assert (exchange.stop_reason, exchange.error) == ("tool_use", None)
    assert side_reason(exchange, "gt-responses") == "structured output"


def test_no_key_forwards_none_and_an_error_body_never_shows_the_key(
    proxy: RecordingProxy, ground_truth: str
) -> None:
    keyless = proxy.open_session(Upstream(base_url=ground_truth, api="anthropic", model="m"))
    send(
        f"{keyless.base_url}/v1/messages",
        anthropic_body("keyless"),
        headers={"x-api-key": PLACEHOLDER_KEY, "authorization": f"Bearer {PLACEHOLDER_KEY}"},
    )
    received = dict(entry_for(ground_truth, "keyless")["headers"])
    assert "x-api-key" not in received
    assert "authorization" not in received

    keyed = proxy.open_session(
        Upstream(base_url=ground_truth, api="anthropic", model="m", key=REAL_KEY)
    )
    reply = send(f"{keyed.base_url}/unauthorized", {"marker": "quoting"})
    # The endpoint quoted the key it got (x-api-key, then the Bearer header); the agent sees it
    # blanked out, and so does the record.
    assert reply.status == 401
    assert reply.json()["error"]["message"] == "***Bearer ***"
    assert REAL_KEY.encode() not in reply.raw
    (exchange,) = keyed.exchanges()
    assert exchange.error == "HTTP 401: authentication_error: ***Bearer ***"
    assert REAL_KEY not in repr(exchange)


def test_unknown_paths_head_and_other_requests(proxy: RecordingProxy, ground_truth: str) -> None:
    for path in ("/v1/messages", "/s/no-such-session/v1/messages", "/"):
        reply = send(f"{proxy.url}{path}", {"model": "x"})
        assert reply.status == 404
        assert reply.json()["error"]["type"] == "not_found_error"

    session = proxy.open_session(Upstream(base_url=ground_truth, api="anthropic", model="m"))
    head = send(f"{session.base_url}/", method="HEAD")
    models = send(f"{session.base_url}/v1/models?limit=2", method="GET")
    assert (head.status, head.body) == (404, b"")
    assert (models.status, models.body) == (404, b"{}")
    probe, listing = session.exchanges()
    assert (probe.method, probe.path, probe.wire, probe.operation) == (
        "HEAD",
        "/",
        "other",
        "other",
    )
    assert (listing.method, listing.path, listing.operation) == (
        "GET",
        "/v1/models?limit=2",
        "other",
    )
    assert (probe.status, listing.status) == (404, 404)
    assert [e.kind for e in listing.events] == ["attempt", "request_sent", "headers", "response"]
    assert listing.model is None
    assert not listing.is_model_request

    # A bare line feed inside a header would become a header of its own upstream: refused.
    injected = send(f"{session.base_url}/", method="GET", headers={"x-a": "1\nx-api-key: k"})
    assert injected.status == 400
    assert len(session.exchanges()) == 2

    session.close()
    assert send(f"{session.base_url}/", method="HEAD").status == 404


def test_unreachable_upstream_is_a_502_and_an_exchange_with_its_error(
    proxy: RecordingProxy,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = proxy.open_session(
        Upstream(base_url=f"http://127.0.0.1:{port}", api="anthropic", model="m", key=REAL_KEY)
    )
    reply = send(f"{session.base_url}/v1/messages", anthropic_body("down"))
    assert reply.status == 502
    assert reply.json()["error"]["type"] == "api_error"
    (exchange,) = session.exchanges()
    assert exchange.status is None
    assert exchange.error == (
        f"the endpoint at http://127.0.0.1:{port} cannot be reached (ConnectionRefusedError)"
    )
    assert [(e.kind, e.detail) for e in exchange.events] == [
        ("attempt", ""),
        ("attempt_failed", "connection_error"),
    ]
    assert (exchange.model, exchange.stream_requested) == ("gt-model", True)


def test_a_stream_that_breaks_the_grammar_still_reaches_the_agent_unchanged(
    proxy: RecordingProxy, ground_truth: str
) -> None:
    session = proxy.open_session(
        Upstream(base_url=f"{ground_truth}/bad-stream", api="anthropic", model="m")
    )
    for path, marker in (("/v1/messages", "bad-1"), ("/other", "bad-2")):
        reply = send(f"{session.base_url}{path}", {"marker": marker})
        entry = entry_for(ground_truth, marker)
        assert reply.status == 200
        assert reply.body == entry["writes"][0]["body"].encode("latin-1")
    mapped, framed = session.exchanges()
    # A delta before any block started: what the SDK fails on, recorded as the error.
    assert mapped.error == "protocol_error: IndexError: list index out of range"
    assert [e.kind for e in mapped.events][-2:] == ["attempt_failed", "stream_end"]
    assert mapped.usage is None
    # Under a path that is no model request's, an event stream is forwarded, not mapped.
    assert (framed.operation, framed.streamed, framed.error) == ("other", True, None)
    assert [e.kind for e in framed.events][-1] == "stream_end"


def test_two_sessions_at_once_keep_their_own_requests(
    proxy: RecordingProxy, ground_truth: str
) -> None:
    sessions = {
        name: proxy.open_session(
            Upstream(base_url=f"{ground_truth}/{name}", api="anthropic", model=name)
        )
        for name in ("left", "right")
    }
    errors: list[BaseException] = []

    def agent(name: str) -> None:
        try:
            for i in range(3):
                body = anthropic_body(f"{name}-{i}", model=f"{name}-model-{i}")
                assert send(f"{sessions[name].base_url}/v1/messages", body).status == 200
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(name,)) for name in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for name, session in sessions.items():
        exchanges = session.exchanges()
        assert [e.model for e in exchanges] == [f"{name}-model-{i}" for i in range(3)]
        assert all(e.ok and e.usage is not None for e in exchanges)
        for i in range(3):
            assert entry_for(ground_truth, f"{name}-{i}")["target"] == f"/{name}/v1/messages"
    # They ran at once: each session's streams overlap the other's.
    left, right = sessions["left"].exchanges(), sessions["right"].exchanges()
    assert left[0].received_ns < right[-1].end_ns
    assert right[0].received_ns < left[-1].end_ns


StartSim = Callable[..., Any]


@pytest.fixture
def simulated(start_sim: StartSim, example_suite: Path) -> str:
    sim = start_sim(
        MountConfig(key="fast", profile="ultraspeed", time_scale=0.01, jitter=False),
        task_dirs=(example_suite,),
    )
    url: str = sim.base_url("fast")
    return url


SIM_TOOLS = [{"name": "list_files", "input_schema": {"type": "object", "properties": {}}}]


def test_the_anthropic_sdk_through_the_proxy_to_the_simulator(
    proxy: RecordingProxy, simulated: str
) -> None:
    session = proxy.open_session(
        Upstream(base_url=simulated, api="anthropic", model="sim", key=REAL_KEY)
    )
    request: dict[str, Any] = {
        "model": "sim",
        "max_tokens": 512,
        "tools": SIM_TOOLS,
        "messages": [{"role": "user", "content": "hello"}],
    }
    with anthropic.Anthropic(
        api_key=session.placeholder_key, base_url=session.base_url, max_retries=0
    ) as client:
        whole = client.messages.create(**request)
        with client.messages.stream(**request) as stream:
            streamed = stream.get_final_message()
    first, second = session.exchanges()
    assert (first.streamed, first.stream_requested, second.streamed) == (False, False, True)
    for exchange, message in ((first, whole), (second, streamed)):
        assert exchange.ok
        assert exchange.operation == "messages"
        assert exchange.tools == ("list_files",)
        assert exchange.usage == Usage(
            input_tokens=message.usage.input_tokens,
            cache_read_tokens=message.usage.cache_read_input_tokens or 0,
            cache_write_tokens=message.usage.cache_creation_input_tokens or 0,
            output_tokens=message.usage.output_tokens,
        )
        assert exchange.stop_reason == message.stop_reason
    assert [e.kind for e in first.events] == ["attempt", "request_sent", "headers", "response"]
    assert sum(e.kind == "delta" for e in second.events) > 0


def test_the_openai_sdk_through_the_proxy_to_the_simulator(
    proxy: RecordingProxy, simulated: str
) -> None:
    session = proxy.open_session(
        Upstream(base_url=simulated, api="openai", model="sim", key=REAL_KEY)
    )
    messages: list[Any] = [{"role": "user", "content": "hello"}]
    with openai.OpenAI(
        api_key=session.placeholder_key, base_url=f"{session.base_url}/v1", max_retries=0
    ) as client:
        whole = client.chat.completions.create(model="sim", messages=messages)
        chunks = list(
            client.chat.completions.create(
                model="sim",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    first, second = session.exchanges()
    usage = chunks[-1].usage
    assert whole.usage is not None
    assert usage is not None
    for exchange, counts in ((first, whole.usage), (second, usage)):
        assert exchange.ok
        assert exchange.operation == "chat"
        assert exchange.wire == "openai"
        assert exchange.usage is not None
        assert exchange.usage.output_tokens == counts.completion_tokens
        assert exchange.usage.all_input_tokens == counts.prompt_tokens
        assert exchange.stop_reason == "end_turn"
    assert (first.streamed, second.streamed, second.stream_requested) == (False, True, True)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
