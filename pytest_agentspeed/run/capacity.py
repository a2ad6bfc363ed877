"""The capacity of an endpoint in agent sessions: recorded sessions replayed at rising
concurrency (``agentspeed replay RECORDINGS --endpoint SPEC --concurrency 1,2,4,8``).

Request-level load tools answer "how many requests per second" for flat traffic; an agent's
session is a chain of requests with growing, cached context and tool gaps between them, and
what a team needs to know is how many such sessions an endpoint serves at once before each
one slows down. At each level ``c`` the sweep keeps ``c`` replayed sessions in flight (a
thread each, each with its own client, all on one simulated endpoint when it is one), then
folds the level's session records into a :class:`~pytest_agentspeed.records.CapacityLevel`
and finds the knee (:func:`knee`). Plain Python: the ``agentspeed replay`` command drives it,
tests drive it with a replay function of their own.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_agentspeed.analysis.metrics import (
    percentile,
    session_throughputs,
    summarize_run,
    turn_ttfts,
)
from pytest_agentspeed.clients import ModelClient, RawSender
from pytest_agentspeed.endpoints import Endpoint
from pytest_agentspeed.errors import ConfigError, RecordingError
from pytest_agentspeed.records import (
    Capacity,
    CapacityLevel,
    EndpointRecord,
    RunRecord,
    SessionRecord,
)

if TYPE_CHECKING:
    from pytest_agentspeed.replay.recording import Recording

#: A level whose session throughput P50 is more than this share below the lowest level's is
#: past the knee.
KNEE_DROP = 0.1


class ReplayFunction(Protocol):
    """Replays one recording through ``client`` (:func:`pytest_agentspeed.replay.session.
    replay_session`'s signature; tests pass a function of their own)."""

    def __call__(
        self,
        recording: Recording,
        client: RawSender,
        *,
        endpoint: Endpoint,
        repeat: int,
        gaps: float,
    ) -> SessionRecord: ...


@dataclass(frozen=True, slots=True)
class Replayed:
    """A replayed session's record, and whether its recording's task had passed."""

    record: SessionRecord
    recorded_passed: bool


def parse_levels(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> ``(1, 2, 4, 8)``. Levels given out of order are sorted (the knee
    reads them lowest first); a level that is not a whole number of at least 1, a level
    given twice and an empty list are refused.

    :raises ConfigError: saying what was wrong and what is accepted.
    """
    accepted = "a comma-separated list of whole numbers of at least 1, like 1,2,4,8"
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ConfigError(f"expected {accepted}, got {text!r}")
    levels = []
    for item in items:
        if not item.isdigit() or int(item) < 1:
            raise ConfigError(
                f"level {item!r} is not a whole number of at least 1; expected {accepted}"
            )
        levels.append(int(item))
    twice = sorted({level for level in levels if levels.count(level) > 1})
    if twice:
        raise ConfigError(f"level {twice[0]} is given twice in {text!r}; expected {accepted}")
    return tuple(sorted(levels))


def session_plan(
    recordings: Sequence[Recording], concurrency: int, sessions: int
) -> list[tuple[Recording, int]]:
    """The sessions of one level, in the order they start: ``max(len(recordings), sessions,
    2 * concurrency)`` of them, cycling through the recordings, each with its round (the
    record's repeat). Twice the concurrency at least, so that every slot is refilled once and
    the level is measured under its load, not while it ramps up."""
    count = max(len(recordings), sessions, 2 * concurrency)
    return [(recordings[k % len(recordings)], k // len(recordings)) for k in range(count)]


def run_level(
    recordings: Sequence[Recording],
    concurrency: int,
    *,
    sessions: int,
    endpoint: Endpoint,
    clients: Callable[[], ModelClient],
    replay: ReplayFunction,
    gaps: float,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[Replayed], float]:
    """Replay the level's sessions (:func:`session_plan`) with ``concurrency`` in flight, and
    the seconds from the first one's start to the last one's end.

    Each session's record has the arm ``c<concurrency>`` for its endpoint. An endpoint error
    is a session's outcome (``error``), not an exception; anything raised stops the level
    (the sessions in flight finish first) and is raised here.
    """
    plan = session_plan(recordings, concurrency, sessions)
    arm = replace(endpoint, name=f"c{concurrency}")
    jobs: queue.SimpleQueue[int] = queue.SimpleQueue()
    for k in range(len(plan)):
        jobs.put(k)
    done: list[Replayed | None] = [None] * len(plan)
    failed = threading.Event()

    def work(client: ModelClient) -> None:
        try:
            while not failed.is_set():
                try:
                    k = jobs.get_nowait()
                except queue.Empty:
                    return
                recording, round_ = plan[k]
                result = replay(recording, client, endpoint=arm, repeat=round_, gaps=gaps)
                done[k] = Replayed(result, recording.outcome == "passed")
        except BaseException:
            failed.set()
            raise

    # Made here, not in the workers: the first one may start the simulated endpoint.
    made: list[ModelClient] = []
    try:
        for _ in range(concurrency):
            made.append(clients())
        started = clock()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="replay") as pool:
            futures = [pool.submit(work, client) for client in made]
            for future in futures:
                future.result()
        elapsed = clock() - started
    finally:
        for client in made:
            client.close()
    return [r for r in done if r is not None], elapsed


def level_row(concurrency: int, replayed: Sequence[Replayed], elapsed_s: float) -> CapacityLevel:
    """One level's row from its sessions and its elapsed wall time.

    Throughput percentiles are over the sessions that have one (a session that failed before
    any answer has none; one that failed later keeps what it did, as in every summary); TTFT
    percentiles over every answered turn. Tasks per hour count the sessions answered in full
    whose recording had passed its task's check: a replay does not run the check again.
    """
    records = [r.record for r in replayed]
    throughputs = session_throughputs(records)
    ttfts = turn_ttfts(records)
    tasks = sum(1 for r in replayed if r.record.outcome == "passed" and r.recorded_passed)
    return CapacityLevel(
        concurrency=concurrency,
        sessions=len(records),
        elapsed_s=elapsed_s,
        throughput_p10=percentile(throughputs, 10),
        throughput_p50=percentile(throughputs, 50),
        throughput_p90=percentile(throughputs, 90),
        ttft_p50=percentile(ttfts, 50),
        ttft_p90=percentile(ttfts, 90),
        sessions_per_hour=len(records) / elapsed_s * 3600,
        tasks_per_hour=tasks / elapsed_s * 3600,
        errors=sum(1 for s in records if s.outcome == "error"),
    )


def knee(levels: Sequence[CapacityLevel], drop: float = KNEE_DROP) -> int | None:
    """The concurrency beyond which session throughput drops by more than ``drop``: the
    largest level whose throughput P50 is at least ``1 - drop`` times the lowest level's,
    provided a later level falls below that; ``None`` when no level falls (or the lowest has
    no throughput to compare with). A level without a throughput P50 (no session answered)
    counts as fallen."""
    ordered = sorted(levels, key=lambda level: level.concurrency)
    if not ordered or ordered[0].throughput_p50 is None:
        return None
    floor = (1 - drop) * ordered[0].throughput_p50

    def holds(level: CapacityLevel) -> bool:
        return level.throughput_p50 is not None and level.throughput_p50 >= floor

    found = None
    for i, level in enumerate(ordered):
        if holds(level) and any(not holds(later) for later in ordered[i + 1 :]):
            found = level.concurrency
    return found


def sweep(
    recordings: Sequence[Recording],
    levels: Sequence[int],
    *,
    sessions: int,
    endpoint: Endpoint,
    clients: Callable[[], ModelClient],
    replay: ReplayFunction,
    gaps: float,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[list[SessionRecord], Capacity]:
    """Every level in turn, lowest first: the sessions' records, level by level, and the
    levels' rows with the knee. ``progress`` gets a line as each level ends."""
    records: list[SessionRecord] = []
    rows: list[CapacityLevel] = []
    for c in sorted(levels):
        replayed, elapsed = run_level(
            recordings,
            c,
            sessions=sessions,
            endpoint=endpoint,
            clients=clients,
            replay=replay,
            gaps=gaps,
        )
        row = level_row(c, replayed, elapsed)
        rows.append(row)
        records += [r.record for r in replayed]
        progress(
            f"concurrency {c}: {row.sessions} sessions in {elapsed:.1f} s, "
            f"{row.errors} ended in endpoint errors"
        )
    return records, Capacity(levels=tuple(rows), knee=knee(rows), drop=KNEE_DROP, gaps=gaps)


def recordings_at(path: Path) -> list[Recording]:
    """The recordings to sweep with: one file, or every one in a directory (the command reads
    them through the run core, which sits above the recordings).

    :raises RecordingError: one line that names the file.
    """
    from pytest_agentspeed.replay.recording import read_recordings

    return read_recordings(path)


def planned_line(
    recordings: Sequence[Recording], levels: Sequence[int], sessions: int, endpoint: str
) -> str:
    """What the sweep will send, in tokens, to say before it sends anything to a paid
    endpoint."""
    from pytest_agentspeed.replay.recording import planned_tokens

    plan = [r for c in levels for r, _ in session_plan(recordings, c, sessions)]
    tokens = planned_tokens(plan)
    return (
        f"will send {len(plan)} sessions, {tokens.requests} requests, to {endpoint}: "
        f"{tokens.input_tokens:,} input tokens ({tokens.cached_tokens:,} expected from the "
        f"cache), {tokens.output_tokens:,} output tokens"
    )


def replay_endpoint(endpoint: Endpoint, recordings: Sequence[Recording]) -> Endpoint:
    """``endpoint`` on the recordings' wire (a simulated endpoint whose spec names none
    speaks it).

    :raises RecordingError: when a recording was made on another wire than the endpoint's.
    """
    endpoint = endpoint.speaking(recordings[0].wire)
    for recording in recordings:
        if recording.wire != endpoint.api:
            raise RecordingError(
                f"{recording.source or recording.name}: recorded on the {recording.wire} wire, "
                f"but {endpoint.name} speaks {endpoint.api}; replay it on an endpoint of its wire"
            )
    return endpoint


def sweep_endpoint(
    recordings: Sequence[Recording],
    levels: Sequence[int],
    *,
    endpoint: Endpoint,
    sessions: int = 0,
    gaps: float = 1.0,
    time_scale: float = 1.0,
    replay: ReplayFunction | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[list[SessionRecord], Capacity]:
    """:func:`sweep` on ``endpoint``: a new client per session in flight, one simulated
    endpoint for all of them (started here when the endpoint is simulated, stopped at the
    end), and :func:`pytest_agentspeed.replay.session.replay_session` unless ``replay``.

    :raises RecordingError: a recording on another wire than the endpoint's.
    :raises ConfigError: the endpoint's key is missing, its simulator cannot be started.
    """
    from pytest_agentspeed.run.pool import EndpointPool

    if replay is None:
        from pytest_agentspeed.replay.session import replay_session

        replay = replay_session
    endpoint = replay_endpoint(endpoint, recordings).with_time_scale(time_scale)
    pool = EndpointPool([endpoint], time_scale=time_scale, shared_sim_file=None)
    try:
        return sweep(
            recordings,
            levels,
            sessions=sessions,
            endpoint=endpoint,
            clients=lambda: pool.new_client(endpoint),
            replay=replay,
            gaps=gaps,
            progress=progress,
        )
    finally:
        pool.close()


def capacity_run(
    records: Sequence[SessionRecord],
    capacity: Capacity,
    *,
    endpoint: Endpoint,
    recordings: Path,
    time_scale: float,
) -> RunRecord:
    """The run file of a sweep: its sessions, an arm per level (``c1``, ``c2``, ...: each
    described as the endpoint, and summarised at its own concurrency), and the capacity rows
    with the knee. It holds no comparisons: the levels are one endpoint under rising load,
    not candidates to gate."""
    from pytest_agentspeed import __version__
    from pytest_agentspeed.analysis.gate import METRIC_DEFINITIONS
    from pytest_agentspeed.runfile import environment

    window_s = 1800.0
    arms = [f"c{level.concurrency}" for level in capacity.levels]
    summary: dict[str, Any] = {}
    for level, arm in zip(capacity.levels, arms, strict=True):
        summary |= summarize_run(records, [arm], window_s=window_s, concurrency=level.concurrency)
    return RunRecord(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        agentspeed_version=__version__,
        environment=environment(max(level.concurrency for level in capacity.levels)),
        config={
            "window_s": window_s,
            "time_scale": time_scale if endpoint.simulated else None,
            "agent": "replay",
            "metric_definitions": dict(METRIC_DEFINITIONS),
            "recordings": str(recordings),
            "gaps": capacity.gaps,
        },
        endpoints=tuple(
            EndpointRecord(
                name=arm,
                label=f"{endpoint.name} at concurrency {level.concurrency}",
                api=endpoint.api,
                model=endpoint.model,
                base_url=endpoint.public_base_url(),
                profile=endpoint.sim.profile if endpoint.sim else None,
                options=endpoint.public_options(),
            )
            for level, arm in zip(capacity.levels, arms, strict=True)
        ),
        sessions=tuple(records),
        summary=summary,
        capacity=capacity,
    )


def sweep_command(
    recordings_path: Path,
    endpoint: Endpoint,
    levels: Sequence[int],
    *,
    sessions: int,
    gaps: float,
    time_scale: float,
    json_path: Path | None,
    html_path: Path | None,
) -> int:
    """``agentspeed replay``: the sweep, its table and knee printed, its run file and report
    written; the exit code.

    :raises AgentSpeedError: one line, for recordings that cannot be read or replayed on the
        endpoint, or an output that cannot be written (the CLI prints it and exits 2).
    """
    from pytest_agentspeed.outputs.capacity import capacity_lines
    from pytest_agentspeed.outputs.html_report import render_report
    from pytest_agentspeed.runfile import write_run_file, write_text_atomic

    def say(line: str) -> None:
        print(f"agentspeed replay: {line}", flush=True)

    recordings = recordings_at(recordings_path)
    if not endpoint.simulated:
        # A paid endpoint: say what the sweep will send before it sends anything.
        say(planned_line(recordings, levels, sessions, endpoint.name))
    records, capacity = sweep_endpoint(
        recordings,
        levels,
        endpoint=endpoint,
        sessions=sessions,
        gaps=gaps,
        time_scale=time_scale,
        progress=say,
    )
    run = capacity_run(
        records, capacity, endpoint=endpoint, recordings=recordings_path, time_scale=time_scale
    )
    for line in capacity_lines(capacity):
        print(line)
    if json_path is not None:
        _written(json_path, "run file", lambda: write_run_file(json_path, run))
    if html_path is not None:
        _written(html_path, "report", lambda: write_text_atomic(html_path, render_report(run)))
    return 0


def _written(path: Path, label: str, write: Callable[[], None]) -> None:
    """Write an output, and say so; one line when it cannot be written."""
    try:
        write()
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"{label}: {path}")
