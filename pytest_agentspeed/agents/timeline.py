"""Turns, side requests and phases of an agent measured from outside, from what the recording
proxy saw of its session (``docs/timing.md``, External agents).

An agent in another process (Claude Code, mini-swe-agent, any command) cannot report its turns:
all there is, is the requests it made through the proxy (:class:`~pytest_agentspeed.exchanges.
Exchange`) and when its process started and exited. :func:`session_timeline` folds those into
the session's records, as a pure function (no I/O, no clock), so that recorded exchanges can be
replayed in tests with exact expected numbers:

* **main or side.** A *turn* is one request of the agent's main loop. A request is a *side
  request* (recorded as a :class:`~pytest_agentspeed.records.SideRequestRecord`, never a turn)
  when it is no model request (``not a model request``, ``count_tokens``), offers no tools
  (``no tools``), asks for structured output (``structured output``), or names another model
  than the session's main model (``other model``), checked in that order. The *main model* is
  the model of most tool-offering model requests (ties: the first seen).
* **retries.** A main request that arrives after a failed main request (not
  :attr:`~pytest_agentspeed.exchanges.Exchange.ok`) has ended, and before anything else
  answered that turn, is a further attempt of the same turn. The turn's events are its
  exchanges' events, opened by ``turn_start`` at the first attempt's arrival and closed by
  ``turn_end`` at the final attempt's end, and :func:`~pytest_agentspeed.timing.reduce_turn`
  reduces them: marks and phases mean what they mean for the built-in agent. A failed
  exchange's body (an error document) is no response: its ``response`` / ``stream_end`` events
  are left out, so a turn whose final attempt failed is ``retry_wait`` from its first send on,
  as for the built-in agent.
* **a turn's wall** runs from its arrival to the next main turn's arrival, or to its own end
  when that is later (overlapping main requests) or when it is the last turn. The part after
  its response's end is the agent's own time (its tools and its harness): the turn's ``agent``
  phase. A turn's ``phases_s`` has the keys of :data:`~pytest_agentspeed.timing.PHASES` plus
  ``agent`` and sums to its ``wall_s`` (integer nanoseconds).
* **the session's totals** come from its timeline, ``[started_ns, ended_ns]``, where every
  instant is counted once: covered by one or more main turns' request parts, it goes to the
  phase of highest :data:`OVERLAP_PRIORITY` among them; covered by none, it is ``startup``
  (before the first main request's arrival), ``winddown`` (after the last main response's end)
  or ``agent`` (between). Side requests take no phase time of their own: their time lies in
  whatever the main loop was doing meanwhile (the report's waterfall shows them).

The process's start-up and wind-down (:class:`~pytest_agentspeed.records.ProcessRecord`) are
the session's ``startup`` and ``winddown`` phases: :func:`process_spans`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from pytest_agentspeed.agents.seam import SessionTimeline
from pytest_agentspeed.exchanges import Exchange
from pytest_agentspeed.records import SideReason, SideRequestRecord, TurnRecord, Usage, turn_record
from pytest_agentspeed.sent import SentKind, SentRequest
from pytest_agentspeed.timing import ALL_PHASES, Event, TurnTiming, reduce_turn, thinking_windows

#: Which phase an instant goes to when main turns' request parts overlap there (parallel
#: sub-agents): the first of these that any of them is in. The model producing tokens for one
#: of them is what the session is waiting on, before waiting for a first token, before a retry
#: back-off, before the proxy's own handling.
OVERLAP_PRIORITY = ("generation", "reasoning", "ttft", "retry_wait", "overhead")

#: The events of a response body: a failed exchange's are not a response (see the module's
#: docstring).
_BODY_END_KINDS = frozenset({"response", "stream_end"})


def session_timeline(
    exchanges: Sequence[Exchange], *, started_ns: int, ended_ns: int
) -> tuple[tuple[TurnRecord, ...], SessionTimeline]:
    """The turns and the timeline of one session of an agent measured from outside.

    :param exchanges: every request the session made through the proxy, in the order they
        were received.
    :param started_ns: when the agent's process started (``time.perf_counter_ns``).
    :param ended_ns: when it exited, or was killed.
    :returns: the main turns, in order of arrival, with ``start_s`` set (seconds from
        ``started_ns``); and the session's timeline: wall time ``ended_ns - started_ns``, phase
        totals over :data:`~pytest_agentspeed.timing.ALL_PHASES` summing to it, the usage of
        the turns and side requests, and the side requests. With no main request at all there
        are no turns and the whole wall time is ``startup``.
    :raises ValueError: when the process ended before it started.
    """
    if ended_ns < started_ns:
        raise ValueError(f"the process ended ({ended_ns}) before it started ({started_ns})")
    groups, sides = _roles(exchanges)
    side = [_side_record(x, why, started_ns) for x, why in sides]
    parts = [_request_part(g) for g in groups]
    turns: list[TurnRecord] = []
    for i, part in enumerate(parts):
        following = parts[i + 1].start if i + 1 < len(parts) else part.end
        turns.append(_turn(i, part, following, started_ns))

    phases_ns = _session_phases(parts, started_ns, ended_ns)
    usage = sum((t.usage for t in turns), Usage()) + sum((r.usage for r in side), Usage())
    timeline = SessionTimeline(
        wall_s=_s(ended_ns - started_ns),
        phases_s={p: _s(phases_ns[p]) for p in ALL_PHASES},
        usage=usage,
        side_requests=tuple(side),
    )
    return tuple(turns), timeline


def sent_requests(exchanges: Sequence[Exchange]) -> tuple[SentRequest, ...]:
    """The model requests of a session as sent, for its recording, by when they arrived: one
    per main turn (``index``: the turn's; the body of its final attempt, from its first
    attempt's arrival to its final attempt's end: a retry is the same turn sent again, as in
    the built-in agent) and one per side model request (``index``: its place among the
    session's side requests, which :func:`session_timeline` lists in the same order)."""
    groups, sides = _roles(exchanges)
    made = [
        _sent_request("turn", i, group[-1], group[0].received_ns, _request_part(group).end)
        for i, group in enumerate(groups)
    ]
    made += [
        _sent_request("side", i, x, x.received_ns, max([x.end_ns, *(e.t_ns for e in x.events)]))
        for i, (x, _) in enumerate(sides)
        if x.is_model_request
    ]
    return tuple(sorted(made, key=lambda r: r.started_ns))


def _sent_request(
    kind: SentKind, index: int, x: Exchange, started_ns: int, ended_ns: int
) -> SentRequest:
    return SentRequest(
        kind=kind,
        index=index,
        method=x.method,
        path=x.path,
        header_names=x.header_names,
        body=x.body,
        started_ns=started_ns,
        ended_ns=ended_ns,
    )


def _roles(
    exchanges: Sequence[Exchange],
) -> tuple[list[list[Exchange]], list[tuple[Exchange, SideReason]]]:
    """The session's main turns (each its attempts, in order) and its side requests (with why),
    in order of arrival."""
    ordered = sorted(exchanges, key=lambda x: x.received_ns)
    main_model = _main_model(ordered)
    sides: list[tuple[Exchange, SideReason]] = []
    groups: list[list[Exchange]] = []
    for x in ordered:
        why = side_reason(x, main_model)
        if why is not None:
            sides.append((x, why))
            continue
        retried = _retried_group(groups, x)
        if retried is None:
            groups.append([x])
        else:
            retried.append(x)
    return groups, sides


def process_spans(timeline: SessionTimeline) -> tuple[float, float]:
    """(start-up, wind-down) seconds of the agent's process, for its
    :class:`~pytest_agentspeed.records.ProcessRecord`: the timeline's ``startup`` (process
    start to its first main request; the whole run when it made none) and ``winddown`` (its
    last main response's end to its exit) phases."""
    return timeline.phases_s.get("startup", 0.0), timeline.phases_s.get("winddown", 0.0)


def main_model(exchanges: Sequence[Exchange]) -> str | None:
    """The session's main model: the model of most tool-offering model requests (ties: the
    one seen first); ``None`` when no model request offered tools."""
    return _main_model(sorted(exchanges, key=lambda x: x.received_ns))


def side_reason(exchange: Exchange, main: str | None) -> SideReason | None:
    """Why ``exchange`` is a side request of a session whose main model is ``main``, or
    ``None`` for a main-loop request (a turn, or a further attempt of one)."""
    if exchange.operation == "count_tokens":
        return "count_tokens"
    if not exchange.is_model_request:
        return "not a model request"
    if not exchange.tools:
        return "no tools"
    if exchange.structured_output:
        return "structured output"
    if exchange.model != main:
        return "other model"
    return None


def _main_model(ordered: Sequence[Exchange]) -> str | None:
    counts = Counter(x.model for x in ordered if x.is_model_request and x.tools)
    if not counts:
        return None
    # Counter keeps first-seen order, and max returns the first of equal counts.
    return max(counts, key=lambda m: counts[m])


def _retried_group(groups: list[list[Exchange]], x: Exchange) -> list[Exchange] | None:
    """The turn ``x`` retries: the latest turn whose last attempt failed and had ended when
    ``x`` arrived; ``None`` when ``x`` opens a turn of its own."""
    for group in reversed(groups):
        last = group[-1]
        if not last.ok and last.end_ns <= x.received_ns:
            return group
        if last.end_ns <= x.received_ns:
            # A later turn was answered since: x follows that, it retries nothing older.
            return None
    return None


@dataclass(frozen=True, slots=True)
class _RequestPart:
    """A main turn's request part: first arrival to the final attempt's end, reduced."""

    exchanges: tuple[Exchange, ...]
    start: int
    end: int
    timing: TurnTiming
    events: tuple[Event, ...]


def _request_part(group: Sequence[Exchange]) -> _RequestPart:
    start = group[0].received_ns
    events: list[Event] = [Event(start, "turn_start")]
    for x in group:
        events.extend(e for e in x.events if x.ok or e.kind not in _BODY_END_KINDS)
    end = max([group[-1].end_ns, *(e.t_ns for e in events)])
    events.append(Event(end, "turn_end"))
    return _RequestPart(tuple(group), start, end, reduce_turn(events), tuple(events))


def _turn(index: int, part: _RequestPart, following: int, started_ns: int) -> TurnRecord:
    agent_ns = max(0, following - part.end)
    timing = part.timing
    wall_ns = part.end - part.start + agent_ns
    timed = replace(timing, wall_s=_s(wall_ns), phases_s=timing.phases_s | {"agent": _s(agent_ns)})
    final = part.exchanges[-1]
    record = turn_record(
        index,
        timed,
        usage=final.usage if final.ok else None,
        usage_raw=dict(final.usage_raw) if final.ok else None,
        stop_reason=final.stop_reason if final.ok else None,
        error=None if final.ok else _error(final),
    )
    return replace(record, start_s=_s(part.start - started_ns))


def _error(x: Exchange) -> str:
    if x.error:
        return x.error
    return "no response" if x.status is None else f"http_{x.status}"


def _side_record(x: Exchange, why: SideReason, started_ns: int) -> SideRequestRecord:
    end = max([x.end_ns, *(e.t_ns for e in x.events)])
    events = [Event(x.received_ns, "turn_start"), *x.events, Event(end, "turn_end")]
    timing = reduce_turn(events)
    return SideRequestRecord(
        start_s=_s(x.received_ns - started_ns),
        wall_s=_s(end - x.received_ns),
        method=x.method,
        path=x.path,
        model=x.model,
        why=why,
        streamed=x.streamed,
        status=x.status,
        marks_s={k: v for k, v in timing.marks_s.items() if k != "tools_end"},
        usage=x.usage if x.usage is not None else Usage(),
        stop_reason=x.stop_reason,
        error=None if x.ok or not x.is_model_request else _error(x),
    )


def _spans(part: _RequestPart) -> list[tuple[int, int, str]]:
    """(from, to, phase) pieces of a request part, in nanoseconds: where each of the phases
    :func:`~pytest_agentspeed.timing.reduce_turn` gave it lies on the timeline. Their lengths
    per phase are the reducer's phases (``tests/test_timeline.py`` checks it)."""
    t0, end, marks = part.start, part.end, part.timing.marks_s

    def at(mark: str) -> int | None:
        # Marks are whole nanoseconds from t0 divided by 1e9: rounding recovers them exactly
        # for any session shorter than days.
        value = marks[mark]
        return None if value is None else t0 + round(value * 1e9)

    sent = [e.t_ns for e in part.events if e.kind == "request_sent"]
    if not sent:
        return [(t0, end, "overhead")]
    first_sent, final_sent = sent[0], sent[-1]
    spans = [(t0, first_sent, "overhead"), (first_sent, final_sent, "retry_wait")]
    stream_end = at("stream_end")
    if stream_end is None:
        # Never served: retry_wait up to the last thing the endpoint did.
        last = max(
            (e.t_ns for e in part.events if e.kind != "turn_end" and e.t_ns >= final_sent),
            default=final_sent,
        )
        return [*spans, (final_sent, last, "retry_wait"), (last, end, "overhead")]
    token_at = at("first_token")
    token_at = stream_end if token_at is None else token_at
    spans.append((final_sent, token_at, "ttft"))
    cursor = token_at
    if part.timing.streamed:
        after = [e for e in part.events if e.t_ns >= final_sent]
        for lo, hi, _ in sorted(thinking_windows(after, stream_end)):
            lo, hi = max(lo, cursor), min(hi, stream_end)
            if hi > lo:
                spans += [(cursor, lo, "generation"), (lo, hi, "reasoning")]
                cursor = hi
    spans += [(cursor, stream_end, "generation"), (stream_end, end, "overhead")]
    return [s for s in spans if s[1] > s[0]]


def _session_phases(parts: Sequence[_RequestPart], started: int, ended: int) -> dict[str, int]:
    """Nanoseconds per phase of ``[started, ended]``, each instant counted once."""
    phases = dict.fromkeys(ALL_PHASES, 0)
    if not parts:
        phases["startup"] = ended - started
        return phases
    first = min(p.start for p in parts)
    last = max(p.end for p in parts)
    spans = [s for p in parts for s in _spans(p)]
    cuts = sorted({started, ended, first, last, *(t for lo, hi, _ in spans for t in (lo, hi))})
    rank = {name: i for i, name in enumerate(OVERLAP_PRIORITY)}
    for lo, hi in pairwise(cuts):
        lo, hi = max(lo, started), min(hi, ended)
        if hi <= lo:
            continue
        active = [name for a, b, name in spans if a <= lo and hi <= b]
        if active:
            phase = min(active, key=rank.__getitem__)
        elif hi <= first:
            phase = "startup"
        elif lo >= last:
            phase = "winddown"
        else:
            phase = "agent"
        phases[phase] += hi - lo
    return phases


def _s(ns: int) -> float:
    return ns / 1e9
