"""Judging a finished session: did it pass, within its task's speed limits?

The core decides and raises :class:`SessionFailed` with the message the user reads; the pytest
edge turns it into a failed test item (and shows the message instead of a traceback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_agentspeed.agents import Agent
    from pytest_agentspeed.records import RunRecord
    from pytest_agentspeed.run.runner import SessionResult
    from pytest_agentspeed.run.slots import Slot
    from pytest_agentspeed.tasks import Task


#: Exit statuses the run asks for; pytest's ``ExitCode.TESTS_FAILED`` and ``USAGE_ERROR``.
TESTS_FAILED_EXIT = 1
USAGE_ERROR_EXIT = 4


class SessionFailed(Exception):
    """A session did not pass; the message says why and what the check printed."""


def judge(
    task: Task, slot: Slot, result: SessionResult, *, agent: Agent, allow_task_failures: bool
) -> None:
    """Fail the session when it did not pass (or broke a speed limit).

    :raises SessionFailed: with a message that says why.
    """
    from pytest_agentspeed.run.runner import CHECK_COULD_NOT_RUN

    record = result.record
    reasons: list[str] = []
    could_not_run = CHECK_COULD_NOT_RUN.get(record.check_exit_code or 0)
    if record.outcome == "error":
        reasons.append(f"endpoint error: {record.error}")
    elif record.outcome == "timeout":
        reasons.append(record.error or "the agent ran out of time")
    elif could_not_run is not None and (not agent.needs_endpoint or not allow_task_failures):
        # The task is broken, whatever the agent did or did not do.
        reasons.append(
            f"check command could not run (exit {record.check_exit_code}: "
            f"{could_not_run}): {task.check.command}"
        )
    elif agent.expects_check_to_fail:
        # nop: the recorded outcome stays what the check said; the item inverts it.
        if record.outcome == "passed":
            reasons.append("this task's check passes without any change")
    elif record.outcome == "failed" and not allow_task_failures:
        if record.check_exit_code is None:
            # The check ran and has no exit code: it was killed at its timeout.
            reasons.append(f"check timed out after {task.check.timeout_s:g} s (check.timeout_s)")
        else:
            reasons.append(f"check failed (exit code {record.check_exit_code})")
    if record.outcome == "passed" and not agent.expects_check_to_fail:
        speed = task.speed
        if speed.max_session_s is not None and record.wall_s > speed.max_session_s:
            reasons.append(
                f"session took {record.wall_s:.2f} s > max_session_s {speed.max_session_s:g}"
            )
        throughput = record.throughput_tok_s
        if (
            speed.min_throughput_tok_s is not None
            and throughput is not None
            and throughput < speed.min_throughput_tok_s
        ):
            reasons.append(
                f"throughput {throughput:.1f} tok/s < min_throughput_tok_s "
                f"{speed.min_throughput_tok_s:g}"
            )
    if reasons:
        raise SessionFailed(failure_message(task, slot, result, reasons))


def failure_message(task: Task, slot: Slot, result: SessionResult, reasons: Sequence[str]) -> str:
    """What the user reads when a session did not pass."""
    record = result.record
    lines = [f"task {task.id!r} on {slot.label}: " + "; ".join(reasons)]
    lines.append(
        f"{len(record.turns)} turns, {record.usage.output_tokens:,} output tokens, "
        f"{record.wall_s:.2f} s of agent time"
    )
    if result.check_output.strip():
        lines += ["", f"check `{task.check.command}` printed (tail):", result.check_output.rstrip()]
    if result.workspace is not None:
        lines += ["", f"workspace kept for inspection: {result.workspace}"]
    return "\n".join(lines)


def exit_status(
    run: RunRecord, inconclusive: str, output_error: str | None, baseline_error: str | None
) -> int | None:
    """The exit status a finished run asks for; the first that holds: an output not written,
    a failed gate (``inconclusive`` is the gate's policy for INCONCLUSIVE), a refused
    comparison, an unreadable baseline. ``None``: leave it as it is."""
    from pytest_agentspeed.records import NOT_COMPARED

    if output_error is not None:
        return USAGE_ERROR_EXIT
    if any(c.fails(inconclusive) for c in run.comparisons):
        return TESTS_FAILED_EXIT
    if any(c.verdict == NOT_COMPARED for c in run.comparisons):
        # Imported here: compare.py loads scipy, which a run that compared nothing never uses.
        from pytest_agentspeed.analysis.compare import NOT_COMPARED_EXIT

        return NOT_COMPARED_EXIT
    if baseline_error is not None:
        return USAGE_ERROR_EXIT
    return None
