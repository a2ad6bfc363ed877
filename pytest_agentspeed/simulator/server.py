"""The simulated endpoint: a real HTTP server on 127.0.0.1 speaking the Anthropic wire.

One server serves any number of simulated endpoints ("mounts"): the plugin starts one per run,
with a mount per ``sim:`` endpoint under ``/e/<key>``; ``agentspeed sim`` serves one profile at
the root. Each request is handled in four pure steps (match the task and pick the model's turn;
account the prompt cache; plan the latency; render the wire) and one impure one: sleeping until
each write is due. Writes whose time has come are sent together, so a heavily time-scaled
stream never falls behind its schedule.

Everything the server decided is kept in a schedule log (``GET /_agentspeed/schedule``), so
tests can hold the client's measurements against what the server actually did.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import selectors
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pytest_agentspeed.errors import TaskError
from pytest_agentspeed.simulator import openai_wire
from pytest_agentspeed.simulator.anthropic_wire import (
    OutBlock,
    error_json,
    message_json,
    render_stream,
    usage_json,
)
from pytest_agentspeed.simulator.cache import PromptCache, request_blocks
from pytest_agentspeed.simulator.config import MountConfig, ServerConfig
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
)
from pytest_agentspeed.simulator.profiles import PROFILES, Profile
from pytest_agentspeed.simulator.tokens import json_pieces, pieces
from pytest_agentspeed.simulator.trajectory import PlannedTurn

Wire = Literal["anthropic", "openai"]


@dataclass(slots=True)
class _Mount:
    config: MountConfig
    profile: Profile
    cache: PromptCache
    #: Responses being sent right now (the load the next request sees).
    in_flight: int = 0
    #: Requests seen per (session, turn), with faults on: a retry draws its fault afresh.
    attempts: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)


@dataclass(slots=True)
class _Reply:
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
            m.key: _Mount(
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
        mount: _Mount,
        body: Any,
        headers: Mapping[str, str],
        arrival: float,
        wire: Wire = "anthropic",
    ) -> _Reply:
        """Everything about the response except sending it."""
        request_id = f"req_sim_{uuid.uuid4().hex[:24]}"
        if wire == "openai":
            problem = openai_wire.invalid(body)
            if problem is not None:
                return _Reply(400, openai_wire.error_json("invalid_request_error", problem))
            messages = openai_wire.to_anthropic_messages(body["messages"])
            budget = int(openai_wire.max_tokens(body))
        else:
            problem = _invalid(body)
            if problem is not None:
                return _Reply(400, error_json("invalid_request_error", problem, request_id))
            messages = body["messages"]
            budget = int(body["max_tokens"])
        cfg, profile = mount.config, mount.profile
        metadata = body.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        first_text = first_user_text(messages)
        # The session's identity seeds its draws: Anthropic's metadata.user_id, OpenAI's user.
        session = str(metadata.get("user_id") or body.get("user") or _digest(first_text))
        turn_index = sum(1 for m in messages if m.get("role") == "assistant")
        retry = headers.get("x-stainless-retry-count", "0")
        rng = seeded_rng(cfg.seed, cfg.key, session, turn_index, retry)
        stream = bool(body.get("stream"))
        fault, fault_rng, attempt = None, None, 0
        if cfg.faults:
            # Counted only with faults on: an endpoint without them keeps no per-turn state.
            attempt = mount.attempts[session, turn_index]
            mount.attempts[session, turn_index] += 1
            fault_rng = seeded_rng(cfg.seed, cfg.key, session, turn_index, "fault", attempt)
            fault = draw_fault(cfg.faults, fault_rng, stream=stream)
            if fault in ("429", "529"):
                return self._refuse(mount, fault, wire, request_id, session, turn_index, attempt)

        planned = choose_turn(self.library.match(first_text), messages)
        blocks, stop_reason = _blocks(
            planned,
            thinking=_thinking_mode(body, wire, profile),
            budget=budget,
            tool_prefix="call_sim_" if wire == "openai" else "toolu_sim_",
            tool_seed=f"{session}|{turn_index}",
        )
        miss = draw_cache_miss(profile, rng, jitter=cfg.jitter)
        use = mount.cache.account(
            request_blocks(body, automatic=wire == "openai"), arrival, miss=miss
        )
        output_tokens = sum(len(b.pieces) for b in blocks)
        reasoning_tokens = sum(len(b.pieces) for b in blocks if b.type == "thinking")
        if wire == "openai":
            usage = openai_wire.usage_json(
                prompt_tokens=use.input_tokens + use.cache_read_tokens + use.cache_write_tokens,
                cached=use.cache_read_tokens,
                completion_tokens=output_tokens,
                reasoning_tokens=reasoning_tokens,
            )
        else:
            usage = usage_json(
                input_tokens=use.input_tokens,
                cache_read=use.cache_read_tokens,
                cache_write=use.cache_write_tokens,
                output_tokens=output_tokens,
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
        )
        message_id = f"msg_sim_{_digest(session, turn_index, retry)[:24]}"
        log = {
            "request_id": request_id,
            "wire": wire,
            "mount": cfg.key,
            "profile": profile.name,
            "session": session,
            "turn": turn_index,
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
        model = str(body["model"])
        if wire == "openai":
            completion: dict[str, Any] = {
                "completion_id": f"chatcmpl-{message_id[8:]}",
                "model": model,
                "created": int(time.time()),
                "blocks": blocks,
                "stop_reason": stop_reason,
                "usage": usage,
            }
            if not stream:
                body_json = openai_wire.completion_json(**completion)
                return _Reply(200, body_json, end_s=plan.end_s, log=log)
            options = body.get("stream_options")
            writes = openai_wire.render_stream(
                **completion,
                plan=plan,
                include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
            )
        else:
            message: dict[str, Any] = {
                "message_id": message_id,
                "model": model,
                "blocks": blocks,
                "stop_reason": stop_reason,
                "usage": usage,
            }
            if not stream:
                return _Reply(200, message_json(**message), end_s=plan.end_s, log=log)
            writes = render_stream(**message, plan=plan)
        reply = _Reply(200, writes=writes, headers_s=plan.headers_s, end_s=plan.end_s, log=log)
        if fault in MID_STREAM and fault_rng is not None:
            _break_stream(reply, fault, wire, fault_rng, cfg.time_scale, request_id)
        return reply

    def _refuse(
        self,
        mount: _Mount,
        fault: str,
        wire: Wire,
        request_id: str,
        session: str,
        turn_index: int,
        attempt: int,
    ) -> _Reply:
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
        body = (
            openai_wire.error_json(error_type, message)
            if wire == "openai"
            else error_json(error_type, message, request_id)
        )
        log = {
            "request_id": request_id,
            "wire": wire,
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
        return _Reply(int(fault), body, end_s=end_s, log=log, headers=headers)


def _break_stream(
    reply: _Reply, fault: str, wire: Wire, rng: random.Random, time_scale: float, request_id: str
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
        message = "Overloaded (simulated fault)"
        if wire == "openai":
            data = json.dumps(openai_wire.error_json("overloaded_error", message))
            reply.writes.append((at, f"data: {data}\n\n".encode()))
        else:
            data = json.dumps(error_json("overloaded_error", message, request_id))
            reply.writes.append((at, f"event: error\ndata: {data}\n\n".encode()))
    else:
        reply.drop = True
    reply.end_s = at
    planned["end_s"] = at


def build_app(sim: Simulator) -> Starlette:
    """The ASGI application serving ``sim``."""

    async def messages(request: Request) -> Response:
        return await respond(request, "anthropic")

    async def chat_completions(request: Request) -> Response:
        return await respond(request, "openai")

    async def respond(request: Request, wire: Wire) -> Response:
        key = request.path_params.get("mount", "")
        mount = sim.mounts.get(key)
        if mount is None:
            return _not_found(f"no simulated endpoint at {request.url.path}")
        raw = await request.body()
        loop = asyncio.get_running_loop()
        arrival = loop.time()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        reply = sim.decide(mount, body, request.headers, arrival, wire)
        request_id = reply.log["request_id"] if reply.log else _request_id(reply.body)
        head = {"request-id": request_id, **reply.headers}
        if reply.body is not None:
            if reply.log is None:
                return JSONResponse(reply.body, status_code=reply.status, headers=head)
            mount.in_flight += 1
            try:
                await _sleep_until(loop, arrival + reply.end_s)
            finally:
                mount.in_flight -= 1
            reply.log["actual"] = {"end_s": loop.time() - arrival}
            return JSONResponse(reply.body, status_code=reply.status, headers=head)
        assert reply.log is not None
        log = reply.log
        # In flight from now until the last byte: later requests see this one as load.
        mount.in_flight += 1
        try:
            await _sleep_until(loop, arrival + reply.headers_s)
        except BaseException:
            mount.in_flight -= 1
            raise
        log["actual"]["headers_s"] = loop.time() - arrival
        head |= {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(
            _paced(loop, arrival, reply.writes, log, mount, drop=reply.drop),
            media_type="text/event-stream; charset=utf-8",
            headers=head,
        )

    async def count_tokens(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            blocks = request_blocks(body)
        except (ValueError, AttributeError, TypeError):
            return JSONResponse(
                error_json("invalid_request_error", "body is not a valid request", "req_sim"),
                status_code=400,
            )
        return JSONResponse({"input_tokens": sum(b.tokens for b in blocks)})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "mounts": sorted(sim.mounts), "tasks": len(sim.library)})

    async def schedule(request: Request) -> Response:
        return JSONResponse(list(sim.schedule))

    async def add_task(request: Request) -> Response:
        try:
            task = sim.library.add_json(json.loads(await request.body()))
        except (ValueError, TypeError, TaskError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "id": task.id})

    async def add_task_dirs(request: Request) -> Response:
        try:
            dirs = json.loads(await request.body())["dirs"]
            errors = sim.library.add_dirs(Path(str(d)) for d in dirs)
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        report_load_errors(errors)
        return JSONResponse({"ok": True, "errors": [str(e) for e in errors]})

    async def not_found(request: Request) -> Response:
        return _not_found(f"no route {request.method} {request.url.path}")

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/e/{mount}/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/e/{mount}/v1/messages", messages, methods=["POST"]),
        Route("/e/{mount}/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/_agentspeed/health", health),
        Route("/_agentspeed/schedule", schedule),
        Route("/_agentspeed/tasks", add_task, methods=["POST"]),
        Route("/_agentspeed/task-dirs", add_task_dirs, methods=["POST"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return Starlette(routes=routes)


async def _paced(
    loop: asyncio.AbstractEventLoop,
    arrival: float,
    writes: Sequence[tuple[float, bytes]],
    log: dict[str, Any],
    mount: _Mount,
    *,
    drop: bool = False,
) -> AsyncIterator[bytes]:
    """Yield each write at its time; writes already due go out together.

    With ``drop``, the connection is closed after the last write, the body unfinished.
    """
    actual = log["actual"]
    first_token_s = log["planned"]["first_token_s"]
    i = 0
    try:
        while i < len(writes):
            await _sleep_until(loop, arrival + writes[i][0])
            now = loop.time()
            chunk = bytearray(writes[i][1])
            due = writes[i][0]
            i += 1
            while i < len(writes) and arrival + writes[i][0] <= now:
                chunk += writes[i][1]
                due = writes[i][0]
                i += 1
            sent = loop.time() - arrival
            # Pings and the role chunk all go out before the first token's time.
            if "first_token_s" not in actual and due >= first_token_s:
                actual["first_token_s"] = sent
            yield bytes(chunk)
        actual["end_s"] = loop.time() - arrival
        if drop:
            raise DroppedConnection(log["request_id"])
    finally:
        mount.in_flight -= 1


class DroppedConnection(Exception):
    """Raised inside a streamed body to make the server close the connection mid-body."""


class _QuietDrops(logging.Filter):
    """Keeps the server's log free of tracebacks for connections dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BaseExceptionGroup):
            return not exc.subgroup(DroppedConnection)
        return not isinstance(exc, DroppedConnection)


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _thinking_mode(body: Mapping[str, Any], wire: Wire, profile: Profile) -> str:
    """How the model's reasoning is sent: "on", "omitted" (spent, not shown) or "off"."""
    if wire == "openai":
        # Chat completions has no switch for it: a reasoning model streams its reasoning.
        return "on" if profile.reasons else "off"
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        return "omitted" if thinking.get("display") == "omitted" else "on"
    return "off"


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


def _invalid(body: Any) -> str | None:
    """Why the request body is not a Messages request, or ``None``."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: field required (a string)"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: field required (a positive integer)"
    if not isinstance(body.get("tools", []), list):
        return "tools: must be a list of tool definitions"
    if not isinstance(body.get("system", ""), str | list):
        return "system: must be a string or a list of text blocks"
    for key in ("metadata", "thinking"):
        if not isinstance(body.get(key, {}), dict):
            return f"{key}: must be an object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: field required (a non-empty list)"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant", "system"):
            return f"messages.{i}.role: must be 'user' or 'assistant'"
        content = m.get("content")
        if not isinstance(content, str | list) or (
            isinstance(content, list) and not all(isinstance(b, dict) for b in content)
        ):
            return f"messages.{i}.content: must be a string or a list of content blocks"
    return None


def _not_found(message: str) -> Response:
    return JSONResponse(error_json("not_found_error", message, "req_sim"), status_code=404)


def _request_id(body: dict[str, Any] | None) -> str:
    return str((body or {}).get("request_id", "req_sim"))


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def serve(config: ServerConfig, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve until interrupted, on an already bound and listening socket."""
    app = build_app(Simulator(config))
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            # Agents pause for tools between calls; keep their connections instead of making
            # each turn pay a new handshake (uvicorn's default is 5 s).
            timeout_keep_alive=600,
        )
    )
    # select() takes its timeout in microseconds; epoll and poll round it up to whole
    # milliseconds, which would make every write up to 1 ms late. Busy-waiting the last
    # stretch instead would steal CPU from the agent being measured (on a small VM, from the
    # very process reading the stream). The simulator serves few connections, far below
    # select()'s descriptor limit.
    with asyncio.Runner(
        loop_factory=lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())
    ) as runner:
        runner.run(server.serve(sockets=[sock]))


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (never another interface)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    """Entry point of the server process the plugin starts (not a public command)."""
    parser = argparse.ArgumentParser(prog="python -m pytest_agentspeed.simulator.server")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--parent-fd", type=int, help="read end of the parent's lifeline pipe")
    args = parser.parse_args(argv)
    if args.parent_fd is not None:
        threading.Thread(
            target=_exit_with_parent, args=(args.parent_fd,), name="lifeline", daemon=True
        ).start()
    config = ServerConfig.from_json(json.loads(args.config.read_text(encoding="utf-8")))
    sock = socket.socket(fileno=args.fd)
    with contextlib.suppress(KeyboardInterrupt):
        serve(config, sock)
    return 0


def _exit_with_parent(fd: int) -> None:
    """Exit the moment the parent is gone: its end of the pipe closes and the read returns.

    Nothing the server holds needs saving (its schedule log lives in memory for the parent
    that is gone), so it ends at once rather than waiting on a graceful shutdown.
    """
    # The parent never writes: the read returns only at end of file.
    with contextlib.suppress(OSError):
        while os.read(fd, 1):
            pass
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
