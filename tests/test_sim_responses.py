"""The simulator's Responses API wire under the official ``openai`` SDK (sync and async,
``responses.create(stream=True)``, the ``responses.stream()`` helper and non-streamed
``create()``), on a real server on loopback, and a real request body of Codex CLI."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import EXAMPLE_SUITE

from pytest_agentspeed.simulator import MountConfig, ServerConfig
from pytest_agentspeed.simulator.cache import request_blocks
from pytest_agentspeed.simulator.faults import FAULT_KINDS, RETRY_AFTER_S, STALL_S, draw_fault
from pytest_agentspeed.simulator.latency import seeded_rng
from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.simulator.tokens import count_tokens
from pytest_agentspeed.tasks import load_task

SCALE = 0.01
TASK = "fix-pagination-off-by-one"
CODEX_REQUEST = Path(__file__).parent / "data" / "codex_request.json"
#: Every event type the SDK yields for the replies below, in the order a stream first sends
#: each (the ``error`` event is not yielded: the SDK raises on it).
EXPECTED_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.output_item.done",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.completed",
    "response.incomplete",
]


#: The built-in agent's tools in the Responses shape (the trajectory's own vocabulary), and a
#: hosted tool without a name, which the simulator passes over.
TOOLS = [
    {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}}
    for name in ("list_files", "read_file", "write_file", "edit_file", "run_command")
] + [{"type": "web_search"}]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    """``std`` (standard, no jitter: no cache misses), ``fast`` (small-fast: does not reason),
    one mount per fault kind faulting every request, and ``flaky`` (429 half the time)."""
    mounts = [
        MountConfig(key="std", profile="standard", time_scale=SCALE, jitter=False),
        MountConfig(key="fast", profile="small-fast", time_scale=SCALE, jitter=False),
        *(
            MountConfig(key=kind, profile="standard", time_scale=SCALE, faults={kind: 1.0})
            for kind in FAULT_KINDS
        ),
        MountConfig(key="flaky", profile="standard", time_scale=SCALE, faults={"429": 0.5}),
    ]
    server = SimulatorProcess(ServerConfig(mounts=tuple(mounts), task_dirs=(str(EXAMPLE_SUITE),)))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instruction() -> str:
    return load_task(EXAMPLE_SUITE / TASK / "agenttask.toml").instruction


def turn_input(instruction: str, turns: int) -> list[dict[str, Any]]:
    """A conversation ``turns`` model turns in (the task's trajectory plays turn ``turns``)."""
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": "You are an agent."},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": instruction}],
        },
    ]
    for i in range(turns):
        items += [
            {"type": "reasoning", "id": f"rs_{i}", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": f"step {i}"}],
            },
            {"type": "message", "role": "user", "content": "go on"},
        ]
    return items


def client(sim: SimulatorProcess, key: str, retries: int = 0, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sim", base_url=sim.base_url(key) + "/v1", max_retries=retries, **kw
    )


def check_sequence(events: list[Any]) -> None:
    """Sequence numbers count every event of the stream from 0."""
    assert [e.sequence_number for e in events] == list(range(len(events)))


# name: (turn, request extras, output item types, reasoning summary shown)
SHAPES: dict[str, tuple[int, dict[str, Any], list[str], bool]] = {
    "text and a tool call": (0, {}, ["message", "function_call"], False),
    "parallel tool calls": (1, {}, ["message", "function_call", "function_call"], False),
    "reasoning summary": (
        2,
        {"reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"]},
        ["reasoning", "message", "function_call"],
        True,
    ),
    "reasoning omitted": (
        2,
        {"reasoning": {"effort": "high"}},
        ["reasoning", "message", "function_call"],
        False,
    ),
    "final summary": (9, {}, ["message"], False),
}


def body_for(shape: str, instruction: str, session: str) -> dict[str, Any]:
    turn, extra, _, _ = SHAPES[shape]
    return {
        "model": "sim",
        "input": turn_input(instruction, turn),
        "tools": TOOLS,
        "prompt_cache_key": session,
        **extra,
    }


def same(response: Any) -> dict[str, Any]:
    """What two replies to one request share: all but their times, the cached part of their
    input (a repeat reads the first one's prompt from the cache) and the helper's ``parsed``
    fields, which are None."""
    dumped: dict[str, Any] = response.model_dump(
        exclude_none=True, exclude={"created_at", "completed_at", "usage"}
    )
    return dumped | {"output_tokens": response.usage.output_tokens}


def check_response(shape: str, response: Any) -> None:
    _, extra, kinds, shown = SHAPES[shape]
    assert response.status == "completed"
    assert [item.type for item in response.output] == kinds
    for item in response.output:
        if item.type == "function_call":
            assert isinstance(json.loads(item.arguments), dict)
            assert item.call_id.startswith("call_")
            assert item.id.startswith("fc_")
        if item.type == "reasoning":
            assert bool(item.summary) is shown
            encrypted = "reasoning.encrypted_content" in extra.get("include", [])
            assert (item.encrypted_content is not None) is encrypted
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    reasoning = [i for i in response.output if i.type == "reasoning"]
    if shown:
        assert usage.output_tokens_details.reasoning_tokens == count_tokens(
            reasoning[0].summary[0].text
        )
    assert (usage.output_tokens_details.reasoning_tokens > 0) is bool(reasoning)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_sdk_sync_streams_and_whole_replies(
    sim: SimulatorProcess, instruction: str, shape: str
) -> None:
    body = body_for(shape, instruction, f"sync-{shape}")
    with client(sim, "std") as sdk:
        events = list(sdk.responses.create(**body, stream=True))
        check_sequence(events)
        assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
        assert events[-1].type == "response.completed"
        streamed = events[-1].response
        check_response(shape, streamed)
        with sdk.responses.stream(**body) as stream:
            helped = list(stream)
            final = stream.get_final_response()
        assert [e.type for e in helped] == [e.type for e in events]
        check_response(shape, final)
        whole = sdk.responses.create(**body)
        check_response(shape, whole)
    # The same request is the same reply, however it is asked for.
    for other in (final, whole):
        assert same(other) == same(streamed)
    # Deltas add up to what the items hold.
    texts = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert texts == "".join(c.text for i in whole.output if i.type == "message" for c in i.content)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_sdk_async_streams_and_whole_replies(
    sim: SimulatorProcess, instruction: str, shape: str
) -> None:
    body = body_for(shape, instruction, f"async-{shape}")

    async def main() -> tuple[list[Any], Any, Any]:
        async with openai.AsyncOpenAI(
            api_key="sim", base_url=sim.base_url("std") + "/v1", max_retries=0
        ) as sdk:
            events = [e async for e in await sdk.responses.create(**body, stream=True)]
            async with sdk.responses.stream(**body) as stream:
                async for _ in stream:
                    pass
                final = await stream.get_final_response()
            return events, final, await sdk.responses.create(**body)

    events, final, whole = asyncio.run(main())
    check_sequence(events)
    for response in (events[-1].response, final, whole):
        check_response(shape, response)


def test_function_call_outputs_advance_the_trajectory(
    sim: SimulatorProcess, instruction: str
) -> None:
    """Turn 1 asks for files; their outputs sent back as ``function_call_output`` items make
    the next request turn 2 (two reads), as an agent's loop does."""
    items = turn_input(instruction, 0)
    names = []
    with client(sim, "std") as sdk:
        for _ in range(2):
            body = {"model": "sim", "input": items, "tools": TOOLS, "prompt_cache_key": "loop"}
            with sdk.responses.stream(**body) as stream:
                response = stream.get_final_response()
            items = items + [item.model_dump(exclude_none=True) for item in response.output]
            calls = [i for i in response.output if i.type == "function_call"]
            names.append([c.name for c in calls])
            items += [
                {"type": "function_call_output", "call_id": c.call_id, "output": "README.md\n"}
                for c in calls
            ]
    assert names == [["list_files"], ["read_file", "read_file"]]
    turns = [e["turn"] for e in sim.schedule() if e.get("session") == "loop"]
    assert turns == [0, 1]


def test_reasoning_is_spent_shown_or_not_and_absent_without_a_reasoning_model(
    sim: SimulatorProcess, instruction: str
) -> None:
    """The same turn: a summary streams with ``reasoning.summary``; without it the reasoning
    is spent (same reasoning tokens) in an item with no summary; small-fast does not reason."""
    replies = {}
    with client(sim, "std") as std, client(sim, "fast") as fast:
        for name, sdk, extra in [
            ("shown", std, {"reasoning": {"summary": "detailed"}}),
            ("omitted", std, {}),
            ("none", fast, {"reasoning": {"summary": "auto"}}),
        ]:
            body = {"model": "sim", "input": turn_input(instruction, 2), "tools": TOOLS} | extra
            events = list(sdk.responses.create(**body, stream=True))
            replies[name] = (events, events[-1].response)
    shown, omitted, none = (replies[k][1] for k in ("shown", "omitted", "none"))
    summary = shown.output[0].summary[0].text
    tokens = count_tokens(summary)
    assert tokens > 10
    assert shown.usage.output_tokens_details.reasoning_tokens == tokens
    assert omitted.output[0].type == "reasoning"
    assert omitted.output[0].summary == []
    assert omitted.usage.output_tokens_details.reasoning_tokens == tokens
    assert omitted.usage.output_tokens == shown.usage.output_tokens
    omitted_types = {e.type for e in replies["omitted"][0]}
    assert "response.reasoning_summary_text.delta" not in omitted_types
    deltas = [
        e.delta
        for e in replies["shown"][0]
        if e.type.startswith("response.reasoning_") and e.type.endswith(".delta")
    ]
    assert "".join(deltas) == summary
    # Without reasoning the model thinks aloud in its message, as on the other wires.
    assert [i.type for i in none.output] == ["message", "function_call"]
    assert none.usage.output_tokens_details.reasoning_tokens == 0
    assert summary in none.output[0].content[0].text


def test_usage_counts_input_with_its_cached_part_per_prompt_cache_key(
    sim: SimulatorProcess, instruction: str
) -> None:
    """Input tokens are the request's whole prompt; the second turn of a session reads the
    first turn's prompt from the cache; another ``prompt_cache_key`` shares nothing."""
    long = "Follow the house rules. " * 400  # well above the 1024-token minimum
    seen = []
    with client(sim, "std") as sdk:
        for key, turns in [("cache-a", 0), ("cache-a", 1), ("cache-b", 1)]:
            body = {
                "model": "sim",
                "instructions": long,
                "input": turn_input(instruction, turns),
                "tools": TOOLS,
                "prompt_cache_key": key,
            }
            with sdk.responses.stream(**body) as stream:
                usage = stream.get_final_response().usage
            prompt = sum(b.tokens for b in request_blocks(body, automatic=True, key=key))
            assert usage.input_tokens == prompt
            seen.append(usage)
    first, second, other = seen
    assert first.input_tokens_details.cached_tokens == 0
    assert first.input_tokens_details.cache_write_tokens == first.input_tokens
    # Turn 2's prompt extends turn 1's: all of turn 1's prompt is read back.
    assert second.input_tokens_details.cached_tokens == first.input_tokens
    assert other.input_tokens_details.cached_tokens == 0
    for usage in seen:
        assert usage.output_tokens > 0
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_max_output_tokens_cuts_the_reply_into_an_incomplete_response(
    sim: SimulatorProcess, instruction: str
) -> None:
    body = {
        "model": "sim",
        "input": turn_input(instruction, 2),
        "tools": TOOLS,
        "max_output_tokens": 7,
        "reasoning": {"summary": "auto"},
    }
    with client(sim, "std") as sdk:
        events = list(sdk.responses.create(**body, stream=True))
        whole = sdk.responses.create(**body)
    check_sequence(events)
    assert events[-1].type == "response.incomplete"
    for response in (events[-1].response, whole):
        assert response.status == "incomplete"
        assert response.incomplete_details.reason == "max_output_tokens"
        assert response.usage.output_tokens == 7
        assert [i.type for i in response.output] == ["reasoning"]


def test_every_event_type_the_sdk_sees(sim: SimulatorProcess, instruction: str) -> None:
    """Text, tool calls, a reasoning summary and a cut reply: the SDK sees exactly these
    types, each stream numbered from 0 with no gap."""
    seen: list[str] = []
    with client(sim, "std") as sdk:
        for turns, extra in [
            (2, {"reasoning": {"summary": "auto"}}),
            (0, {}),
            (2, {"reasoning": {"summary": "auto"}, "max_output_tokens": 7}),
        ]:
            body = {"model": "sim", "input": turn_input(instruction, turns), "tools": TOOLS}
            events = list(sdk.responses.create(**body | extra, stream=True))
            check_sequence(events)
            for event in events:
                if event.type not in seen:
                    seen.append(event.type)
    assert sorted(seen) == sorted(EXPECTED_EVENTS)
    # First sent in the expected order (reasoning first, then the message, then calls).
    assert seen == EXPECTED_EVENTS


def test_side_requests_get_short_answers_and_json_for_a_schema(
    sim: SimulatorProcess, instruction: str
) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    with client(sim, "std") as sdk:
        titled = sdk.responses.create(
            model="sim",
            input=turn_input(instruction, 3),
            text={"format": {"type": "json_schema", "name": "t", "schema": schema}},
        )
        plain = sdk.responses.create(model="sim", input=turn_input(instruction, 3), tools=[])
    assert json.loads(titled.output_text) == {"title": "Fix pagination off by one"}
    assert plain.output_text == "Fix pagination off by one."
    assert [e["side"] for e in sim.schedule()[-2:]] == ["structured-output", "no-tools"]


def test_pre_stream_faults_and_retry_after(sim: SimulatorProcess, instruction: str) -> None:
    body = {"model": "sim", "input": "Say hello."}
    with client(sim, "429") as sdk, pytest.raises(openai.RateLimitError) as limited:
        sdk.responses.create(**body, stream=True)
    wait = RETRY_AFTER_S * SCALE
    assert limited.value.response.headers["retry-after-ms"] == str(round(wait * 1000))
    assert limited.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    with client(sim, "529") as sdk, pytest.raises(openai.InternalServerError) as overloaded:
        sdk.responses.create(**body)
    assert overloaded.value.status_code == 529

    # A session whose first attempt is refused and whose retry is served (the draws are
    # seeded: the same functions the server uses find one).
    session = next(
        s
        for s in (f"retry-{i}" for i in range(200))
        if draw_fault({"429": 0.5}, seeded_rng(1, "flaky", s, 0, "fault", 0), stream=True) == "429"
        and draw_fault({"429": 0.5}, seeded_rng(1, "flaky", s, 0, "fault", 1), stream=True) is None
    )
    sent: list[float] = []
    hooks = {"request": [lambda request: sent.append(time.perf_counter())]}
    with client(sim, "flaky", retries=2, http_client=httpx.Client(event_hooks=hooks)) as sdk:
        events = list(sdk.responses.create(**body, prompt_cache_key=session, stream=True))
    assert events[-1].type == "response.completed"
    assert [e["fault"] for e in sim.schedule() if e.get("session") == session] == ["429", None]
    # The SDK waited the server's retry-after-ms, not its own back-off (0.375 s at least).
    assert len(sent) == 2
    assert wait <= sent[1] - sent[0] < 0.375


def test_mid_stream_faults_as_the_sdk_sees_them(sim: SimulatorProcess) -> None:
    body = {"model": "sim", "input": "Say hello, at some length."}
    with client(sim, "error") as sdk:
        with pytest.raises(openai.APIError, match="Overloaded") as error:
            list(sdk.responses.create(**body, stream=True))
        assert error.value.body["type"] == "server_error"  # type: ignore[index]
        with pytest.raises(openai.APIError, match="Overloaded"), sdk.responses.stream(**body) as s:
            list(s)
    with client(sim, "drop") as sdk, pytest.raises(openai.APIConnectionError):
        list(sdk.responses.create(**body, stream=True))
    with client(sim, "stall") as sdk, sdk.responses.stream(**body) as stream:
        response = stream.get_final_response()
    assert response.status == "completed"
    entry = sim.schedule()[-1]
    assert entry["fault"] == "stall"
    assert entry["planned"]["stall_s"] == pytest.approx(STALL_S * SCALE)


def test_every_fault_kind_under_the_async_sdk(sim: SimulatorProcess) -> None:
    """The async client raises, and completes, as the sync one does for each fault kind."""
    body = {"model": "sim", "input": "Say hello, at some length."}

    def sdk(mount: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key="sim", base_url=sim.base_url(mount) + "/v1", max_retries=0
        )

    async def drain(mount: str, *, helper: bool = False) -> Any:
        async with sdk(mount) as client:
            if helper:
                async with client.responses.stream(**body) as stream:
                    async for _ in stream:
                        pass
                    return await stream.get_final_response()
            return [e async for e in await client.responses.create(**body, stream=True)]

    async def outcome(mount: str, *, helper: bool = False) -> str:
        try:
            await drain(mount, helper=helper)
        except openai.APIStatusError as exc:  # before the stream: its status
            return f"{type(exc).__name__} {exc.status_code}"
        except openai.APIError as exc:  # in the stream, or no response at all
            return type(exc).__name__
        return "completed"

    async def main() -> dict[str, str]:
        kinds = ("429", "529", "error", "drop", "stall")
        seen = {kind: await outcome(kind) for kind in kinds}
        seen["error, stream helper"] = await outcome("error", helper=True)
        return seen

    assert set(FAULT_KINDS) == {"429", "529", "error", "drop", "stall"}
    assert asyncio.run(main()) == {
        "429": "RateLimitError 429",
        "529": "InternalServerError 529",
        "error": "APIError",
        "drop": "APIConnectionError",
        "stall": "completed",
        "error, stream helper": "APIError",
    }


def raw_events(url: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(event name, data, data as sent) of a streamed reply, read without the SDK."""
    with httpx.stream("POST", url, json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    assert text.endswith("\n\n")
    events = []
    for chunk in text[:-2].split("\n\n"):
        name_line, data_line = chunk.split("\n")
        name, data = name_line.removeprefix("event: "), data_line.removeprefix("data: ")
        events.append((name, json.loads(data), data))
    return events


def test_a_broken_stream_ends_in_an_error_event_then_response_failed(
    sim: SimulatorProcess,
) -> None:
    events = raw_events(
        sim.base_url("error") + "/v1/responses",
        {"model": "sim", "input": "Say hello, at some length.", "stream": True},
    )
    numbers = [data["sequence_number"] for _, data, _ in events]
    assert numbers == list(range(len(events)))
    (name, error, _), (last, failed, _) = events[-2:]
    assert (name, last) == ("error", "response.failed")
    message = "Overloaded (simulated fault)"
    assert {k: error[k] for k in ("type", "code", "message", "param")} == {
        "type": "error",
        "code": "server_error",
        "message": message,
        "param": None,
    }
    assert error["error"] == {
        "type": "server_error",
        "code": "server_error",
        "message": message,
        "param": None,
    }
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": message}


def test_codex_request_is_served_in_its_exec_command_tool(sim: SimulatorProcess) -> None:
    """A real Codex CLI body: its developer and user items, its tools (functions, a
    namespace, web_search), reasoning summary, encrypted reasoning and no max_output_tokens.
    The first turn lists the files through ``exec_command``'s ``cmd``."""
    body = json.loads(CODEX_REQUEST.read_text())
    sim.register_task(
        {
            "id": "codex-fix",
            "instruction": "Fix the bug",
            "workspace": {"calc.py": "def add(a, b):\n    return a - b\n"},
            "check": "python -c 'import calc; assert calc.add(1, 2) == 3'",
            "solution": {"calc.py": "def add(a, b):\n    return a + b\n"},
        }
    )
    events = raw_events(sim.base_url("std") + "/v1/responses", body)
    for _, data, sent in events:
        # Each event is its own JSON, compact (the templates spliced nothing wrong).
        assert json.dumps(data, separators=(",", ":")) == sent
    assert [data["sequence_number"] for _, data, _ in events] == list(range(len(events)))
    final = events[-1][1]["response"]
    assert events[-1][0] == "response.completed"
    calls = [item for item in final["output"] if item["type"] == "function_call"]
    assert [c["name"] for c in calls] == ["exec_command"]
    command = json.loads(calls[0]["arguments"])
    assert list(command) == ["cmd"]
    assert command["cmd"].startswith("find . -type f")
    (entry,) = [e for e in sim.schedule() if e.get("session") == body["prompt_cache_key"]]
    assert (entry["wire"], entry["turn"], entry["side"]) == ("responses", 0, None)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"input": "hi"}, "model: field required"),
        ({"model": "m"}, "input: field required"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": "hi", "max_output_tokens": 0}, "max_output_tokens: must be"),
        ({"model": "m", "input": "hi", "tools": {}}, "tools: must be a list"),
        ({"model": "m", "input": "hi", "previous_response_id": "resp_1"}, "stores nothing"),
    ],
)
def test_bad_requests_get_a_400_saying_why(
    sim: SimulatorProcess, body: dict[str, Any], reason: str
) -> None:
    response = httpx.post(sim.base_url("std") + "/v1/responses", json=body, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert reason in error["message"]
