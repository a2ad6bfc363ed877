"""The built-in agent's limits, against a scripted model over real HTTP: the time budget ends
the session as ``timeout``, ``max_turns`` stops it after exactly that many turns, a reply cut
off by ``max_tokens`` is continued, and ``run_command`` never gets more time than is left."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from scripted_server import Reply, ScriptedServer, text_reply, tool_reply

from pytest_agentspeed.agents import AgentContext
from pytest_agentspeed.agents.builtin import CUT_OFF_NOTE, BuiltinAgent
from pytest_agentspeed.agents.tools import ToolBox, ToolResult
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.run.runner import run_session
from pytest_agentspeed.tasks import Limits, Task

SESSION = "t[x-r0]"


def _task(**limits: Any) -> Task:
    return Task(
        id="t",
        instruction="Look around, then say done.",
        workspace={"a.txt": "a\n"},
        check="true",
        limits=Limits(**limits),
    )


def _context(task: Task, workspace: Path, client: AnthropicClient) -> AgentContext:
    return AgentContext(task=task, workspace=workspace, session_id=SESSION, client=client)


@pytest.fixture
def client_for() -> Iterator[Any]:
    """An Anthropic client on a scripted server; closed after the test."""
    clients: list[AnthropicClient] = []

    def make(script: ScriptedServer) -> AnthropicClient:
        clients.append(AnthropicClient(model="m", base_url=script.url, api_key="sk-test"))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def _last_texts(request: dict[str, Any]) -> list[str]:
    """The text blocks of the request's newest user message."""
    return [b["text"] for b in request["messages"][-1]["content"] if b["type"] == "text"]


def test_the_time_budget_ends_the_session_as_timeout(client_for: Any) -> None:
    """A turn that outlasts the 1 s budget is the last: no further request, outcome timeout,
    and the check still runs on what the agent left."""
    slow_turn = [(at + 1.2, event) for at, event in tool_reply([("list_files", {"path": "."})])]
    with ScriptedServer([Reply(slow_turn)]).running() as script:
        result = run_session(
            _task(timeout_s=1.0), BuiltinAgent(), client_for(script), endpoint="x", repeat=0
        )
    record = result.record
    if result.workspace is not None:  # kept when the session did not pass
        shutil.rmtree(result.workspace)
    assert record.outcome == "timeout"
    assert record.error == "the agent's time budget (1 s) ran out"
    assert len(script.requests) == 1
    (turn,) = record.turns
    assert [c.name for c in turn.tool_calls] == ["list_files"]
    assert record.check_exit_code == 0


def test_the_session_stops_after_max_turns(tmp_path: Path, client_for: Any) -> None:
    """A model that never stops gets exactly max_turns turns, each told how many are left."""
    looping = [Reply(tool_reply([("list_files", {"path": "."})])) for _ in range(5)]
    with ScriptedServer(looping).running() as script:
        run = BuiltinAgent().run(_context(_task(max_turns=3), tmp_path, client_for(script)))
    assert run.stopped == "max_turns"
    assert run.error is None
    assert [t.index for t in run.turns] == [0, 1, 2]
    assert len(script.requests) == 3
    budgets = [_last_texts(r)[-1].split(" turns")[0] for r in script.requests]
    assert budgets == ["[budget] 3", "[budget] 2", "[budget] 1"]


def test_a_reply_cut_off_by_max_tokens_is_continued(tmp_path: Path, client_for: Any) -> None:
    """No tool call, but stop_reason max_tokens: the agent asks the model to go on instead of
    taking the fragment as its final answer."""
    cut = [
        (at, event | {"delta": {"stop_reason": "max_tokens", "stop_sequence": None}})
        if event["type"] == "message_delta"
        else (at, event)
        for at, event in text_reply(first_event=0, first_token=0, step=0, pieces=["I will"])
    ]
    with ScriptedServer([Reply(cut)]).running() as script:
        run = BuiltinAgent().run(_context(_task(max_tokens=300), tmp_path, client_for(script)))
    assert run.stopped == "end_turn"
    assert [t.stop_reason for t in run.turns] == ["max_tokens", "end_turn"]
    assert [r["max_tokens"] for r in script.requests] == [300, 300]
    history = script.requests[1]["messages"]
    assert history[-2] == {"role": "assistant", "content": [{"type": "text", "text": "I will"}]}
    note, budget = _last_texts(script.requests[1])
    assert note == CUT_OFF_NOTE
    assert budget.startswith("[budget] 39 turns and ")


class ShiftedClock:
    """``perf_counter_ns`` plus an offset the tools move on: hours of tool time, no waiting."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def __call__(self) -> int:
        return time.perf_counter_ns() + self.offset_ns


class TimedToolBox(ToolBox):
    """Records each tool input as the agent passed it; each call then moves the agent's clock
    on by the next of ``takes_s``, as if the tool had run that long."""

    def __init__(self, root: Path, clock: ShiftedClock, takes_s: list[float]) -> None:
        super().__init__(root)
        self.clock = clock
        self.takes_s = list(takes_s)
        self.inputs: list[dict[str, Any]] = []

    def call(self, name: str, tool_input: Mapping[str, Any]) -> ToolResult:
        self.inputs.append(dict(tool_input))
        result = super().call(name, tool_input)
        self.clock.offset_ns += int(self.takes_s.pop(0) * 1e9)
        return result


def test_run_command_gets_at_most_the_time_left(tmp_path: Path, client_for: Any) -> None:
    """With a 1000 s budget: a shorter ask is kept, a longer ask or none gets what is left
    (about 300 s once 700 s have gone), and past the budget a command still gets 1 s."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("run_command", {"command": "true", "timeout_s": 5}),
        ("run_command", {"command": "true", "timeout_s": 5000}),
        ("run_command", {"command": "true"}),
        ("run_command", {"command": "true", "timeout_s": 5}),
    ]
    clock = ShiftedClock()
    toolbox = TimedToolBox(tmp_path, clock, takes_s=[700.0, 0.0, 400.0, 0.0])
    with ScriptedServer([Reply(tool_reply(calls))]).running() as script:
        agent = BuiltinAgent(clock=clock, toolbox=lambda root: toolbox)
        run = agent.run(_context(_task(timeout_s=1000.0), tmp_path, client_for(script)))
    given: list[Any] = [i.get("timeout_s") for i in toolbox.inputs]
    assert given[0] == 5.0
    # 700 s of the budget went in the first command; real time since the start is the rest.
    assert 290.0 < given[1] <= 300.0
    assert 290.0 < given[2] <= 300.0
    assert given[3] == 1.0
    assert [i["command"] for i in toolbox.inputs] == ["true"] * 4
    # The budget ran out inside the turn: no next turn.
    assert (run.stopped, len(run.turns), len(script.requests)) == ("timeout", 1, 1)
