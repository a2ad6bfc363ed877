"""The agent seam: ``--agentspeed-agent`` accepts exactly the registry's names; an agent a
``conftest.py`` registers runs like a built-in one, through ``run_session`` with an
:class:`AgentContext`; and every agent's turns are built by one function,
:func:`~pytest_agentspeed.records.turn_record`."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_plugin import make_task

import pytest_agentspeed
from pytest_agentspeed import agents
from pytest_agentspeed.agents import (
    AgentContext,
    AgentRun,
    agent_names,
    agent_wire,
    make_agent,
    register_agent,
)
from pytest_agentspeed.agents.builtin import BuiltinAgent
from pytest_agentspeed.clients import ModelResponse, ToolCall, TurnRequest
from pytest_agentspeed.edge.options import add_run_options, settings_from_config
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.records import Usage, turn_record
from pytest_agentspeed.run.runner import run_session
from pytest_agentspeed.settings import Settings
from pytest_agentspeed.tasks import Task
from pytest_agentspeed.timing import EventLog, reduce_turn

PACKAGE = Path(pytest_agentspeed.__file__).parent


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made in the test are gone after it."""
    monkeypatch.setattr(agents, "_REGISTRY", dict(agents._REGISTRY))


class Scribe:
    """A hand-written agent without a model: fixes greeting.txt in one turn of one tool call,
    and keeps the context it was given."""

    name = "scribe"
    needs_endpoint = False
    expects_check_to_fail = False

    def __init__(self, tag: str = "") -> None:
        self.contexts: list[AgentContext] = []
        #: Tells registrations apart.
        self.tag = tag

    def run(self, context: AgentContext) -> AgentRun:
        self.contexts.append(context)
        log = EventLog()
        log.add("turn_start")
        log.add("tool_start", index=0, detail="write_file")
        (context.workspace / "greeting.txt").write_text("hello world\n")
        log.add("tool_end", index=0)
        log.add("turn_end")
        turn = turn_record(0, reduce_turn(log.events), stop_reason="end_turn")
        return AgentRun(turns=(turn,), stopped="end_turn")


def _settings(pytester: pytest.Pytester, *args: str) -> Settings:
    return settings_from_config(pytester.parseconfig(*args))


# -- the names --agentspeed-agent accepts are the registry's -------------------------------


#: The agents that come with the package, in the order they are listed.
BUILT_IN = ("builtin", "oracle", "nop", "claude-code", "codex", "mini-swe-agent")
ACCEPTED = ", ".join(BUILT_IN)


def test_the_built_in_agents_are_registered() -> None:
    assert agent_names() == BUILT_IN
    assert [make_agent(n).name for n in agent_names()] == list(BUILT_IN)
    assert [make_agent(n).needs_endpoint for n in agent_names()] == [
        True, False, False, True, True, True,
    ]  # fmt: skip
    assert [make_agent(n).expects_check_to_fail for n in agent_names()] == [
        False, False, True, False, False, False,
    ]  # fmt: skip


@pytest.mark.parametrize("name", agent_names())
def test_each_registered_name_is_accepted_on_the_command_line_and_in_the_file(
    pytester: pytest.Pytester, name: str
) -> None:
    assert _settings(pytester, f"--agentspeed-agent={name}").agent == name
    pytester.makepyprojecttoml(f'[tool.agentspeed]\nagent = "{name}"\n')
    assert _settings(pytester).agent == name


@pytest.mark.usefixtures("registry")
def test_a_registered_agent_is_accepted_and_an_unregistered_one_refused_with_the_list(
    pytester: pytest.Pytester,
) -> None:
    with pytest.raises(pytest.UsageError) as refused:
        _settings(pytester, "--agentspeed-agent=scribe")
    assert str(refused.value) == f"unknown agent 'scribe'; accepted: {ACCEPTED}"

    register_agent("scribe", Scribe)
    assert agent_names() == (*BUILT_IN, "scribe")
    assert _settings(pytester, "--agentspeed-agent=scribe").agent == "scribe"
    with pytest.raises(pytest.UsageError) as refused:
        _settings(pytester, "--agentspeed-agent=smart")
    assert str(refused.value) == f"unknown agent 'smart'; accepted: {ACCEPTED}, scribe"
    pytester.makepyprojecttoml('[tool.agentspeed]\nagent = "smart"\n')
    with pytest.raises(pytest.UsageError) as refused:
        _settings(pytester)
    assert str(refused.value).endswith(
        "pyproject.toml: [tool.agentspeed] agent: "
        f"unknown agent 'smart'; accepted: {ACCEPTED}, scribe"
    )


def test_the_help_lists_the_registered_agents() -> None:
    options: dict[str, dict[str, Any]] = {}
    add_run_options(lambda name, **kw: options.setdefault(name, kw))
    assert options["--agentspeed-agent"]["help"] == (
        "Agent: builtin, oracle (lays solution/ over the workspace), nop (does nothing), "
        "claude-code (runs claude, anthropic wire), codex (runs codex exec, responses wire), "
        "mini-swe-agent (runs mini, openai wire), or one of [tool.agentspeed.agents]. "
        "Default: builtin"
    )


@pytest.mark.usefixtures("registry")
def test_the_registry_refuses_unknown_and_built_in_names_and_replaces_its_own() -> None:
    with pytest.raises(
        ConfigError,
        match=rf"^unknown agent 'smart'; accepted: {ACCEPTED}$",
    ):
        make_agent("smart")
    with pytest.raises(
        ConfigError, match=r"^agent 'nop' comes with agentspeed and cannot be replaced$"
    ):
        register_agent("nop", Scribe)
    with pytest.raises(ConfigError, match=r"^agent name '': expected a non-empty name$"):
        register_agent("", Scribe)
    assert agent_names() == BUILT_IN
    # A conftest imported again (every in-process pytest run) registers its agent again.
    register_agent("scribe", lambda: Scribe(tag="first"))
    register_agent("scribe", lambda: Scribe(tag="second"))
    assert agent_names() == (*BUILT_IN, "scribe")
    assert make_agent("scribe").tag == "second"  # type: ignore[attr-defined]  (a Scribe)


# -- a third-party agent runs like a built-in one -----------------------------------------

CONFTEST = """
import json

from pytest_agentspeed.agents import AgentRun, register_agent
from pytest_agentspeed.records import turn_record
from pytest_agentspeed.timing import EventLog, reduce_turn


class Scribe:
    name = "scribe"
    needs_endpoint = False
    expects_check_to_fail = False

    def run(self, context):
        log = EventLog()
        log.add("turn_start")
        log.add("tool_start", index=0, detail="write_file")
        (context.workspace / "greeting.txt").write_text("hello world\\n")
        seen = {"session_id": context.session_id, "client": context.client is None}
        (context.workspace.parent / "scribe.json").write_text(json.dumps(seen))
        log.add("tool_end", index=0)
        log.add("turn_end")
        turn = turn_record(0, reduce_turn(log.events), stop_reason="end_turn")
        return AgentRun(turns=(turn,), stopped="end_turn")


register_agent("scribe", Scribe, description="writes the answer")
"""


def test_an_agent_registered_in_a_conftest_runs_under_its_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real pytest run: the conftest registers ``scribe`` (no endpoint; it fixes the file),
    ``--agentspeed-agent=scribe`` selects it, its one session passes with its one turn."""
    tmp = pytester.mkdir("tmp")
    monkeypatch.setenv("TMPDIR", str(tmp))
    make_task(pytester.path, "alpha")
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess(
        "--agentspeed-agent=scribe", "--agentspeed-json=run.json", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    run = json.loads((pytester.path / "run.json").read_text())
    (session,) = run["sessions"]
    assert (session["agent"], session["outcome"], session["check_exit_code"]) == (
        "scribe",
        "passed",
        0,
    )
    (turn,) = session["turns"]
    assert [(t["name"], t["ok"]) for t in turn["tool_calls"]] == [("write_file", True)]
    assert turn["stop_reason"] == "end_turn"
    # What the agent was given: the session id, and no client (it needs no endpoint).
    seen = json.loads((tmp / "scribe.json").read_text())
    assert seen == {"session_id": session["id"], "client": True}


def test_run_session_gives_the_agent_its_context(tmp_path: Path) -> None:
    task = Task(
        id="t",
        instruction="Fix greeting.txt.",
        workspace={"greeting.txt": "helo wrld\n"},
        check="grep -qx 'hello world' greeting.txt",
    )
    agent = Scribe()
    progress: list[tuple[int, int, float]] = []
    result = run_session(
        task, agent, None, endpoint="none", repeat=2, progress=lambda *a: progress.append(a)
    )
    (context,) = agent.contexts
    assert (context.task, context.session_id, context.client, context.proxy) == (
        task,
        "t[none-r2]",
        None,
        None,
    )
    assert context.progress is not None
    assert context.workspace.name.startswith("agentspeed-t-")
    assert not context.workspace.exists()  # passed: nothing left behind
    record = result.record
    assert (record.agent, record.outcome, record.check_exit_code) == ("scribe", "passed", 0)
    (turn,) = record.turns
    assert [c.name for c in turn.tool_calls] == ["write_file"]
    assert record.wall_s == turn.wall_s


# -- one function builds every agent's turns ------------------------------------------------


class _OneToolThenDone:
    """A model client that asks for one tool in its first reply and ends in its second,
    logging the events a streamed reply makes; keeps each turn's log."""

    retry_wait_s = 0.0

    def __init__(self) -> None:
        self.logs: list[EventLog] = []

    def complete(self, request: TurnRequest, log: EventLog) -> ModelResponse:
        self.logs.append(log)
        log.add("attempt")
        log.add("request_sent")
        log.add("headers", status=200, detail=f"req_{len(self.logs)}")
        log.add("message_start")
        log.add("block_start", index=0, detail="text")
        log.add("delta", index=0, detail="text_delta", nonempty=True)
        log.add("block_stop", index=0)
        log.add("message_stop")
        log.add("stream_end")
        first = len(self.logs) == 1
        calls = (ToolCall(id="c1", name="list_files", input={"path": "."}),) if first else ()
        return ModelResponse(
            content=[{"type": "text", "text": "ok"}],
            tool_calls=calls,
            stop_reason="tool_use" if first else "end_turn",
            usage=Usage(input_tokens=10, output_tokens=3),
            usage_raw={"input_tokens": 10, "output_tokens": 3},
        )

    def close(self) -> None:
        pass


def test_the_builtin_agents_turns_are_turn_record_of_its_events(tmp_path: Path) -> None:
    """What a hand-written agent does (``turn_record(index, reduce_turn(events), ...)``)
    gives exactly the built-in agent's turns, from the events it logged."""
    now = [0]

    def clock() -> int:
        now[0] += 1_000_000
        return now[0]

    client = _OneToolThenDone()
    task = Task(id="t", instruction="Look, then stop.", workspace={"a.txt": "a\n"}, check="true")
    (tmp_path / "a.txt").write_text("a\n")
    context = AgentContext(task=task, workspace=tmp_path, session_id="t[x-r0]", client=client)
    run = BuiltinAgent(clock=clock).run(context)
    assert run.stopped == "end_turn"
    assert run.turns == tuple(
        turn_record(
            index,
            reduce_turn(log.events),
            usage=Usage(input_tokens=10, output_tokens=3),
            usage_raw={"input_tokens": 10, "output_tokens": 3},
            stop_reason=stop,
        )
        for index, (log, stop) in enumerate(zip(client.logs, ["tool_use", "end_turn"], strict=True))
    )
    assert [len(t.tool_calls) for t in run.turns] == [1, 0]
    assert [t.attempts[0].request_id for t in run.turns] == ["req_1", "req_2"]


def test_only_turn_record_builds_turn_records() -> None:
    """No module makes a ``TurnRecord`` itself but ``records.turn_record`` (the JSON reader
    makes them as ``cls(...)``), so no agent grows its own way of building turns."""
    builders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                builders += [
                    f"{path.relative_to(PACKAGE)}:{function.name}"
                    for call in ast.walk(function)
                    if isinstance(call, ast.Call) and _called(call) == "TurnRecord"
                ]
    assert builders == ["records.py:turn_record"]


def _called(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def test_reading_the_options_loads_no_agent() -> None:
    """``edge/options.py`` imports the registry when pytest declares its options; the agents,
    their tools and the model clients load only when an agent is made."""
    code = (
        "import sys, pytest_agentspeed.edge.options as o; "
        "from pytest_agentspeed.agents import make_agent; "
        "mods = lambda: sorted(m for m in sys.modules "
        "if m.startswith(('pytest_agentspeed.agents', 'pytest_agentspeed.clients'))); "
        "print(mods()); make_agent('builtin'); print(mods())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "['pytest_agentspeed.agents', 'pytest_agentspeed.agents.seam']",
        "['pytest_agentspeed.agents', 'pytest_agentspeed.agents.builtin', "
        "'pytest_agentspeed.agents.seam', 'pytest_agentspeed.agents.tools', "
        "'pytest_agentspeed.clients']",
    ]


def test_the_wire_of_an_agent_is_known_without_making_it() -> None:
    assert [agent_wire(n) for n in BUILT_IN] == [
        None, None, None, "anthropic", "responses", "openai",
    ]  # fmt: skip
    assert agent_wire("no-such-agent") is None
    # The registry says of each preset what the preset itself says.
    from pytest_agentspeed.agents.presets import PRESETS

    assert {name: agent_wire(name) for name in PRESETS} == {
        name: spec.api for name, spec in PRESETS.items()
    }
