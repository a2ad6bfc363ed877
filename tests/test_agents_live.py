"""The external agents themselves, end to end: Claude Code, Codex, mini-swe-agent and agents
defined in
``[tool.agentspeed.agents]``, run by pytest on the example suite against the simulated
endpoint, through the recording proxy.

Each session must pass its check because the agent really edited its workspace, have several
turns with the agent's own time between them, and have phases that add up to its wall time.
These tests need ``claude`` and ``codex`` (npm), ``mini`` (the test extra) and ``bwrap``: they are
skipped
where those are missing, and fail instead under ``AGENTSPEED_REQUIRE_AGENTS`` (``.ci/run``
sets it, as it does for the browser).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from factories import tcp_relay

from pytest_agentspeed import simulator

AGENTS_DIR = Path(__file__).parent / "agents"
#: Two tasks of the example suite: one edit of a function, one of a docstring and its test.
TASKS = "pagination or slug"
SECRET = "sk-live-test-0123456789abcdef0123"


def _require(program: str) -> None:
    if shutil.which(program, path=f"{Path(sys.executable).parent}:{os.environ['PATH']}"):
        return
    if os.environ.get("AGENTSPEED_REQUIRE_AGENTS"):
        pytest.fail(f"{program} is missing but AGENTSPEED_REQUIRE_AGENTS is set")
    pytest.skip(f"{program} is not installed")


@pytest.fixture
def suite(pytester: pytest.Pytester, example_suite: Path) -> Path:
    """A copy of the example suite as the pytester project."""
    for entry in example_suite.iterdir():
        target = pytester.path / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target)
        else:
            shutil.copy(entry, target)
    return pytester.path


def _sessions(path: Path) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = json.loads(path.read_text())["sessions"]
    return sessions


def _assert_measured(session: dict[str, Any], *, min_turns: int = 2) -> None:
    """A session of an external agent: passed, turns with agent time, phases = wall."""
    assert session["outcome"] == "passed", session
    assert session["process"]["exit_code"] == 0
    turns = session["turns"]
    assert len(turns) >= min_turns, session["id"]
    # The agent's own time (its tools) lies between its turns.
    assert all(t["phases_s"]["agent"] > 0 for t in turns[:-1]), session["id"]
    assert abs(sum(session["phases_s"].values()) - session["wall_s"]) < 1e-3
    for turn in turns:
        assert abs(sum(turn["phases_s"].values()) - turn["wall_s"]) < 1e-6
        assert 0 <= turn["start_s"] <= session["wall_s"]
    assert session["usage"]["output_tokens"] > 0


def _one_session(
    pytester: pytest.Pytester, agent: str, endpoint: str, *more: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run ``agent`` once on the pagination task; the run's result and the session's record."""
    result = pytester.runpytest_subprocess(
        f"--agentspeed-agent={agent}",
        f"--agentspeed-endpoint={endpoint}",
        "--agentspeed-repeat=1",
        "-k",
        "pagination",
        "--agentspeed-json=run.json",
        *more,
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    (session,) = _sessions(pytester.path / "run.json")
    _assert_measured(session)
    return result, session


def test_mini_swe_agent_on_the_openai_wire(suite: Path, pytester: pytest.Pytester) -> None:
    _require("mini")
    _, session = _one_session(pytester, "mini-swe-agent", "sim:standard?api=openai")
    # mini-swe-agent does not stream: its turns are flagged, their time is all TTFT.
    assert not any(t["streamed"] for t in session["turns"])
    assert session["phases_s"]["generation"] == 0


@pytest.mark.parametrize(
    ("agent", "program", "wire", "last_output"),
    [
        ("claude-code", "claude", "anthropic", '"type":"result"'),
        ("codex", "codex", "responses", '"type":"turn.completed"'),
    ],
)
def test_an_agent_on_the_default_simulated_ab(
    suite: Path, pytester: pytest.Pytester, agent: str, program: str, wire: str, last_output: str
) -> None:
    """Claude Code on the Anthropic wire, Codex CLI on the Responses wire: the default simulated
    endpoints speak the agent's wire (their specs leave it open), and the agent edits the
    workspace through its own tools (Codex: exec_command)."""
    _require(program)
    result = pytester.runpytest_subprocess(
        f"--agentspeed-agent={agent}",
        "--agentspeed-repeat=1",
        "-k",
        TASKS,
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"*agent {agent}*", "throughput ratio * -> *"])
    run = json.loads((suite / "run.json").read_text())
    assert {e["name"]: e["api"] for e in run["endpoints"]} == {
        "sim:standard": wire,
        "sim:ultraspeed": wire,
    }
    for session in run["sessions"]:
        _assert_measured(session)
        assert session["agent"] == agent
        assert session["process"]["program"] == program
        assert all(t["streamed"] for t in session["turns"])
        assert session["phases_s"]["ttft"] > 0
        assert session["phases_s"]["generation"] > 0
        # Its own report ends the output the record keeps (Codex: its --json events); its
        # commands found the project's Python (a login shell would have lost the virtualenv).
        assert last_output in session["process"]["output_tail"]
        assert "command not found" not in session["process"]["output_tail"]


def test_codex_on_a_named_endpoint_never_gets_the_key(
    suite: Path, pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real key goes from the proxy to the endpoint; Codex's environment and argv (seen by
    a wrapper named ``codex`` first on the PATH), the workspace and the outputs never hold it."""
    _require("codex")
    real = shutil.which("codex")
    assert real is not None
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    dump = tmp_path / "codex-saw.json"
    wrapper = wrapper_dir / "codex"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "saw = {'env': dict(os.environ), 'argv': sys.argv}\n"
        f"open({str(dump)!r}, 'w').write(json.dumps(saw))\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")
    codex_saw = _keeps_the_key_out(suite, pytester, "codex", "responses", dump)
    assert codex_saw["env"]["OPENAI_API_KEY"] == "sk-agentspeed-placeholder"


def _keeps_the_key_out(
    suite: Path, pytester: pytest.Pytester, agent: str, wire: str, dump: Path
) -> dict[str, Any]:
    """Run ``agent`` once on the named endpoint ``gateway`` (:func:`_named_endpoint`): the
    endpoint receives the real key; the agent's environment and argv (dumped to ``dump``),
    the run file, the report and pytest's output never hold it. What the agent saw."""
    with _named_endpoint(suite, wire) as seen:
        result, session = _one_session(pytester, agent, "gateway", "--agentspeed-html=report.html")
        with_key = bytes(seen)
    assert session["agent"] == agent
    assert SECRET.encode() in with_key
    agent_saw: dict[str, Any] = json.loads(dump.read_text())
    assert SECRET not in json.dumps(agent_saw)
    for output in ("run.json", "report.html"):
        assert SECRET not in (suite / output).read_text(), output
    assert SECRET not in result.stdout.str() + result.stderr.str()
    return agent_saw


@contextmanager
def _named_endpoint(suite: Path, wire: str) -> Iterator[bytearray]:
    """A simulator of the test's own behind a key-keeping relay, as the endpoint ``gateway``
    of the suite (``api = WIRE``, key in ``LIVE_TEST_KEY``), and a check of the pagination task
    that also fails when the key is anywhere in the workspace; yields what the relay saw."""
    handle = simulator.start(
        simulator.ServerConfig(
            mounts=(simulator.MountConfig(key="m", profile="standard", time_scale=0.02),),
            task_dirs=(str(suite),),
        )
    )
    try:
        sim_url = handle.base_url("m")
        port = int(sim_url.split(":")[2].split("/")[0])
        path = sim_url.split(str(port), 1)[1]
        with tcp_relay(port) as (relay_port, seen):
            v1 = "" if wire == "anthropic" else "/v1"
            pyproject = suite / "pyproject.toml"
            pyproject.write_text(
                pyproject.read_text()
                + f"""
[tool.agentspeed.endpoints.gateway]
api = "{wire}"
model = "sim-model"
base_url = "http://127.0.0.1:{relay_port}{path}{v1}"
api_key_env = "LIVE_TEST_KEY"
"""
            )
            # The key cut in two in the command, which the simulated model repeats to the agent.
            task = suite / "fix-pagination-off-by-one" / "agenttask.toml"
            check = 'command = "python -m pytest -q -p no:cacheprovider"'
            assert check in task.read_text()
            halves = f"'{SECRET[:10]}''{SECRET[10:]}'"
            task.write_text(
                task.read_text().replace(
                    check, f'command = "! grep -rqF {halves} . && python -m pytest -q"'
                )
            )
            os.environ["LIVE_TEST_KEY"] = SECRET
            try:
                yield seen
            finally:
                del os.environ["LIVE_TEST_KEY"]
    finally:
        handle.stop()


@pytest.mark.parametrize("wire", ["anthropic", "openai", "responses"])
def test_an_agent_defined_in_pyproject_is_measured_and_never_sees_the_key(
    suite: Path, pytester: pytest.Pytester, tmp_path: Path, wire: str
) -> None:
    """A short agent on an official SDK, defined in ``[tool.agentspeed.agents]``, on a named
    endpoint with a real key: measured like the presets; the key reaches the endpoint and
    nothing the agent has or leaves."""
    dump = tmp_path / "agent-dump.json"
    pyproject = suite / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + f"""
[tool.agentspeed.agents.sdk-agent]
command = ["{sys.executable}", "{AGENTS_DIR / "shell_agent.py"}", "{wire}", "{{model}}",
           "{{instruction_file}}"]
api = "{wire}"
env = {{ SHELL_AGENT_DUMP = "{dump}" }}
"""
    )
    agent_saw = _keeps_the_key_out(suite, pytester, "sdk-agent", wire, dump)
    assert not any(SECRET in value for value in agent_saw["env"].values())
    assert agent_saw["env"]["ANTHROPIC_API_KEY" if wire == "anthropic" else "OPENAI_API_KEY"]


def test_claude_codes_title_request_is_a_side_request_beside_turn_one(
    suite: Path, pytester: pytest.Pytester
) -> None:
    """With non-essential traffic on and a host asking for a title, Claude Code sends its title
    request while turn 1 is in flight: recorded as a side request, not a turn, and the session's
    phases still add up to its wall time."""
    _require("claude")
    pyproject = suite / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + f"""
[tool.agentspeed.agents.claude-titled]
command = ["{sys.executable}", "{AGENTS_DIR / "claude_with_title.py"}", "{{model}}",
           "{{instruction_file}}"]
api = "anthropic"
env = {{ IS_SANDBOX = "1", DISABLE_TELEMETRY = "1", DISABLE_AUTOUPDATER = "1" }}
"""
    )
    # Delays at half their real length: the title request takes long enough (about a second)
    # that the first turn, sent a few milliseconds after it, starts while it is in flight.
    _, session = _one_session(
        pytester, "claude-titled", "sim:standard", "--agentspeed-time-scale=0.5"
    )
    (title,) = [r for r in session["side_requests"] if r["path"].startswith("/v1/messages")]
    assert title["why"] in ("no tools", "structured output")
    assert title["status"] == 200
    first = session["turns"][0]
    first_end = first["start_s"] + first["wall_s"] - first["phases_s"]["agent"]
    # Concurrent with turn 1: each started before the other ended.
    timing = (title["start_s"], title["wall_s"], first["start_s"], first_end)
    assert title["start_s"] < first_end, timing
    assert first["start_s"] < title["start_s"] + title["wall_s"], timing


def test_parallel_sessions_keep_their_own_requests(suite: Path, pytester: pytest.Pytester) -> None:
    """Under ``-n 2`` two Claude Code sessions run at once, each through its own prefix at its
    worker's proxy: each session has exactly the turns of its task's trajectory (the same as a
    session run alone), so no request went to the wrong session."""
    _require("claude")
    result = pytester.runpytest_subprocess(
        "--agentspeed-agent=claude-code",
        "--agentspeed-endpoint=sim:standard",
        "--agentspeed-repeat=2",
        "-k",
        TASKS,
        "-n",
        "2",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    sessions = _sessions(suite / "run.json")
    by_task: dict[str, set[tuple[int, int]]] = {}
    for session in sessions:
        _assert_measured(session)
        shape = (len(session["turns"]), session["usage"]["output_tokens"])
        by_task.setdefault(session["task"], set()).add(shape)
    # The simulated trajectory is a function of the task: both repeats saw the same one.
    assert all(len(shapes) == 1 for shapes in by_task.values()), by_task
    assert {t for t, s in by_task.items() for n, _ in s if n >= 2} == set(by_task)
    # And sessions did overlap in time.
    spans = sorted((s["started_at"], s["started_at"] + s["wall_s"]) for s in sessions)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))


def test_an_agent_that_is_not_installed_stops_the_run_before_any_session(
    suite: Path, pytester: pytest.Pytester
) -> None:
    pyproject = suite / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + """
[tool.agentspeed.agents.ghost]
command = ["agentspeed-no-such-agent", "{instruction}"]
api = "anthropic"
install = "pip install ghost-agent"
"""
    )
    result = pytester.runpytest_subprocess("--agentspeed-agent=ghost", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*ghost: `agentspeed-no-such-agent` is not installed (install: pip install ghost-agent)*"]
    )
    assert "passed" not in result.stdout.str()


@pytest.mark.parametrize(("agent", "program"), [("claude-code", "claude"), ("codex", "codex")])
def test_a_recording_through_the_proxy_replays_with_no_agent_installed(
    suite: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    agent: str,
    program: str,
) -> None:
    """An external agent's session, recorded by the proxy, replays with the agent gone: the
    replay run gets a PATH with no program on it at all."""
    _require(program)
    _, session = _one_session(pytester, agent, "sim:standard", "--agentspeed-record=rec")
    (recording,) = (pytester.path / "rec").iterdir()
    monkeypatch.setenv("PATH", str(pytester.path / "no-programs-here"))
    result = pytester.runpytest_subprocess(
        "--agentspeed-replay=rec",
        "--agentspeed-endpoint=sim:standard",
        "--agentspeed-endpoint=sim:ultraspeed",
        "--agentspeed-repeat=1",
        "--agentspeed-json=replay.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    replays = _sessions(pytester.path / "replay.json")
    assert {r["endpoint"] for r in replays} == {"sim:standard", "sim:ultraspeed"}
    for replay in replays:
        assert replay["agent"] == "replay"
        assert replay["outcome"] == "passed"
        # The recorded turns, one to one, with the recorded output lengths.
        assert [t["usage"]["output_tokens"] for t in replay["turns"]] == [
            t["usage"]["output_tokens"] for t in session["turns"]
        ]
        assert abs(sum(replay["phases_s"].values()) - replay["wall_s"]) < 1e-6
        # The agent's own time between turns is slept as recorded, in the same phase.
        assert replay["phases_s"]["agent"] > 0
    assert recording.name.endswith(".sim-standard-r0.rec.gz")
