"""Recordings: a session's model requests as sent, their answers, and the gaps between them.

SKELETON laid by the lead: the types and signatures are the contract other parts build on;
the bodies are to be written (issue 16).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_agentspeed.endpoints import Api
from pytest_agentspeed.records import SessionRecord, Usage
from pytest_agentspeed.sent import SentKind, SentLog

#: The recording format's version; a reader refuses a later one.
SCHEMA = 1
#: A recording file's name ends with this.
SUFFIX = ".rec.gz"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedRequest:
    """One model request of a recorded session, and its answer as recorded."""

    kind: SentKind
    #: The turn's index, or the side request's among the session's side requests.
    index: int
    method: str
    #: From ``/v1/`` on, with the query (``/v1/messages?beta=true``).
    path: str
    #: Header names as sent, lower case; never a value.
    header_names: tuple[str, ...]
    #: The whole body as sent (the file holds it as a delta on the previous request's).
    body: dict[str, Any]
    #: Seconds from the end of the last answer that ended before this request started (the
    #: session's start, for the first) to its start: the agent's tools and its own time.
    gap_s: float
    #: Who filled the gap, phase -> seconds, summing to ``gap_s``: ``tool`` and ``overhead``
    #: for the built-in agent, ``startup`` (before the first) and ``agent`` for an agent
    #: measured from outside.
    gap_phases: dict[str, float]
    #: Start to the answer's end, as recorded.
    wall_s: float
    #: The endpoint's HTTP status (``None``: no answer).
    status: int | None
    usage: Usage
    usage_raw: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    #: The marks as recorded, seconds from the request's start (as a turn's ``marks_s``).
    marks_s: dict[str, float | None] = field(default_factory=dict)
    #: Whether the request asked for a streamed answer.
    stream: bool = True
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """One recorded session."""

    #: ``<task>.<endpoint>-r<repeat>``: the file's stem and the ``SESSION`` of replay items.
    name: str
    #: The recorded session's id, ``<task>[<endpoint>-r<repeat>]``.
    session: str
    task: str
    #: The agent that made the requests (``builtin``, ``claude-code``, ...).
    agent: str
    #: The wire every request spoke.
    wire: Api
    #: The model the recorded endpoint was configured with.
    model: str | None
    #: The recorded endpoint's name.
    endpoint: str
    #: Seconds since the epoch when the session started.
    recorded_at: float
    #: The recorded session's outcome (``passed``, ``failed``, ...).
    outcome: str
    #: The recorded session's wall time.
    wall_s: float
    requests: tuple[RecordedRequest, ...]
    #: Seconds from the last answer's end to the session's end, and who filled them.
    tail_s: float = 0.0
    tail_phases: dict[str, float] = field(default_factory=dict)
    #: The file it was read from (``None``: not read from a file).
    source: str | None = None
    schema: int = SCHEMA


@dataclass(frozen=True, slots=True)
class PlannedTokens:
    """What replaying recordings will send: tokens in, of them expected from the cache (as
    recorded), and out (pinned to the recorded)."""

    input_tokens: int
    cached_tokens: int
    output_tokens: int
    requests: int


def recording_name(task: str, endpoint: str, repeat: int) -> str:
    """A recording's name: ``<task>.<endpoint>-r<repeat>``."""
    return f"{task}.{endpoint}-r{repeat}"


def recording_from(
    record: SessionRecord, sent: SentLog, *, wire: Api, model: str | None
) -> Recording:
    """A finished session's recording: its sent requests joined with their turns' (or side
    requests') usage, stop reasons and marks, and the gaps between them."""
    raise NotImplementedError


def write_recording(directory: Path, recording: Recording) -> Path:
    """Write ``recording`` into ``directory`` as ``<name>.rec.gz``, atomically, mode 0600;
    the path written."""
    raise NotImplementedError


def read_recording(path: Path) -> Recording:
    """Read one recording file.

    :raises RecordingError: missing, unreadable, not gzip, truncated, not JSON, not a
        recording, of a later schema, or inconsistent; one line that names the file.
    """
    raise NotImplementedError


def read_recordings(path: Path) -> list[Recording]:
    """The recordings at ``path``: one file, or every ``*.rec.gz`` under a directory, by name.

    :raises RecordingError: when ``path`` does not exist, holds no recording, or one of them
        cannot be read.
    """
    raise NotImplementedError


def planned_tokens(recordings: Sequence[Recording]) -> PlannedTokens:
    """What replaying ``recordings`` once each will send."""
    raise NotImplementedError
