"""The run's side of record and replay: writing a session's recording, reading the
recordings a run replays, and what it tells the user before it sends them.

The bench (:mod:`pytest_agentspeed.run.bench`) calls these only when the run records
(``--agentspeed-record``) or replays (``--agentspeed-replay``); ``docs/replay.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_agentspeed.errors import ConfigError, RecordingError

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_agentspeed.endpoints import Endpoint
    from pytest_agentspeed.records import SessionRecord
    from pytest_agentspeed.replay.recording import Recording
    from pytest_agentspeed.sent import SentLog
    from pytest_agentspeed.settings import Settings


def load_recordings(settings: Settings) -> tuple[Settings, list[Recording]]:
    """The recordings the run replays, and ``settings`` with each simulated endpoint whose
    spec left the wire open speaking theirs.

    :raises ConfigError: one line, when the recordings cannot be read, are on several wires,
        or an endpoint speaks another wire than theirs (a recording replays on its own wire:
        translating one would change what is measured).
    """
    from pytest_agentspeed.replay.recording import read_recordings

    path = settings.replay_path
    assert path is not None
    try:
        recordings = read_recordings(path)
    except RecordingError as exc:
        raise ConfigError(str(exc)) from None
    wires = sorted({r.wire for r in recordings})
    if len(wires) > 1:
        raise ConfigError(
            f"{path}: recordings made on several wires ({', '.join(wires)}); replay each "
            f"wire's recordings in a run of its own"
        )
    wire = wires[0]
    endpoints = tuple(e.speaking(wire) for e in settings.endpoints)
    for endpoint in endpoints:
        if endpoint.api != wire:
            raise ConfigError(
                f"endpoint {endpoint.name!r} speaks the {endpoint.api} wire, but the recordings "
                f"in {path} were made on the {wire} wire; a recording replays on its own wire"
            )
    return replace(settings, endpoints=endpoints), recordings


def cost_line(recordings: Sequence[Recording], arms: int, repeat: int) -> str:
    """What the replays will send, said before the first is sent (a paid endpoint bills it)."""
    from pytest_agentspeed.replay.recording import planned_tokens

    once = planned_tokens(recordings)
    times = arms * repeat
    return (
        f"agentspeed: the replays will send {once.requests * times} requests: "
        f"{_tokens(once.input_tokens * times)} input tokens ({_tokens(once.cached_tokens * times)} "
        f"expected from the cache, as recorded) and {_tokens(once.output_tokens * times)} "
        f"output tokens ({once.requests} requests per arm and repeat)"
    )


def _tokens(count: int) -> str:
    if count >= 10_000_000:
        return f"{count / 1e6:.0f}M"
    if count >= 1_000_000:
        return f"{count / 1e6:.1f}M"
    if count >= 10_000:
        return f"{count / 1e3:.0f}k"
    return str(count)


def record_session(
    directory: Path, record: SessionRecord, sent: SentLog, endpoint: Endpoint
) -> str | None:
    """Write the session's recording into ``directory``; the line that says it could not be
    written (the session's record is kept either way), else ``None``."""
    from pytest_agentspeed.replay.recording import recording_from, write_recording

    recording = recording_from(record, sent, wire=endpoint.api, model=endpoint.model)
    try:
        write_recording(directory, recording)
    except OSError as exc:
        return (
            f"agentspeed: cannot write the recording of {record.id} into {directory}: "
            f"{exc.strerror or exc}; the session's record is kept"
        )
    return None
