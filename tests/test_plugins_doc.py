"""docs/plugins.md's examples, run as they stand: each ``conftest.py`` block is copied into a
pytester project with tasks of the example suite, and what each hook implementation did is
checked against the run file (and, for the endpoint kind, against what its server received).

Also: the package's own agents, endpoint kinds and exporters are implementations of the same
hooks (``trylast``), and a plugin that takes a built-in name is refused.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from factories import tcp_relay

from pytest_agentspeed.simulator import MountConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
AGENTS_DIR = Path(__file__).resolve().parent / "agents"
TASKS = ("fix-pagination-off-by-one", "document-slug-separator")


def doc_conftest(title: str) -> str:
    """The ``python`` block of docs/plugins.md whose first line is ``# conftest.py: TITLE``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if b.startswith(f"# conftest.py: {title}\n")]
    assert len(found) == 1, f"one conftest block titled {title!r} in {DOC}"
    return found[0]


def project(pytester: pytest.Pytester, example_suite: Path, conftest: str, *tasks: str) -> Path:
    for task in tasks:
        shutil.copytree(example_suite / task, pytester.path / task)
    pytester.makeconftest(conftest)
    return pytester.path


def run_one_session(pytester: pytest.Pytester, agent: str) -> dict[str, Any]:
    """The run file of one task's one session with ``agent`` on the simulated endpoint."""
    result = pytester.runpytest(
        f"--agentspeed-agent={agent}",
        "--agentspeed-endpoint=sim:ultraspeed",
        "--agentspeed-time-scale=0.01",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    return run_file(pytester.path / "run.json")


def run_file(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_the_complete_plugin_adds_an_agent_an_endpoint_kind_an_exporter_and_observers(
    pytester: pytest.Pytester, example_suite: Path, start_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway: a simulated endpoint of the test's own, behind a relay that keeps the bytes
    # it received (the team's header must be on every request).
    sim = start_sim(
        MountConfig(key="gw", profile="ultraspeed", time_scale=0.01),
        task_dirs=tuple(example_suite / t for t in TASKS),
    )
    sim_port = int(sim.url.rsplit(":", 1)[1])
    root = project(
        pytester,
        example_suite,
        doc_conftest(
            "the terse agent, the gateway endpoint kind, a CSV exporter and two observers"
        ),
        *TASKS,
    )
    with tcp_relay(sim_port) as (relay_port, received):
        monkeypatch.setenv("GATEWAY_URL", f"http://127.0.0.1:{relay_port}/e/gw/v1")
        result = pytester.runpytest(
            "--agentspeed-agent=terse",
            "--agentspeed-endpoint=sim:standard",
            "--agentspeed-endpoint=gateway:sim-ultraspeed",
            "--agentspeed-time-scale=0.01",
            "--agentspeed-json=run.json",
            "--sessions-csv=sessions.csv",
            "--verdicts-to=verdicts.txt",
            # Under xdist: the agent, the kind and the session observer work in the workers,
            # the exporter and the run's observer in the controller.
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
        )
        sent = bytes(received)
    result.assert_outcomes(passed=4)
    run = run_file(root / "run.json")
    sessions = run["sessions"]

    # The agent: the run is the terse agent's, its turns measured, tools and all.
    assert run["config"]["agent"] == "terse"
    assert [s["agent"] for s in sessions] == ["terse"] * 4
    assert all(s["outcome"] == "passed" for s in sessions)
    for s in sessions:
        turns = s["turns"]
        assert turns
        assert turns[-1]["stop_reason"] == "end_turn"
        # Its turns' walls add up to the session's phases: no time lost between its turns.
        assert sum(t["wall_s"] for t in turns) == pytest.approx(sum(s["phases_s"].values()))
        assert s["phases_s"]["tool"] > 0
        assert any(t["tool_calls"] for t in turns)

    # The endpoint kind: its sessions went to the gateway on the Chat Completions wire, each
    # request with the team's header, as many requests as the sessions' turns.
    gateway = [s for s in sessions if s["endpoint"] == "gateway:sim-ultraspeed"]
    assert len(gateway) == 2
    listed = {e["name"]: e for e in run["endpoints"]}
    assert listed["gateway:sim-ultraspeed"]["api"] == "openai"
    assert listed["gateway:sim-ultraspeed"]["label"] == "through the gateway"
    requests = re.findall(rb"POST (\S+) HTTP/1.1\r\n(.*?)\r\n\r\n", sent, re.S)
    assert [path for path, _ in requests] == [b"/e/gw/v1/chat/completions"] * sum(
        len(s["turns"]) for s in gateway
    )
    assert all(b"\r\nx-team: speed" in headers.lower() for _, headers in requests)
    gw_log = [e for e in sim.schedule() if e.get("mount") == "gw"]
    assert len(gw_log) == len(requests)

    # The exporter: one line per session, in the run file's order, its figures the run file's.
    with open(root / "sessions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["task", "endpoint", "outcome", "wall_s", "output_tokens"]
    assert rows[1:] == [
        [
            s["task"],
            s["endpoint"],
            s["outcome"],
            f"{s['wall_s']:.6f}",
            str(s["usage"]["output_tokens"]),
        ]
        for s in sessions
    ]

    # The observers: a line per session as it ended, then the gate's verdicts.
    lines = (root / "verdicts.txt").read_text(encoding="utf-8").splitlines()
    session_lines = [line for line in lines if line.startswith("session ")]
    assert sorted(session_lines) == sorted(
        f"session {s['task']} {s['endpoint']} passed" for s in sessions
    )
    assert lines[len(session_lines) :] == [
        f"verdict {c['candidate']} vs {c['baseline']}: {c['verdict']}" for c in run["comparisons"]
    ]
    assert run["comparisons"], "an A/B run has the gate's comparison"


def test_the_changed_builtin_agent_refuses_commands(
    pytester: pytest.Pytester, example_suite: Path
) -> None:
    project(
        pytester, example_suite, doc_conftest("the built-in agent without run_command"), TASKS[0]
    )
    (session,) = run_one_session(pytester, "builtin-no-commands")["sessions"]
    assert session["agent"] == "builtin-no-commands"
    calls = [c for t in session["turns"] for c in t["tool_calls"]]
    commands = [c for c in calls if c["name"] == "run_command"]
    assert commands, "the simulated model asks to run the tests"
    assert [c["ok"] for c in commands] == [False] * len(commands)
    assert any(c["ok"] for c in calls if c["name"] != "run_command")


def test_a_program_as_an_agent(pytester: pytest.Pytester, example_suite: Path) -> None:
    root = project(pytester, example_suite, doc_conftest("a program as an agent"), TASKS[0])
    (root / "tools").mkdir()
    shutil.copy(AGENTS_DIR / "shell_agent.py", root / "tools" / "shell_agent.py")
    run = run_one_session(pytester, "shell-agent")
    (session,) = run["sessions"]
    assert session["agent"] == "shell-agent"
    # The agent's wire: the simulated endpoint that named none spoke it.
    assert [e["api"] for e in run["endpoints"]] == ["openai"]
    assert session["turns"]
    assert session["process"]["exit_code"] == 0


BUILT_IN_AGENTS = ("builtin", "oracle", "nop", "claude-code", "codex", "mini-swe-agent")


def test_the_built_ins_are_trylast_implementations_of_the_same_hooks(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        from pytest_agentspeed.agents import AgentSpec

        def pytest_agentspeed_agents():
            return [AgentSpec("mine", lambda: None)]
        """
    )
    config = pytester.parseconfigure()
    hook = config.pluginmanager.hook
    builtins = config.pluginmanager.get_plugin("agentspeed-builtins")
    assert builtins is not None
    for name in (
        "pytest_agentspeed_agents",
        "pytest_agentspeed_endpoint_kinds",
        "pytest_agentspeed_exporters",
    ):
        impls = getattr(hook, name).get_hookimpls()
        ours = [i for i in impls if i.plugin is builtins]
        assert len(ours) == 1, name
        assert ours[0].trylast, name
    agent_impls = hook.pytest_agentspeed_agents.get_hookimpls()
    assert [i.plugin_name.rsplit("/", 1)[-1] for i in agent_impls] == [
        "agentspeed-builtins",
        "conftest.py",
    ]
    from pytest_agentspeed.agents import agent_names
    from pytest_agentspeed.endpoints.kinds import kind_forms

    # The hooks' agents, the built-in ones first; after them any that register_agent added
    # in this process (another test's).
    assert agent_names()[: len(BUILT_IN_AGENTS) + 1] == (*BUILT_IN_AGENTS, "mine")
    assert kind_forms() == (
        "sim:PROFILE[?options], anthropic:MODEL[@BASE_URL], openai:MODEL@BASE_URL, "
        "openai-responses:MODEL@BASE_URL"
    )
    # What the session's hooks are: the observers have no built-in implementation.
    assert hook.pytest_agentspeed_session_finished.get_hookimpls() == []
    assert hook.pytest_agentspeed_run_finished.get_hookimpls() == []


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (
            'AgentSpec("oracle", lambda: None)',
            "agent 'oracle' comes with agentspeed and cannot be replaced",
        ),
        ('AgentSpec("  ", lambda: None)', "agent name '  ': expected a non-empty name"),
    ],
)
def test_a_plugin_cannot_replace_a_built_in_agent(
    pytester: pytest.Pytester, returned: str, message: str
) -> None:
    pytester.makeconftest(
        f"""
        from pytest_agentspeed.agents import AgentSpec

        def pytest_agentspeed_agents():
            return [{returned}]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        (
            '[EndpointKind("sim", lambda s, r: None, "sim:X")]',
            "endpoint kind 'sim' comes with agentspeed and cannot be replaced",
        ),
        (
            '[EndpointKind("gw", lambda s, r: None, "gw:X")] * 2',
            "endpoint kind 'gw' is added twice",
        ),
        (
            '[EndpointKind("Gw", lambda s, r: None, "Gw:X")]',
            "endpoint kind 'Gw': a prefix is lower case letters, digits and '-', "
            "starting with a letter",
        ),
    ],
)
def test_endpoint_kinds_are_checked(pytester: pytest.Pytester, kinds: str, message: str) -> None:
    pytester.makeconftest(
        f"""
        from pytest_agentspeed.endpoints.kinds import EndpointKind

        def pytest_agentspeed_endpoint_kinds():
            return {kinds}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_a_spec_of_a_kind_nobody_adds_is_a_usage_error_naming_the_kinds(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("--agentspeed-endpoint=gatewy:m", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: unknown endpoint 'gatewy:m'; accepted forms: sim:PROFILE[?options], "
            "anthropic:MODEL[@BASE_URL], openai:MODEL@BASE_URL, openai-responses:MODEL@BASE_URL "
            "or a named endpoint"
        ]
    )


def test_a_kind_whose_parser_returns_no_endpoint_is_named(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_agentspeed.endpoints.kinds import EndpointKind

        def pytest_agentspeed_endpoint_kinds():
            return [EndpointKind("gw", lambda spec, rest: {"model": rest}, "gw:MODEL")]
        """
    )
    result = pytester.runpytest("--agentspeed-endpoint=gw:m", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: endpoint 'gw:m': the 'gw' kind's parser returned {'model': 'm'}, not an Endpoint"]
    )


def test_a_plugins_agents_and_kinds_end_with_its_run(pytester: pytest.Pytester) -> None:
    from pytest_agentspeed.agents import agent_names
    from pytest_agentspeed.endpoints.kinds import endpoint_kind

    pytester.makeconftest(
        """
        from pytest_agentspeed.agents import AgentSpec
        from pytest_agentspeed.endpoints.kinds import EndpointKind

        def pytest_agentspeed_agents():
            return [AgentSpec("mine", lambda: None)]

        def pytest_agentspeed_endpoint_kinds():
            return [EndpointKind("gw", lambda spec, rest: None, "gw:MODEL")]
        """
    )
    pytester.makepyfile(
        test_seen="""
        from pytest_agentspeed.agents import agent_names
        from pytest_agentspeed.endpoints.kinds import endpoint_kind

        def test_seen():
            assert "mine" in agent_names()
            assert endpoint_kind("gw") is not None
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    # The in-process run is over: the next one, or this process, knows only its own.
    assert "mine" not in agent_names()
    assert endpoint_kind("gw") is None
    assert endpoint_kind("sim") is not None
