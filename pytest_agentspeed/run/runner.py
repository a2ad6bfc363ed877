"""One session from start to record: workspace, agent, check.

Plain Python with no pytest: the plugin, the ``agentspeed`` fixture and tests call
:func:`run_session` the same way.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from pytest_agentspeed.agents import Agent, AgentContext, AgentRun, Progress, ProxiedEndpoint
from pytest_agentspeed.clients import ModelClient
from pytest_agentspeed.endpoints import redact
from pytest_agentspeed.processes import run_command
from pytest_agentspeed.records import Outcome, SessionRecord, Usage, session_id
from pytest_agentspeed.sent import SentLog
from pytest_agentspeed.tasks import Task
from pytest_agentspeed.timing import PHASES


class ProxySession(ProxiedEndpoint, Protocol):
    """A session's way through the recording proxy: what the agent is given, and closing it."""

    def close(self) -> None:
        """Forget the session's prefix at the proxy (its exchanges stay readable)."""
        ...


#: The tail of a failed check's output shown to the user.
CHECK_OUTPUT_TAIL = 3_000
#: Exit codes with which ``/bin/sh`` says the check command itself could not run.
CHECK_COULD_NOT_RUN = {126: "not executable", 127: "command not found"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionResult:
    """A finished session: its record, plus what the user needs to see when it failed."""

    record: SessionRecord
    #: The tail of the check's output (empty when the check did not run).
    check_output: str
    #: The workspace, kept when the session did not pass and the agent changed it, so it can
    #: be inspected.
    workspace: Path | None
    #: What the session sent, byte for byte (its recording's material); ``None`` when the
    #: agent sent nothing.
    sent: SentLog | None = None


def run_session(
    task: Task,
    agent: Agent,
    client: ModelClient | None,
    *,
    endpoint: str,
    repeat: int,
    progress: Progress | None = None,
    open_proxy: Callable[[Path], ProxySession] | None = None,
) -> SessionResult:
    """Run ``agent`` on ``task`` in a fresh workspace and check the result.

    :param open_proxy: for an agent in another process (``needs_proxy``): opens the session's
        way to its endpoint through the recording proxy, given the session's workspace; closed
        when the agent is done.

    Passed sessions leave nothing behind. The workspace of any other is kept for inspection,
    unless the agent left it exactly as it found it (an endpoint error before any change, the
    ``nop`` agent): then it is only a copy of the task's ``workspace/``, and goes.
    """
    started_at = time.time()
    t0 = time.perf_counter()
    workspace = Path(tempfile.mkdtemp(prefix=f"agentspeed-{task.id}-"))
    task.materialize(workspace)
    setup_s = time.perf_counter() - t0
    sid = session_id(task.id, endpoint, repeat)
    starting = tree_state(workspace)

    proxy = (
        open_proxy(workspace)
        if open_proxy is not None and getattr(agent, "needs_proxy", False)
        else None
    )
    context = AgentContext(
        task=task,
        workspace=workspace,
        session_id=sid,
        client=client,
        proxy=proxy,
        progress=progress,
    )
    try:
        run = agent.run(context)
    finally:
        if proxy is not None:
            proxy.close()
    # Before the check, which may leave caches of its own.
    changed = tree_state(workspace) != starting

    check_s = 0.0
    exit_code: int | None = None
    output = ""
    if run.stopped not in ("error", "no_model", "no_solution"):
        result = run_command(task.check.command, cwd=workspace, timeout_s=task.check.timeout_s)
        check_s, exit_code = result.wall_s, result.exit_code
        output = result.output[-CHECK_OUTPUT_TAIL:]
        if result.timed_out:
            output += f"\n[check timed out after {task.check.timeout_s:g} s]"

    outcome = _outcome(run, exit_code)
    timeline = run.timeline
    record = SessionRecord(
        id=sid,
        task=task.id,
        endpoint=endpoint,
        repeat=repeat,
        slot=f"{task.id}/r{repeat}",
        agent=agent.name,
        outcome=outcome,
        error=run.error,
        started_at=started_at,
        wall_s=sum(t.wall_s for t in run.turns) if timeline is None else timeline.wall_s,
        setup_s=setup_s,
        check_s=check_s,
        check_exit_code=exit_code,
        usage=sum((t.usage for t in run.turns), Usage()) if timeline is None else timeline.usage,
        phases_s=(
            {p: sum(t.phases_s[p] for t in run.turns) for p in PHASES}
            if timeline is None
            else dict(timeline.phases_s)
        ),
        turns=run.turns,
        side_requests=() if timeline is None else timeline.side_requests,
        process=run.process,
    )
    kept: Path | None = workspace
    if outcome == "passed" or not changed:
        shutil.rmtree(workspace, ignore_errors=True)
        kept = None
    return SessionResult(record=record, check_output=output, workspace=kept, sent=run.sent)


def tree_state(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """What is under ``root``: each entry's relative path, kind, and content digest (or link
    target). Contents, not modification times: those are too coarse to tell a quick edit."""
    state: dict[str, tuple[str, bytes | str]] = {}
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in dirs + files:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir", "")
            else:
                try:
                    with path.open("rb") as f:
                        state[rel] = ("file", hashlib.file_digest(f, "sha256").digest())
                except OSError as exc:
                    state[rel] = ("unreadable", str(exc))
    return state


def _outcome(run: AgentRun, exit_code: int | None) -> Outcome:
    if run.stopped in ("error", "no_model", "no_solution"):
        return "error"
    if run.stopped == "timeout":
        return "timeout"
    return "passed" if exit_code == 0 else "failed"


def not_run(task: str, agent: str, *, endpoint: str, repeat: int, reason: str) -> SessionResult:
    """A session that was not run because its endpoint is down: an ``error`` with no turns.

    It counts in the arm's error rate like any session the endpoint could not serve; with no
    turns it has no session time or throughput, so it cannot pull those figures about.

    :param task: the task's id (a replay's: its recording's name); ``agent``: the agent's name.
    """
    return SessionResult(
        record=SessionRecord(
            id=session_id(task, endpoint, repeat),
            task=task,
            endpoint=endpoint,
            repeat=repeat,
            slot=f"{task}/r{repeat}",
            agent=agent,
            outcome="error",
            error=reason,
            started_at=time.time(),
            wall_s=0.0,
            setup_s=0.0,
            check_s=0.0,
            check_exit_code=None,
            usage=Usage(),
            phases_s=dict.fromkeys(PHASES, 0.0),
            turns=(),
        ),
        check_output="",
        workspace=None,
    )


def redacted(record: SessionRecord, secrets: list[str]) -> SessionRecord:
    """``record`` with every secret replaced in the texts that came from outside: endpoint
    error messages carry the server's words, and an external agent's output its own (it never
    holds a key, but nothing it prints is taken on trust)."""
    if record.error is not None:
        record = replace(
            record,
            error=redact(record.error, secrets),
            turns=tuple(
                replace(t, error=redact(t.error, secrets)) if t.error else t for t in record.turns
            ),
        )
    if record.process is not None:
        record = replace(
            record,
            process=replace(
                record.process, output_tail=redact(record.process.output_tail, secrets)
            ),
            side_requests=tuple(
                replace(r, error=redact(r.error, secrets)) if r.error else r
                for r in record.side_requests
            ),
        )
    return record
