"""What the simulated endpoint answers to one request, decided before anything is sent.

:meth:`Simulator.decide` is the pure part of serving a request: validate it, match the task and
pick the model's turn, account the prompt cache, draw a fault, plan the latency and render the
wire. What comes out is a :class:`Reply`: a status, a body or a list of timed writes, and the
schedule-log entry. Sending it on time is :mod:`pytest_agentspeed.simulator.server`'s job;
nothing here touches a socket or an event loop, so the decisions are tested without a server.
"""

from __future__ import annotations

import array
import collections
import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_agentspeed.simulator.agent_tools import (
    WORKSPACE_HEADER,
    offered_tools,
    toolset_for,
    workspace_from_text,
)
from pytest_agentspeed.simulator.anthropic_wire import OutBlock
from pytest_agentspeed.simulator.cache import PromptCache
from pytest_agentspeed.simulator.config import MountConfig, ServerConfig
from pytest_agentspeed.simulator.context import context_digest
from pytest_agentspeed.simulator.faults import (
    MID_STREAM,
    RETRY_AFTER_S,
    STALL_S,
    cut_index,
    draw_fault,
)
from pytest_agentspeed.simulator.latency import (
    draw_cache_miss,
    draw_session,
    plan_response,
    seeded_rng,
)
from pytest_agentspeed.simulator.library import (
    TaskLibrary,
    choose_turn,
    first_user_text,
    report_load_errors,
    user_text,
)
from pytest_agentspeed.simulator.padding import output_target, pad_blocks
from pytest_agentspeed.simulator.paths import draw_path
from pytest_agentspeed.simulator.profiles import PROFILES, Profile
from pytest_agentspeed.simulator.side_requests import side_reason, side_turn, title_of
from pytest_agentspeed.simulator.tokens import json_pieces, pieces
from pytest_agentspeed.simulator.trajectory import PlannedTurn
from pytest_agentspeed.simulator.wires import WIRES, Outcome, Wire, WireFormat

__all__ = ["Mount", "Reply", "Simulator", "Wire"]


@dataclass(slots=True)
class Mount:
    """One simulated endpoint of a running server, and its state."""

    config: MountConfig
    profile: Profile
    cache: PromptCache
    #: Responses being sent right now (the load the next request sees).
    in_flight: int = 0
    #: Requests seen per (session, turn), with faults on: a retry draws its fault afresh.
    attempts: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)


@dataclass(slots=True)
class Reply:
    """A response decided but not yet sent."""

    status: int
    body: dict[str, Any] | None = None
    writes: list[tuple[float, bytes]] = field(default_factory=list)
    headers_s: float = 0.0
    end_s: float = 0.0
    log: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Close the connection after the last write instead of ending the body (a dropped stream).
    drop: bool = False


class Simulator:
    """The state of a running simulated endpoint: tasks, prompt caches, schedule log."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.library = TaskLibrary()
        report_load_errors(self.library.add_dirs(Path(d) for d in config.task_dirs))
        self.mounts = {
            m.key: Mount(
                m,
                PROFILES[m.profile],
                PromptCache(
                    ttl_s=PROFILES[m.profile].cache_ttl_s * m.time_scale,
                    min_tokens=PROFILES[m.profile].min_cache_tokens,
                ),
            )
            for m in config.mounts
        }
        self.schedule: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=config.schedule_limit
        )

    def decide(
        self,
        mount: Mount,
        body: Any,
        headers: Mapping[str, str],
        arrival: float,
        wire: Wire = "anthropic",
        path: str = "",
    ) -> Reply:
        """Everything about the response except sending it.

        :param path: the request's path from ``/v1/`` on, with its query, for the log.
        """
        request_id = f"req_sim_{uuid.uuid4().hex[:24]}"
        fmt = WIRES[wire]
        problem = fmt.invalid(body)
        target = 0  # the fewest output tokens asked for (vLLM's min_tokens, ignore_eos)
        if problem is None:
            try:
                target = output_target(body, fmt.budget(body))
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            return Reply(400, fmt.error_body("invalid_request_error", problem, request_id))
        # What the request carried, for the log: a replay's requests are found in it by their
        # conversation's digest (when the server was asked to log it).
        sent: dict[str, Any] = {"path": path}
        if self.config.log_context:
            sent["context_sha256"] = context_digest(body)
        messages = fmt.conversation(body)
        cfg, profile = mount.config, mount.profile
        first_text = first_user_text(messages)
        # The session's identity seeds its draws: what the request says (Anthropic's
        # metadata.user_id, OpenAI's user, the Responses API's prompt_cache_key), else its
        # first words.
        session = fmt.session(body) or _digest(first_text)
        turn_index = sum(1 for m in messages if m.get("role") == "assistant")
        retry = headers.get("x-stainless-retry-count", "0")
        side = side_reason(body, wire)
        rng = seeded_rng(cfg.seed, cfg.key, session, turn_index, retry)
        stream = bool(body.get("stream"))
        fault, fault_rng, attempt = None, None, 0
        if cfg.faults:
            # Counted only with faults on: an endpoint without them keeps no per-turn state.
            # A side request beside turn 1 is not a retry of turn 1.
            key = (session if side is None else f"{session}|{side}", turn_index)
            attempt = mount.attempts[key]
            mount.attempts[key] += 1
            fault_rng = seeded_rng(cfg.seed, cfg.key, *key, "fault", attempt)
            fault = draw_fault(cfg.faults, fault_rng, stream=stream)
            if fault in ("429", "529"):
                return self._refuse(
                    mount, fault, wire, request_id, session, turn_index, attempt, sent
                )

        planned = self._plan(body, headers, wire, messages, side, mount, session)
        blocks, stop_reason = _blocks(
            planned,
            thinking=fmt.thinking(body, profile),
            budget=fmt.budget(body),
            tool_prefix=fmt.tool_prefix,
            tool_seed=f"{session}|{turn_index}",
        )
        pad_blocks(blocks, target, f"{session}|{turn_index}")
        miss = draw_cache_miss(profile, rng, jitter=cfg.jitter)
        use = mount.cache.account(fmt.cache_blocks(body), arrival, miss=miss)
        output_tokens = sum(len(b.pieces) for b in blocks)
        usage = fmt.usage(
            use,
            output_tokens=output_tokens,
            reasoning_tokens=sum(len(b.pieces) for b in blocks if b.type == "thinking"),
        )
        draw = draw_session(profile, seeded_rng(cfg.seed, cfg.key, session), jitter=cfg.jitter)
        plan = plan_response(
            profile,
            draw,
            rng,
            cached_tokens=use.cache_read_tokens,
            uncached_tokens=use.input_tokens + use.cache_write_tokens,
            segments=[(b.content_class, len(b.pieces)) for b in blocks],
            time_scale=cfg.time_scale,
            jitter=cfg.jitter,
            cache_miss=miss,
            in_flight=mount.in_flight,
            speed=cfg.speed,
        )
        log = {
            "request_id": request_id,
            "wire": wire,
            **sent,
            "mount": cfg.key,
            "profile": profile.name,
            "session": session,
            "turn": turn_index,
            "side": side,
            "retry": retry,
            "attempt": attempt,
            "fault": fault,
            "stream": stream,
            "degraded": draw.degraded,
            "in_flight": mount.in_flight,
            "time_scale": cfg.time_scale,
            "output_tokens": output_tokens,
            "usage": usage,
            "cache_miss": miss,
            "components": plan.components,
            "planned": {
                "headers_s": plan.headers_s,
                "first_token_s": plan.first_token_s,
                "end_s": plan.end_s,
                "steps": len(plan.steps),
            },
            "actual": {},
        }
        self.schedule.append(log)
        outcome = Outcome(
            body=body,
            digest=_digest(session, turn_index, retry),
            request_id=request_id,
            created=int(time.time()),
            blocks=blocks,
            stop_reason=stop_reason,
            usage=usage,
        )
        if not stream:
            return Reply(200, fmt.whole(outcome), end_s=plan.end_s, log=log)
        writes = fmt.stream(outcome, plan)
        reply = Reply(200, writes=writes, headers_s=plan.headers_s, end_s=plan.end_s, log=log)
        if fault in MID_STREAM and fault_rng is not None:
            _break_stream(reply, fault, fault_rng, cfg.time_scale, fmt, outcome)
        # One entry per planned write (the head, a ping, a decode step's events, the tail), its
        # send time added as it goes out. Arrays, not lists of floats: a long-running server
        # keeps tens of thousands of responses in its log.
        log["writes"] = {
            "planned_s": array.array("d", (offset for offset, _ in reply.writes)),
            "sent_s": array.array("d"),
        }
        return reply

    def _plan(
        self,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        wire: Wire,
        messages: list[dict[str, Any]],
        side: str | None,
        mount: Mount,
        session: str,
    ) -> PlannedTurn:
        """The model's turn: a short answer to a side request, else the task's next step in
        the agent's tools, on the session's own path with ``paths=varied``."""
        said = user_text(messages)
        script = self.library.match(said)
        if side is not None:
            return side_turn(body, wire, title_of(script.task_id if script else None))
        instructions = f"{WIRES[wire].system_text(body)}\n{said}"
        workspace = headers.get(WORKSPACE_HEADER) or workspace_from_text(instructions)
        toolset = toolset_for(
            offered_tools(body, wire), instructions=instructions, workspace=workspace
        )
        path = None
        cfg = mount.config
        if cfg.paths == "varied" and script is not None:
            # Drawn from the session's own stream, like its latency draws: the same session
            # of the same seed takes the same path on every request.
            path = draw_path(
                script.turns,
                check_command=script.check_command,
                files=script.files,
                rng=seeded_rng(cfg.seed, cfg.key, session, "path"),
                seed=f"{cfg.seed}|{cfg.key}|{session}",
            )
        return choose_turn(script, messages, toolset, path)

    def _refuse(
        self,
        mount: Mount,
        fault: str,
        wire: Wire,
        request_id: str,
        session: str,
        turn_index: int,
        attempt: int,
        sent: Mapping[str, str],
    ) -> Reply:
        """A 429 or 529 sent after one round trip, before any work on the request."""
        cfg = mount.config
        end_s = mount.profile.rtt_s[0] * cfg.time_scale
        error_type, message = (
            ("rate_limit_error", "Rate limited (simulated fault)")
            if fault == "429"
            else ("overloaded_error", "Overloaded (simulated fault)")
        )
        headers: dict[str, str] = {}
        if fault == "429":
            wait = RETRY_AFTER_S * cfg.time_scale
            headers = {
                "retry-after": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(max(1, round(wait * 1000))),
            }
        body = WIRES[wire].error_body(error_type, message, request_id)
        log = {
            "request_id": request_id,
            "wire": wire,
            **sent,
            "mount": cfg.key,
            "profile": mount.profile.name,
            "session": session,
            "turn": turn_index,
            "attempt": attempt,
            "fault": fault,
            "status": int(fault),
            "time_scale": cfg.time_scale,
            "planned": {"headers_s": end_s, "first_token_s": None, "end_s": end_s},
            "actual": {},
        }
        self.schedule.append(log)
        return Reply(int(fault), body, end_s=end_s, log=log, headers=headers)


def _break_stream(
    reply: Reply,
    fault: str,
    rng: random.Random,
    time_scale: float,
    fmt: WireFormat,
    outcome: Outcome,
) -> None:
    """Turn a planned stream into a broken one: an error event, a drop or a stall partway."""
    k = cut_index(len(reply.writes), rng)
    at = reply.writes[k - 1][0]
    assert reply.log is not None
    planned = reply.log["planned"]
    if fault == "stall":
        stall = STALL_S * time_scale
        reply.writes[k:] = [(t + stall, data) for t, data in reply.writes[k:]]
        reply.end_s += stall
        planned["end_s"] = reply.end_s
        planned["stall_s"] = stall
        return
    del reply.writes[k:]
    if fault == "error":
        tail = fmt.stream_error(outcome, reply.writes, "Overloaded (simulated fault)")
        reply.writes.append((at, tail))
    else:
        reply.drop = True
    reply.end_s = at
    planned["end_s"] = at


def _blocks(
    planned: PlannedTurn, *, thinking: str, budget: int, tool_prefix: str, tool_seed: str
) -> tuple[list[OutBlock], str]:
    """The planned turn as content blocks, cut to ``budget`` tokens; and the stop reason."""
    blocks: list[OutBlock] = []
    text = planned.text
    if planned.reasoning and thinking != "off":
        blocks.append(
            OutBlock(
                type="thinking",
                pieces=pieces(planned.reasoning),
                content_class="prose",
                omitted=thinking == "omitted",
            )
        )
    elif planned.reasoning:
        # Without extended thinking, a model thinks aloud in its visible text.
        text = f"{planned.reasoning}\n\n{text}" if text else planned.reasoning
    if text:
        blocks.append(OutBlock(type="text", pieces=pieces(text), content_class="prose"))
    for i, use in enumerate(planned.tool_uses):
        tool_input = dict(use.input)
        blocks.append(
            OutBlock(
                type="tool_use",
                pieces=json_pieces(json.dumps(tool_input)),
                content_class="code",
                tool_id=f"{tool_prefix}{_digest(tool_seed, i)[:20]}",
                tool_name=use.name,
                tool_input=tool_input,
            )
        )
    stop_reason = "tool_use" if planned.tool_uses else "end_turn"
    kept: list[OutBlock] = []
    for block in blocks:
        if len(block.pieces) <= budget:
            kept.append(block)
            budget -= len(block.pieces)
            continue
        # Out of tokens. Text is cut; a tool call that cannot be finished is not started,
        # so every tool input the client sees is complete JSON.
        if block.type != "tool_use" and budget > 0:
            block.pieces = block.pieces[:budget]
            kept.append(block)
        stop_reason = "max_tokens"
        break
    return kept, stop_reason


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
