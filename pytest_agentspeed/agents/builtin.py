"""The built-in agent: a small, honest agent loop on a measured model client.

It streams every response, gives the model the five tools of
:class:`~pytest_agentspeed.agents.tools.ToolBox`, marks prompt-cache breakpoints on the growing
conversation as real agents do, tells the model its remaining turns and time after every turn,
and stops at ``end_turn`` or a limit. Each turn's events go to an
:class:`~pytest_agentspeed.timing.EventLog`; :func:`~pytest_agentspeed.records.turn_record`
makes the turn's record from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_agentspeed.agents.seam import AgentContext, AgentRun, Stopped
from pytest_agentspeed.agents.tools import TOOL_SPECS, ToolBox
from pytest_agentspeed.clients import ModelClient, ModelResponse, TurnRequest
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import TurnRecord, turn_record
from pytest_agentspeed.sent import SentLog, SentRequest
from pytest_agentspeed.timing import EventLog, reduce_turn

SYSTEM_PROMPT = """\
You are an autonomous coding agent working in a software project. The project is your current \
directory; every path you give a tool is relative to it. Use the tools to look at the code, \
change files and run commands. Make the smallest change that solves the task, check your work \
by running the project's tests, and do not modify tests unless asked to. When the task is done, \
reply with a short summary of what you changed and call no tool. Each user message tells you \
how many turns and seconds you have left; finish before they run out."""

#: Times the agent loop sends a turn again after its stream broke off (the SDKs' own retries
#: of failed requests come on top, inside each try).
STREAM_RETRIES = 2

#: Appended when a reply was cut off by max_tokens, so the model continues more briefly.
CUT_OFF_NOTE = "Your last reply was cut off at the max_tokens limit. Continue, more briefly."


class BuiltinAgent:
    """The built-in agent loop.

    :param clock: the monotonic clock in nanoseconds (injected for tests).
    :param toolbox: makes the model's tools for a workspace (injected for tests).
    """

    name = "builtin"
    needs_endpoint = True
    expects_check_to_fail = False

    def __init__(
        self,
        clock: Callable[[], int] = time.perf_counter_ns,
        toolbox: Callable[[Path], ToolBox] = ToolBox,
    ) -> None:
        self.clock = clock
        self.toolbox = toolbox

    def run(self, context: AgentContext) -> AgentRun:
        """Work on the task until the model ends its turn or a limit is reached."""
        client = context.client
        if client is None:
            return AgentRun(
                turns=(), stopped="no_model", error="the builtin agent needs an endpoint"
            )
        task, session_id, progress = context.task, context.session_id, context.progress
        toolbox = self.toolbox(context.workspace)
        limits = task.limits
        start = self.clock()
        deadline = start + int(limits.timeout_s * 1e9)
        messages: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": task.instruction},
                    {"type": "text", "text": _budget(limits.max_turns, limits.timeout_s)},
                ],
            }
        ]
        turns: list[TurnRecord] = []
        sent: list[SentRequest] = []
        output_tokens = 0
        turn_start = start

        def ended(stopped: Stopped, error: str | None = None) -> AgentRun:
            # The session's bounds for its recording: the first turn's start, the last's end.
            what_sent = SentLog(started_ns=start, ended_ns=turn_start, requests=tuple(sent))
            return AgentRun(turns=tuple(turns), stopped=stopped, error=error, sent=what_sent)

        for index in range(limits.max_turns):
            if turn_start >= deadline:
                return ended("timeout", _timeout(limits))
            log = EventLog(self.clock)
            log.add("turn_start", t_ns=turn_start)
            request = TurnRequest(
                system=[{"type": "text", "text": SYSTEM_PROMPT, "cache_control": _EPHEMERAL}],
                messages=_with_breakpoint(messages),
                tools=_tools_with_breakpoint(TOOL_SPECS),
                max_tokens=limits.max_tokens,
                session_id=session_id,
            )
            try:
                response = _complete(client, request, log)
            except EndpointError as exc:
                turn_start = log.add("turn_end")
                turns.append(turn_record(index, reduce_turn(log.events), error=str(exc)))
                sent.extend(_sent(index, log))
                return ended("error", str(exc))
            messages.append({"role": "assistant", "content": response.content})
            results: list[dict[str, Any]] = []
            for k, call in enumerate(response.tool_calls):
                tool_input = dict(call.input)
                if call.name == "run_command":
                    # A command may not outlive the session's budget.
                    left = max(1.0, (deadline - self.clock()) / 1e9)
                    asked = tool_input.get("timeout_s")
                    tool_input["timeout_s"] = min(
                        float(asked) if isinstance(asked, int | float) else left, left
                    )
                log.add("tool_start", index=k, detail=call.name)
                result = toolbox.call(call.name, tool_input)
                log.add("tool_end", index=k, ok=not result.is_error)
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": result.text,
                        "is_error": result.is_error,
                    }
                )
            cut_off = response.stop_reason == "max_tokens"
            finished = not results and not cut_off
            if not finished:
                if cut_off:
                    results.append({"type": "text", "text": CUT_OFF_NOTE})
                turns_left = limits.max_turns - index - 1
                secs_left = max(0.0, (deadline - self.clock()) / 1e9)
                results.append({"type": "text", "text": _budget(turns_left, secs_left)})
                messages.append({"role": "user", "content": results})
            # The next turn starts where this one ends, so turn walls add up to the session's.
            turn_start = log.add("turn_end")
            turns.append(
                turn_record(
                    index,
                    reduce_turn(log.events),
                    usage=response.usage,
                    usage_raw=response.usage_raw,
                    stop_reason=response.stop_reason,
                )
            )
            sent.extend(_sent(index, log))
            output_tokens += response.usage.output_tokens
            if progress is not None:
                progress(index + 1, output_tokens, (turn_start - start) / 1e9)
            if finished:
                return ended("end_turn")
        return ended("max_turns")


_EPHEMERAL = {"type": "ephemeral"}
#: The events that end an attempt's answer: its body read to the end, or its failure.
_ANSWER_ENDS = frozenset({"stream_end", "response", "attempt_failed"})


def _sent(index: int, log: EventLog) -> list[SentRequest]:
    """The turn's request as its latest attempt sent it, from its first attempt to the end of
    its answer (or of its last failed attempt); none when nothing was sent."""
    request = log.request
    attempts = [e.t_ns for e in log.events if e.kind == "attempt"]
    if request is None or not attempts:
        return []
    ends = [e.t_ns for e in log.events if e.kind in _ANSWER_ENDS]
    return [
        SentRequest(
            kind="turn",
            index=index,
            method=request.method,
            path=request.path,
            header_names=request.header_names,
            body=request.body,
            started_ns=attempts[0],
            ended_ns=max(ends, default=attempts[-1]),
        )
    ]


def _complete(client: ModelClient, request: TurnRequest, log: EventLog) -> ModelResponse:
    """One turn's reply, sending the turn again when its stream broke off.

    A broken stream (an error event, a dropped connection) is not retried by the SDKs, and
    giving up on the session for it would count a passing hiccup as an endpoint failure. The
    failed tries stay in the turn's log as attempts; their time is ``retry_wait``.
    """
    for retry in range(STREAM_RETRIES + 1):
        try:
            return client.complete(request, log)
        except EndpointError as exc:
            if not exc.mid_stream or retry == STREAM_RETRIES:
                raise
            time.sleep(client.retry_wait_s * 2**retry)
    raise AssertionError("unreachable")


def _budget(turns_left: int, secs_left: float) -> str:
    return f"[budget] {turns_left} turns and {secs_left:.0f} s left."


def _timeout(limits: Any) -> str:
    return f"the agent's time budget ({limits.timeout_s:g} s) ran out"


def _with_breakpoint(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with a cache breakpoint on its newest block.

    Each request marks the end of the conversation; the next request finds that prefix in the
    cache (it looks back from its own breakpoint), so every turn reads the whole history from
    the cache and writes only what is new. The stored history itself stays unmarked.
    """
    out = list(messages)
    last = dict(out[-1])
    content = [dict(b) for b in last["content"]]
    content[-1]["cache_control"] = _EPHEMERAL
    last["content"] = content
    out[-1] = last
    return out


def _tools_with_breakpoint(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [dict(t) for t in tools]
    out[-1]["cache_control"] = _EPHEMERAL
    return out
