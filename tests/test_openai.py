"""The OpenAI-compatible wire: the simulator under the official SDKs, and the package's client."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from conftest import standalone_sim
from test_plugin import read_run

from pytest_agentspeed.clients import TurnRequest
from pytest_agentspeed.clients.openai_client import OpenAIClient, to_openai_messages
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.tasks import load_task
from pytest_agentspeed.timing import EventLog, reduce_turn

TASK = "fix-pagination-off-by-one"


@pytest.fixture(scope="module")
def standalone() -> Iterator[str]:
    """``agentspeed sim`` serving both wires at its root."""
    with standalone_sim("standard") as url:
        yield url


@pytest.fixture(scope="module")
def instruction() -> str:
    suite = Path(__file__).resolve().parent.parent / "example_suite"
    return load_task(suite / TASK / "agenttask.toml").instruction


def conversation(instruction: str, turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": instruction},
    ]
    for i in range(turns):
        messages += [
            {"role": "assistant", "content": f"step {i}"},
            {"role": "user", "content": "go on"},
        ]
    return messages


# name: (turn or None for an unknown task, max_tokens, finish, tools, reasoning)
SHAPES: dict[str, tuple[int | None, int, str, list[str], bool]] = {
    "unknown task: text only": (None, 512, "stop", [], False),
    "tool call": (0, 512, "tool_calls", ["list_files"], False),
    "parallel tool calls": (1, 512, "tool_calls", ["read_file", "read_file"], False),
    "reasoning, text and a tool call": (2, 4096, "tool_calls", ["edit_file"], True),
    "cut off by max_tokens": (2, 7, "length", [], True),
    "final summary": (9, 512, "stop", [], False),
}


def request(shape: str, instruction: str) -> dict[str, Any]:
    turn, limit, *_ = SHAPES[shape]
    messages = (
        [{"role": "user", "content": "hello"}] if turn is None else conversation(instruction, turn)
    )
    return {"model": "sim", "messages": messages, "max_tokens": limit}


def check_chunks(shape: str, chunks: list[Any]) -> None:
    _, _, finish, tools, reasoning = SHAPES[shape]
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [finish]
    names = [
        tc.function.name
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
        if tc.function and tc.function.name
    ]
    assert names == tools
    arguments: dict[int, str] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            arguments[tc.index] = arguments.get(tc.index, "") + (tc.function.arguments or "")
    for text in arguments.values():
        assert isinstance(json.loads(text), dict)
    streamed_reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    assert bool(streamed_reasoning) is reasoning
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert usage.completion_tokens > 0
    assert 0 <= usage.prompt_tokens_details.cached_tokens <= usage.prompt_tokens
    assert (usage.completion_tokens_details.reasoning_tokens > 0) is reasoning


@pytest.mark.parametrize("shape", list(SHAPES))
def test_openai_sdk_sync_parses_every_shape(standalone: str, instruction: str, shape: str) -> None:
    with openai.OpenAI(api_key="sk-test", base_url=f"{standalone}/v1", max_retries=0) as client:
        body = request(shape, instruction)
        chunks = list(
            client.chat.completions.create(
                **body, stream=True, stream_options={"include_usage": True}
            )
        )
        check_chunks(shape, chunks)
        whole = client.chat.completions.create(**body)
        _, _, finish, tools, _ = SHAPES[shape]
        completions = [whole]
        with client.chat.completions.stream(**body) as stream:
            if finish == "length":
                # The SDK's helper refuses a completion cut off by max_tokens, by design.
                with pytest.raises(openai.LengthFinishReasonError):
                    stream.get_final_completion()
            else:
                completions.append(stream.get_final_completion())
    for completion in completions:
        assert completion.choices[0].finish_reason == finish
        calls = completion.choices[0].message.tool_calls or []
        assert [c.function.name for c in calls] == tools
    assert whole.usage is not None
    assert whole.usage.completion_tokens == chunks[-1].usage.completion_tokens


@pytest.mark.parametrize("shape", list(SHAPES))
def test_openai_sdk_async_parses_every_shape(standalone: str, instruction: str, shape: str) -> None:
    async def run() -> list[Any]:
        async with openai.AsyncOpenAI(
            api_key="sk-test", base_url=f"{standalone}/v1", max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                **request(shape, instruction), stream=True, stream_options={"include_usage": True}
            )
            return [chunk async for chunk in stream]

    check_chunks(shape, asyncio.run(run()))


def test_openai_sdk_errors(standalone: str) -> None:
    with openai.OpenAI(api_key="sk-test", base_url=f"{standalone}/v1", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="m", messages=[])
        assert "messages" in str(bad.value)
    with (
        openai.OpenAI(api_key="sk-test", base_url=f"{standalone}/nope/v1", max_retries=0) as client,
        pytest.raises(openai.NotFoundError),
    ):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize("turn", [None, 0, 1, 2, 9])
def test_anthropic_sdk_on_the_same_standalone_server(
    standalone: str, instruction: str, turn: int | None
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hello" if turn is None else instruction}
    ]
    for i in range(turn or 0):
        messages += [{"role": "assistant", "content": f"s{i}"}, {"role": "user", "content": "go"}]
    with (
        anthropic.Anthropic(api_key="sk-test", base_url=standalone, max_retries=0) as client,
        client.messages.stream(
            model="sim",
            max_tokens=4096,
            messages=messages,
            thinking={"type": "enabled", "budget_tokens": 1024},
        ) as stream,
    ):
        message = stream.get_final_message()
    types = [b.type for b in message.content]
    assert types[-1] in ("text", "tool_use")
    assert ("thinking" in types) is (turn == 2)


# -- the package's client ---------------------------------------------------------------------

SCRIPTED = [
    ": keep-alive",
    {
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ]
    },
    {"choices": [{"index": 0, "delta": {"reasoning": "Let me"}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"reasoning_content": " think."}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": "Reading two files."}, "finish_reason": None}]},
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "read_file", "arguments": ""},
                        }
                    ]
                },
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "read_file", "arguments": '{"pa'},
                        }
                    ]
                },
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [{"index": 0, "function": {"arguments": '{"path": "a.py"}'}}]
                },
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 1, "function": {"arguments": 'th": "b.py"}'}}]},
                "finish_reason": None,
            }
        ]
    },
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {
        "choices": [],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 30},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    },
    "[DONE]",
]


def sse(items: list[Any]) -> bytes:
    out = []
    for item in items:
        if isinstance(item, str) and item.startswith(":"):
            out.append(f"{item}\n\n")
        elif isinstance(item, str):
            out.append(f"data: {item}\n\n")
        else:
            out.append(f"data: {json.dumps(item)}\n\n")
    return "".join(out).encode()


def turn_request() -> TurnRequest:
    return TurnRequest(
        system=[{"type": "text", "text": "sys"}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        tools=[{"name": "read_file", "description": "d", "input_schema": {"type": "object"}}],
        max_tokens=100,
        session_id="s1",
    )


def mock_client(responses: list[httpx2.Response], seen: list[httpx2.Request]) -> OpenAIClient:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return responses.pop(0)

    return OpenAIClient(
        model="m",
        base_url="http://server.invalid/v1",
        api_key="sk-secret",
        transport=httpx2.MockTransport(handler),
        extra_body={"reasoning_effort": "low"},
        extra_headers={"x-tenant": "t1"},
    )


def test_client_assembles_tool_calls_and_normalises_usage() -> None:
    seen: list[httpx2.Request] = []
    client = mock_client(
        [
            # One read per chunk: marks are the reads' arrival times, so the reasoning chunk
            # must arrive before the content chunk for first_token to precede first_output.
            httpx2.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=iter([sse([item]) for item in SCRIPTED]),
            )
        ],
        seen,
    )
    log = EventLog()
    log.add("turn_start")
    response = client.complete(turn_request(), log)
    log.add("turn_end")
    assert response.stop_reason == "tool_use"
    assert [(c.id, c.name, c.input) for c in response.tool_calls] == [
        ("call_a", "read_file", {"path": "a.py"}),
        ("call_b", "read_file", {"path": "b.py"}),
    ]
    assert response.content[0] == {"type": "text", "text": "Reading two files."}
    assert (response.usage.input_tokens, response.usage.cache_read_tokens) == (70, 30)
    assert (response.usage.output_tokens, response.usage.thinking_tokens) == (40, 5)
    kinds = [(e.kind, e.detail) for e in log.events if e.kind in ("block_start", "block_stop")]
    assert kinds == [
        ("block_start", "thinking"),
        ("block_stop", ""),
        ("block_start", "text"),
        ("block_stop", ""),
        ("block_start", "tool_use"),
        ("block_stop", ""),
        ("block_start", "tool_use"),
        ("block_stop", ""),
    ]
    timing = reduce_turn(log.events)
    assert timing.marks_s["first_token"] is not None
    assert timing.marks_s["first_output"] is not None
    assert timing.marks_s["first_token"] < timing.marks_s["first_output"]
    body = json.loads(seen[0].content)
    assert body["stream_options"] == {"include_usage": True}
    assert body["reasoning_effort"] == "low"
    assert body["user"] == "s1"
    assert body["tools"][0]["function"]["name"] == "read_file"
    assert seen[0].headers["authorization"] == "Bearer sk-secret"
    assert seen[0].headers["x-tenant"] == "t1"


def test_client_retries_overload_and_reports_mid_stream_errors() -> None:
    seen: list[httpx2.Request] = []
    overloaded = httpx2.Response(
        529,
        headers={"retry-after": "0"},
        json={"error": {"type": "overloaded_error", "message": "busy"}},
    )
    ok = httpx2.Response(200, content=sse(SCRIPTED))
    client = mock_client([overloaded, ok], seen)
    log = EventLog()
    log.add("turn_start")
    client.complete(turn_request(), log)
    log.add("turn_end")
    timing = reduce_turn(log.events)
    assert [(a.status, a.error) for a in timing.attempts] == [
        (529, "overloaded_error"),
        (200, None),
    ]

    broken = httpx2.Response(
        200, content=sse([SCRIPTED[1], {"error": {"type": "server_error", "message": "boom"}}])
    )
    client = mock_client([broken], [])
    with pytest.raises(EndpointError) as error:
        client.complete(turn_request(), EventLog())
    assert error.value.error_type == "server_error"
    assert "mid-stream: boom" in str(error.value)
    client = mock_client(
        [httpx2.Response(401, json={"error": {"type": "auth", "message": "no"}})], []
    )
    with pytest.raises(EndpointError, match="auth: HTTP 401: no"):
        client.complete(turn_request(), EventLog())


def test_conversation_converts_to_chat_messages() -> None:
    messages = to_openai_messages(
        [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        [
            {"role": "user", "content": [{"type": "text", "text": "do it"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "x"},
                    {"type": "text", "text": "ok"},
                    {"type": "tool_use", "id": "c1", "name": "read_file", "input": {"path": "a"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "text of a"},
                    {"type": "text", "text": "[budget] 3 turns"},
                ],
            },
        ],
    )
    assert messages == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "do it"},
        {
            "role": "assistant",
            "content": "ok",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "text of a"},
        {"role": "user", "content": "[budget] 3 turns"},
    ]


def test_client_reuses_one_connection_across_turns(standalone: str) -> None:
    client = OpenAIClient(model="sim", base_url=f"{standalone}/v1", api_key=None)
    connections = []
    try:
        for _ in range(3):
            log = EventLog()
            log.add("turn_start")
            client.complete(turn_request(), log)
            pool = client._http.client._transport._pool  # type: ignore[attr-defined]
            connections.append([id(c) for c in pool.connections])
    finally:
        client.close()
    assert connections[0] == connections[1] == connections[2]
    assert len(connections[0]) == 1


@pytest.mark.parametrize("wire", ["openai", "responses"])
def test_example_tasks_pass_on_the_openai_wires_with_reasoning(
    pytester: pytest.Pytester, example_suite: Path, wire: str
) -> None:
    """The built-in agent on Chat Completions and on the Responses API: the tasks pass, the
    reasoning phase is there, the cache is read, phases add up to the wall time."""
    for name in (TASK, "document-slug-separator"):
        shutil.copytree(example_suite / name, pytester.path / name)
    result = pytester.runpytest_subprocess(
        f"--agentspeed-endpoint=sim:standard?api={wire}",
        "--agentspeed-time-scale=0.02",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    run = read_run(pytester.path / "run.json")
    assert run["endpoints"][0]["api"] == wire
    for session in run["sessions"]:
        reasoning_turns = [t for t in session["turns"] if t["phases_s"]["reasoning"] > 0]
        assert reasoning_turns, session["id"]
        assert session["usage"]["thinking_tokens"] > 0
        assert session["usage"]["cache_read_tokens"] > 0
        assert abs(sum(session["phases_s"].values()) - session["wall_s"]) < 1e-6
        for turn in session["turns"]:
            assert abs(sum(turn["phases_s"].values()) - turn["wall_s"]) < 1e-6
