"""Sending a replay: ``send_raw`` on each wire's client, the replayed body, and a whole
recorded session replayed to the real simulator (and to a scripted server) on loopback."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx2
import pytest
from conftest import StartSim
from scripted_server import Reply, ScriptedServer, text_reply

from pytest_agentspeed.clients import (
    STREAM_RETRIES,
    ModelResponse,
    RawRequest,
    RawSender,
)
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.clients.openai_client import (
    OpenAIClient,
    to_openai_messages,
    to_openai_tool,
)
from pytest_agentspeed.clients.responses_client import (
    ResponsesClient,
    to_responses_input,
    to_responses_tool,
)
from pytest_agentspeed.endpoints import Api, Endpoint, SimOptions
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import Usage
from pytest_agentspeed.replay.recording import RecordedRequest, Recording
from pytest_agentspeed.replay.session import pin_for, replay_body, replay_session
from pytest_agentspeed.run.runner import session_id
from pytest_agentspeed.simulator import MountConfig
from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.timing import ALL_PHASES, EventLog

WIRES: tuple[Api, ...] = ("anthropic", "openai", "responses")
PATHS: dict[Api, str] = {
    "anthropic": "/v1/messages?beta=true",
    "openai": "/v1/chat/completions",
    "responses": "/v1/responses",
}
TOOLS = [
    {
        "name": "read_file",
        "description": "Read a file.",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
    }
]
SYSTEM = [{"type": "text", "text": "You are a careful coding agent."}]
#: Recorded per request: output tokens (small, so the simulator's own replies are longer and
#: the pin decides), the gap before it and who filled it.
OUTPUTS = (3, 5, 2, 4)
GAPS = (0.004, 0.012, 0.008, 0.010)
TAIL = 0.006


# Recordings built by hand, shaped like the built-in agent's on each wire.


def conversation(turns: int) -> list[dict[str, Any]]:
    """The Anthropic-shaped conversation before turn ``turns``: the task, then one tool call
    and its result per earlier turn (so the simulator counts ``turns`` assistant messages)."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Fix the bug in app.py."}]}
    ]
    for k in range(turns):
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Looking at part {k}."},
                    {"type": "tool_use", "id": f"toolu_{k}", "name": "read_file", "input": {}},
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": f"line {k}"}
                ],
            }
        )
    return messages


def wire_body(wire: Api, turns: int, *, max_tokens: int = 4096) -> dict[str, Any]:
    """The body the wire's live client would have sent for turn ``turns``."""
    messages = conversation(turns)
    if wire == "anthropic":
        return {
            "model": "recorded-model",
            "max_tokens": max_tokens,
            "system": SYSTEM,
            "messages": messages,
            "tools": TOOLS,
            "metadata": {"user_id": "recorded-session"},
            "stream": True,
        }
    if wire == "openai":
        return {
            "model": "recorded-model",
            "messages": to_openai_messages(SYSTEM, messages),
            "tools": [to_openai_tool(t) for t in TOOLS],
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "recorded-session",
        }
    return {
        "model": "recorded-model",
        "instructions": SYSTEM[0]["text"],
        "input": to_responses_input(messages),
        "tools": [to_responses_tool(t) for t in TOOLS],
        "max_output_tokens": max_tokens,
        "stream": True,
        "store": False,
        "prompt_cache_key": "recorded-session",
    }


def recorded(wire: Api, index: int, *, output: int, gap: float = 0.0, **kw: Any) -> RecordedRequest:
    fields: dict[str, Any] = {
        "kind": "turn",
        "index": index,
        "method": "POST",
        "path": PATHS[wire],
        "header_names": ("content-type",),
        "body": wire_body(wire, index),
        "gap_s": gap,
        "gap_phases": {"tool": gap * 0.75, "overhead": gap * 0.25} if index else {"overhead": gap},
        "wall_s": 0.5,
        "status": 200,
        "usage": Usage(input_tokens=100, output_tokens=output),
        "stop_reason": "tool_use",
    }
    return RecordedRequest(**(fields | kw))


def recording(wire: Api, requests: tuple[RecordedRequest, ...] | None = None) -> Recording:
    if requests is None:
        requests = tuple(
            recorded(wire, i, output=out, gap=gap)
            for i, (out, gap) in enumerate(zip(OUTPUTS, GAPS, strict=True))
        )
    return Recording(
        name=f"fix-{wire}.rec-r0",
        session=f"fix-{wire}[rec-r0]",
        task=f"fix-{wire}",
        agent="builtin",
        wire=wire,
        model="recorded-model",
        endpoint="rec",
        recorded_at=0.0,
        outcome="passed",
        wall_s=3.0,
        requests=requests,
        tail_s=TAIL,
        tail_phases={"tool": TAIL / 2, "overhead": TAIL / 2},
    )


def sim_endpoint(wire: Api, name: str = "sim") -> Endpoint:
    return Endpoint(
        name=name,
        api=wire,
        model="sim-model",
        sim=SimOptions(profile="ultraspeed", time_scale=0.01, jitter=False, api_given=True),
    )


def client_for(wire: Api, base_url: str, **options: Any) -> Any:
    if wire == "anthropic":
        return AnthropicClient(model="unused", base_url=base_url, api_key="sk-test", **options)
    cls = OpenAIClient if wire == "openai" else ResponsesClient
    return cls(model="unused", base_url=f"{base_url}/v1", api_key=None, **options)


@pytest.fixture
def sim(start_sim: StartSim) -> SimulatorProcess:
    return start_sim(MountConfig(key="r", profile="ultraspeed", time_scale=0.01, jitter=False))


class Sleeps:
    """An injected ``sleep`` that keeps what it was asked and does not sleep."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


# A whole session replayed to the real simulator.


@pytest.mark.parametrize("wire", WIRES)
def test_a_recording_is_served_in_order_and_its_phases_sum_to_its_wall(
    sim: SimulatorProcess, wire: Api
) -> None:
    rec = recording(wire)
    endpoint = sim_endpoint(wire)
    client = client_for(wire, sim.base_url("r"))
    progress: list[tuple[int, int, float]] = []
    try:
        result = replay_session(
            rec, client, endpoint=endpoint, repeat=2, progress=lambda *a: progress.append(a)
        )
    finally:
        client.close()
    record = result.record
    sid = session_id(rec.name, "sim", 2)
    assert (record.id, record.task, record.agent, record.slot) == (
        sid,
        rec.name,
        "replay",
        f"{rec.name}/r2",
    )
    assert (record.outcome, record.error) == ("passed", None)
    # The server's own log: every request, in order, as the replayed session's turns 0..3.
    log = sim.schedule()
    assert [(e["session"], e["turn"], e["side"]) for e in log] == [(sid, t, None) for t in range(4)]
    # The output pinned to the recorded length. The simulator's replies are longer than these,
    # so max_tokens caps them; min_tokens/ignore_eos (pin "exact", sent here) lengthen shorter
    # ones once the simulator honours them.
    assert [e["output_tokens"] for e in log] == list(OUTPUTS)
    assert [t.usage.output_tokens for t in record.turns] == list(OUTPUTS)
    assert record.usage.output_tokens == sum(OUTPUTS)
    assert [t.index for t in record.turns] == [0, 1, 2, 3]
    assert [t.error for t in record.turns] == [None] * 4
    starts = [t.start_s for t in record.turns]
    assert starts == sorted(starts)
    assert starts[0] is not None
    assert starts[0] >= GAPS[0]
    # Phases: the requests' own, the slept gaps as recorded, and overhead the rest.
    assert set(record.phases_s) == set(ALL_PHASES)
    assert sum(record.phases_s.values()) == pytest.approx(record.wall_s, abs=1e-9)
    assert min(record.phases_s.values()) >= 0
    for phase in ("ttft", "generation", "retry_wait", "reasoning"):
        assert record.phases_s[phase] == pytest.approx(
            sum(t.phases_s[phase] for t in record.turns), abs=1e-12
        )
    # A sleep lasts at least what it was asked: the gaps' tool shares are at least the
    # recorded ones.
    asked_tool = sum(g * 0.75 for g in GAPS[1:]) + TAIL / 2
    assert record.phases_s["tool"] >= asked_tool
    assert record.phases_s["startup"] == record.phases_s["agent"] == 0.0
    assert [(n, tokens) for n, tokens, _ in progress] == [
        (1, 3),
        (2, 8),
        (3, 10),
        (4, 14),
    ]


@pytest.mark.parametrize(("gaps", "factor"), [(0.0, None), (1.0, 1.0), (2.0, 2.0)])
def test_the_gaps_slept_are_the_recorded_ones_times_the_factor(
    sim: SimulatorProcess, gaps: float, factor: float | None
) -> None:
    sleeps = Sleeps()
    client = client_for("anthropic", sim.base_url("r"))
    try:
        result = replay_session(
            recording("anthropic"),
            client,
            endpoint=sim_endpoint("anthropic"),
            repeat=0,
            gaps=gaps,
            sleep=sleeps,
        )
    finally:
        client.close()
    assert result.record.outcome == "passed"
    expected = [] if factor is None else [g * factor for g in (*GAPS, TAIL)]
    assert sleeps.asked == expected
    assert len(sim.schedule()) == 4
    phases = result.record.phases_s
    assert sum(phases.values()) == pytest.approx(result.record.wall_s, abs=1e-9)


def test_an_endpoint_that_rejects_a_request_ends_the_replay_there(
    sim: SimulatorProcess,
) -> None:
    wire: Api = "anthropic"
    bad = recorded(wire, 1, output=5, gap=0.0)
    bad = replace(bad, body=bad.body | {"tools": "not a list"})
    requests = (
        recorded(wire, 0, output=3),
        bad,
        recorded(wire, 2, output=2),
        recorded(wire, 3, output=4),
    )
    client = client_for(wire, sim.base_url("r"))
    try:
        result = replay_session(
            recording(wire, requests), client, endpoint=sim_endpoint(wire), repeat=0
        )
    finally:
        client.close()
    record = result.record
    assert record.outcome == "error"
    assert record.error is not None
    assert "\n" not in record.error
    assert record.error.startswith("invalid_request_error: HTTP 400: tools")
    assert [(t.index, t.error) for t in record.turns] == [(0, None), (1, record.error)]
    # The rejected request was not logged as a turn by the server; nothing after it was sent.
    assert [e["turn"] for e in sim.schedule()] == [0]
    assert sum(record.phases_s.values()) == pytest.approx(record.wall_s, abs=1e-9)


# send_raw: the body sent is the body given.


def test_send_raw_sends_replay_bodys_output_exactly_through_the_anthropic_sdk() -> None:
    rec = recording("anthropic")
    endpoint = Endpoint(
        name="named",
        api="anthropic",
        model="claude-x",
        base_url="http://unused",
        options={"thinking_budget": 2048, "extra_body": {"service_tier": "auto"}},
    )
    body = replay_body(rec.requests[1], endpoint=endpoint, session_id="s[named-r0]", pin="exact")
    server = ScriptedServer(
        [Reply(text_reply(first_event=0, first_token=0, step=0, pieces=["a", "b"]))]
    )
    with server.running():
        client = AnthropicClient(
            model="unused", base_url=server.url, api_key="sk-test", extra_body={"x": 1}
        )
        try:
            response = client.send_raw(RawRequest(path=rec.requests[1].path, body=body), EventLog())
        finally:
            client.close()
    assert server.requests == [body]
    assert server.paths == ["/v1/messages?beta=true"]
    assert response.usage.output_tokens == 2


@pytest.mark.parametrize("wire", ["openai", "responses"])
def test_send_raw_posts_the_body_as_given_on_openais_wires(wire: Api) -> None:
    seen: list[tuple[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx2.Response(400, json={"error": {"type": "invalid_request_error"}})

    body = replay_body(
        recorded(wire, 2, output=7), endpoint=sim_endpoint(wire), session_id="s", pin="exact"
    )
    client = client_for(
        wire,
        "http://mock",
        transport=httpx2.MockTransport(handler),
        extra_body={"x": 1},
        max_tokens=9,
    )
    try:
        with pytest.raises(EndpointError, match="HTTP 400"):
            client.send_raw(RawRequest(path=PATHS[wire], body=body), EventLog())
    finally:
        client.close()
    assert seen == [(PATHS[wire], body)]


@pytest.mark.parametrize("wire", WIRES)
def test_send_raw_refuses_another_wires_path_and_an_unstreamed_body(wire: Api) -> None:
    client = client_for(wire, "http://127.0.0.1:9")
    body = wire_body(wire, 0)
    try:
        for other in WIRES:
            if other != wire:
                with pytest.raises(ValueError, match="path"):
                    client.send_raw(RawRequest(path=PATHS[other], body=body), EventLog())
        with pytest.raises(ValueError, match="stream"):
            client.send_raw(RawRequest(path=PATHS[wire], body=body | {"stream": False}), EventLog())
    finally:
        client.close()


# The replayed body.


def test_replay_body_on_anthropic_makes_the_recorded_body_the_endpoints() -> None:
    request = recorded("anthropic", 1, output=300)
    original = json.loads(json.dumps(request.body))
    endpoint = Endpoint(
        name="e",
        api="anthropic",
        model="claude-new",
        options={"extra_body": {"service_tier": "auto", "top_k": 5}},
    )
    body = replay_body(request, endpoint=endpoint, session_id="t[e-r1]", pin="max_tokens")
    assert body == original | {
        "model": "claude-new",
        "max_tokens": 300,
        "metadata": {"user_id": "t[e-r1]"},
        "service_tier": "auto",
        "top_k": 5,
    }
    assert request.body == original  # the recording is left as it was
    exact = replay_body(request, endpoint=endpoint, session_id="t[e-r1]", pin="exact")
    assert exact == body | {"min_tokens": 300, "ignore_eos": True}


def test_replay_body_adds_the_thinking_budget_when_it_would_not_fit() -> None:
    request = recorded("anthropic", 0, output=300)
    thinking = Endpoint(name="e", api="anthropic", model="m", options={"thinking_budget": 1024})
    body = replay_body(request, endpoint=thinking, session_id="s", pin="exact")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert (body["max_tokens"], body["min_tokens"]) == (1324, 300)
    # A budget below the pinned length leaves it: thinking and answer share the recorded total.
    small = replace(thinking, options={"thinking_budget": 200})
    assert replay_body(request, endpoint=small, session_id="s", pin="exact")["max_tokens"] == 300
    adaptive = replace(thinking, options={"thinking": "adaptive"})
    body = replay_body(request, endpoint=adaptive, session_id="s", pin="max_tokens")
    assert (body["thinking"], body["max_tokens"]) == ({"type": "adaptive"}, 300)


def test_replay_body_on_chat_completions_pins_the_limit_the_body_used() -> None:
    request = recorded("openai", 1, output=42)
    endpoint = sim_endpoint("openai")
    body = replay_body(request, endpoint=endpoint, session_id="s", pin="max_tokens")
    assert body == request.body | {"model": "sim-model", "max_tokens": 42, "user": "s"}
    newer = replace(
        request,
        body={k: v for k, v in request.body.items() if k not in ("max_tokens", "stream_options")}
        | {"max_completion_tokens": 4096, "stream": False},
    )
    body = replay_body(newer, endpoint=endpoint, session_id="s", pin="exact")
    assert "max_tokens" not in body
    assert (body["max_completion_tokens"], body["min_tokens"], body["ignore_eos"]) == (
        42,
        42,
        True,
    )
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})


def test_replay_body_on_responses_pins_max_output_tokens_and_names_the_cache() -> None:
    request = recorded("responses", 2, output=17)
    endpoint = Endpoint(
        name="v",
        api="responses",
        model="gpt-x",
        base_url="http://h/v1",
        options={"extra_body": {"reasoning": {"effort": "low"}}},
    )
    body = replay_body(request, endpoint=endpoint, session_id="s[v-r0]", pin="max_tokens")
    assert body == request.body | {
        "model": "gpt-x",
        "max_output_tokens": 17,
        "prompt_cache_key": "s[v-r0]",
        "reasoning": {"effort": "low"},
    }


@pytest.mark.parametrize("wire", WIRES)
def test_a_request_without_an_answer_keeps_its_recorded_limit(wire: Api) -> None:
    key = {"anthropic": "max_tokens", "openai": "max_tokens", "responses": "max_output_tokens"}
    endpoint = sim_endpoint(wire)
    for request in (
        recorded(wire, 0, output=0),
        recorded(wire, 0, output=50, status=None, error="connection_error: dropped"),
        recorded(wire, 0, output=50, status=529),
    ):
        body = replay_body(request, endpoint=endpoint, session_id="s", pin="exact")
        assert body[key[wire]] == 4096
        assert "min_tokens" not in body
        assert "ignore_eos" not in body
    # An endpoint's own max_tokens option applies where nothing is pinned, as it does live.
    limited = replace(endpoint, options={"max_tokens": 1000})
    body = replay_body(recorded(wire, 0, output=0), endpoint=limited, session_id="s", pin="exact")
    assert body[key[wire]] == 1000


def test_pin_for_asks_for_exact_lengths_only_where_they_are_honoured() -> None:
    assert pin_for(sim_endpoint("anthropic")) == "exact"
    real = Endpoint(name="a", api="anthropic", model="m")
    assert pin_for(real) == "max_tokens"
    vllm = Endpoint(
        name="v",
        api="openai",
        model="m",
        base_url="http://h/v1",
        options={"extra_body": {"ignore_eos": True}},
    )
    assert pin_for(vllm) == "exact"
    assert pin_for(replace(vllm, options={"extra_body": {"ignore_eos": False}})) == "max_tokens"


# Broken streams are sent again, as the built-in agent sends a turn again.


class Flaky:
    """A RawSender whose streams break off ``breaks`` times, then answer."""

    retry_wait_s = 0.25

    def __init__(self, breaks: int) -> None:
        self.breaks = breaks
        self.bodies: list[dict[str, Any]] = []

    def send_raw(self, request: RawRequest, log: EventLog) -> ModelResponse:
        self.bodies.append(request.body)
        log.add("attempt")
        if len(self.bodies) <= self.breaks:
            log.add("attempt_failed", detail="overloaded_error")
            raise EndpointError("overloaded_error", "Overloaded", 200, mid_stream=True)
        return ModelResponse(
            content=[], tool_calls=(), stop_reason="end_turn", usage=Usage(), usage_raw={}
        )


def replay_flaky(breaks: int) -> tuple[Flaky, Sleeps, Any]:
    rec = recording("anthropic", (recorded("anthropic", 0, output=3),))
    client, sleeps = Flaky(breaks), Sleeps()
    sender: RawSender = client
    result = replay_session(
        rec, sender, endpoint=sim_endpoint("anthropic"), repeat=0, gaps=0, sleep=sleeps
    )
    return client, sleeps, result.record


def test_a_broken_stream_is_sent_again_with_the_agents_back_off() -> None:
    client, sleeps, record = replay_flaky(STREAM_RETRIES)
    assert len(client.bodies) == STREAM_RETRIES + 1
    assert client.bodies[0] == client.bodies[-1]
    assert sleeps.asked == [0.25, 0.5]
    assert record.outcome == "passed"
    client, sleeps, record = replay_flaky(STREAM_RETRIES + 1)
    assert (len(client.bodies), record.outcome) == (STREAM_RETRIES + 1, "error")
    assert record.error == "overloaded_error: Overloaded"


def test_a_recording_of_another_wire_is_refused() -> None:
    with pytest.raises(ValueError, match="openai wire"):
        replay_session(recording("openai"), Flaky(0), endpoint=sim_endpoint("anthropic"), repeat=0)


def test_a_side_request_is_replayed_in_its_place_and_recorded_beside_the_turns(
    sim: SimulatorProcess,
) -> None:
    wire: Api = "anthropic"
    title = recorded(wire, 0, output=6, kind="side")
    title = replace(title, body={k: v for k, v in title.body.items() if k != "tools"})
    requests = (recorded(wire, 0, output=3), title, recorded(wire, 1, output=5))
    client = client_for(wire, sim.base_url("r"))
    try:
        result = replay_session(
            recording(wire, requests), client, endpoint=sim_endpoint(wire), repeat=0
        )
    finally:
        client.close()
    record = result.record
    assert record.outcome == "passed"
    assert [t.index for t in record.turns] == [0, 1]
    (side,) = record.side_requests
    assert (side.why, side.model, side.path, side.status) == (
        "no tools",
        "sim-model",
        PATHS[wire],
        200,
    )
    assert side.usage.output_tokens == 6
    assert record.usage.output_tokens == 3 + 6 + 5
    first, second = record.turns
    assert first.start_s is not None
    assert second.start_s is not None
    assert first.start_s + first.wall_s <= side.start_s <= second.start_s - side.wall_s
    # In its recorded place: the server saw the side request (its conversation that of turn 0,
    # its pinned length 6) between the turns.
    assert [(e["turn"], e["output_tokens"]) for e in sim.schedule()] == [(0, 3), (0, 6), (1, 5)]
    assert sum(record.phases_s.values()) == pytest.approx(record.wall_s, abs=1e-9)
