"""One recorded session sent again to an endpoint, open loop, and measured like a live one.

The recorded requests go in their recorded order, one after the other, each after its
recorded gap (the agent's tools and its own time) times a factor; the bodies are the recorded
ones made the endpoint's (:mod:`pytest_agentspeed.replay.body`), so the conversation holds the
recorded replies, not the new ones. Each request is timed by the client's marks and
:func:`~pytest_agentspeed.timing.reduce_turn` like a live turn; the session's record has the
shape of a live session's, so it is measured, compared and gated the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping

from pytest_agentspeed.agents import Progress
from pytest_agentspeed.clients import RawRequest, RawSender, resend_broken_stream
from pytest_agentspeed.endpoints import Api, Endpoint
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import (
    SessionRecord,
    SideReason,
    SideRequestRecord,
    TurnRecord,
    Usage,
    session_id,
    turn_record,
)
from pytest_agentspeed.replay.body import Pin, pin_for, replay_body
from pytest_agentspeed.replay.recording import RecordedRequest, Recording
from pytest_agentspeed.timing import ALL_PHASES, EventLog, TurnTiming, reduce_turn

__all__ = ["Pin", "pin_for", "replay_body", "replay_session"]

#: The path of each wire's model requests: the only requests a replay sends.
WIRE_PATHS: dict[Api, str] = {
    "anthropic": "/v1/messages",
    "openai": "/v1/chat/completions",
    "responses": "/v1/responses",
}


def replay_session(
    recording: Recording,
    client: RawSender,
    *,
    endpoint: Endpoint,
    repeat: int,
    gaps: float = 1.0,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SessionRecord:
    """Send ``recording``'s requests in order to ``endpoint`` through ``client``, each after
    its recorded gap times ``gaps`` (0: none), and measure them as a live session's turns; the
    session's record (the bench wraps it as a live session's result, with no check).

    The record's task is the recording's name, its agent ``replay``; its outcome ``passed``
    when every request was answered, ``error`` (with the endpoint's one-line reason) at the
    first that was not, after which nothing more is sent. Its phases sum to its wall time:
    the requests' own phases, and the slept gaps in the phases the recording says filled them.

    In detail:

    * The requests go one after the other: requests that overlapped in the recording (an
      external agent's side request beside a turn) are sent in their recorded order, the
      later one right after the earlier one's answer (its recorded gap is 0). Requests on
      another path than the wire's model requests (a token count) are not sent.
    * Before each, ``sleep(gap_s * gaps)`` (not called when that is 0); the time it actually
      took is split over the gap's recorded phases in proportion (all ``overhead`` when the
      recording names none). So is the recorded tail after the last answer.
    * A request whose stream broke off is sent again as the built-in agent sends a turn
      again (:func:`~pytest_agentspeed.clients.resend_broken_stream`, waiting with
      ``sleep``).
    * Each ``turn`` request is a :class:`~pytest_agentspeed.records.TurnRecord` (its recorded
      index; ``start_s`` from the session's start; marks and phases of its own log, from the
      moment it was handed to the client to its answer's end), each ``side`` request a
      :class:`~pytest_agentspeed.records.SideRequestRecord`. Session phases (keys
      :data:`~pytest_agentspeed.timing.ALL_PHASES`): the requests' phases, the gaps' and the
      tail's, and ``overhead`` the rest (building bodies), summing to the wall time from the
      session's start to its end. Usage is the sum of every request's.
    * ``progress`` is called after each turn, as the built-in agent calls it.

    :raises ValueError: when the recording's wire is not the endpoint's.
    """
    if recording.wire != endpoint.api:
        raise ValueError(
            f"recording {recording.name} is on the {recording.wire} wire, "
            f"endpoint {endpoint.name} on {endpoint.api}"
        )
    sid = session_id(recording.name, endpoint.name, repeat)
    pin = pin_for(endpoint)
    clock = time.perf_counter_ns
    phases = dict.fromkeys(ALL_PHASES, 0.0)
    turns: list[TurnRecord] = []
    side: list[SideRequestRecord] = []
    usage = Usage()
    output_tokens = 0
    error: str | None = None
    started_at = time.time()
    start = clock()
    for request in recording.requests:
        if request.path.partition("?")[0] != WIRE_PATHS[recording.wire]:
            continue
        raw = RawRequest(
            path=request.path,
            body=replay_body(request, endpoint=endpoint, session_id=sid, pin=pin),
        )
        _sleep_gap(request.gap_s * gaps, request.gap_phases, phases, sleep, clock)
        log = EventLog(clock)
        begun = log.add("turn_start")
        send = functools.partial(client.send_raw, raw, log)
        try:
            response = resend_broken_stream(send, client.retry_wait_s, sleep)
        except EndpointError as exc:
            error = " ".join(str(exc).splitlines())
            log.add("turn_end")
            timing = _add_phases(phases, log)
            _record(request, timing, (begun - start) / 1e9, turns, side, endpoint, error=error)
            break
        ended = log.add("turn_end")
        timing = _add_phases(phases, log)
        usage += response.usage
        _record(
            request,
            timing,
            (begun - start) / 1e9,
            turns,
            side,
            endpoint,
            usage=response.usage,
            usage_raw=response.usage_raw,
            stop_reason=response.stop_reason,
        )
        if request.kind == "turn":
            output_tokens += response.usage.output_tokens
            if progress is not None:
                progress(len(turns), output_tokens, (ended - start) / 1e9)
    else:
        _sleep_gap(recording.tail_s * gaps, recording.tail_phases, phases, sleep, clock)
    wall_s = (clock() - start) / 1e9
    phases["overhead"] = wall_s - sum(v for p, v in phases.items() if p != "overhead")
    record = SessionRecord(
        id=sid,
        task=recording.name,
        endpoint=endpoint.name,
        repeat=repeat,
        slot=f"{recording.name}/r{repeat}",
        agent="replay",
        outcome="passed" if error is None else "error",
        error=error,
        started_at=started_at,
        wall_s=wall_s,
        setup_s=0.0,
        check_s=0.0,
        check_exit_code=None,
        usage=usage,
        phases_s=phases,
        turns=tuple(turns),
        side_requests=tuple(side),
    )
    return record


def _sleep_gap(
    seconds: float,
    filled_by: Mapping[str, float],
    phases: dict[str, float],
    sleep: Callable[[float], None],
    clock: Callable[[], int],
) -> None:
    """Sleep ``seconds`` and add the time it took to ``phases``, split as the recorded gap
    was (``filled_by``, phase -> seconds); ``overhead`` takes what no known phase does."""
    if seconds <= 0:
        return
    t0 = clock()
    sleep(seconds)
    slept = (clock() - t0) / 1e9
    recorded = sum(filled_by.values())
    if recorded <= 0:
        phases["overhead"] += slept
        return
    for phase, share in filled_by.items():
        phases[phase if phase in phases else "overhead"] += slept * share / recorded


def _add_phases(phases: dict[str, float], log: EventLog) -> TurnTiming:
    """The request's timing; its phases added to the session's."""
    timing = reduce_turn(log.events)
    for phase, seconds in timing.phases_s.items():
        phases[phase] += seconds
    return timing


def _record(
    request: RecordedRequest,
    timing: TurnTiming,
    start_s: float,
    turns: list[TurnRecord],
    side: list[SideRequestRecord],
    endpoint: Endpoint,
    *,
    usage: Usage | None = None,
    usage_raw: dict[str, object] | None = None,
    stop_reason: str | None = None,
    error: str | None = None,
) -> None:
    """Append the replayed request's record: a turn's, or a side request's."""
    if request.kind == "turn":
        turn = turn_record(
            request.index,
            timing,
            usage=usage,
            usage_raw=usage_raw,
            stop_reason=stop_reason,
            error=error,
        )
        turns.append(dataclasses.replace(turn, start_s=start_s))
        return
    final = timing.attempts[-1] if timing.attempts else None
    side.append(
        SideRequestRecord(
            start_s=start_s,
            wall_s=timing.wall_s,
            method=request.method,
            path=request.path,
            model=endpoint.model,
            why=_side_reason(request),
            streamed=timing.streamed,
            status=None if final is None else final.status,
            marks_s=timing.marks_s,
            usage=usage if usage is not None else Usage(),
            stop_reason=stop_reason,
            error=error,
        )
    )


def _side_reason(request: RecordedRequest) -> SideReason:
    """Why the recorded request was a side request, as far as its body tells: it offered
    no tools, or (with tools) it went to another model than the session's turns."""
    return "other model" if request.body.get("tools") else "no tools"
