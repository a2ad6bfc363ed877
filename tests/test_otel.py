"""``--agentspeed-otel``: the span mapping on hand-made records (exact values), and runs whose
traces and metrics a real OTLP/HTTP receiver on loopback decodes with the OpenTelemetry
protobufs (names, parents, attributes, times to the microsecond, nothing secret)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from factories import external_session
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from test_plugin import make_task, read_run

from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.outputs.otel import OtelExporter, otlp_endpoint, shown_url
from pytest_agentspeed.outputs.otel_spans import (
    OPERATION_DURATION,
    TIME_PER_OUTPUT_TOKEN,
    TIME_TO_FIRST_TOKEN,
    TOKEN_USAGE,
    MetricPoint,
    metric_points,
    seconds_ns,
    session_trace,
)
from pytest_agentspeed.records import (
    AttemptRecord,
    EndpointRecord,
    RunRecord,
    SessionRecord,
    ToolCallRecord,
    TurnRecord,
    Usage,
)
from pytest_agentspeed.run.spool import SPOOL_DIR
from pytest_agentspeed.settings import Settings
from pytest_agentspeed.timing import MARKS

FAKE_KEY = "sk-ant-api03-" + "Zx9" * 30 + "-AAAA"
TASKS = ("fix-pagination-off-by-one", "document-slug-separator")

# -- an OTLP/HTTP receiver -------------------------------------------------------------------


class Receiver:
    """An OTLP/HTTP (protobuf) receiver on 127.0.0.1: keeps every request's body by path and
    answers ``status`` with an empty Export*ServiceResponse."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[tuple[str, bytes]] = []
        received = self.bodies
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, body))
                reply = (
                    ExportTraceServiceResponse()
                    if self.path == "/v1/traces"
                    else ExportMetricsServiceResponse()
                ).SerializeToString()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Any]:
        """Every span received, with its resource's attributes as ``resource``."""
        out = []
        for path, body in self.bodies:
            if path != "/v1/traces":
                continue
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope in resource_spans.scope_spans:
                    out.extend(scope.spans)
        return out

    def metrics(self) -> list[Any]:
        out = []
        for path, body in self.bodies:
            if path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                for rm in request.resource_metrics:
                    for scope in rm.scope_metrics:
                        out.extend(scope.metrics)
        return out

    def resources(self) -> list[dict[str, Any]]:
        return [
            attributes(rs.resource.attributes)
            for path, body in self.bodies
            if path == "/v1/traces"
            for rs in ExportTraceServiceRequest.FromString(body).resource_spans
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return tuple(value(x) for x in v.array_value.values)
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}


# -- the mapping, on hand-made records -------------------------------------------------------

STARTED_AT = 1_767_225_600.125  # 2026-01-01T00:00:00.125Z
ANTHROPIC = EndpointRecord(
    name="prod", api="anthropic", model="claude-x", base_url="https://api.example.com"
)


def turn(index: int, wall: float, *, tools: tuple[ToolCallRecord, ...] = (), **kw: Any) -> Any:
    marks = dict.fromkeys(MARKS, None) | {
        "request_sent": 0.01,
        "headers": 0.2,
        "first_event": 0.21,
        "first_token": 0.25,
        "first_output": 0.25,
        "last_token": 0.7,
        "stream_end": 0.75,
    }
    phases = {
        "retry_wait": 0.0,
        "ttft": 0.24,
        "reasoning": 0.0,
        "generation": 0.5,
        "tool": sum(t.wall_s for t in tools),
        "overhead": 0.0,
    }
    phases["overhead"] = wall - sum(phases.values())
    return TurnRecord(
        index=index,
        wall_s=wall,
        marks_s=marks | ({"tools_end": 0.75 + phases["tool"]} if tools else {}),
        phases_s=phases,
        usage=Usage(
            input_tokens=100, cache_read_tokens=900, cache_write_tokens=50, output_tokens=40
        ),
        usage_raw={},
        stop_reason="tool_use" if tools else "end_turn",
        streamed=True,
        attempts=(
            AttemptRecord(
                started_s=0.005, sent_s=0.01, headers_s=0.2, status=200, request_id="r", error=None
            ),
        ),
        tool_calls=tools,
        **kw,
    )


def builtin_session() -> SessionRecord:
    turns = (
        turn(0, 1.0, tools=(ToolCallRecord(name="read_file", start_s=0.8, wall_s=0.1, ok=True),)),
        turn(1, 0.75),
    )
    return SessionRecord(
        id="t[prod-r0]",
        task="t",
        endpoint="prod",
        repeat=0,
        slot="t/r0",
        outcome="passed",
        error=None,
        started_at=STARTED_AT,
        wall_s=1.75,
        setup_s=0.5,
        check_s=2.0,
        check_exit_code=0,
        usage=turns[0].usage + turns[1].usage,
        phases_s={p: turns[0].phases_s[p] + turns[1].phases_s[p] for p in turns[0].phases_s},
        turns=turns,
    )


def ns(seconds: str) -> int:
    """Exact nanoseconds of a decimal number of seconds."""
    return int(Decimal(seconds) * 1_000_000_000)


def test_a_builtin_session_maps_to_an_invoke_agent_span_with_chat_and_tool_children() -> None:
    trace = session_trace(builtin_session(), ANTHROPIC)
    origin = ns("1767225600.625")  # started_at + setup_s
    root = trace.root
    assert (root.name, root.kind, root.start_ns, root.end_ns) == (
        "invoke_agent builtin",
        "internal",
        origin,
        origin + ns("1.75"),
    )
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.conversation.id"] == "t[prod-r0]"
    assert root.attributes["gen_ai.usage.input_tokens"] == 2100
    assert root.attributes["gen_ai.usage.cache_read.input_tokens"] == 1800
    assert root.attributes["agentspeed.session.check_s"] == 2.0
    assert "gen_ai.input.messages" not in root.attributes
    assert [(s.name, s.start_ns - origin, s.end_ns - origin) for s in trace.children] == [
        ("chat claude-x", ns("0.005"), ns("0.75")),
        ("execute_tool read_file", ns("0.8"), ns("0.9")),
        ("chat claude-x", ns("1.005"), ns("1.75")),
    ]
    chat = trace.children[2]
    assert chat.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-x",
        "server.address": "api.example.com",
        "server.port": 443,
        "gen_ai.conversation.id": "t[prod-r0]",
        "agentspeed.turn.index": 1,
        "agentspeed.turn.wall_s": 0.75,
        "agentspeed.turn.streamed": True,
        "agentspeed.attempts": 1,
        "agentspeed.phase.retry_wait_s": 0.0,
        "agentspeed.phase.ttft_s": 0.24,
        "agentspeed.phase.reasoning_s": 0.0,
        "agentspeed.phase.generation_s": 0.5,
        "agentspeed.phase.tool_s": 0.0,
        "agentspeed.phase.overhead_s": pytest.approx(0.01),
        "http.response.status_code": 200,
        "gen_ai.usage.input_tokens": 1050,
        "gen_ai.usage.output_tokens": 40,
        "gen_ai.usage.cache_read.input_tokens": 900,
        "gen_ai.usage.cache_creation.input_tokens": 50,
        "gen_ai.response.finish_reasons": ("end_turn",),
    }
    assert [(e.name, e.time_ns - origin) for e in chat.events] == [
        ("request_sent", ns("1.01")),
        ("headers", ns("1.2")),
        ("first_event", ns("1.21")),
        ("first_token", ns("1.25")),
        ("first_output", ns("1.25")),
        ("last_token", ns("1.7")),
        ("stream_end", ns("1.75")),
    ]
    tool = trace.children[1]
    assert tool.attributes["gen_ai.tool.name"] == "read_file"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert (
        session_trace(builtin_session(), ANTHROPIC, instruction="Fix it.").root.attributes[
            "gen_ai.input.messages"
        ]
        == '[{"role": "user", "parts": [{"type": "text", "content": "Fix it."}]}]'
    )


def test_the_metric_points_of_a_session() -> None:
    points = metric_points([session_trace(builtin_session(), ANTHROPIC)])
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-x",
        "server.address": "api.example.com",
        "server.port": 443,
    }
    per_turn = [
        MetricPoint(OPERATION_DURATION, 0.745, base),
        MetricPoint(TOKEN_USAGE, 1050, base | {"gen_ai.token.type": "input"}),
        MetricPoint(TOKEN_USAGE, 40, base | {"gen_ai.token.type": "output"}),
        MetricPoint(TIME_TO_FIRST_TOKEN, 0.24, base),
        # 40 output tokens over 0.5 s of generation.
        MetricPoint(TIME_PER_OUTPUT_TOKEN, 0.0125, base),
    ]
    assert points == per_turn + per_turn


def test_an_external_session_has_agent_time_and_its_side_request() -> None:
    record = external_session("sim", 0)
    trace = session_trace(record, None)
    ms = 1_000_000
    shape = [
        (s.name, s.attributes.get("agentspeed.agent_time.kind"), s.start_ns // ms, s.end_ns // ms)
        for s in trace.children
    ]
    # Turns arrive at 100, 500, 900 ms, stream till 301, 701, 1101 and are forwarded whole 1 ms
    # later (where the agent's time starts); the title request runs from 102 to 181 on another
    # model; the process exits at 1400.
    assert shape == [
        ("agent_time", "startup", 0, 100),
        ("chat", None, 100, 301),
        ("chat small", None, 102, 181),
        ("agent_time", "between_requests", 302, 500),
        ("chat", None, 500, 701),
        ("agent_time", "between_requests", 702, 900),
        ("chat", None, 900, 1101),
        ("agent_time", "winddown", 1102, 1400),
    ]
    assert trace.children[2].attributes["agentspeed.side_request"] is True
    assert trace.children[2].attributes["agentspeed.side_request.why"] == "no tools"


def test_times_are_exact_nanoseconds_of_the_recorded_floats() -> None:
    # The float's exact value is 1767225600.1234569549560546875 s; a product in floats gives
    # ...457024 ns, 69 ns off.
    assert seconds_ns(1_767_225_600.123457) == 1_767_225_600_123_456_955


def test_endpoints_follow_the_otlp_variables() -> None:
    assert otlp_endpoint("traces", {}) == "http://localhost:4318/v1/traces"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example:4318/"}
    assert otlp_endpoint("metrics", env) == "https://c.example:4318/v1/metrics"
    env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "https://t.example/x"
    assert otlp_endpoint("traces", env) == "https://t.example/x"
    assert shown_url("https://u:p@c.example:4318/v1/traces?token=s") == (
        "https://c.example:4318/v1/traces"
    )


def test_the_option_without_the_extra_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "opentelemetry.exporter.otlp.proto.http" else real(name, *args)

    assert Settings.resolve({"otel": True}.get, rootdir=tmp_path).otel
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError) as info:
        Settings.resolve({"otel": True}.get, rootdir=tmp_path)
    assert str(info.value) == (
        "--agentspeed-otel needs the otel extra: install pytest-agentspeed[otel] (docs/otel.md)"
    )
    assert not Settings.resolve({}.get, rootdir=tmp_path).otel


def test_a_collector_that_does_not_answer_is_one_line(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    port = receiver.server.server_address[1]
    receiver.server.shutdown()
    receiver.server.server_close()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")
    run = RunRecord(
        created_at="2026-01-01T00:00:00+00:00",
        agentspeed_version="0",
        environment={},
        config={},
        endpoints=(ANTHROPIC,),
        sessions=(builtin_session(),),
    )
    exporter = OtelExporter()
    with pytest.raises(OSError, match="no answer") as info:
        exporter.run_finished(run)
    assert exporter.target == f"OpenTelemetry collector http://127.0.0.1:{port}/v1/traces"
    assert str(info.value) == (
        "no answer to the traces within OTEL_EXPORTER_OTLP_TIMEOUT (is the collector running?)"
    )


# -- end to end ------------------------------------------------------------------------------


def _absolute_ns(started_at: float, *offsets: float) -> int:
    """What the run file says, in nanoseconds, computed from its decimal text."""
    return int(sum((Decimal(repr(x)) for x in (started_at, *offsets)), Decimal(0)) * 10**9)


def test_a_two_task_run_exports_one_trace_per_session(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    example_suite: Path,
    receiver: Receiver,
) -> None:
    for name in TASKS:
        shutil.copytree(example_suite / name, pytester.path / name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "bench-under-test")
    common = (
        "--agentspeed-time-scale=0.01",
        "--agentspeed-repeat=1",
        "--agentspeed-otel",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    ab = ("--agentspeed-endpoint=sim:standard", "--agentspeed-endpoint=sim:ultraspeed")
    result = pytester.runpytest(*ab, *common)
    result.assert_outcomes(passed=4)
    run = read_run(pytester.path / "run.json")
    spans = receiver.spans()
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == len(run["sessions"]) == 4
    assert len({r.trace_id for r in roots}) == 4
    assert {r["service.name"] for r in receiver.resources()} == {"bench-under-test"}
    by_session = {attributes(r.attributes)["gen_ai.conversation.id"]: r for r in roots}
    endpoints = {e["name"]: e for e in run["endpoints"]}
    for session in run["sessions"]:
        root = by_session[session["id"]]
        origin = (session["started_at"], session["setup_s"])
        assert root.name == "invoke_agent builtin"
        assert abs(root.start_time_unix_nano - _absolute_ns(*origin)) < 1000
        assert abs(root.end_time_unix_nano - _absolute_ns(*origin, session["wall_s"])) < 1000
        children = sorted(
            (s for s in spans if s.trace_id == root.trace_id and s.parent_span_id),
            key=lambda s: s.start_time_unix_nano,
        )
        assert all(s.parent_span_id == root.span_id for s in children)
        chats = [s for s in children if s.name.startswith("chat ")]
        tools = [s for s in children if s.name.startswith("execute_tool ")]
        assert len(chats) == len(session["turns"])
        assert len(tools) == sum(len(t["tool_calls"]) for t in session["turns"]) > 0
        model = endpoints[session["endpoint"]]["model"]
        elapsed: list[float] = []
        for chat, t in zip(chats, session["turns"], strict=True):
            a = attributes(chat.attributes)
            assert chat.name == f"chat {model}"
            assert a["gen_ai.provider.name"] == "anthropic"
            assert a["gen_ai.request.model"] == model
            usage = t["usage"]
            assert a["gen_ai.usage.output_tokens"] == usage["output_tokens"]
            assert a["gen_ai.usage.cache_read.input_tokens"] == usage["cache_read_tokens"]
            assert a["gen_ai.usage.input_tokens"] == (
                usage["input_tokens"] + usage["cache_read_tokens"] + usage["cache_write_tokens"]
            )
            assert a["gen_ai.response.finish_reasons"] == (t["stop_reason"],)
            assert a["agentspeed.phase.ttft_s"] == t["phases_s"]["ttft"]
            start = (*origin, *elapsed)
            assert (
                abs(chat.start_time_unix_nano - _absolute_ns(*start, t["attempts"][0]["started_s"]))
                < 1000
            )
            marks = {k: v for k, v in t["marks_s"].items() if v is not None}
            assert abs(chat.end_time_unix_nano - _absolute_ns(*start, marks["stream_end"])) < 1000
            assert [e.name for e in chat.events] == sorted(marks, key=lambda k: marks[k])
            for event in chat.events:
                assert abs(event.time_unix_nano - _absolute_ns(*start, marks[event.name])) < 1000
            index = t["index"]
            own = [s for s in tools if attributes(s.attributes)["agentspeed.turn.index"] == index]
            for call, span in zip(t["tool_calls"], own, strict=True):
                assert span.name == f"execute_tool {call['name']}"
                assert abs(span.start_time_unix_nano - _absolute_ns(*start, call["start_s"])) < 1000
                end = _absolute_ns(*start, call["start_s"], call["wall_s"])
                assert abs(span.end_time_unix_nano - end) < 1000
            elapsed.append(t["wall_s"])
    received = b"".join(body for _, body in receiver.bodies)
    instructions = [
        (example_suite / name / "agenttask.toml").read_text().split('"""')[1].strip()
        for name in TASKS
    ]
    assert FAKE_KEY.encode() not in received
    assert not any(text[:60].encode() in received for text in instructions)
    assert {m.name for m in receiver.metrics()} == {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.server.time_to_first_token",
        "gen_ai.server.time_per_output_token",
    }

    # Opted in: the instruction is on each session's span.
    receiver.bodies.clear()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    again = pytester.runpytest("--agentspeed-endpoint=sim:ultraspeed", *common, "-k", TASKS[0])
    again.assert_outcomes(passed=1, deselected=1)
    roots = [s for s in receiver.spans() if not s.parent_span_id]
    messages = [json.loads(attributes(r.attributes)["gen_ai.input.messages"]) for r in roots]
    assert [m[0]["parts"][0]["content"].strip() for m in messages] == [instructions[0]]
    assert FAKE_KEY.encode() not in b"".join(body for _, body in receiver.bodies)


def test_a_refused_export_is_one_line_and_keeps_the_sessions(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    receiver.status = 500
    make_task(pytester.path, "alpha")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{receiver.url}/v1/traces")
    result = pytester.runpytest_subprocess(
        "--agentspeed-agent=oracle",
        "--agentspeed-otel",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        [
            f"ERROR: cannot write OpenTelemetry collector {receiver.url}/v1/traces: HTTP 500 in "
            "answer to the traces; the run's sessions are kept in *"
        ]
    )
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "Failed to export" not in output
    # The run file, written before, is there; the sessions stay in the spool for a retry.
    assert read_run(pytester.path / "run.json")["sessions"][0]["task"] == "alpha"
    assert list((pytester.path / SPOOL_DIR).iterdir())
