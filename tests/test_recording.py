"""Recordings (``replay/recording.py``): what a session sent, captured, joined with its record,
written compactly and read back exactly; and every way a file can be bad.

The capture is held against what the server received: a byte-keeping relay sits between the
client (or the recording proxy) and the real simulator, and the bodies the recording holds
must be, byte for byte, the bodies of the model requests that crossed it.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import stat
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import tcp_relay

from pytest_agentspeed.agents.builtin import BuiltinAgent
from pytest_agentspeed.agents.external import AgentCommand, ExternalAgent
from pytest_agentspeed.agents.seam import AgentContext, AgentRun
from pytest_agentspeed.clients import ModelClient
from pytest_agentspeed.errors import RecordingError
from pytest_agentspeed.proxy import RecordingProxy, Upstream
from pytest_agentspeed.proxy.server import PLACEHOLDER_KEY
from pytest_agentspeed.records import (
    AttemptRecord,
    SessionRecord,
    SideRequestRecord,
    TurnRecord,
    Usage,
)
from pytest_agentspeed.replay.body_delta import apply_delta, body_delta
from pytest_agentspeed.replay.recording import (
    SUFFIX,
    RecordedRequest,
    Recording,
    planned_tokens,
    read_recording,
    read_recordings,
    recording_from,
    recording_json,
    write_recording,
)
from pytest_agentspeed.run.runner import run_session
from pytest_agentspeed.sent import SentLog, SentRequest
from pytest_agentspeed.simulator import MountConfig
from pytest_agentspeed.tasks import load_task

SECRET = "sk-ant-api03-Rec0rdingKeyMustNotLeak0123456789abcdef"
TASK = "fix-pagination-off-by-one"
AGENTS_DIR = Path(__file__).parent / "agents"


# --------------------------------------------------------------------------- helpers


class Keeping:
    """An agent that runs another and keeps its :class:`AgentRun` (the run core keeps only
    the record)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.name = agent.name
        self.needs_endpoint = agent.needs_endpoint
        self.expects_check_to_fail = agent.expects_check_to_fail
        self.needs_proxy = getattr(agent, "needs_proxy", False)
        self.runs: list[AgentRun] = []

    def run(self, context: AgentContext) -> AgentRun:
        run: AgentRun = self.agent.run(context)
        self.runs.append(run)
        return run


def received(raw: bytes) -> list[tuple[str, str, bytes]]:
    """(method, target, body) of each HTTP/1.1 request in ``raw``, in order."""
    out = []
    while raw:
        head, _, raw = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int({k.lower(): v for k, v in headers.items()}.get("content-length", 0))
        out.append((method, target, raw[:length]))
        raw = raw[length:]
    return out


def _model_bodies(raw: bytes) -> list[bytes]:
    model_paths = ("/v1/messages", "/v1/chat/completions", "/v1/responses")
    return [
        body
        for method, target, body in received(raw)
        if method == "POST" and target.partition("?")[0].endswith(model_paths)
    ]


def _unpacked(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def _assert_gaps_sum(recording: Recording) -> None:
    for r in recording.requests:
        assert sum(r.gap_phases.values()) == r.gap_s
        assert all(v >= 0 for v in r.gap_phases.values())
    assert sum(recording.tail_phases.values()) == recording.tail_s


def _client(wire: str, base_url: str) -> ModelClient:
    if wire == "anthropic":
        from pytest_agentspeed.clients.anthropic_client import AnthropicClient

        return AnthropicClient(model="sim-model", base_url=base_url, api_key=SECRET)
    if wire == "openai":
        from pytest_agentspeed.clients.openai_client import OpenAIClient

        return OpenAIClient(model="sim-model", base_url=f"{base_url}/v1", api_key=SECRET)
    from pytest_agentspeed.clients.responses_client import ResponsesClient

    return ResponsesClient(model="sim-model", base_url=f"{base_url}/v1", api_key=SECRET)


# --------------------------------------------------------------------------- the built-in agent


@pytest.mark.parametrize("wire", ["anthropic", "openai", "responses"])
def test_the_builtin_agent_records_what_the_simulator_received(
    start_sim: Any, example_suite: Path, tmp_path: Path, wire: str
) -> None:
    """A session of the built-in agent on the real simulator, through a byte-keeping relay:
    its SentLog's bodies are the bodies the server received, in order; the gaps, the walls and
    the tail are the SentLog's intervals, and the phases add up to them exactly; the key went
    to the server and is in no recording."""
    sim = start_sim(
        MountConfig(key="m", profile="standard", time_scale=0.02), task_dirs=(example_suite,)
    )
    port = int(sim.url.rsplit(":", 1)[1])
    task = load_task(example_suite / TASK / "agenttask.toml")
    agent = Keeping(BuiltinAgent())
    with tcp_relay(port) as (relay_port, seen):
        client = _client(wire, f"http://127.0.0.1:{relay_port}/e/m")
        try:
            result = run_session(task, agent, client, endpoint="gateway", repeat=0)
        finally:
            client.close()
        on_the_wire = bytes(seen)
    record = result.record
    assert record.outcome == "passed", record.error
    (run,) = agent.runs
    sent = run.sent
    assert sent is not None
    assert sent.gaps_are == "tool"
    # One request per turn, each the latest attempt's, exactly as the server received them.
    assert [r.index for r in sent.requests] == list(range(len(record.turns)))
    assert len(record.turns) >= 3
    assert [r.body for r in sent.requests] == _model_bodies(on_the_wire)
    assert {r.kind for r in sent.requests} == {"turn"}
    path = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}.get(
        wire, "/v1/responses"
    )
    assert {r.path for r in sent.requests} == {path}
    names = set(sent.requests[0].header_names)
    assert "content-type" in names
    # The key's header is named (each client sends it as a bearer token here), never valued.
    assert "authorization" in names
    assert all(name == name.lower() for name in names)
    # The session's bounds are its turns': the first starts it, the last one's end ends it.
    assert sent.ended_ns - sent.started_ns == pytest.approx(record.wall_s * 1e9, abs=1e3)

    recording = recording_from(record, sent, wire=wire, model="sim-model")  # type: ignore[arg-type]
    assert recording.name == f"{TASK}.gateway-r0"
    assert [json.dumps(r.body) for r in recording.requests] == [
        json.dumps(json.loads(b)) for b in _model_bodies(on_the_wire)
    ]
    ends = [sent.started_ns] + [r.ended_ns for r in sent.requests]
    for i, (r, s) in enumerate(zip(recording.requests, sent.requests, strict=True)):
        assert r.gap_s == (s.started_ns - ends[i]) / 1e9
        assert r.wall_s == (s.ended_ns - s.started_ns) / 1e9
        turn = record.turns[i]
        assert r.usage == turn.usage
        assert r.stop_reason == turn.stop_reason
        assert r.status == 200
        assert r.stream is True
        # Marks count from the request's start: its stream ends at its wall.
        assert r.marks_s["stream_end"] == pytest.approx(r.wall_s, abs=1e-9)
        assert "tools_end" not in r.marks_s
        if i == 0:
            assert list(r.gap_phases) == ["overhead"]
        else:
            previous_tool = record.turns[i - 1].phases_s["tool"]
            assert r.gap_phases["tool"] == pytest.approx(min(r.gap_s, previous_tool), abs=1e-9)
            assert r.gap_phases["tool"] > 0  # the previous turn ran tools
    assert recording.tail_s == (sent.ended_ns - sent.requests[-1].ended_ns) / 1e9
    _assert_gaps_sum(recording)
    # Gaps, walls and the tail tile the session (its requests never overlap).
    total = sum(r.gap_s + r.wall_s for r in recording.requests) + recording.tail_s
    assert total == pytest.approx(record.wall_s, abs=1e-6)

    written = write_recording(tmp_path / "recs", recording)
    assert SECRET.encode() in on_the_wire
    assert SECRET.encode() not in _unpacked(written)
    assert read_recording(written) == replace(recording, source=str(written))


# --------------------------------------------------------------------------- an external agent


def test_an_external_agent_through_the_proxy_records_its_bodies(
    start_sim: Any, example_suite: Path, tmp_path: Path
) -> None:
    """The tests' shell agent (the Anthropic SDK) through the recording proxy to the simulator:
    its SentLog holds every model request as the endpoint received it, the first gap is the
    session's start-up and the tail its wind-down, exactly as its timeline has them; the
    endpoint's key is in no recording."""
    sim = start_sim(
        MountConfig(key="m", profile="standard", time_scale=0.02), task_dirs=(example_suite,)
    )
    port = int(sim.url.rsplit(":", 1)[1])
    task = load_task(example_suite / TASK / "agenttask.toml")
    spec = AgentCommand(
        name="shell",
        command=(
            sys.executable,
            str(AGENTS_DIR / "shell_agent.py"),
            "anthropic",
            "{model}",
            "{instruction_file}",
        ),
        api="anthropic",
        base_url_env=("ANTHROPIC_BASE_URL",),
        key_env=("ANTHROPIC_API_KEY",),
    )
    agent = Keeping(ExternalAgent(spec))
    with tcp_relay(port) as (relay_port, seen), RecordingProxy() as proxy:

        def open_proxy(workspace: Path) -> Any:
            return proxy.open_session(
                Upstream(
                    base_url=f"http://127.0.0.1:{relay_port}/e/m",
                    api="anthropic",
                    model="sim-model",
                    key=SECRET,
                    headers={"x-agentspeed-workspace": str(workspace)},
                )
            )

        result = run_session(task, agent, None, endpoint="gateway", repeat=1, open_proxy=open_proxy)
        on_the_wire = bytes(seen)
    record = result.record
    assert record.outcome == "passed", record.error
    (run,) = agent.runs
    sent = run.sent
    assert sent is not None
    assert sent.gaps_are == "agent"
    assert len(sent.requests) == len(record.turns) >= 2
    assert [(r.kind, r.index) for r in sent.requests] == [
        ("turn", i) for i in range(len(record.turns))
    ]
    assert [r.body for r in sent.requests] == _model_bodies(on_the_wire)
    names = set(sent.requests[0].header_names)
    assert {"content-type", "anthropic-version"} <= names
    assert {"x-api-key", "authorization"} & names  # the placeholder key's header, by name

    recording = recording_from(record, sent, wire="anthropic", model="sim-model")
    assert recording.agent == "shell"
    first, *rest = recording.requests
    assert first.gap_phases == {"startup": record.phases_s["startup"]}
    assert all(list(r.gap_phases) == ["agent"] for r in rest)
    assert recording.tail_phases == {"winddown": record.phases_s["winddown"]}
    assert [r.usage for r in recording.requests] == [t.usage for t in record.turns]
    _assert_gaps_sum(recording)
    written = write_recording(tmp_path, recording)
    assert SECRET.encode() in on_the_wire
    assert PLACEHOLDER_KEY.encode() not in _unpacked(written)
    assert SECRET.encode() not in _unpacked(written)
    assert read_recording(written) == replace(recording, source=str(written))


# --------------------------------------------------------------------------- joining, by hand

MS = 1_000_000


def _turn(index: int, *, tool_s: float, attempt_s: float = 0.001, status: int = 200) -> TurnRecord:
    return TurnRecord(
        index=index,
        wall_s=1.0,
        marks_s={
            "request_sent": attempt_s + 0.001,
            "stream_end": attempt_s + 0.5,
            "tools_end": 0.9,
        },
        phases_s={"tool": tool_s},
        usage=Usage(input_tokens=10 + index, cache_read_tokens=100 * index, output_tokens=7),
        usage_raw={"output_tokens": 7},
        stop_reason="tool_use",
        streamed=True,
        attempts=(
            AttemptRecord(
                started_s=attempt_s,
                sent_s=None,
                headers_s=None,
                status=status,
                request_id=None,
                error=None,
            ),
        ),
        tool_calls=(),
    )


def _record(turns: tuple[TurnRecord, ...], **more: Any) -> SessionRecord:
    return SessionRecord(
        id="t[e-r2]",
        task="t",
        endpoint="e",
        repeat=2,
        slot="t/r2",
        outcome="passed",
        error=None,
        wall_s=3.0,
        setup_s=0.0,
        check_s=0.0,
        check_exit_code=0,
        usage=Usage(),
        phases_s={},
        turns=turns,
        started_at=1234.5,
        **more,
    )


def _sent(kind: str, index: int, start_ms: int, end_ms: int, body: dict[str, Any]) -> SentRequest:
    return SentRequest(
        kind=kind,  # type: ignore[arg-type]
        index=index,
        method="POST",
        path="/v1/messages",
        header_names=("content-type",),
        body=json.dumps(body).encode(),
        started_ns=start_ms * MS,
        ended_ns=end_ms * MS,
    )


def test_builtin_gaps_are_the_previous_turns_tools_then_overhead() -> None:
    """Turn 0 from 2 to 500 ms; turn 1 (after 300 ms of tools) from 1000 to 1400; turn 2
    (after 0.7 s of tools, more than its gap) from 1900 to 2500; the session ends at 3000
    after 0.2 s of tools."""
    turns = (_turn(0, tool_s=0.3), _turn(1, tool_s=0.7), _turn(2, tool_s=0.2))
    sent = SentLog(
        started_ns=0,
        ended_ns=3000 * MS,
        requests=(
            _sent("turn", 0, 2, 500, {"a": 1}),
            _sent("turn", 1, 1000, 1400, {"a": 2}),
            _sent("turn", 2, 1900, 2500, {"a": 3}),
        ),
    )
    rec = recording_from(_record(turns), sent, wire="anthropic", model="m")
    assert [r.gap_s for r in rec.requests] == [0.002, 0.5, 0.5]
    assert [r.gap_phases for r in rec.requests] == [
        {"overhead": 0.002},
        {"tool": 0.3, "overhead": 0.5 - 0.3},
        {"tool": 0.5, "overhead": 0.0},
    ]
    assert rec.tail_s == 0.5
    assert rec.tail_phases == {"tool": 0.2, "overhead": 0.5 - 0.2}
    assert [r.wall_s for r in rec.requests] == [0.498, 0.4, 0.6]
    # Marks from the first attempt (1 ms into the turn), tools_end dropped.
    assert rec.requests[0].marks_s == {"request_sent": 0.001 + 0.001 - 0.001, "stream_end": 0.5}
    assert (rec.name, rec.session, rec.recorded_at, rec.outcome) == (
        "t.e-r2",
        "t[e-r2]",
        1234.5,
        "passed",
    )


def test_external_gaps_are_startup_then_agent_and_overlaps_count_none() -> None:
    """A side request (index 0) from 100 to 300 beside turn 0 (150 to 400); turn 1 starts at
    350, before turn 0's answer ended: no gap. Turn 2 at 900; the process exits at 1000."""
    turns = (_turn(0, tool_s=0.0), _turn(1, tool_s=0.0), _turn(2, tool_s=0.0))
    side = SideRequestRecord(
        start_s=0.1,
        wall_s=0.2,
        method="POST",
        path="/v1/messages",
        model="small",
        why="no tools",
        streamed=True,
        status=200,
        marks_s={"stream_end": 0.2},
        usage=Usage(input_tokens=3, output_tokens=2),
        stop_reason="end_turn",
    )
    sent = SentLog(
        started_ns=0,
        ended_ns=1000 * MS,
        gaps_are="agent",
        requests=(
            _sent("turn", 0, 150, 400, {"t": 0}),
            _sent("side", 0, 100, 300, {"s": 0}),
            _sent("turn", 1, 350, 600, {"t": 1}),
            _sent("turn", 2, 900, 950, {"t": 2}),
        ),
    )
    rec = recording_from(_record(turns, side_requests=(side,)), sent, wire="anthropic", model="m")
    assert [(r.kind, r.index) for r in rec.requests] == [
        ("side", 0),
        ("turn", 0),
        ("turn", 1),
        ("turn", 2),
    ]
    assert [r.gap_phases for r in rec.requests] == [
        {"startup": 0.1},
        {"agent": 0.0},
        {"agent": 0.0},
        {"agent": 0.3},
    ]
    assert rec.requests[0].usage == Usage(input_tokens=3, output_tokens=2)
    assert rec.requests[0].marks_s == {"stream_end": 0.2}
    assert rec.tail_phases == {"winddown": 0.05}


def test_phases_sum_exactly_whatever_the_split() -> None:
    """Gap and tool lengths drawn at random: the two phases always add up to the gap, as
    floats, exactly."""
    rng = random.Random(7)
    for _ in range(300):
        tool_ms = rng.randrange(0, 5000)
        gap_ns = rng.randrange(0, 10**11)
        turns = (_turn(0, tool_s=tool_ms / 1000 + rng.random() / 1e7), _turn(1, tool_s=0.0))
        sent = SentLog(
            started_ns=0,
            ended_ns=10**12,
            requests=(
                _sent("turn", 0, 0, 1, {}),
                replace(
                    _sent("turn", 1, 0, 0, {}), started_ns=MS + gap_ns, ended_ns=MS + gap_ns + 1
                ),
            ),
        )
        _assert_gaps_sum(recording_from(_record(turns), sent, wire="anthropic", model="m"))


def test_planned_tokens_add_up_every_request() -> None:
    turns = (_turn(0, tool_s=0.0), _turn(1, tool_s=0.0))
    sent = SentLog(
        started_ns=0,
        ended_ns=10 * MS,
        requests=(_sent("turn", 0, 0, 1, {}), _sent("turn", 1, 2, 3, {})),
    )
    rec = recording_from(_record(turns), sent, wire="anthropic", model="m")
    planned = planned_tokens([rec, rec])
    # Turn 0: 10 in, none cached; turn 1: 11 + 100 cached; 7 out each; twice.
    assert planned.input_tokens == 2 * (10 + 111)
    assert planned.cached_tokens == 200
    assert planned.output_tokens == 28
    assert planned.requests == 4


# --------------------------------------------------------------------------- deltas


def _growing_bodies(turns: int) -> list[dict[str, Any]]:
    """Built-in-agent-shaped bodies: the conversation grows, the breakpoint moves."""
    bodies = []
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": "go"}]}]
    for i in range(turns):
        marked = [dict(m) for m in messages]
        marked[-1] = {
            **marked[-1],
            "content": [{**marked[-1]["content"][-1], "cache_control": {"type": "ephemeral"}}],
        }
        bodies.append({"model": "m", "max_tokens": 4096, "messages": marked, "stream": True})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": f"step {i}"}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": f"result {i}"}]})
    return bodies


def _round_trip(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    previous: dict[str, Any] = {}
    out = []
    for body in bodies:
        delta = json.loads(json.dumps(body_delta(previous, body)))
        previous = apply_delta(previous, delta)
        out.append(previous)
    return out


def test_a_growing_conversation_is_stored_as_what_is_new() -> None:
    bodies = _growing_bodies(4)
    # The first message lost its breakpoint: nothing in common, the list is whole.
    assert body_delta(bodies[0], bodies[1]) == {"set": {"messages": bodies[1]["messages"]}}
    # Later the conversation is kept up to the message that lost its breakpoint.
    delta = body_delta(bodies[2], bodies[3])
    assert delta == {"extend": {"messages": {"keep": 4, "add": bodies[3]["messages"][4:]}}}
    assert _round_trip(bodies) == bodies


@pytest.mark.parametrize(
    ("previous", "body"),
    [
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # same values, keys reordered
        ({"a": 1, "b": 2}, {"a": 1}),  # a key removed
        ({"a": 1}, {"a": 1, "c": [1]}),  # a key added
        ({"a": 1}, {"a": 1.0}),  # the same number, another JSON type
        ({"a": 1}, {"a": True}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": 2, "x": 1}}),  # nested key order
        ({"a": [1, 2, 3]}, {"a": [1, 2]}),  # a list that shrank
        ({"a": [1, 2]}, {"a": [9, 2, 3]}),  # a list with no common prefix
        ({"a": [1, 2]}, {"a": "no longer a list"}),
        ({"b": 1, "a": 2}, {"c": 0, "a": 3}),  # removed, changed, added, reordered
    ],
)
def test_round_trip_gives_the_exact_body_key_order_and_types_included(
    previous: dict[str, Any], body: dict[str, Any]
) -> None:
    (_, got) = _round_trip([previous, body])
    assert json.dumps(got) == json.dumps(body)
    assert [type(v) for v in got.values()] == [type(v) for v in body.values()]


def test_random_bodies_round_trip_exactly() -> None:
    rng = random.Random(3)
    atoms: list[Any] = [0, 1, 1.0, True, False, None, "x", "y", [], {}]
    bodies: list[dict[str, Any]] = []
    body: dict[str, Any] = {}
    for _ in range(200):
        body = dict(body)
        for _ in range(rng.randrange(1, 4)):
            key = rng.choice("abcdef")
            roll = rng.random()
            if roll < 0.2:
                body.pop(key, None)
            elif roll < 0.5 and isinstance(body.get(key), list):
                kept = body[key][: rng.randrange(len(body[key]) + 1)]
                body[key] = [*kept, rng.choice(atoms)]
            elif roll < 0.6:
                body = {k: body[k] for k in rng.sample(list(body), len(body))}
            else:
                body[key] = rng.choice([*atoms, [rng.choice(atoms)], {"k": rng.choice(atoms)}])
        bodies.append(body)
    got = _round_trip(bodies)
    assert [json.dumps(b) for b in got] == [json.dumps(b) for b in bodies]


# --------------------------------------------------------------------------- the file


def _recording(n: int = 3) -> Recording:
    bodies = _growing_bodies(n)
    requests = tuple(
        RecordedRequest(
            kind="turn",
            index=i,
            method="POST",
            path="/v1/messages?beta=true",
            header_names=("content-type", "x-api-key"),
            body=b,
            gap_s=0.25,
            gap_phases={"tool": 0.125, "overhead": 0.125},
            wall_s=1.5,
            status=200,
            usage=Usage(input_tokens=5, output_tokens=9, thinking_tokens=None),
            usage_raw={"input_tokens": 5},
            stop_reason="tool_use",
            marks_s={"request_sent": 0.001, "first_token": None},
            stream=True,
        )
        for i, b in enumerate(bodies)
    )
    return Recording(
        name="t.e-r0",
        session="t[e-r0]",
        task="t",
        agent="builtin",
        wire="anthropic",
        model="m",
        endpoint="e",
        recorded_at=1.5,
        outcome="passed",
        wall_s=9.0,
        requests=requests,
        tail_s=0.5,
        tail_phases={"tool": 0.25, "overhead": 0.25},
    )


def test_a_recording_file_is_private_atomic_and_reads_back_equal(tmp_path: Path) -> None:
    recording = _recording()
    directory = tmp_path / "not" / "yet"
    path = write_recording(directory, recording)
    assert path == directory / f"t.e-r0{SUFFIX}"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(directory) == [path.name]  # no temporary file left
    data = json.loads(_unpacked(path))
    assert data["kind"] == "agentspeed-recording"
    assert data["schema"] == 1
    assert "agentspeed_version" in data
    back = read_recording(path)
    assert back == replace(recording, source=str(path))
    assert [json.dumps(r.body) for r in back.requests] == [
        json.dumps(r.body) for r in recording.requests
    ]
    # Written again: the same bytes (no time stamp in the gzip header).
    before = path.read_bytes()
    write_recording(directory, recording)
    assert path.read_bytes() == before


def test_read_recordings_reads_a_directory_by_name(tmp_path: Path) -> None:
    for name in ("b.e-r0", "a.e-r1", "a.e-r0"):
        write_recording(tmp_path, replace(_recording(1), name=name))
    (tmp_path / "notes.txt").write_text("not a recording")
    assert [r.name for r in read_recordings(tmp_path)] == ["a.e-r0", "a.e-r1", "b.e-r0"]
    (one,) = read_recordings(tmp_path / f"b.e-r0{SUFFIX}")
    assert one.name == "b.e-r0"


def _gz(data: Any) -> bytes:
    text = data if isinstance(data, bytes) else json.dumps(data).encode()
    return gzip.compress(text)


def _edited(change: Any) -> bytes:
    data = recording_json(_recording())
    change(data)
    return _gz(data)


def _set(path: str, value: Any) -> Any:
    def change(data: Any) -> None:
        *parents, last = path.split(".")
        for key in parents:
            data = data[int(key)] if key.isdigit() else data[key]
        if value is KeyError:
            del data[last]
        else:
            data[last] = value

    return change


_GOOD = json.dumps(recording_json(_recording())).encode()

BAD_FILES: dict[str, tuple[bytes | None, str]] = {
    "missing": (None, "no such recording"),
    "not gzip": (b'{"kind": "agentspeed-recording"}', "not a recording (not gzip-compressed)"),
    "cut-off gzip": (_gz(_GOOD)[:-30], "the compressed data stops short; is the file truncated?"),
    "cut-off JSON": (
        _gz(_GOOD[:-40]),
        "not valid JSON (it stops mid-document at line 1; is the file truncated?)",
    ),
    "not JSON": (_gz(b"hello, world"), "not valid JSON (Expecting value at line 1 column 1)"),
    "not UTF-8": (_gz(b'{"kind": "\xff"}'), "not UTF-8 text (invalid start byte at byte 10)"),
    "a list": (_gz([1, 2]), 'not a recording (no "kind": "agentspeed-recording")'),
    "a run file": (
        _gz({"schema": "agentspeed.run/1"}),
        'not a recording (no "kind": "agentspeed-recording")',
    ),
    "later schema": (
        _edited(_set("schema", 2)),
        "written by a later pytest-agentspeed (0.1.0, recording schema 2; this one reads schema 1"
        " and earlier): upgrade pytest-agentspeed",
    ),
    "schema a string": (_edited(_set("schema", "1")), "schema: a string, not a whole number"),
    "missing field": (_edited(_set("requests.1.gap_s", KeyError)), "requests[1].gap_s: missing"),
    "missing top field": (_edited(_set("task", KeyError)), "task: missing"),
    "wrong type": (_edited(_set("wall_s", "9")), "wall_s: a string, not a number"),
    "bool for a number": (
        _edited(_set("requests.0.index", True)),
        "requests[0].index: a boolean, not a whole number",
    ),
    "bad usage": (
        _edited(_set("requests.0.usage.output_tokens", None)),
        "requests[0].usage.output_tokens: null, not a whole number",
    ),
    "bad mark": (
        _edited(_set("requests.2.marks_s.first_token", "soon")),
        "requests[2].marks_s.first_token: a string, not a number",
    ),
    "bad kind": (
        _edited(_set("requests.0.kind", "main")),
        "requests[0].kind: 'main', not turn or side",
    ),
    "bad header names": (
        _edited(_set("requests.0.header_names", [1])),
        "requests[0].header_names: not a list of strings",
    ),
    "bad wire": (
        _edited(_set("wire", "grpc")),
        "wire: 'grpc' is no wire (one of anthropic, openai, responses)",
    ),
    "requests not a list": (_edited(_set("requests", {})), "requests: an object, not a list"),
    "delta removes a missing key": (
        _edited(_set("requests.1.body", {"remove": ["nope"]})),
        "requests[1].body: the delta does not apply (it removes 'nope', which the previous body"
        " does not have)",
    ),
    "delta keeps too much": (
        _edited(_set("requests.1.body", {"extend": {"messages": {"keep": 99, "add": []}}})),
        "requests[1].body: the delta does not apply (it keeps 99 items of 'messages', which has 1)",
    ),
    "delta extends no list": (
        _edited(_set("requests.1.body", {"extend": {"model": {"keep": 1, "add": []}}})),
        "requests[1].body: the delta does not apply (it extends 'model', which is no list in the"
        " previous body)",
    ),
    "delta of a bad order": (
        _edited(_set("requests.1.body", {"order": ["model"]})),
        "requests[1].body: the delta does not apply (its key order does not name the body's keys)",
    ),
    "delta not an object": (
        _edited(_set("requests.0.body", [])),
        "requests[0].body: the delta does not apply (the body delta is a list, not an object)",
    ),
    "delta of unknown keys": (
        _edited(_set("requests.0.body", {"patch": 1})),
        "requests[0].body: the delta does not apply (the body delta has unknown keys ['patch'])",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_every_bad_file_is_one_line_naming_it(tmp_path: Path, case: str) -> None:
    content, message = BAD_FILES[case]
    path = tmp_path / f"bad{SUFFIX}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RecordingError) as caught:
        read_recording(path)
    assert str(caught.value) == f"{path}: {message}"
    # A directory holding it fails alike.
    if content is not None:
        with pytest.raises(RecordingError, match="^" + str(path)):
            read_recordings(tmp_path)


def test_an_unreadable_path_and_a_directory_without_recordings(tmp_path: Path) -> None:
    with pytest.raises(RecordingError) as caught:
        read_recording(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: cannot read (")
    with pytest.raises(RecordingError) as caught:
        read_recordings(tmp_path)
    assert str(caught.value) == f"{tmp_path}: no recordings (*{SUFFIX}) in this directory"
    with pytest.raises(RecordingError) as caught:
        read_recordings(tmp_path / "nowhere")
    assert str(caught.value) == f"{tmp_path / 'nowhere'}: no such recording"


def test_the_good_file_reads(tmp_path: Path) -> None:
    """The bad cases above are edits of this file, which reads."""
    path = tmp_path / f"good{SUFFIX}"
    path.write_bytes(_gz(_GOOD))
    assert read_recording(path).requests == _recording().requests
