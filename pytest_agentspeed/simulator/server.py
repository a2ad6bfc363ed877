"""The simulated endpoint: a real HTTP server on 127.0.0.1 speaking the model APIs' wires.

One server serves any number of simulated endpoints ("mounts"): the plugin starts one per run,
with a mount per ``sim:`` endpoint under ``/e/<key>``; ``agentspeed sim`` serves one profile at
the root. Each request is handled in four pure steps (match the task and pick the model's turn;
account the prompt cache; plan the latency; render the wire), which
:meth:`~pytest_agentspeed.simulator.replies.Simulator.decide` takes, and one impure one, taken
here: sleeping until each write is due. Writes whose time has come are sent together, so a
heavily time-scaled stream never falls behind its schedule, and a server that woke late
catches up in one socket write rather than one per event.

Everything the server decided is kept in a schedule log (``GET /_agentspeed/schedule``), down
to each write's planned and actual send time, so tests can hold the client's measurements
against what the server actually did.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import selectors
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pytest_agentspeed.errors import TaskError
from pytest_agentspeed.simulator.anthropic_wire import error_json
from pytest_agentspeed.simulator.cache import request_blocks
from pytest_agentspeed.simulator.config import ServerConfig
from pytest_agentspeed.simulator.library import report_load_errors
from pytest_agentspeed.simulator.replies import Mount, Reply, Simulator, Wire


def build_app(sim: Simulator) -> Starlette:
    """The ASGI application serving ``sim``."""

    async def messages(request: Request) -> Response:
        return await respond(request, "anthropic")

    async def chat_completions(request: Request) -> Response:
        return await respond(request, "openai")

    async def responses(request: Request) -> Response:
        return await respond(request, "responses")

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
        reply = sim.decide(mount, body, request.headers, arrival, wire, _api_path(request))
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
        return PacedStream(loop, arrival, reply, mount, headers=head)

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
        return JSONResponse([_jsonable(entry) for entry in sim.schedule])

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
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/e/{mount}/v1/responses", responses, methods=["POST"]),
        Route("/e/{mount}/v1/messages", messages, methods=["POST"]),
        Route("/e/{mount}/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/_agentspeed/health", health),
        Route("/_agentspeed/schedule", schedule),
        Route("/_agentspeed/tasks", add_task, methods=["POST"]),
        Route("/_agentspeed/task-dirs", add_task_dirs, methods=["POST"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return Starlette(routes=routes)


class PacedStream(Response):
    """A streamed reply whose writes go out at their planned times, straight to the server.

    Starlette's ``StreamingResponse`` would run the body in an anyio task group beside a
    disconnect listener: its first use imports anyio's asyncio backend (about 20 ms, by which a
    server's first response was late) and every response pays for the group, and each write
    passes through an async generator. Here the handler's own task writes, and a plain asyncio
    task listens for the client going away and cancels it, so an abandoned stream stops loading
    its endpoint at once.

    The response counts in its mount's ``in_flight`` from before the headers (the handler added
    it) until its last write, or until the client is gone.
    """

    media_type = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        arrival: float,
        reply: Reply,
        mount: Mount,
        *,
        headers: dict[str, str],
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(headers)
        self._loop, self._arrival, self._reply, self._mount = loop, arrival, reply, mount

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            await send(start)
            this = asyncio.current_task()
            assert this is not None
            gone = False

            async def listen() -> None:
                nonlocal gone
                # The request body is read; what comes now is the disconnect (or, once the
                # response is complete, its stand-in, by which time this task is cancelled).
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True
                this.cancel()

            listener = asyncio.create_task(listen())
            try:
                await _send_paced(self._loop, self._arrival, self._reply, send)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except asyncio.CancelledError:
                # The client went away: nothing more to send, nothing wrong.
                if not gone or this.uncancel():
                    raise
            finally:
                listener.cancel()
        finally:
            self._mount.in_flight -= 1


async def _send_paced(
    loop: asyncio.AbstractEventLoop, arrival: float, reply: Reply, send: Send
) -> None:
    """Send each write at its time; writes already due when the task wakes go out as one.

    Every write's send time goes to the schedule log as it goes out; the writes of one batch
    share it, as they share the socket write. With ``reply.drop``, raises
    :class:`DroppedConnection` after the last write, leaving the body unfinished.
    """
    writes, log = reply.writes, reply.log
    assert log is not None
    actual = log["actual"]
    sent_s = log["writes"]["sent_s"]
    # Pings and the role chunk all go out before the first token's time: the first write
    # planned at or after it carries the first token.
    first_token_s = log["planned"]["first_token_s"]
    first = next((k for k, (due, _) in enumerate(writes) if due >= first_token_s), -1)
    count = len(writes)
    i = 0
    while i < count:
        delay = arrival + writes[i][0] - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        # Everything due by now goes in this write: a late wake-up catches up at once.
        now = loop.time() - arrival
        j = i + 1
        while j < count and writes[j][0] <= now:
            j += 1
        body = writes[i][1] if j == i + 1 else b"".join([data for _, data in writes[i:j]])
        sent = loop.time() - arrival
        if i == j - 1:
            sent_s.append(sent)
        else:
            sent_s.extend([sent] * (j - i))
        if i <= first < j:
            actual["first_token_s"] = sent
        i = j
        await send({"type": "http.response.body", "body": body, "more_body": True})
    actual["end_s"] = loop.time() - arrival
    if reply.drop:
        raise DroppedConnection(log["request_id"])


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


def _jsonable(entry: dict[str, Any]) -> dict[str, Any]:
    """A schedule-log entry with its per-write arrays as lists."""
    writes = entry.get("writes")
    if writes is None:
        return entry
    return entry | {"writes": {key: list(values) for key, values in writes.items()}}


def _api_path(request: Request) -> str:
    """The request's path from ``/v1/`` on (a mount's prefix dropped), with its query: as the
    client's request log writes it."""
    path = request.url.path
    path = path[max(0, path.find("/v1/")) :]
    query = request.url.query
    return f"{path}?{query}" if query else path


def _not_found(message: str) -> Response:
    return JSONResponse(error_json("not_found_error", message, "req_sim"), status_code=404)


def _request_id(body: dict[str, Any] | None) -> str:
    return str((body or {}).get("request_id", "req_sim"))


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
