"""Recordings: a session's model requests as sent, their answers, and the gaps between them.

:func:`recording_from` joins what a session sent (its :class:`~pytest_agentspeed.sent.SentLog`)
with its record: each request's usage, stop reason, marks and status, and the time before it
(its *gap*: the agent's tools and its own time), split into the phases that filled it. The
file (:func:`write_recording`, :func:`read_recording`) is gzip-compressed JSON: a header
(``"kind": "agentspeed-recording"``, the schema, the session) and the requests, each body
stored as a delta on the previous request's (:mod:`~pytest_agentspeed.replay.body_delta`), so
that a long session, whose every request repeats the conversation so far, stays small
(``benchmarks/recording_size.py``). Header names are kept, never a header's value: no key is
ever in a recording. The reading checks everything, each failure one line naming the file and
the field (:mod:`~pytest_agentspeed.replay.json_fields`).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pytest_agentspeed.endpoints import Api
from pytest_agentspeed.errors import RecordingError
from pytest_agentspeed.records import SessionRecord, Usage
from pytest_agentspeed.replay.body_delta import DeltaError, apply_delta, body_delta
from pytest_agentspeed.replay.json_fields import FieldError, Fields
from pytest_agentspeed.runfile import json_problem, read_bytes, write_bytes_atomic
from pytest_agentspeed.sent import SentKind, SentLog, SentRequest

#: The recording format's version; a reader refuses a later one.
SCHEMA = 1
#: A recording file's name ends with this.
SUFFIX = ".rec.gz"
#: The file's ``kind``: what tells a recording from any other gzipped JSON.
KIND = "agentspeed-recording"


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
    """A recording's name: ``<task>.<endpoint>-r<repeat>``, every character but letters,
    digits, ``.``, ``_`` and ``-`` made a ``-`` (it names a file, and an endpoint's name can be
    its spec: ``sim:standard?api=openai`` gives ``sim-standard-api-openai``)."""
    return _UNSAFE.sub("-", f"{task}.{endpoint}-r{repeat}")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def recording_from(
    record: SessionRecord, sent: SentLog, *, wire: Api, model: str | None
) -> Recording:
    """A finished session's recording: its sent requests joined with their turns' (or side
    requests') usage, stop reasons and marks, and the gaps between them.

    The gap before a request runs from the latest end of the answers before it (the session's
    start, for the first) to its start, never below zero (an agent's requests can overlap).
    The built-in agent's gaps are its previous turn's tool calls (at most that turn's ``tool``
    phase) and ``overhead`` (building the request; the first gap is all overhead); an agent
    measured from outside fills the first with ``startup`` and the others with ``agent``. The
    tail after the last answer is split alike (``tool`` and ``overhead``, or ``winddown``).
    A request whose body is no JSON object (nothing a model endpoint takes) is left out.
    """
    builtin = sent.gaps_are == "tool"
    requests: list[RecordedRequest] = []
    answered = sent.started_ns  # the latest end of an answer so far
    previous: SentRequest | None = None
    for request in sorted(sent.requests, key=lambda r: r.started_ns):
        gap_ns = max(0, request.started_ns - answered)
        if previous is None:
            gap_s, gap_phases = _split(gap_ns, "overhead" if builtin else "startup")
        elif builtin:
            gap_s, gap_phases = _split(gap_ns, "overhead", _tool_ns(record, previous), "tool")
        else:
            gap_s, gap_phases = _split(gap_ns, "agent")
        answered = max(answered, request.ended_ns)
        previous = request
        body = _json_object(request.body)
        if body is not None:
            requests.append(_recorded(record, request, body, gap_s, gap_phases))
    tail_ns = max(0, sent.ended_ns - answered)
    if not builtin:
        tail_s, tail_phases = _split(tail_ns, "winddown")
    elif previous is None:
        tail_s, tail_phases = _split(tail_ns, "overhead")
    else:
        tail_s, tail_phases = _split(tail_ns, "overhead", _tool_ns(record, previous), "tool")
    return Recording(
        name=recording_name(record.task, record.endpoint, record.repeat),
        session=record.id,
        task=record.task,
        agent=record.agent,
        wire=wire,
        model=model,
        endpoint=record.endpoint,
        recorded_at=record.started_at,
        outcome=record.outcome,
        wall_s=record.wall_s,
        requests=tuple(requests),
        tail_s=tail_s,
        tail_phases=tail_phases,
    )


def _recorded(
    record: SessionRecord,
    request: SentRequest,
    body: dict[str, Any],
    gap_s: float,
    gap_phases: dict[str, float],
) -> RecordedRequest:
    """One sent request with its answer as the session's record has it."""
    usage, usage_raw, stop_reason, error = Usage(), {}, None, None
    status: int | None = None
    marks: dict[str, float | None] = {}
    if request.kind == "turn" and request.index < len(record.turns):
        turn = record.turns[request.index]
        usage, usage_raw = turn.usage, turn.usage_raw
        stop_reason, error = turn.stop_reason, turn.error
        # A turn's marks count from its start; the built-in agent's request leaves a little
        # later (the request is built first): count them from its first attempt.
        shift = turn.attempts[0].started_s if turn.attempts else 0.0
        marks = {k: None if v is None else v - shift for k, v in turn.marks_s.items()}
        status = turn.attempts[-1].status if turn.attempts else None
    elif request.kind == "side" and request.index < len(record.side_requests):
        side = record.side_requests[request.index]
        usage, stop_reason, error, status = side.usage, side.stop_reason, side.error, side.status
        marks = dict(side.marks_s)
    return RecordedRequest(
        kind=request.kind,
        index=request.index,
        method=request.method,
        path=request.path,
        header_names=request.header_names,
        body=body,
        gap_s=gap_s,
        gap_phases=gap_phases,
        wall_s=(request.ended_ns - request.started_ns) / 1e9,
        status=status,
        usage=usage,
        usage_raw=dict(usage_raw),
        stop_reason=stop_reason,
        # The tools after the answer are the next gap's, not the request's.
        marks_s={k: v for k, v in marks.items() if k != "tools_end"},
        stream=body.get("stream") is True,
        error=error,
    )


def _tool_ns(record: SessionRecord, request: SentRequest) -> int:
    """The ``tool`` phase of the turn ``request`` was sent in, in nanoseconds."""
    if request.kind != "turn" or request.index >= len(record.turns):
        return 0
    return round(record.turns[request.index].phases_s.get("tool", 0.0) * 1e9)


def _split(
    total_ns: int, rest: str, part_ns: int = 0, part: str | None = None
) -> tuple[float, dict[str, float]]:
    """``total_ns`` in seconds, and as phases: ``part`` (at most ``part_ns``, when named) and
    ``rest``, whose seconds add up to the total exactly (``sum(phases.values()) == total``)."""
    total = total_ns / 1e9
    if part is None:
        return total, {rest: total}
    part_ns = min(part_ns, total_ns)
    # The larger share from its nanoseconds, the smaller as what is left: total - larger is
    # exact (Sterbenz: larger >= total / 2), so the two add up to the total exactly, as
    # floats, which adjusting the smaller share's rounding could not always achieve.
    if part_ns * 2 >= total_ns:
        first = part_ns / 1e9
        second = total - first
    else:
        second = (total_ns - part_ns) / 1e9
        first = total - second
    return total, {part: first, rest: second}


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return None
    return data if isinstance(data, dict) else None


# ----------------------------------------------------------------------------- the file


def write_recording(directory: Path, recording: Recording) -> Path:
    """Write ``recording`` into ``directory`` (made if missing) as ``<name>.rec.gz``,
    atomically, mode 0600 (it holds the session's prompts and code); the path written."""
    path = directory / f"{recording.name}{SUFFIX}"
    text = json.dumps(recording_json(recording), ensure_ascii=False, separators=(",", ":"))
    # mtime=0: the same recording makes the same bytes.
    write_bytes_atomic(path, gzip.compress(text.encode("utf-8"), mtime=0), mode=0o600)
    return path


def recording_json(recording: Recording) -> dict[str, Any]:
    """The file's JSON (before compression): the header, and the requests with their bodies as
    deltas."""
    from pytest_agentspeed import __version__

    requests = []
    previous: dict[str, Any] = {}
    for r in recording.requests:
        requests.append(
            {
                "kind": r.kind,
                "index": r.index,
                "method": r.method,
                "path": r.path,
                "header_names": list(r.header_names),
                "gap_s": r.gap_s,
                "gap_phases": r.gap_phases,
                "wall_s": r.wall_s,
                "status": r.status,
                "usage": r.usage.to_json(),
                "usage_raw": r.usage_raw,
                "stop_reason": r.stop_reason,
                "marks_s": r.marks_s,
                "stream": r.stream,
                "error": r.error,
                "body": body_delta(previous, r.body),
            }
        )
        previous = r.body
    return {
        "kind": KIND,
        "schema": SCHEMA,
        "agentspeed_version": __version__,
        "name": recording.name,
        "session": recording.session,
        "task": recording.task,
        "agent": recording.agent,
        "wire": recording.wire,
        "model": recording.model,
        "endpoint": recording.endpoint,
        "recorded_at": recording.recorded_at,
        "outcome": recording.outcome,
        "wall_s": recording.wall_s,
        "tail_s": recording.tail_s,
        "tail_phases": recording.tail_phases,
        "requests": requests,
    }


def read_recording(path: Path) -> Recording:
    """Read one recording file. Its bodies share unchanged parts with the previous request's
    (they were stored as deltas): treat them as read-only.

    :raises RecordingError: missing, unreadable, not gzip, truncated, not JSON, not a
        recording, of a later schema, or inconsistent; one line that names the file.
    """
    packed = read_bytes(path, RecordingError, missing="no such recording")
    try:
        raw = gzip.decompress(packed)
    except gzip.BadGzipFile:
        raise RecordingError(f"{path}: not a recording (not gzip-compressed)") from None
    except EOFError:
        raise RecordingError(
            f"{path}: the compressed data stops short; is the file truncated?"
        ) from None
    except zlib.error as exc:
        raise RecordingError(f"{path}: corrupt compressed data ({exc})") from None
    return recording_of(raw, path)


def read_recordings(path: Path) -> list[Recording]:
    """The recordings at ``path``: one file, or every ``*.rec.gz`` in a directory, by name.

    :raises RecordingError: when ``path`` does not exist, holds no recording, or one of them
        cannot be read.
    """
    if path.is_dir():
        files = sorted(path.glob(f"*{SUFFIX}"), key=lambda p: p.name)
        if not files:
            raise RecordingError(f"{path}: no recordings (*{SUFFIX}) in this directory")
        return [read_recording(f) for f in files]
    return [read_recording(path)]


def planned_tokens(recordings: Sequence[Recording]) -> PlannedTokens:
    """What replaying ``recordings`` once each will send: every request's input tokens as
    recorded (cached or not; a request that failed when recorded counts none), of them those
    the recorded endpoint read from its cache, and the recorded output tokens."""
    usages = [r.usage for rec in recordings for r in rec.requests]
    return PlannedTokens(
        input_tokens=sum(u.all_input_tokens for u in usages),
        cached_tokens=sum(u.cache_read_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        requests=len(usages),
    )


def recording_of(raw: bytes, path: Path) -> Recording:
    """The recording in ``raw`` (a file's bytes, decompressed), read from ``path``.

    :raises RecordingError: see :func:`read_recording`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordingError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{path}: not valid JSON ({json_problem(text, exc)})") from None
    except RecursionError:
        raise RecordingError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise RecordingError(f'{path}: not a recording (no "kind": "{KIND}")')
    try:
        top = Fields(data)
        schema = top.whole("schema")
        if schema > SCHEMA:
            raise RecordingError(
                f"{path}: written by a later pytest-agentspeed "
                f"({top.data.get('agentspeed_version', '?')}, recording schema {schema}; this "
                f"one reads schema {SCHEMA} and earlier): upgrade pytest-agentspeed"
            )
        wire = top.text("wire")
        if wire not in get_args(Api):
            raise FieldError(f"wire: {wire!r} is no wire (one of {', '.join(get_args(Api))})")
        requests: list[RecordedRequest] = []
        previous: dict[str, Any] = {}
        for i, item in enumerate(top.items("requests")):
            request = _request_of(Fields(item, f"requests[{i}]"), previous)
            requests.append(request)
            previous = request.body
        return Recording(
            name=top.text("name"),
            session=top.text("session"),
            task=top.text("task"),
            agent=top.text("agent"),
            wire=wire,  # type: ignore[arg-type]  # checked above
            model=top.opt_text("model"),
            endpoint=top.text("endpoint"),
            recorded_at=top.number("recorded_at"),
            outcome=top.text("outcome"),
            wall_s=top.number("wall_s"),
            requests=tuple(requests),
            tail_s=top.number("tail_s"),
            tail_phases=top.numbers("tail_phases"),
            source=str(path),
            schema=schema,
        )
    except FieldError as exc:
        raise RecordingError(f"{path}: {exc}") from None


def _request_of(f: Fields, previous: dict[str, Any]) -> RecordedRequest:
    kind = f.text("kind")
    if kind not in ("turn", "side"):
        raise FieldError(f"{f.name('kind')}: {kind!r}, not turn or side")
    names = f.items("header_names")
    if not all(isinstance(n, str) for n in names):
        raise FieldError(f"{f.name('header_names')}: not a list of strings")
    try:
        body = apply_delta(previous, f.get("body"))
    except DeltaError as exc:
        raise FieldError(f"{f.name('body')}: the delta does not apply ({exc})") from None
    usage = f.obj("usage")
    return RecordedRequest(
        kind=kind,  # type: ignore[arg-type]  # checked above
        index=f.whole("index"),
        method=f.text("method"),
        path=f.text("path"),
        header_names=tuple(names),
        body=body,
        gap_s=f.number("gap_s"),
        gap_phases=f.numbers("gap_phases"),
        wall_s=f.number("wall_s"),
        status=f.opt_whole("status"),
        usage=Usage(
            input_tokens=usage.whole("input_tokens"),
            cache_read_tokens=usage.whole("cache_read_tokens"),
            cache_write_tokens=usage.whole("cache_write_tokens"),
            output_tokens=usage.whole("output_tokens"),
            thinking_tokens=usage.opt_whole("thinking_tokens"),
        ),
        usage_raw=f.obj("usage_raw").data,
        stop_reason=f.opt_text("stop_reason"),
        marks_s=f.optional_numbers("marks_s"),
        stream=f.flag("stream"),
        error=f.opt_text("error"),
    )
