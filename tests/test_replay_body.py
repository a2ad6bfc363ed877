"""The body a replay sends: ``replay_body`` and ``pin_for``, and ``send_raw`` on each wire's
client sending it exactly as given."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx2
import pytest
from factories import PATHS, WIRES, client_for, recorded, recording, sim_endpoint, wire_body
from scripted_server import Reply, ScriptedServer, text_reply

from pytest_agentspeed.clients import RawRequest
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.endpoints import Api, Endpoint
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.replay.session import pin_for, replay_body
from pytest_agentspeed.timing import EventLog

# send_raw: the body sent is the body given.


def test_send_raw_sends_replay_bodys_output_exactly_through_the_anthropic_sdk() -> None:
    rec = recording(
        "anthropic", (recorded("anthropic", 0, output=3), recorded("anthropic", 1, output=5))
    )
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
