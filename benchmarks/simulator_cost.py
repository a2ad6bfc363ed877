"""What the simulated endpoint spends per streamed event, and how late it runs under load.

Two tables, one run:

* **CPU per event of the sending path.** A server in this process (uvicorn in a thread, on the
  same select()-based loop as the real one) streams a 20,000-delta response from the
  ``small-fast`` profile (one token per decode step, so one delta event per step) to a raw
  socket that only reads and discards. The server thread's own CPU clock is read around it;
  a 1-delta response is the baseline (request parsing, planning, headers), so what remains is
  the per-event cost: rendering the event's bytes, pacing, and writing them. Two rows: at a
  tiny time scale every event is due at once (render and batching), at time scale 1 events are
  due every 0.67 ms, about one write each (the per-write cost: timer, wake-up, the ASGI send,
  the socket), on a 2,000-delta stream. Median of 5.
* **Lateness against the plan under load.** K = 1, 4, 8 concurrent streams on the
  ``ultraspeed`` profile at time scale 1, jitter off, from a server in its own process (as the
  plugin runs it), read by K raw-socket threads. Lateness is each write's actual send time
  minus its planned time, from the schedule log: P50 / P99 / max in milliseconds over every
  write (``writes``) when the log records them, and over the three moments the log has always
  kept (headers, first token, end; ``marks``), comparable with older versions.

The machine's load matters to the second table (a shared machine makes every figure worse);
``uptime``'s load average is printed with it.

    python benchmarks/simulator_cost.py [--reps 5] [--deltas 20000] [--ks 1,4,8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import socket
import statistics
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_agentspeed.analysis.metrics import percentile
from pytest_agentspeed.simulator import MountConfig, ServerConfig
from pytest_agentspeed.simulator.process import SimulatorProcess

#: Tokens of the streams read concurrently: about 3 s of ultraspeed decode each.
LOAD_TOKENS = 3_000
#: Concurrent streams start this far apart, as sessions of a run do (not in lockstep).
STAGGER_S = 0.013


def write_task(root: Path, name: str, tokens: int) -> str:
    """A task whose first turn is ``tokens`` tokens of text; returns its instruction."""
    task = root / name
    (task / "workspace").mkdir(parents=True)
    instruction = f"Simulator cost stream {name}."
    (task / "agenttask.toml").write_text(
        f'instruction = "{instruction}"\n[check]\ncommand = "true"\n', encoding="utf-8"
    )
    # " word" is one token of the simulator's tokenizer.
    (task / "trajectory.toml").write_text(
        textwrap.dedent(
            f"""
            [[turn]]
            text = "{" word" * tokens}"
            """
        ),
        encoding="utf-8",
    )
    return instruction


def request_bytes(path: str, instruction: str, tokens: int, session: str) -> bytes:
    """A streamed Messages request, as raw HTTP/1.1 (closing the connection after)."""
    body = json.dumps(
        {
            "model": "sim",
            "max_tokens": tokens + 10,
            "stream": True,
            "metadata": {"user_id": session},
            "messages": [{"role": "user", "content": instruction}],
        }
    ).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def read_stream(port: int, request: bytes) -> int:
    """Send ``request`` and read the response to its end as fast as possible; its size."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        total = 0
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
        return total


@contextmanager
def server_thread(config: ServerConfig) -> Iterator[tuple[int, threading.Thread]]:
    """A simulator server in a thread of this process: its port and thread."""
    import uvicorn

    from pytest_agentspeed.simulator.process import bind
    from pytest_agentspeed.simulator.replies import Simulator
    from pytest_agentspeed.simulator.server import build_app

    sock = bind(0)
    server = uvicorn.Server(
        uvicorn.Config(build_app(Simulator(config)), log_level="warning", lifespan="off")
    )

    def run() -> None:
        # The loop the real server runs on (see simulator.server.serve).
        loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        loop.run_until_complete(server.serve(sockets=[sock]))
        loop.close()

    # uvicorn installs signal handlers only in the main thread; here there are none to install.
    thread = threading.Thread(target=run, name="simulator", daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1], thread
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds ``thread`` has used (Linux: the thread's own CPU clock)."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def cpu_per_event(root: Path, deltas: int, reps: int) -> list[tuple[str, float, int, float]]:
    """Rows of (case, median us per event, events, median server wall s of the long stream)."""
    small = write_task(root, "small", 1)
    rows = []
    # Paced, a stream takes real time (1,500 tok/s): a tenth of the events is enough.
    for case, scale, n in (
        ("all due at once", 1e-6, deltas),
        ("paced, scale 1", 1.0, deltas // 10),
    ):
        big = write_task(root, f"big{n}", n)
        config = ServerConfig(
            mounts=(MountConfig(key="c", profile="small-fast", time_scale=scale, jitter=False),),
            task_dirs=(str(root),),
        )
        with server_thread(config) as (port, thread):
            path = "/e/c/v1/messages"
            # Warm up: imports, the trajectories' first planning, the first connection.
            read_stream(port, request_bytes(path, big, n, "warm"))
            read_stream(port, request_bytes(path, small, 1, "warm"))
            per_event, walls = [], []
            for i in range(reps):
                t0, w0 = thread_cpu(thread), time.perf_counter()
                read_stream(port, request_bytes(path, big, n, f"b{i}"))
                t1, w1 = thread_cpu(thread), time.perf_counter()
                read_stream(port, request_bytes(path, small, 1, f"s{i}"))
                t2 = thread_cpu(thread)
                per_event.append(((t1 - t0) - (t2 - t1)) / (n - 1) * 1e6)
                walls.append(w1 - w0)
        rows.append((case, statistics.median(per_event), n, statistics.median(walls)))
    return rows


def lateness(
    entries: Sequence[dict[str, Any]],
) -> tuple[list[float], list[float]]:
    """Milliseconds late, per write (when the log has them) and per logged moment."""
    writes: list[float] = []
    marks: list[float] = []
    for e in entries:
        planned, actual = e["planned"], e["actual"]
        for key in ("headers_s", "first_token_s", "end_s"):
            marks.append((actual[key] - planned[key]) * 1e3)
        sent = e.get("writes")
        if sent is not None:
            # A stream cut short (the client went away) has sent only its first writes.
            pairs = zip(sent["planned_s"], sent["sent_s"], strict=False)
            writes += [(a - p) * 1e3 for p, a in pairs]
    return writes, marks


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def under_load(root: Path, k: int) -> tuple[list[float], list[float], float, float]:
    """Lateness of K concurrent ultraspeed streams; and the server's CPU share and wall time."""
    instruction = write_task(root, f"load{k}", LOAD_TOKENS)
    sim = SimulatorProcess(
        ServerConfig(
            mounts=(MountConfig(key="u", profile="ultraspeed", time_scale=1.0, jitter=False),),
            task_dirs=(str(root),),
        )
    )
    sim.start()
    try:
        port = int(sim.url.rsplit(":", 1)[1])
        pid = sim._proc.pid if sim._proc else 0  # the benchmark's own child
        cpu0, wall0 = server_cpu_s(pid), time.perf_counter()
        threads = []
        for i in range(k):
            request = request_bytes("/e/u/v1/messages", instruction, LOAD_TOKENS, f"k{k}s{i}")
            thread = threading.Thread(target=read_stream, args=(port, request))
            thread.start()
            threads.append(thread)
            time.sleep(STAGGER_S)
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall0
        cpu = server_cpu_s(pid) - cpu0
        streams = [e for e in sim.schedule() if e.get("stream")]
    finally:
        sim.stop()
    writes, marks = lateness(streams)
    return writes, marks, cpu / wall, wall


def fmt(values: list[float]) -> str:
    """P50 / P99 / max, or a dash when there are none."""
    if not values:
        return f"{'-':>20}"
    p99 = percentile(values, 99) or 0.0
    return f"{statistics.median(values):6.2f} /{p99:6.2f} /{max(values):6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--ks", default="1,4,8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="simulator-cost-") as tmp:
        root = Path(tmp)
        print(f"CPU per streamed event, sending path (median of {args.reps}, minus a 1-delta)")
        print(f"{'case':<18} {'events':>7} {'us/event':>9} {'server wall s':>14}")
        for case, us, events, wall in cpu_per_event(root / "cost", args.deltas, args.reps):
            print(f"{case:<18} {events:>7} {us:>9.2f} {wall:>14.3f}")
        print()
        print(f"lateness against the plan, ms (P50 / P99 / max); load {os.getloadavg()[0]:.2f}")
        print(
            f"{'K':>2} {'writes':>7} {'per write':>21} {'marks':>5} {'at the logged marks':>21}"
            f" {'server CPU':>10} {'wall s':>7}"
        )
        for k in (int(x) for x in args.ks.split(",")):
            writes, marks, share, wall = under_load(root / f"k{k}", k)
            print(
                f"{k:>2} {len(writes):>7} {fmt(writes):>21} {len(marks):>5} {fmt(marks):>21}"
                f" {share:>9.0%} {wall:>7.1f}"
            )


if __name__ == "__main__":
    main()
