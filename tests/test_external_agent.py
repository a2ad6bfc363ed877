"""External agents (``agents/external.py``): a program run per session against the proxy.

The proxy here is a stand-in (:class:`FakeProxy`): a real HTTP server on loopback that answers
every request and records it as an :class:`Exchange` on ``perf_counter_ns``, as the recording
proxy does. The timeline is a stand-in too (:class:`StandInTimeline`), written against the
signature of ``agents/timeline.session_timeline``; it records what it was given, so the tests
check that the process's start and exit bracket its requests on one clock. The agent under test
is a short Python script that dumps its argv and environment outside the workspace and calls
the endpoint through the base URL and key it was given.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest

import pytest_agentspeed.agents as registry
from pytest_agentspeed.agents import (
    AgentContext,
    SessionTimeline,
    agent_names,
    agent_wire,
    make_agent,
)
from pytest_agentspeed.agents.external import AgentCommand, ExternalAgent
from pytest_agentspeed.agents.presets import CLAUDE_CODE, MINI_SWE_AGENT
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.exchanges import Exchange
from pytest_agentspeed.records import TurnRecord, Usage
from pytest_agentspeed.settings import Settings
from pytest_agentspeed.tasks import Limits, Task

PLACEHOLDER_KEY = "agentspeed-placeholder-key"
PARENT_SECRET = "sk-parent-secret-0123456789"

# --------------------------------------------------------------------------- stand-ins


class FakeProxy:
    """A :class:`~pytest_agentspeed.agents.ProxiedEndpoint` on a real loopback server."""

    api = "anthropic"
    model = "sim-model"
    placeholder_key = PLACEHOLDER_KEY

    def __init__(
        self, status: int = 200, body: bytes = b"{}", content_type: str = "application/json"
    ) -> None:
        self._exchanges: list[Exchange] = []
        #: (path, headers) of each request, as received.
        self.requests: list[tuple[str, dict[str, str]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                received = time.perf_counter_ns()
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.removeprefix("/s/tok")
                proxy.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                proxy._exchanges.append(_exchange(self.command, path, raw, received, status))

            do_POST = do_GET = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/s/tok"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def exchanges(self) -> tuple[Exchange, ...]:
        return tuple(self._exchanges)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _exchange(method: str, path: str, raw: bytes, received: int, status: int) -> Exchange:
    body = json.loads(raw) if raw else {}
    route = path.split("?")[0]
    wire, operation = {
        "/v1/messages": ("anthropic", "messages"),
        "/v1/chat/completions": ("openai", "chat"),
    }.get(route, ("other", "other"))
    return Exchange(
        method=method,
        path=path,
        wire=wire,  # type: ignore[arg-type]
        operation=operation,  # type: ignore[arg-type]
        model=body.get("model"),
        stream_requested=bool(body.get("stream")),
        tools=(),
        structured_output=False,
        received_ns=received,
        end_ns=time.perf_counter_ns(),
        events=(),
        status=status,
    )


class StandInTimeline:
    """Stands in for ``agents.timeline.session_timeline`` until it is merged: startup to the
    first model request, winddown from the last one's end, the rest the agent's."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Exchange, ...], int, int]] = []

    def __call__(
        self, exchanges: Sequence[Exchange], /, *, started_ns: int, ended_ns: int
    ) -> tuple[Sequence[TurnRecord], SessionTimeline]:
        self.calls.append((tuple(exchanges), started_ns, ended_ns))
        model = [e for e in exchanges if e.is_model_request]
        first = model[0].received_ns if model else ended_ns
        last = model[-1].end_ns if model else ended_ns
        phases = {
            "startup": (first - started_ns) / 1e9,
            "agent": (last - first) / 1e9,
            "winddown": (ended_ns - last) / 1e9,
        }
        return (), SessionTimeline(
            wall_s=(ended_ns - started_ns) / 1e9, phases_s=phases, usage=Usage()
        )


AGENT_SCRIPT = r"""
import json, os, subprocess, sys, time, urllib.request

mode, dump = sys.argv[1], sys.argv[2]
info = {"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd()}
if mode == "sleep":
    info["child"] = subprocess.Popen(["sleep", "300"]).pid
try:
    with open(dump, "w") as f:
        json.dump(info, f)
except OSError as exc:
    print("dump failed:", exc.strerror)

def ask():
    if "OPENAI_BASE_URL" in os.environ:
        url = os.environ["OPENAI_BASE_URL"] + "/chat/completions"
        headers = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
    else:
        url = os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages"
        headers = {"x-api-key": os.environ["ANTHROPIC_API_KEY"]}
    body = json.dumps({"model": "sim-model", "messages": []}).encode()
    headers["content-type"] = "application/json"
    urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10).read()

if mode == "ok":
    ask()
    with open("done.txt", "w") as f:
        f.write("done")
elif mode == "fail":
    ask()
    print("x" * 6000)
    print("key", os.environ["ANTHROPIC_API_KEY"], "secret", open(sys.argv[3]).read())
    sys.exit(3)
elif mode == "straddle":
    ask()
    # The output's kept tail (4096 bytes) starts 10 characters before the secret's end.
    sys.stdout.write("z" * 5000 + open(sys.argv[3]).read() + "y" * (4096 - 10 - 1) + "\n")
elif mode == "sleep":
    time.sleep(300)
elif mode == "confined":
    for target in sys.argv[3:]:
        try:
            with open(target, "w") as f:
                f.write("escaped")
            print("wrote", target)
        except OSError as exc:
            print("refused", target, exc.strerror)
    with open("inside.txt", "w") as f:
        f.write("inside")
    ask()
"""


@pytest.fixture
def proxy() -> Iterator[FakeProxy]:
    fake = FakeProxy()
    yield fake
    fake.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory holding the test agent's script (``{project}/agent.py``)."""
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "agent.py").write_text(AGENT_SCRIPT)
    return directory


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "ws"
    directory.mkdir()
    return directory


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Agents defined here must not outlive the test in the process-wide registry.
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def spec_for(project: Path, *args: str, api: str = "anthropic", **fields: Any) -> AgentCommand:
    base_url_env, key_env = (
        (("ANTHROPIC_BASE_URL",), ("ANTHROPIC_API_KEY",))
        if api == "anthropic"
        else (("OPENAI_BASE_URL",), ("OPENAI_API_KEY",))
    )
    return AgentCommand(
        name="scripted",
        command=(sys.executable, "{project}/agent.py", *args),
        api=api,  # type: ignore[arg-type]
        base_url_env=base_url_env,
        key_env=key_env,
        project_dir=project,
        **fields,
    )


def context(workspace: Path, proxy: FakeProxy | None, **limits: Any) -> AgentContext:
    task = Task(
        id="t",
        instruction='Fix "the bug" in {workspace} -- a {brace} too',
        check="true",
        limits=Limits(**limits),
    )
    return AgentContext(task=task, workspace=workspace, session_id="t[sim-r1]", proxy=proxy)


# --------------------------------------------------------------------------- a session


def test_argv_env_and_the_session(
    tmp_path: Path,
    project: Path,
    workspace: Path,
    proxy: FakeProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_API_KEY", PARENT_SECRET)
    monkeypatch.setenv("AGENTSPEED_TEST_DROP", "parent")
    monkeypatch.setenv("AGENTSPEED_TEST_KEEP", "parent")
    dump = tmp_path / "dump.json"
    args = [
        "ok", str(dump), "{instruction}", "{instruction_file}", "{workspace}", "{model}",
        "{base_url}", "{max_turns}", "{home}", '{"json": 1}',
    ]  # fmt: skip
    spec = spec_for(
        project,
        *args,
        env={"AGENTSPEED_TEST_DROP": "", "WHERE": "{workspace}/x", "IS_SANDBOX": "1"},
    )
    timeline = StandInTimeline()
    run = ExternalAgent(spec, timeline=timeline).run(context(workspace, proxy, max_turns=7))

    info = json.loads(dump.read_text())
    instruction, instruction_file, ws, model, base_url, max_turns, home, literal = info["argv"][3:]
    assert instruction == 'Fix "the bug" in {workspace} -- a {brace} too'
    assert (ws, model, base_url, max_turns, literal) == (
        str(workspace.resolve()),
        "sim-model",
        proxy.base_url,
        "7",
        '{"json": 1}',
    )
    assert info["cwd"] == str(workspace.resolve())
    for outside in (instruction_file, home, info["env"]["TMPDIR"]):
        assert not Path(outside).is_relative_to(workspace.resolve())
        assert not Path(outside).exists(), "the throwaway directory was not deleted"
    env = info["env"]
    assert env["HOME"] == home
    assert env["XDG_CONFIG_HOME"] == f"{home}/.config"
    assert env["ANTHROPIC_BASE_URL"] == proxy.base_url
    assert env["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY
    assert env["WHERE"] == f"{workspace.resolve()}/x"
    assert env["IS_SANDBOX"] == "1"
    assert env["AGENTSPEED_TEST_KEEP"] == "parent"
    assert "AGENTSPEED_TEST_DROP" not in env
    assert "MY_API_KEY" not in env
    assert PARENT_SECRET not in dump.read_text()

    # The request went through the base URL with the placeholder key.
    assert [(p, h.get("x-api-key")) for p, h in proxy.requests] == [
        ("/v1/messages", PLACEHOLDER_KEY)
    ]
    assert (workspace / "done.txt").read_text() == "done"
    # The process's life brackets its request, on the clock of the proxy's marks.
    ((exchanges, started_ns, ended_ns),) = timeline.calls
    assert exchanges == proxy.exchanges()
    assert started_ns < exchanges[0].received_ns <= exchanges[0].end_ns < ended_ns
    assert (run.stopped, run.error, run.turns) == ("end_turn", None, ())
    assert run.timeline is not None
    assert run.process is not None
    assert run.process.program == os.path.basename(sys.executable)
    assert (run.process.exit_code, run.process.timed_out) == (0, False)
    assert run.process.startup_s == (exchanges[0].received_ns - started_ns) / 1e9
    assert run.process.winddown_s == (ended_ns - exchanges[0].end_ns) / 1e9


def test_an_openai_agent_gets_the_base_url_with_v1(
    tmp_path: Path, project: Path, workspace: Path, proxy: FakeProxy
) -> None:
    dump = tmp_path / "dump.json"
    spec = spec_for(project, "ok", str(dump), api="openai")
    run = ExternalAgent(spec, timeline=StandInTimeline()).run(context(workspace, proxy))
    env = json.loads(dump.read_text())["env"]
    assert (env["OPENAI_BASE_URL"], env["OPENAI_API_KEY"]) == (
        f"{proxy.base_url}/v1",
        PLACEHOLDER_KEY,
    )
    assert [(p, h["authorization"]) for p, h in proxy.requests] == [
        ("/v1/chat/completions", f"Bearer {PLACEHOLDER_KEY}")
    ]
    assert run.stopped == "end_turn"


def test_without_a_proxy_the_agent_refuses(project: Path, workspace: Path) -> None:
    run = ExternalAgent(spec_for(project, "ok", "/dev/null")).run(context(workspace, None))
    assert (run.stopped, run.error) == (
        "no_model",
        "the scripted agent needs the recording proxy, and the session has none",
    )


# --------------------------------------------------------------------------- how it ends


def test_a_hanging_agent_is_killed_with_its_group(
    tmp_path: Path, project: Path, workspace: Path, proxy: FakeProxy
) -> None:
    dump = tmp_path / "dump.json"
    # The smaller of the agent's limit and the task's wins.
    spec = spec_for(project, "sleep", str(dump), timeout_s=60.0)
    started = time.monotonic()
    run = ExternalAgent(spec, timeline=StandInTimeline()).run(
        context(workspace, proxy, timeout_s=1.5)
    )
    assert time.monotonic() - started < 30
    assert (run.stopped, run.error) == (
        "timeout",
        "the agent ran past its time limit (1.5 s) and was killed",
    )
    assert run.process is not None
    assert (run.process.exit_code, run.process.timed_out) == (None, True)
    child = json.loads(dump.read_text())["child"]
    assert _gone(child), f"the agent's background child {child} outlived it"


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_failing_agent_is_an_error_with_its_redacted_tail(
    tmp_path: Path,
    project: Path,
    workspace: Path,
    proxy: FakeProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_API_KEY", PARENT_SECRET)
    # The agent never gets the parent's secret; here it finds it in a file and prints it.
    leaked = tmp_path / "leaked.txt"
    leaked.write_text(PARENT_SECRET)
    spec = spec_for(project, "fail", str(tmp_path / "dump.json"), str(leaked))
    run = ExternalAgent(spec, timeline=StandInTimeline()).run(context(workspace, proxy))
    assert (run.stopped, run.error) == ("error", "the agent exited with code 3")
    assert run.process is not None
    assert run.process.exit_code == 3
    tail = run.process.output_tail
    assert tail.endswith("key [REDACTED] secret [REDACTED]\n")
    assert PARENT_SECRET not in tail
    assert PLACEHOLDER_KEY not in tail
    # Bounded: the start of 6 KB of output is left out, and said so.
    assert re.match(r"\[\.\.\. [\d,]+ bytes omitted \.\.\.\]\n", tail)
    assert len(tail.encode()) < 4200


def test_a_secret_cut_by_the_tail_is_redacted_too(
    tmp_path: Path,
    project: Path,
    workspace: Path,
    proxy: FakeProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_API_KEY", PARENT_SECRET)
    leaked = tmp_path / "leaked.txt"
    leaked.write_text(PARENT_SECRET)
    spec = spec_for(project, "straddle", str(tmp_path / "dump.json"), str(leaked))
    run = ExternalAgent(spec, timeline=StandInTimeline()).run(context(workspace, proxy))
    assert run.process is not None
    marker, kept = run.process.output_tail.split("\n", 1)
    assert marker == f"[... {5000 + len(PARENT_SECRET) - 10:,} bytes omitted ...]"
    assert kept == "[REDACTED]" + "y" * 4085 + "\n"


def test_an_agent_that_never_calls_the_model_is_an_error(
    tmp_path: Path, project: Path, workspace: Path, proxy: FakeProxy
) -> None:
    spec = spec_for(project, "quiet", str(tmp_path / "dump.json"))
    run = ExternalAgent(spec, timeline=StandInTimeline()).run(context(workspace, proxy))
    assert (run.stopped, run.error) == ("error", "the agent made no model request")
    assert run.process is not None
    assert run.process.exit_code == 0


def test_an_agent_that_cannot_start_is_an_error(workspace: Path, proxy: FakeProxy) -> None:
    spec = AgentCommand(
        name="absent",
        command=("agentspeed-no-such-program",),
        api="anthropic",
        base_url_env=(),
        key_env=(),
    )
    run = ExternalAgent(spec, timeline=StandInTimeline()).run(context(workspace, proxy))
    assert (run.stopped, run.error) == (
        "error",
        "the agent could not be started: `agentspeed-no-such-program`: No such file or directory",
    )


# --------------------------------------------------------------------------- bwrap


def test_under_bwrap_the_agent_writes_only_its_workspace(
    tmp_path: Path, project: Path, workspace: Path, proxy: FakeProxy
) -> None:
    outside = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="agentspeed-test-"))
    try:
        targets = [outside / "escaped.txt", tmp_path / "escaped.txt", project / "escaped.txt"]
        spec = spec_for(project, "confined", str(tmp_path / "dump.json"), *map(str, targets))
        agent = ExternalAgent(spec, timeline=StandInTimeline()).confined("bwrap")
        assert agent.missing() is None
        run = agent.run(context(workspace, proxy))
        assert run.process is not None
        output = run.process.output_tail
        assert (run.stopped, run.error) == ("end_turn", None), output
        for target in targets:
            assert not target.exists(), f"{target} was written from the sandbox"
        # Read-only outside; /tmp is the sandbox's own (the write lands there, and goes).
        assert f"refused {targets[0]} Read-only file system" in output
        assert f"refused {targets[2]} Read-only file system" in output
        assert f"wrote {targets[1]}" in output
        assert (workspace / "inside.txt").read_text() == "inside"
        assert [p for p, _ in proxy.requests] == ["/v1/messages"]
    finally:
        for child in outside.iterdir():
            child.unlink()
        outside.rmdir()


# --------------------------------------------------------------------------- installed?


def test_a_missing_program_is_one_line_naming_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ExternalAgent(CLAUDE_CODE).missing() == (
        "claude-code: `claude` is not installed "
        "(install: npm install -g @anthropic-ai/claude-code@2.1.332)"
    )
    # mini is found next to the running interpreter, which every agent's PATH starts with.
    assert (Path(sys.executable).parent / "mini").exists()
    assert ExternalAgent(MINI_SWE_AGENT).missing() is None
    plain = AgentCommand(
        name="mine", command=("my-agent",), api="openai", base_url_env=(), key_env=()
    )
    assert ExternalAgent(plain).missing() == "mine: `my-agent` is not installed (not on PATH)"
    confined = AgentCommand(
        name="mine",
        command=(sys.executable,),
        api="openai",
        base_url_env=(),
        key_env=(),
        sandbox="bwrap",
    )
    assert ExternalAgent(confined).missing() == (
        'mine: sandbox = "bwrap" needs `bwrap`, which is not installed '
        "(install: apt-get install bubblewrap)"
    )


# --------------------------------------------------------------------------- the presets


def test_the_preset_commands(workspace: Path, proxy: FakeProxy, tmp_path: Path) -> None:
    ctx = context(workspace, proxy, max_turns=9)
    claude_argv, claude_env = ExternalAgent(CLAUDE_CODE)._prepare(ctx, proxy, tmp_path / "c")
    assert claude_argv == [
        "claude", "-p", ctx.task.instruction, "--dangerously-skip-permissions",
        "--output-format", "json", "--model", "sim-model",
    ]  # fmt: skip
    assert {k: claude_env[k] for k in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")} == {
        "ANTHROPIC_BASE_URL": proxy.base_url,
        "ANTHROPIC_API_KEY": PLACEHOLDER_KEY,
    }
    for name in (
        "IS_SANDBOX",
        "DISABLE_TELEMETRY",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        "DISABLE_AUTOUPDATER",
    ):
        assert claude_env[name] == "1"
    assert claude_env["HOME"] == str(tmp_path / "c" / "home")

    mini_argv, mini_env = ExternalAgent(MINI_SWE_AGENT)._prepare(ctx, proxy, tmp_path / "m")
    assert mini_argv == [
        "mini", "-y", "--exit-immediately", "-m", "openai/sim-model", "-c", "mini.yaml",
        "-c", "agent.step_limit=9", "-c", f"model.model_kwargs.api_base={proxy.base_url}/v1",
        "-t", ctx.task.instruction,
    ]  # fmt: skip
    assert mini_env["OPENAI_API_KEY"] == PLACEHOLDER_KEY
    assert mini_env["MSWEA_CONFIGURED"] == "true"
    assert mini_env["MSWEA_GLOBAL_CONFIG_DIR"] == str(tmp_path / "m/home/.config/mini-swe-agent")


def _sse(*events: dict[str, Any]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


#: A whole streamed Messages reply: the text "Done." and end_turn.
DONE_REPLY = _sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "sim-model",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Done."},
    },
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 2},
    },
    {"type": "message_stop"},
)


@pytest.mark.parametrize("sandbox", [None, "bwrap"])
def test_claude_code_runs_a_session_through_the_proxy(
    workspace: Path, sandbox: Literal["bwrap"] | None
) -> None:
    # The real Claude Code, answered "Done." on its first turn: its flags, its environment and
    # its throwaway HOME are enough for a whole session, confined or not.
    fake = FakeProxy(body=DONE_REPLY, content_type="text/event-stream")
    try:
        agent = ExternalAgent(CLAUDE_CODE, timeline=StandInTimeline()).confined(sandbox)
        run = agent.run(context(workspace, fake, timeout_s=120))
    finally:
        fake.close()
    assert run.process is not None
    assert (run.stopped, run.error) == ("end_turn", None), run.process.output_tail
    assert [(p, h["x-api-key"]) for p, h in fake.requests] == [
        ("/v1/messages?beta=true", PLACEHOLDER_KEY)
    ]
    assert fake.exchanges()[0].model == "sim-model"
    # stderr's warnings first (an unknown model name), then the JSON result on its last line.
    result = json.loads(run.process.output_tail.splitlines()[-1])
    assert (result["result"], result["num_turns"], result["is_error"]) == ("Done.", 1, False)


#: A chat completion that calls mini-swe-agent's one tool with its finish command.
FINISH_REPLY = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "sim-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "bash",
                                "arguments": json.dumps(
                                    {"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"}
                                ),
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
).encode()


def test_mini_swe_agent_runs_a_session_through_the_proxy(workspace: Path) -> None:
    # The real mini: its flags parse, its first request arrives where the preset sends it, and
    # a reply calling its finish command ends the session.
    fake = FakeProxy(body=FINISH_REPLY)
    try:
        agent = ExternalAgent(MINI_SWE_AGENT, timeline=StandInTimeline())
        run = agent.run(context(workspace, fake, timeout_s=120))
    finally:
        fake.close()
    assert run.process is not None
    assert (run.stopped, run.error) == ("end_turn", None), run.process.output_tail
    assert [(p, h["authorization"]) for p, h in fake.requests] == [
        ("/v1/chat/completions", f"Bearer {PLACEHOLDER_KEY}")
    ]
    assert fake.exchanges()[0].model == "sim-model"


# --------------------------------------------------------------------------- definitions


def resolve(tmp_path: Path, toml: str, **options: Any) -> Settings:
    (tmp_path / "pyproject.toml").write_text(toml)
    return Settings.resolve(options.get, rootdir=tmp_path)


def test_a_defined_agents_wire_is_registered_and_open_simulated_endpoints_speak_it(
    tmp_path: Path,
) -> None:
    from pytest_agentspeed.run.slots import speaking_agents_wire

    toml = '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "responses"\n'
    settings = resolve(tmp_path, toml, agent="mine", endpoint=["sim:standard"])
    assert agent_wire("mine") == "responses"
    assert [e.api for e in speaking_agents_wire(settings).endpoints] == ["responses"]


def test_a_defined_agent_is_selectable_and_a_redefinition_replaces_it(tmp_path: Path) -> None:
    settings = resolve(
        tmp_path,
        """
[tool.agentspeed]
agent = "mine"
[tool.agentspeed.agents.mine]
command = ["python", "{project}/agent.py", "{instruction_file}"]
api = "openai"
env = { MY_FLAG = "1", HTTP_PROXY = "" }
timeout_s = 30
install = "pip install mine"
""",
    )
    assert settings.agent == "mine"
    assert settings.sandbox is None
    assert {"claude-code", "mini-swe-agent", "mine"} <= set(agent_names())
    agent = make_agent("mine")
    assert isinstance(agent, ExternalAgent)
    assert agent.spec == AgentCommand(
        name="mine",
        command=("python", "{project}/agent.py", "{instruction_file}"),
        api="openai",
        base_url_env=("OPENAI_BASE_URL",),
        key_env=("OPENAI_API_KEY",),
        env={"MY_FLAG": "1", "HTTP_PROXY": ""},
        timeout_s=30.0,
        install="pip install mine",
        project_dir=tmp_path,
    )
    assert (agent.needs_endpoint, agent.needs_proxy, agent.expects_check_to_fail) == (
        True,
        True,
        False,
    )

    settings = resolve(
        tmp_path,
        """
[tool.agentspeed]
sandbox = "bwrap"
[tool.agentspeed.agents.mine]
command = ["other"]
api = "anthropic"
base_url_env = ["A_URL", "B_URL"]
key_env = "A_KEY"
""",
        agent="mine",
    )
    assert settings.sandbox == "bwrap"
    agent = make_agent("mine")
    assert isinstance(agent, ExternalAgent)
    assert (agent.spec.command, agent.spec.base_url_env, agent.spec.key_env) == (
        ("other",),
        ("A_URL", "B_URL"),
        ("A_KEY",),
    )
    # [tool.agentspeed] sandbox confines every external agent, the presets too.
    assert agent.spec.sandbox == "bwrap"
    preset = make_agent("claude-code", sandbox=settings.sandbox)
    assert isinstance(preset, ExternalAgent)
    assert preset.spec.sandbox == "bwrap"
    assert make_agent("builtin", sandbox="bwrap").name == "builtin"


def test_an_unknown_agent_lists_the_built_in_and_defined_ones(tmp_path: Path) -> None:
    toml = '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\n'
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, toml, agent="nope")
    assert str(info.value) == f"unknown agent 'nope'; accepted: {', '.join(agent_names())}"
    assert agent_names()[:6] == (
        "builtin",
        "oracle",
        "nop",
        "claude-code",
        "codex",
        "mini-swe-agent",
    )
    assert "mine" in agent_names()


BAD_DEFINITIONS = [
    (
        '[tool.agentspeed.agents.mine]\napi = "openai"\n',
        "[tool.agentspeed.agents.mine] command: required",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\n',
        "[tool.agentspeed.agents.mine] api: required",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "gemini"\n',
        "[tool.agentspeed.agents.mine] api: expected one of 'anthropic', 'openai', "
        "'responses', got 'gemini'",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = "x {instruction}"\napi = "openai"\n',
        "[tool.agentspeed.agents.mine] command: expected a non-empty list of strings, the "
        'program first, like ["my-agent", "{instruction}"]; got \'x {instruction}\'',
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = []\napi = "openai"\n',
        "[tool.agentspeed.agents.mine] command: expected a non-empty list of strings, the "
        'program first, like ["my-agent", "{instruction}"]; got []',
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x", 3]\napi = "openai"\n',
        "[tool.agentspeed.agents.mine] command: expected a non-empty list of strings, the "
        "program first; got 3 in it",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x", "{instrution}"]\napi = "openai"\n',
        "[tool.agentspeed.agents.mine] command: unknown placeholder {instrution} in command; "
        "accepted: {instruction}, {instruction_file}, {workspace}, {model}, {base_url}, "
        "{max_turns}, {home}, {project}",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\nkey_env = 1\n',
        "[tool.agentspeed.agents.mine] key_env: expected an environment variable name or a "
        'list of them (like "OPENAI_API_KEY" or ["A", "B"]), got 1',
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\nbase_url_env = ["A B"]\n',
        "[tool.agentspeed.agents.mine] base_url_env: expected an environment variable name "
        'or a list of them (like "OPENAI_API_KEY" or ["A", "B"]), got [\'A B\']',
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\nenv = { A = 1 }\n',
        '[tool.agentspeed.agents.mine] env: A: expected a string ("" removes the variable), got 1',
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\nenv = "A=1"\n',
        "[tool.agentspeed.agents.mine] env: expected a table of strings, like "
        "{ MY_FLAG = \"1\" }; got 'A=1'",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\ntimeout_s = 0\n',
        "[tool.agentspeed.agents.mine] timeout_s: expected a positive number of seconds, got 0",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\ntimeout_s = true\n',
        "[tool.agentspeed.agents.mine] timeout_s: expected a positive number of seconds, got True",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\nsandbox = "docker"\n',
        "[tool.agentspeed.agents.mine] sandbox: unknown sandbox 'docker'; accepted: bwrap",
    ),
    (
        '[tool.agentspeed.agents.mine]\ncommand = ["x"]\napi = "openai"\ntimeout = 3\n',
        "[tool.agentspeed.agents.mine] unknown key 'timeout'; accepted: command, api, "
        "base_url_env, key_env, env, timeout_s, sandbox, install, description",
    ),
    (
        '[tool.agentspeed.agents."my agent"]\ncommand = ["x"]\napi = "openai"\n',
        "[tool.agentspeed.agents.my agent]: agent names use letters, digits, '.', '_' and "
        "'-', and start with a letter or digit",
    ),
    (
        '[tool.agentspeed.agents.claude-code]\ncommand = ["x"]\napi = "openai"\n',
        "[tool.agentspeed.agents.claude-code]: agent 'claude-code' comes with agentspeed and "
        "cannot be replaced",
    ),
    ("[tool.agentspeed]\nagents = 3\n", "[tool.agentspeed.agents] must be a table"),
    (
        "[tool.agentspeed.agents]\nmine = 3\n",
        "[tool.agentspeed.agents.mine] must be a table",
    ),
    (
        '[tool.agentspeed]\nsandbox = "docker"\n',
        "[tool.agentspeed] sandbox: unknown sandbox 'docker'; accepted: bwrap",
    ),
]


@pytest.mark.parametrize(("toml", "message"), BAD_DEFINITIONS)
def test_a_bad_definition_is_a_clear_error(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, toml)
    assert str(info.value) == f"{tmp_path / 'pyproject.toml'}: {message}"


def test_live_progress_counts_the_model_requests_that_offered_tools() -> None:
    """The heartbeat of a long external session: told as each main-looking request ends; side
    requests (no tools) and probes do not count as turns."""
    from factories import exchange, text_stream, title_request

    from pytest_agentspeed.agents.external import _live_progress

    told: list[tuple[int, int]] = []
    listener = _live_progress(lambda turns, tokens, _elapsed: told.append((turns, tokens)))
    listener(exchange(0, text_stream(20, 40)))
    listener(title_request())
    listener(exchange(50, [], operation="other", method="HEAD", path="/", tools=()))
    listener(exchange(60, text_stream(80, 90), usage=Usage(output_tokens=7)))
    assert told == [(1, 5), (2, 12)]
