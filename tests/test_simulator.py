"""The simulated endpoint over real HTTP, parsed by the official anthropic SDK."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from factories import conversation

from pytest_agentspeed.agents.builtin import BuiltinAgent
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.run.runner import run_session
from pytest_agentspeed.simulator import MountConfig
from pytest_agentspeed.tasks import load_task

TASK = "fix-pagination-off-by-one"


@pytest.fixture
def sim(start_sim: StartSim, example_suite: Path) -> Any:
    # Fast and deterministic: delays x0.01, medians instead of random draws.
    return start_sim(
        MountConfig(key="fast", profile="ultraspeed", time_scale=0.01, jitter=False),
        task_dirs=(example_suite,),
    )


@pytest.fixture
def instruction(example_suite: Path) -> str:
    return load_task(example_suite / TASK / "agenttask.toml").instruction


@pytest.fixture
def sdk() -> Iterator[Callable[[str], anthropic.Anthropic]]:
    """Official SDK clients on a base URL; closed after the test."""
    clients: list[anthropic.Anthropic] = []

    def make(base_url: str) -> anthropic.Anthropic:
        clients.append(anthropic.Anthropic(api_key="sk-test", base_url=base_url, max_retries=0))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


SDK = Callable[[str], anthropic.Anthropic]
StartSim = Callable[..., Any]


SHAPES: dict[str, dict[str, Any]] = {
    # name: request fields; the expected block types and stop reason are checked below
    "unknown task: text only": {"messages": [{"role": "user", "content": "hello"}]},
    "tool_use": {"turn": 0},
    "parallel tool_use": {"turn": 1},
    "thinking + text + tool_use": {
        "turn": 2,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    },
    "omitted thinking": {
        "turn": 2,
        "thinking": {"type": "adaptive", "display": "omitted"},
    },
    "cut off by max_tokens": {"turn": 2, "max_tokens": 7},
    "final summary": {"turn": 9},
}

EXPECTED = {
    "unknown task: text only": (["text"], "end_turn"),
    "tool_use": (["text", "tool_use"], "tool_use"),
    "parallel tool_use": (["text", "tool_use", "tool_use"], "tool_use"),
    "thinking + text + tool_use": (["thinking", "text", "tool_use"], "tool_use"),
    "omitted thinking": (["thinking", "text", "tool_use"], "tool_use"),
    "cut off by max_tokens": (["text"], "max_tokens"),
    "final summary": (["text"], "end_turn"),
}


def request(shape: str, instruction: str) -> dict[str, Any]:
    fields = dict(SHAPES[shape])
    turn = fields.pop("turn", None)
    if turn is not None:
        fields["messages"] = conversation(instruction, turn)
    fields.setdefault("max_tokens", 4096)
    return {"model": "sim-test", **fields}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_sdk_stream_helper_parses_every_shape(
    sim: Any, sdk: SDK, instruction: str, shape: str
) -> None:
    client = sdk(sim.base_url("fast"))
    with client.messages.stream(**request(shape, instruction)) as stream:
        events = [e.type for e in stream]
        message = stream.get_final_message()
    blocks, stop = EXPECTED[shape]
    assert [b.type for b in message.content] == blocks
    assert message.stop_reason == stop
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert message.usage.output_tokens > 0
    assert stream.request_id is not None
    assert stream.request_id.startswith("req_sim_")
    for block in message.content:
        if block.type == "tool_use":
            assert isinstance(block.input, dict)
            assert block.name in {"list_files", "read_file", "edit_file", "write_file"}
        if block.type == "thinking":
            assert block.signature
            omitted = SHAPES[shape].get("thinking", {}).get("display") == "omitted"
            assert (block.thinking == "") is omitted


@pytest.mark.parametrize("shape", list(SHAPES))
def test_raw_stream_and_non_stream_agree_with_the_helper(
    sim: Any, sdk: SDK, instruction: str, shape: str
) -> None:
    client = sdk(sim.base_url("fast"))
    body = request(shape, instruction)
    with client.messages.create(**body, stream=True) as raw:
        kinds = [event.type for event in raw]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop")
    assert kinds.count("content_block_start") == len(EXPECTED[shape][0])

    whole = client.messages.create(**body)
    with client.messages.stream(**body) as stream:
        streamed = stream.get_final_message()
    # Same conversation, same seed: the same reply whether streamed or not.
    assert [b.to_dict() for b in whole.content] == [b.to_dict() for b in streamed.content]
    assert whole.stop_reason == streamed.stop_reason
    assert whole.usage.output_tokens == streamed.usage.output_tokens


def test_sdk_raises_typed_errors_for_bad_requests(sim: Any, sdk: SDK) -> None:
    client = sdk(sim.base_url("fast"))
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="m", max_tokens=0, messages=[{"role": "user", "content": "x"}])
    assert bad.value.status_code == 400
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens" in bad.value.message

    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk(sim.base_url("no-such-endpoint")).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]

    with (
        pytest.raises(anthropic.BadRequestError),
        client.messages.stream(model="m", max_tokens=10, messages=[]) as stream,
    ):
        stream.get_final_message()


def test_non_json_body_is_an_invalid_request(sim: Any) -> None:
    response = httpx2.post(f"{sim.base_url('fast')}/v1/messages", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_prompt_cache_reads_the_previous_turn(sim: Any, sdk: SDK, instruction: str) -> None:
    client = sdk(sim.base_url("fast"))
    system = [
        {"type": "text", "text": "You are an agent. " * 300, "cache_control": {"type": "ephemeral"}}
    ]
    first = [{"role": "user", "content": [{"type": "text", "text": instruction}]}]
    u1 = client.messages.create(model="m", max_tokens=50, system=system, messages=first).usage
    assert u1.cache_read_input_tokens == 0
    assert u1.cache_creation_input_tokens > 1024
    assert u1.input_tokens > 0  # the unmarked message after the system breakpoint

    marked = [
        {"role": "user", "content": [{"type": "text", "text": instruction}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "ok", "cache_control": {"type": "ephemeral"}}],
        },
    ]
    u2 = client.messages.create(model="m", max_tokens=50, system=system, messages=marked).usage
    assert u2.cache_read_input_tokens == u1.cache_creation_input_tokens
    u3 = client.messages.create(model="m", max_tokens=50, system=system, messages=marked).usage
    total2 = u2.input_tokens + u2.cache_read_input_tokens + u2.cache_creation_input_tokens
    assert u3.cache_read_input_tokens == total2
    assert u3.cache_creation_input_tokens == 0
    assert u3.input_tokens == 0


def test_schedule_log_records_each_response(sim: Any, sdk: SDK, instruction: str) -> None:
    client = sdk(sim.base_url("fast"))
    with client.messages.stream(**request("tool_use", instruction)) as stream:
        stream.get_final_message()
        request_id = stream.request_id
    entries = {e["request_id"]: e for e in sim.schedule()}
    entry = entries[request_id]
    assert entry["profile"] == "ultraspeed"
    assert entry["turn"] == 0
    assert entry["planned"]["headers_s"] <= entry["planned"]["first_token_s"]
    assert entry["planned"]["first_token_s"] <= entry["planned"]["end_s"]
    assert set(entry["actual"]) == {"headers_s", "first_token_s", "end_s"}


def test_recorded_ttft_and_stream_time_match_the_servers_schedule(
    start_sim: StartSim, example_suite: Path
) -> None:
    """Jitter off: what the client measured is what the server did, by its own log.

    Each turn is held against the moments the server logged (first token and last byte
    written, after its arrival), not against its plan: a loaded server wakes late. What
    remains is loopback delivery, so the median over the turns is within a few milliseconds
    (30 allowed for a loaded machine); a phase taken from the wrong event would be off by
    100 or more (time scale 0.25).
    """
    sim = start_sim(
        MountConfig(key="exact", profile="standard", time_scale=0.25, jitter=False),
        task_dirs=(example_suite,),
    )
    client = AnthropicClient(model="sim", base_url=sim.base_url("exact"), api_key="sk-test")
    task = load_task(example_suite / TASK / "agenttask.toml")
    try:
        result = run_session(task, BuiltinAgent(), client, endpoint="exact", repeat=0)
    finally:
        client.close()
    assert result.record.outcome == "passed"
    schedule = {e["request_id"]: e for e in sim.schedule()}
    assert len(result.record.turns) >= 5
    ttft_misses, stream_misses = [], []
    for turn in result.record.turns:
        (attempt,) = turn.attempts
        entry = schedule[attempt.request_id]
        actual = entry["actual"]
        marks = turn.marks_s
        assert marks["request_sent"] is not None
        assert marks["first_token"] is not None
        assert marks["stream_end"] is not None
        # The first token came with the write the server logged as the first token's.
        ttft_misses.append(turn.phases_s["ttft"] - actual["first_token_s"])
        # And the stream ended with the server's last write.
        stream_misses.append(marks["stream_end"] - marks["request_sent"] - actual["end_s"])
    # Loopback on a loaded machine can take a scheduler slice or two; an event taken for
    # another is off by 100 ms or more here (message_start comes with the headers).
    assert abs(statistics.median(ttft_misses)) < 0.030, ttft_misses
    assert abs(statistics.median(stream_misses)) < 0.030, stream_misses


def test_standalone_server_config_round_trips() -> None:
    from pytest_agentspeed.simulator import ServerConfig

    config = ServerConfig(
        mounts=(MountConfig(key="a", profile="standard", time_scale=0.5, seed=7, jitter=False),),
        task_dirs=("x",),
    )
    assert ServerConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "metadata": "s",
            },
            "metadata: must be an object",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [1, None]}]},
            "messages.0.content: must be a string or a list of content blocks",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": 3,
            },
            "tools: must be a list of tool definitions",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "system": 7,
            },
            "system: must be a string or a list of text blocks",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "thinking": "on",
            },
            "thinking: must be an object",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": ["x"]},
            "messages.0.role: must be 'user' or 'assistant'",
        ),
        (
            {"model": "m", "max_tokens": True, "messages": [{"role": "user", "content": "x"}]},
            "max_tokens: field required (a positive integer)",
        ),
        ([], "request body must be a JSON object"),
    ],
)
def test_odd_requests_get_an_answer_not_a_crash(sim: Any, body: Any, message: str) -> None:
    """Each malformed body gets the API's 400 naming what is wrong (docs/simulator.md)."""
    response = httpx2.post(f"{sim.base_url('fast')}/v1/messages", json=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": message}


def test_ttft_grows_with_uncached_tokens_and_barely_with_cached_ones(
    start_sim: StartSim,
) -> None:
    """A long cached conversation: 24k more uncached tokens cost 24k / prefill rate; 24k more
    cached ones cost 24k x the per-cached-token price, 55x less on ``standard``."""
    from pytest_agentspeed.clients import TurnRequest
    from pytest_agentspeed.simulator.profiles import STANDARD
    from pytest_agentspeed.timing import EventLog, reduce_turn

    scale = 0.25
    sim = start_sim(MountConfig(key="ttft", profile="standard", time_scale=scale, jitter=False))
    client = AnthropicClient(model="sim", base_url=sim.base_url("ttft"), api_key="sk-test")
    extra = 24_000

    def ttft(prefix_tokens: int, tail_tokens: int) -> tuple[float, dict[str, Any]]:
        """One turn on a cached ``prefix_tokens`` system prompt plus an uncached tail."""
        turn = TurnRequest(
            system=[
                {
                    "type": "text",
                    "text": " word" * prefix_tokens,
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "go" + " tail" * tail_tokens}],
                }
            ],
            tools=[],
            max_tokens=16,
            session_id=f"s{prefix_tokens}",
        )
        log = EventLog()
        log.add("turn_start")
        client.complete(turn, log)
        log.add("turn_end")
        timing = reduce_turn(log.events)
        entry = {e["request_id"]: e for e in sim.schedule()}[timing.attempts[-1].request_id]
        return timing.phases_s["ttft"], entry

    probes: dict[str, list[tuple[float, dict[str, Any]]]] = {"b": [], "u": [], "c": []}
    try:
        for prefix in (40_000, 40_000 + extra):  # write both prefixes to the cache
            ttft(prefix, 0)
        # Three rounds, interleaved: a moment of load on the machine hits one probe, not a kind.
        for _ in range(3):
            probes["b"].append(ttft(40_000, 0))
            probes["u"].append(ttft(40_000, extra))
            probes["c"].append(ttft(40_000 + extra, 0))
    finally:
        client.close()
    (_, base), (_, uncached), (_, cached) = (probes[k][0] for k in "buc")
    # Every round was planned the same (no jitter): the rounds differ only in how late the
    # server woke and how long loopback took.
    for kind in "buc":
        assert len({e["planned"]["first_token_s"] for _, e in probes[kind]}) == 1

    # What the server charged: the probes differ by exactly ``extra`` uncached or cached tokens.
    read = {
        k: e["usage"]["cache_read_input_tokens"]
        for k, e in (("b", base), ("u", uncached), ("c", cached))
    }
    fresh = {
        k: e["usage"]["input_tokens"] for k, e in (("b", base), ("u", uncached), ("c", cached))
    }
    assert read["b"] >= 40_000
    assert (read["u"], fresh["u"] - fresh["b"]) == (read["b"], extra)
    assert (read["c"] - read["b"], fresh["c"]) == (extra, fresh["b"])

    # The plan, to the profile's parameters: the median prefill rate and the cached price.
    per_uncached = 1 / STANDARD.prefill_tok_s[1]
    per_cached = STANDARD.cached_us_per_token * 1e-6
    plan_delta = cached["components"]["cached_prefix"] - base["components"]["cached_prefix"]
    assert plan_delta == pytest.approx(extra * per_cached)
    plan_delta = uncached["components"]["prefill"] - base["components"]["prefill"]
    assert plan_delta == pytest.approx(extra * per_uncached)

    # What the client measured over HTTP is what the server did, by its log: the first token
    # arrived with the write the server logged for it (the median over the probes is within
    # loopback delivery, whatever the load).
    misses = [s - e["actual"]["first_token_s"] for kind in "buc" for s, e in probes[kind]]
    assert abs(statistics.median(misses)) < 0.030, misses
    # And, at the medians of the rounds: 1 s more for the uncached tokens, 18 ms for the
    # cached ones (at time scale 0.25).
    base_s, uncached_s, cached_s = (statistics.median(s for s, _ in probes[k]) for k in "buc")
    assert uncached_s - base_s == pytest.approx(extra * per_uncached * scale, abs=0.030)
    assert cached_s - base_s == pytest.approx(extra * per_cached * scale, abs=0.030)
    assert cached_s - base_s < 0.05 * (uncached_s - base_s)


def test_requests_in_flight_on_one_endpoint_load_each_other(start_sim: StartSim) -> None:
    """The second of two overlapping requests is planned with a load of 1 + slope.

    The second is sent once the first one's response headers have arrived: from then until its
    last byte (about 1 s later at this time scale, whatever the client does) the server counts
    the first in flight. No sleep decides the order.
    """
    from pytest_agentspeed.simulator.profiles import STANDARD

    sim = start_sim(MountConfig(key="busy", profile="standard", time_scale=0.5, jitter=False))
    url = f"{sim.base_url('busy')}/v1/messages"
    body = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    with httpx2.Client(timeout=30) as http:
        first = {**body, "stream": True, "metadata": {"user_id": "a"}}
        with http.stream("POST", url, json=first) as streaming:
            assert streaming.status_code == 200  # headers in: "a" is in flight
            http.post(url, json={**body, "metadata": {"user_id": "b"}}).raise_for_status()
            streaming.read()
    entries = {e["session"]: e for e in sim.schedule()}
    assert (entries["a"]["in_flight"], entries["b"]["in_flight"]) == (0, 1)
    load = 1 + STANDARD.load_slope
    assert entries["a"]["components"]["queue"] == pytest.approx(STANDARD.queue_s[0])
    assert entries["b"]["components"]["queue"] == pytest.approx(STANDARD.queue_s[0] * load)
    assert entries["b"]["components"]["decode_tok_s"] == pytest.approx(130 / load)
