"""What the simulated endpoint offers a replay (issue 16), over real HTTP on loopback.

``speed=F`` stretches the model side of the planned schedule by exactly ``1 / F``;
``paths=varied`` gives each session its own path through a task, the same for the same seed and
session; ``min_tokens`` / ``ignore_eos`` pin a reply's length on every wire; and the schedule log
names each request's path and the digest of its conversation (``context_digest``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from conftest import agentspeed
from factories import conversation

from pytest_agentspeed.agents.builtin import BuiltinAgent
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.endpoints import parse_endpoint
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.run.runner import run_session
from pytest_agentspeed.simulator import MountConfig, context_digest
from pytest_agentspeed.tasks import Task, load_task

StartSim = Callable[..., Any]
TASK = "fix-pagination-off-by-one"


@pytest.fixture
def task(example_suite: Path) -> Task:
    return load_task(example_suite / TASK / "agenttask.toml")


# --------------------------------------------------------------------------------------------
# min_tokens and ignore_eos


def test_min_tokens_and_ignore_eos_on_the_anthropic_wire(
    start_sim: StartSim, example_suite: Path, task: Task
) -> None:
    """Turn 0 plans a short text and a ``list_files`` call. ``min_tokens`` lengthens the text
    before the call to exactly that many tokens; ``ignore_eos`` runs to ``max_tokens``; when
    the limit leaves no room for the call, it is not started."""
    sim = start_sim(
        MountConfig(key="a", profile="small-fast", time_scale=0.001, jitter=False),
        task_dirs=(example_suite,),
    )
    base = {"model": "m", "messages": conversation(task.instruction, 0)}
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url("a"), max_retries=0) as client:
        plain = client.messages.create(**base, max_tokens=4096)
        planned = plain.usage.output_tokens
        assert [b.type for b in plain.content] == ["text", "tool_use"]
        tool = plain.content[1]
        assert tool.type == "tool_use"

        longer = client.messages.create(
            **base, max_tokens=4096, extra_body={"min_tokens": planned + 57}
        )
        assert longer.usage.output_tokens == planned + 57
        assert longer.stop_reason == "tool_use"
        assert [b.type for b in longer.content] == ["text", "tool_use"]
        text, call = longer.content
        assert text.type == "text"
        assert call.type == "tool_use"
        assert plain.content[0].type == "text"
        assert text.text.startswith(plain.content[0].text)
        assert len(text.text) > len(plain.content[0].text)
        assert (call.name, call.input) == (tool.name, tool.input)

        # Shorter than the plan: min_tokens changes nothing.
        same = client.messages.create(**base, max_tokens=4096, extra_body={"min_tokens": 3})
        assert same.usage.output_tokens == planned

        # Streamed, ignore_eos: the reply runs to max_tokens, the call still fits.
        with client.messages.stream(
            **base, max_tokens=planned + 200, extra_body={"ignore_eos": True}
        ) as stream:
            message = stream.get_final_message()
        assert message.usage.output_tokens == planned + 200
        assert message.stop_reason == "tool_use"
        assert [b.type for b in message.content] == ["text", "tool_use"]

        # A limit too small for the call: the call is not started, the text fills the limit.
        cut = client.messages.create(**base, max_tokens=12, extra_body={"ignore_eos": True})
        assert cut.usage.output_tokens == 12
        assert cut.stop_reason == "max_tokens"
        assert [b.type for b in cut.content] == ["text"]

    log = [e for e in sim.schedule() if e.get("mount") == "a"]
    assert [e["output_tokens"] for e in log] == [planned, planned + 57, planned, planned + 200, 12]
    # Timing follows the output: with jitter off, more tokens take longer to send.
    assert log[1]["planned"]["end_s"] > log[0]["planned"]["end_s"]


def test_min_tokens_and_ignore_eos_on_the_openai_wires(
    start_sim: StartSim, example_suite: Path, task: Task
) -> None:
    """Chat Completions (``max_tokens`` and ``max_completion_tokens``) and the Responses API
    (``max_output_tokens``) report the exact pinned counts."""
    sim = start_sim(
        MountConfig(key="o", profile="small-fast", time_scale=0.001, jitter=False),
        task_dirs=(example_suite,),
    )
    messages = conversation(task.instruction, 0)
    with openai.OpenAI(api_key="k", base_url=sim.base_url("o") + "/v1", max_retries=0) as client:
        plain = client.chat.completions.create(model="m", messages=messages, max_tokens=4096)
        assert plain.usage is not None
        planned = plain.usage.completion_tokens
        pinned = client.chat.completions.create(
            model="m",
            messages=messages,
            max_tokens=4096,
            extra_body={"min_tokens": planned + 40},
        )
        assert pinned.usage is not None
        assert pinned.usage.completion_tokens == planned + 40
        assert pinned.choices[0].finish_reason == "tool_calls"
        assert pinned.choices[0].message.tool_calls is not None
        stream = client.chat.completions.create(
            model="m",
            messages=messages,
            max_completion_tokens=planned + 90,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
        usage = [chunk.usage for chunk in stream if chunk.usage is not None]
        assert [u.completion_tokens for u in usage] == [planned + 90]

        text_input = [{"role": "user", "content": task.instruction}]

        def output(limit: int, **extra: Any) -> tuple[int, str]:
            response = client.responses.create(
                model="m", input=text_input, max_output_tokens=limit, extra_body=extra
            )
            assert response.usage is not None
            return response.usage.output_tokens, str(response.status)

        planned_r, _ = output(4096)
        assert output(planned_r + 123, ignore_eos=True) == (planned_r + 123, "completed")
        assert output(4096, min_tokens=planned_r + 5) == (planned_r + 5, "completed")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"min_tokens": 101}, "min_tokens: must be at most the output limit (100), got 101"),
        ({"min_tokens": -1}, "min_tokens: must be a non-negative integer"),
        ({"min_tokens": True}, "min_tokens: must be a non-negative integer"),
        ({"ignore_eos": "yes"}, "ignore_eos: must be a boolean"),
    ],
)
def test_bad_pins_are_refused_with_a_400(
    start_sim: StartSim, extra: dict[str, Any], message: str
) -> None:
    sim = start_sim(MountConfig(key="b", profile="small-fast", time_scale=0.001, jitter=False))
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx2.post(f"{sim.base_url('b')}/v1/messages", json=body | extra, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": message}


# --------------------------------------------------------------------------------------------
# speed


def test_speed_stretches_every_model_delay_by_exactly_its_inverse(
    start_sim: StartSim, example_suite: Path, task: Task
) -> None:
    """Two servers, the same requests, jitter off: at ``speed=0.9`` the round trip is the same,
    and the time from the headers to the first token, every decode step after it and the
    latency components of the model side are ``1 / 0.9`` times as long, in the server's own
    planned schedule."""
    config = {"key": "m", "profile": "standard", "time_scale": 0.01, "jitter": False}
    servers = [
        start_sim(MountConfig(**config), task_dirs=(example_suite,)),
        start_sim(MountConfig(**config, speed=0.9), task_dirs=(example_suite,)),
    ]
    for sim in servers:
        with anthropic.Anthropic(api_key="k", base_url=sim.base_url("m"), max_retries=0) as c:
            for turn in range(4):
                with c.messages.stream(
                    model="m", max_tokens=4096, messages=conversation(task.instruction, turn)
                ) as stream:
                    stream.get_final_message()
    base, slow = ([e for e in sim.schedule() if e.get("mount") == "m"] for sim in servers)
    assert len(base) == len(slow) == 4
    for b, s in zip(base, slow, strict=True):
        assert s["output_tokens"] == b["output_tokens"]
        assert s["planned"]["headers_s"] == b["planned"]["headers_s"]
        assert s["components"]["rtt"] == b["components"]["rtt"]
        model_b = b["planned"]["first_token_s"] - b["planned"]["headers_s"]
        model_s = s["planned"]["first_token_s"] - s["planned"]["headers_s"]
        assert model_s == pytest.approx(model_b / 0.9, rel=1e-12)
        for part in ("queue", "fixed", "prefill", "cached_prefix", "decode"):
            assert s["components"][part] == pytest.approx(b["components"][part] / 0.9, rel=1e-12)
        # Every write from the first token on, against the first token's time.
        first_b, first_s = b["planned"]["first_token_s"], s["planned"]["first_token_s"]
        after_b = [t - first_b for t in b["writes"]["planned_s"] if t >= first_b]
        after_s = [t - first_s for t in s["writes"]["planned_s"] if t >= first_s]
        assert len(after_b) == len(after_s) > 10
        assert after_s == pytest.approx([t / 0.9 for t in after_b], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("speed=0", "speed must be a number above 0 and at most 100"),
        ("speed=-1", "speed must be a number above 0 and at most 100"),
        ("speed=101", "speed must be a number above 0 and at most 100"),
        ("speed=fast", "speed must be a number above 0 and at most 100"),
        ("speed=nan", "speed must be a number above 0 and at most 100"),
        ("paths=random", "paths='random'; accepted: fixed, varied"),
    ],
)
def test_bad_speed_and_paths_are_config_errors(option: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_endpoint(f"sim:standard?{option}")


def test_speed_and_paths_are_parsed_and_written_down() -> None:
    endpoint = parse_endpoint("sim:standard?speed=0.9&paths=varied&seed=3")
    assert endpoint.sim is not None
    assert (endpoint.sim.speed, endpoint.sim.paths) == (0.9, "varied")
    options = endpoint.with_time_scale(0.05).public_options()
    assert options == {
        "time_scale": 0.05,
        "seed": 3,
        "jitter": True,
        "speed": 0.9,
        "paths": "varied",
    }
    default = parse_endpoint("sim:standard")
    assert default.sim is not None
    assert (default.sim.speed, default.sim.paths) == (1.0, "fixed")


def test_agentspeed_sim_refuses_a_bad_speed() -> None:
    result = agentspeed("sim", "--speed", "0", "--port", "0")
    assert result.returncode == 2
    assert "--speed: expected a number above 0 and at most 100, got '0'" in result.stderr
    result = agentspeed("sim", "--paths", "sometimes", "--port", "0")
    assert result.returncode == 2
    assert "invalid choice: 'sometimes'" in result.stderr


# --------------------------------------------------------------------------------------------
# paths


def _shape(result: Any) -> tuple[tuple[str, ...], ...]:
    """A session's path: each turn's tool calls, by name."""
    return tuple(tuple(call.name for call in turn.tool_calls) for turn in result.record.turns)


def _output(result: Any) -> list[int]:
    return [turn.usage.output_tokens for turn in result.record.turns]


def _run(sim: Any, key: str, task: Task, repeat: int) -> Any:
    client = AnthropicClient(model="sim", base_url=sim.base_url(key), api_key="sk-test")
    try:
        return run_session(task, BuiltinAgent(), client, endpoint=key, repeat=repeat)
    finally:
        client.close()


#: The built-in agent's sessions of the example suite on ``paths=fixed``: each turn's output
#: tokens and tool calls, as the simulator served them before ``paths`` existed (measured on
#: main at the commit before this option, ``small-fast``, jitter off).
FIXED = {
    "add-json-output-flag": ([22, 45, 585, 32, 79], "L R2 E4 C -"),
    "add-retry-decorator": ([22, 26, 606, 39, 43], "L R1 W1 C -"),
    "document-slug-separator": ([24, 93, 475, 260, 32, 64], "L R4 E2 E2 C -"),
    "empty-stock-report": ([22, 38, 274, 49, 54], "L R2 E1 C -"),
    "extract-money-formatting": ([22, 95, 25, 297, 635, 49, 90], "L R4 R1 E1 E4 C -"),
    "fix-pagination-off-by-one": ([24, 39, 183, 49, 53], "L R2 E1 C -"),
}
_LETTER = {"list_files": "L", "read_file": "R", "edit_file": "E", "write_file": "W"}


def _compact(result: Any) -> str:
    """``L R2 E1 C -``: each turn's calls (``C`` the check, ``-`` none), with counts."""
    out = []
    for calls in _shape(result):
        if not calls:
            out.append("-")
        elif calls == ("run_command",):
            out.append("C")
        else:
            (name,) = set(calls)
            out.append("L" if name == "list_files" else f"{_LETTER[name]}{len(calls)}")
    return " ".join(out)


def test_paths_vary_between_sessions_repeat_for_the_same_session_and_tasks_pass(
    start_sim: StartSim, example_suite: Path
) -> None:
    """Every example task on ``paths=varied``, and three sessions of one: all pass, with the
    plan's edits; the sessions do not all take the plan's path, nor one path between them; a
    session run again on a new server of the same seed takes the same path, word for word;
    and ``paths=fixed`` plays the plan as it did before the option existed."""
    mounts = (
        MountConfig(key="v", profile="small-fast", time_scale=0.001, jitter=False, paths="varied"),
        MountConfig(key="f", profile="small-fast", time_scale=0.001, jitter=False, paths="fixed"),
    )
    sim = start_sim(*mounts, task_dirs=(example_suite,))
    tasks = {t.id: t for t in (load_task(p) for p in example_suite.glob("*/agenttask.toml"))}
    assert sorted(tasks) == sorted(FIXED)
    fixed = {task_id: _run(sim, "f", task, 0) for task_id, task in tasks.items()}
    runs = [(task_id, 0) for task_id in tasks] + [(TASK, 1), (TASK, 2)]
    varied = {(task_id, r): _run(sim, "v", tasks[task_id], r) for task_id, r in runs}
    assert {k: r.record.outcome for k, r in fixed.items()} == dict.fromkeys(tasks, "passed")
    assert {k: r.record.outcome for k, r in varied.items()} == dict.fromkeys(runs, "passed")
    # The fixed sessions are today's, exactly.
    assert {k: (_output(r), _compact(r)) for k, r in fixed.items()} == FIXED
    # Varied sessions say more or less than the plan, and some explore more.
    wordier = {k: sum(_output(r)) / sum(_output(fixed[k[0]])) for k, r in varied.items()}
    assert all(ratio != 1.0 for ratio in wordier.values()), wordier
    assert any(len(_shape(r)) > len(_shape(fixed[k[0]])) for k, r in varied.items())
    # Three sessions of one task: three paths.
    assert len({tuple(_output(varied[TASK, r])) for r in range(3)}) == 3
    # The edits are the plan's.
    for (task_id, _), result in varied.items():
        assert _changes(result) == _changes(fixed[task_id]), task_id

    # The same seed and session on a new server: the same path, word for word.
    again = _run(start_sim(*mounts, task_dirs=(example_suite,)), "v", tasks[TASK], 2)
    assert _shape(again) == _shape(varied[TASK, 2])
    assert _output(again) == _output(varied[TASK, 2])


def _changes(result: Any) -> list[str]:
    """The session's calls that change files, in order."""
    return [
        call.name
        for turn in result.record.turns
        for call in turn.tool_calls
        if call.name in ("edit_file", "write_file")
    ]


# --------------------------------------------------------------------------------------------
# the request log: path and context digest


def test_the_log_names_each_requests_path_and_conversation_digest(
    start_sim: StartSim, example_suite: Path, task: Task
) -> None:
    """Bodies posted as bytes on each wire, under a mount: the log's ``context_sha256`` is
    ``context_digest`` of the body as sent, whatever the model, limits, session and pins;
    another conversation has another digest."""
    sim = start_sim(
        MountConfig(key="d", profile="small-fast", time_scale=0.001, jitter=False),
        task_dirs=(example_suite,),
    )
    messages = conversation(task.instruction, 1)
    tools = [{"name": "read_file", "input_schema": {"type": "object"}}]
    bodies: list[tuple[str, dict[str, Any]]] = [
        (
            "/v1/messages",
            {"model": "a", "max_tokens": 900, "system": "S", "messages": messages, "tools": tools},
        ),
        (
            "/v1/messages",
            {
                "model": "b",
                "max_tokens": 300,
                "system": "S",
                "messages": messages,
                "tools": tools,
                "metadata": {"user_id": "replay-1"},
                "min_tokens": 200,
                "stream": True,
            },
        ),
        ("/v1/chat/completions", {"model": "c", "messages": [{"role": "user", "content": "hé"}]}),
        (
            "/v1/responses",
            {
                "model": "r",
                "instructions": "I",
                "input": "hello",
                "ignore_eos": True,
                "max_output_tokens": 20,
            },
        ),
    ]
    sent = []
    for path, body in bodies:
        raw = json.dumps(body).encode()
        response = httpx2.post(
            sim.base_url("d") + path,
            content=raw,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        sent.append((path, context_digest(json.loads(raw))))
    log = [e for e in sim.schedule() if e.get("mount") == "d"]
    assert [(e["path"], e["context_sha256"]) for e in log] == sent
    # A replay changes the model, the limits, the session and the pins, not the conversation.
    assert sent[0][1] == sent[1][1]
    assert len({digest for _, digest in sent}) == 3
    # The digest is of the canonical JSON of the conversation's keys alone.
    import hashlib

    expected = hashlib.sha256(
        json.dumps(
            {"instructions": "I", "input": "hello"}, sort_keys=True, separators=(",", ":")
        ).encode()
    ).hexdigest()
    assert sent[3][1] == expected


def test_a_refused_request_is_logged_with_its_path_and_digest(start_sim: StartSim) -> None:
    sim = start_sim(
        MountConfig(
            key="", profile="small-fast", time_scale=0.001, jitter=False, faults={"429": 1.0}
        )
    )
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    response = httpx2.post(f"{sim.base_url('')}/v1/messages?beta=true", json=body, timeout=10)
    assert response.status_code == 429
    (entry,) = sim.schedule()
    assert entry["path"] == "/v1/messages?beta=true"
    assert entry["context_sha256"] == context_digest(body)
