"""Agents that are programs: Claude Code, mini-swe-agent or any command, run once per session.

An :class:`AgentCommand` says how to run one: the argv (with placeholders), the wire it speaks,
the environment variables that receive the base URL and the key, extra environment, a time
limit and an optional sandbox. :class:`ExternalAgent` runs it for a session:

1. the instruction is written to a file in a throwaway directory outside the workspace, which
   also holds the agent's HOME (and XDG directories, TMPDIR), so it reads no user settings and
   leaves nothing in the user's;
2. the program runs in the workspace through :func:`pytest_agentspeed.processes.run_program`
   (its own process group, killed whole at the time limit and at exit, bounded output), with
   the scrubbed environment plus the spec's and, in the variables named for them, the session's
   base URL at the recording proxy and the proxy's placeholder key: the real key never reaches
   it;
3. after it exited, the requests the proxy saw become turns, side requests and phases
   (``agents/timeline.py``), and the process's end becomes a :class:`ProcessRecord` with its
   output's tail, redacted.

The presets (``claude-code``, ``mini-swe-agent``) are in :mod:`pytest_agentspeed.agents.presets`;
agents defined in ``[tool.agentspeed.agents.NAME]`` are parsed by
:mod:`pytest_agentspeed.agents.defined`. See ``docs/agents.md``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from pytest_agentspeed.agents.seam import (
    AgentContext,
    AgentRun,
    Progress,
    ProxiedEndpoint,
    SessionTimeline,
)
from pytest_agentspeed.agents.timeline import process_spans, sent_requests, session_timeline
from pytest_agentspeed.exchanges import Exchange
from pytest_agentspeed.processes import (
    ProgramResult,
    credential_values,
    run_program,
    scrubbed_environment,
)
from pytest_agentspeed.records import ProcessRecord, TurnRecord
from pytest_agentspeed.sent import SentLog

__all__ = [
    "APIS",
    "PLACEHOLDERS",
    "SANDBOXES",
    "AgentCommand",
    "ExternalAgent",
    "SessionTimelineFn",
    "default_env_names",
]

#: The wires an external agent can speak (those of ``endpoints.Api``, which this layer may not
#: import).
Api = Literal["anthropic", "openai", "responses"]
APIS: tuple[Api, ...] = ("anthropic", "openai", "responses")
Sandbox = Literal["bwrap"]
#: The confinements an external agent can run under.
SANDBOXES: tuple[Sandbox, ...] = ("bwrap",)
#: What ``{NAME}`` in a command or an ``env`` value becomes (``docs/agents.md``).
PLACEHOLDERS = {
    "instruction": "the task's instruction",
    "instruction_file": "a file holding the instruction (outside the workspace)",
    "workspace": "the session's workspace (the agent's working directory)",
    "model": "the endpoint's model name",
    "base_url": "the session's base URL at the proxy, without /v1",
    "max_turns": "the task's turn limit",
    "home": "the agent's throwaway HOME",
    "project": "the directory of the pyproject.toml that defined the agent",
}
#: ``{name}`` as a placeholder: other braces (a JSON argument) are left as they are.
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INSTALL_BWRAP = "apt-get install bubblewrap"
#: How much of the agent's output the record keeps: its end, where the error usually is.
_TAIL_BYTES = 4096
_REDACTED = "[REDACTED]"


def default_env_names(api: Api) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The variables that receive the base URL and the key when a definition names none:
    those the wire's official SDKs read."""
    if api == "anthropic":
        return ("ANTHROPIC_BASE_URL",), ("ANTHROPIC_API_KEY",)
    return ("OPENAI_BASE_URL",), ("OPENAI_API_KEY",)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCommand:
    """How to run an agent program for one session (``docs/agents.md``)."""

    #: The name ``--agentspeed-agent`` selects it by.
    name: str
    #: The argv, each item with :data:`PLACEHOLDERS` filled in; never run through a shell.
    command: tuple[str, ...]
    #: The wire the agent speaks.
    api: Api
    #: Variables that receive the session's base URL at the proxy (``openai``: with ``/v1``).
    base_url_env: tuple[str, ...]
    #: Variables that receive the proxy's placeholder key.
    key_env: tuple[str, ...]
    #: Extra environment, placeholders filled in; ``""`` removes the variable.
    env: Mapping[str, str] = field(default_factory=dict)
    #: The agent's time limit, within the task's (``limits.timeout_s``): the smaller wins.
    timeout_s: float | None = None
    #: Run it confined (``bwrap``: bubblewrap), or not (``None``).
    sandbox: Sandbox | None = None
    #: The command that installs the program, named when it is missing.
    install: str | None = None
    #: A few words for ``--help``.
    description: str | None = None
    #: What ``{project}`` becomes: the directory of the defining pyproject.toml.
    project_dir: Path | None = None

    @property
    def program(self) -> str:
        """The program's name as the record shows it (``claude``, ``mini``, ``python``)."""
        return os.path.basename(self.command[0]) or self.command[0]


class SessionTimelineFn(Protocol):
    """:func:`pytest_agentspeed.agents.timeline.session_timeline`: a session's exchanges and its
    process's life (``perf_counter_ns``) to its turns and its timeline."""

    def __call__(
        self, exchanges: Sequence[Exchange], /, *, started_ns: int, ended_ns: int
    ) -> tuple[Sequence[TurnRecord], SessionTimeline]: ...


class ExternalAgent:
    """An agent that is a program, run once per session through the recording proxy.

    :param spec: how to run it.
    :param timeline: turns a session's exchanges into turns and phases; the package's
        ``agents.timeline.session_timeline`` unless given (tests give their own).
    """

    needs_endpoint = True
    expects_check_to_fail = False
    #: The run core opens a proxy session for it and passes it as ``context.proxy``.
    needs_proxy = True

    def __init__(self, spec: AgentCommand, *, timeline: SessionTimelineFn | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self._timeline = timeline

    def __repr__(self) -> str:
        return f"ExternalAgent({self.name!r})"

    def confined(self, sandbox: Sandbox | None) -> ExternalAgent:
        """This agent run under ``sandbox`` (``[tool.agentspeed] sandbox``); itself for
        ``None``."""
        if sandbox is None or self.spec.sandbox == sandbox:
            return self
        return ExternalAgent(replace(self.spec, sandbox=sandbox), timeline=self._timeline)

    def missing(self) -> str | None:
        """What is not installed, as one line naming the install command; ``None`` when the
        program (and the sandbox's) can be run. Called before any session."""
        path = scrubbed_environment().get("PATH", os.defpath)
        program = self.spec.command[0]
        # A program named by a placeholder, or relative to the workspace, is known at run time.
        knowable = not PLACEHOLDER_RE.search(program) and (
            os.sep not in program or program.startswith(os.sep)
        )
        if knowable and shutil.which(program, path=path) is None:
            how = f"install: {self.spec.install}" if self.spec.install else "not on PATH"
            return f"{self.name}: `{program}` is not installed ({how})"
        if self.spec.sandbox == "bwrap" and shutil.which("bwrap", path=path) is None:
            return (
                f'{self.name}: sandbox = "bwrap" needs `bwrap`, which is not installed '
                f"(install: {_INSTALL_BWRAP})"
            )
        return None

    def run(self, context: AgentContext) -> AgentRun:
        """Run the program in the workspace until it exits or its time is up, then read what it
        asked the endpoint from the proxy. The task's check decides success."""
        proxy = context.proxy
        if proxy is None:
            return AgentRun(
                turns=(),
                stopped="no_model",
                error=f"the {self.name} agent needs the recording proxy, and the session has none",
            )
        limit_s = min(self.spec.timeout_s or math.inf, context.task.limits.timeout_s)
        if context.progress is not None:
            proxy.on_exchange = _live_progress(context.progress)
        scratch = Path(tempfile.mkdtemp(prefix="agentspeed-agent-"))
        try:
            argv, env = self._prepare(context, proxy, scratch)
            try:
                ran = run_program(
                    argv,
                    cwd=context.workspace,
                    timeout_s=limit_s,
                    env=env,
                    head_bytes=0,
                    tail_bytes=_TAIL_BYTES,
                )
            except OSError as exc:
                return AgentRun(
                    turns=(),
                    stopped="error",
                    error=f"the agent could not be started: `{argv[0]}`: {exc.strerror or exc}",
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return self._finish(context, proxy, ran, limit_s)

    # ------------------------------------------------------------------ before

    def _prepare(
        self, context: AgentContext, proxy: ProxiedEndpoint, scratch: Path
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and environment of the session's run; the scratch directory laid out."""
        spec = self.spec
        home = scratch / "home"
        xdg = {
            "XDG_CONFIG_HOME": home / ".config",
            "XDG_CACHE_HOME": home / ".cache",
            "XDG_DATA_HOME": home / ".local" / "share",
            "XDG_STATE_HOME": home / ".local" / "state",
            "TMPDIR": scratch / "tmp",
        }
        for directory in (home, *xdg.values()):
            directory.mkdir(parents=True, exist_ok=True)
        instruction_file = scratch / "instruction.md"
        instruction_file.write_text(context.task.instruction, encoding="utf-8")
        workspace = context.workspace.resolve()
        values = {
            "instruction": context.task.instruction,
            "instruction_file": str(instruction_file),
            "workspace": str(workspace),
            "model": proxy.model,
            "base_url": proxy.base_url,
            "max_turns": str(context.task.limits.max_turns),
            "home": str(home),
            "project": str(spec.project_dir or workspace),
        }
        argv = [fill(item, values) for item in spec.command]

        env = scrubbed_environment()
        env["HOME"] = str(home)
        env.update({name: str(path) for name, path in xdg.items()})
        for name, value in spec.env.items():
            if value == "":
                env.pop(name, None)
            else:
                env[name] = fill(value, values)
        base_url = proxy.base_url if spec.api == "anthropic" else f"{proxy.base_url}/v1"
        env.update(dict.fromkeys(spec.base_url_env, base_url))
        env.update(dict.fromkeys(spec.key_env, proxy.placeholder_key))

        if spec.sandbox == "bwrap":
            argv = bwrap_argv(argv, workspace=workspace, scratch=scratch, project=spec.project_dir)
        return argv, env

    # ------------------------------------------------------------------ after

    def _finish(
        self, context: AgentContext, proxy: ProxiedEndpoint, ran: ProgramResult, limit_s: float
    ) -> AgentRun:
        exchanges = proxy.exchanges()
        timeline_fn = self._timeline or session_timeline
        turns, timeline = timeline_fn(exchanges, started_ns=ran.started_ns, ended_ns=ran.exited_ns)
        result = ran.result
        startup_s, winddown_s = process_spans(timeline)
        process = ProcessRecord(
            program=self.spec.program,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            startup_s=startup_s,
            winddown_s=winddown_s,
            output_tail=_redact(
                result.output,
                (*credential_values(), proxy.placeholder_key),
                cut=result.omitted_bytes > 0,
            ),
        )
        if context.progress is not None:
            context.progress(len(turns), timeline.usage.output_tokens, timeline.wall_s)
        stopped, error = _how_it_ended(ran, exchanges, limit_s)
        sent = SentLog(
            started_ns=ran.started_ns,
            ended_ns=ran.exited_ns,
            requests=sent_requests(exchanges),
            gaps_are="agent",
        )
        return AgentRun(
            turns=tuple(turns),
            stopped=stopped,
            error=error,
            timeline=timeline,
            process=process,
            sent=sent,
        )


def _how_it_ended(
    ran: ProgramResult, exchanges: Sequence[Exchange], limit_s: float
) -> tuple[Literal["end_turn", "timeout", "error"], str | None]:
    result = ran.result
    if result.timed_out:
        return "timeout", f"the agent ran past its time limit ({limit_s:g} s) and was killed"
    code = result.exit_code
    if code is not None and code < 0:
        return "error", f"the agent was killed by signal {-code}"
    if code:
        return "error", f"the agent exited with code {code}"
    if not any(exchange.is_model_request for exchange in exchanges):
        return "error", "the agent made no model request"
    return "end_turn", None


def _live_progress(progress: Progress) -> Callable[[Exchange], None]:
    """Tells ``progress`` of each model request that offered tools as it ends (an estimate of
    the turns so far: retries and parallel sub-agents are only told apart afterwards, by the
    timeline), so a long session shows it is alive."""
    started = time.perf_counter()
    turns = output_tokens = 0

    def told(exchange: Exchange) -> None:
        nonlocal turns, output_tokens
        if exchange.is_model_request and exchange.tools:
            turns += 1
            output_tokens += exchange.usage.output_tokens if exchange.usage else 0
            progress(turns, output_tokens, time.perf_counter() - started)

    return told


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` of ``values`` replaced; other braces left as they are
    (definitions are checked for unknown placeholders when they are read)."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def bwrap_argv(
    argv: Sequence[str], *, workspace: Path, scratch: Path, project: Path | None
) -> list[str]:
    """``argv`` run under bubblewrap: the whole file system read-only but the workspace and
    the scratch directory (HOME, TMPDIR, the instruction), a fresh ``/tmp``, ``/dev`` and
    ``/proc``; the network is shared, so the proxy on loopback stays reachable.

    What the agent needs to run is bound back read-only after ``/tmp`` is replaced, wherever it
    lies (a CI checkout is often under ``/tmp``): the defining project's directory (a command
    may run a script from it), the running Python's environment (``python`` on the agent's
    ``PATH`` is this one) and the program's own directory. ``--die-with-parent`` and a pid
    namespace of its own make sure nothing in the sandbox outlives the process group being
    killed.
    """
    wrapped = [
        "bwrap",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
    ]  # fmt: skip
    program = shutil.which(argv[0]) if argv else None
    needed = {project, Path(sys.prefix), Path(sys.base_prefix)}
    if program is not None:
        needed.add(Path(program).parent)
    for directory in sorted({d.resolve() for d in needed if d is not None and d.is_dir()}):
        wrapped += ["--ro-bind", str(directory), str(directory)]
    for writable in (scratch.resolve(), workspace):
        wrapped += ["--bind", str(writable), str(writable)]
    wrapped += [
        "--unshare-pid",
        "--die-with-parent",
        "--chdir", str(workspace),
        "--",
        *argv,
    ]  # fmt: skip
    return wrapped


def _redact(text: str, secrets: Sequence[str], *, cut: bool) -> str:
    """``text`` with every secret replaced by ``[REDACTED]``.

    When the output was cut (``cut``: its start is gone), the kept part may begin with the end
    of a secret: that piece goes too.
    """
    secrets = [s for s in secrets if s]
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    if cut:
        marker, newline, rest = text.partition("\n")
        for secret in secrets:
            # The longest end of the secret the kept part starts with (4 characters at least).
            for size in range(len(secret) - 1, 3, -1):
                if rest.startswith(secret[-size:]):
                    rest = _REDACTED + rest[size:]
                    break
        text = marker + newline + rest
    return text


def cannot_run(agent: object, endpoints: Sequence[tuple[str, str]]) -> str | None:
    """Why ``agent`` cannot run on these endpoints (``(name, api)`` pairs), before any session:
    its program (or bubblewrap) is not installed, or it speaks another wire than an endpoint;
    ``None`` for an agent that can, and for every agent that runs in this process."""
    if not isinstance(agent, ExternalAgent):
        return None
    missing = agent.missing()
    if missing is not None:
        return missing
    for name, api in endpoints:
        if api != agent.spec.api:
            return (
                f"agent {agent.name!r} speaks the {agent.spec.api} wire, and endpoint {name!r} "
                f"the {api} wire; choose an endpoint with api={agent.spec.api}"
            )
    return None
