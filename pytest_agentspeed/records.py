"""What a run measured: frozen records and their JSON form (the run file, DESIGN section 9).

The JSON written by :meth:`RunRecord.to_json` is the contract other tools read; its shape is
versioned by ``schema`` (``agentspeed.run/1``). Readers accept any ``agentspeed.run/1.x`` and
refuse another major version with a clear message.

Over 500 lines because it is one cohesive thing: every record of the run file, each next to its
JSON form, in the order the file nests them (usage, attempts, tool calls, turns, the clock's
lateness, sessions, endpoints, the comparisons the analysis made, a capacity sweep's levels,
the run). Plain data: this module imports nothing of the package but its errors, so every
layer can hold its records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pytest_agentspeed.errors import RunFileError

if TYPE_CHECKING:
    # Only for a signature: records do not depend on the reducer at run time.
    from pytest_agentspeed.timing import TurnTiming

SCHEMA = "agentspeed.run/1"

Outcome = Literal["passed", "failed", "error", "timeout"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "timeout")

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts of one response (or totals of a session), normalised across wires."""

    #: Input tokens that were neither read from nor written to the prompt cache.
    input_tokens: int = 0
    #: Input tokens read from the prompt cache.
    cache_read_tokens: int = 0
    #: Input tokens written to the prompt cache.
    cache_write_tokens: int = 0
    #: Output tokens, thinking included.
    output_tokens: int = 0
    #: Thinking tokens, where the endpoint reports them.
    thinking_tokens: int | None = None

    def __add__(self, other: Usage) -> Usage:
        thinking = (
            None
            if self.thinking_tokens is None and other.thinking_tokens is None
            else (self.thinking_tokens or 0) + (other.thinking_tokens or 0)
        )
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            thinking_tokens=thinking,
        )

    @property
    def all_input_tokens(self) -> int:
        """Every input token of the request, cached or not."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def to_json(self) -> JSON:
        return {
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "thinking_tokens": self.thinking_tokens,
        }

    @classmethod
    def from_json(cls, data: JSON) -> Usage:
        return cls(
            input_tokens=int(data.get("input_tokens", 0)),
            cache_read_tokens=int(data.get("cache_read_tokens", 0)),
            cache_write_tokens=int(data.get("cache_write_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            thinking_tokens=(
                None if data.get("thinking_tokens") is None else int(data["thinking_tokens"])
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """One HTTP request of a turn (retries make several)."""

    started_s: float
    sent_s: float | None
    headers_s: float | None
    status: int | None
    request_id: str | None
    error: str | None

    def to_json(self) -> JSON:
        return {
            "started_s": self.started_s,
            "sent_s": self.sent_s,
            "headers_s": self.headers_s,
            "status": self.status,
            "request_id": self.request_id,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: JSON) -> AttemptRecord:
        return cls(
            started_s=float(data["started_s"]),
            sent_s=_opt_float(data.get("sent_s")),
            headers_s=_opt_float(data.get("headers_s")),
            status=None if data.get("status") is None else int(data["status"]),
            request_id=data.get("request_id"),
            error=data.get("error"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRecord:
    """One tool call the model asked for."""

    name: str
    #: Seconds from the turn's start.
    start_s: float
    wall_s: float
    ok: bool

    def to_json(self) -> JSON:
        return {"name": self.name, "start_s": self.start_s, "wall_s": self.wall_s, "ok": self.ok}

    @classmethod
    def from_json(cls, data: JSON) -> ToolCallRecord:
        return cls(
            name=str(data["name"]),
            start_s=float(data.get("start_s", 0.0)),
            wall_s=float(data["wall_s"]),
            ok=bool(data["ok"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRecord:
    """One model call of a session plus the tool calls it asked for."""

    index: int
    wall_s: float
    marks_s: dict[str, float | None]
    phases_s: dict[str, float]
    usage: Usage
    #: The endpoint's usage object as it came, for fields the normalisation does not keep.
    usage_raw: JSON
    stop_reason: str | None
    streamed: bool
    attempts: tuple[AttemptRecord, ...]
    tool_calls: tuple[ToolCallRecord, ...]
    #: Set when the endpoint failed this turn.
    error: str | None = None
    #: Seconds from the session's start, for an agent measured from outside (its turns can
    #: overlap, so they do not simply follow each other); ``None`` for the built-in agent,
    #: whose turns follow each other from the session's start.
    start_s: float | None = None

    def to_json(self) -> JSON:
        return {
            "index": self.index,
            "wall_s": self.wall_s,
            "marks_s": dict(self.marks_s),
            "phases_s": dict(self.phases_s),
            "usage": self.usage.to_json(),
            "usage_raw": self.usage_raw,
            "stop_reason": self.stop_reason,
            "streamed": self.streamed,
            "attempts": [a.to_json() for a in self.attempts],
            "tool_calls": [t.to_json() for t in self.tool_calls],
            "error": self.error,
        } | ({} if self.start_s is None else {"start_s": self.start_s})

    @classmethod
    def from_json(cls, data: JSON) -> TurnRecord:
        return cls(
            index=int(data["index"]),
            wall_s=float(data["wall_s"]),
            marks_s={str(k): _opt_float(v) for k, v in data["marks_s"].items()},
            phases_s={str(k): float(v) for k, v in data["phases_s"].items()},
            usage=Usage.from_json(data["usage"]),
            usage_raw=dict(data.get("usage_raw") or {}),
            stop_reason=data.get("stop_reason"),
            streamed=bool(data.get("streamed", True)),
            attempts=tuple(AttemptRecord.from_json(a) for a in data.get("attempts", [])),
            tool_calls=tuple(ToolCallRecord.from_json(t) for t in data.get("tool_calls", [])),
            error=data.get("error"),
            start_s=_opt_float(data.get("start_s")),
        )


def turn_record(
    index: int,
    timing: TurnTiming,
    *,
    usage: Usage | None = None,
    usage_raw: JSON | None = None,
    stop_reason: str | None = None,
    error: str | None = None,
) -> TurnRecord:
    """A turn's record from its timing: the one way every agent builds its turns.

    :param index: the turn's position in the session, from 0.
    :param timing: what :func:`~pytest_agentspeed.timing.reduce_turn` made of the turn's events.
    :param usage: the response's token counts (none when the endpoint failed the turn).
    :param usage_raw: the endpoint's usage object as it came.
    :param stop_reason: why the response ended (``end_turn``, ``tool_use``, ``max_tokens``, ...).
    :param error: what went wrong when the endpoint failed the turn.
    """
    return TurnRecord(
        index=index,
        wall_s=timing.wall_s,
        marks_s=timing.marks_s,
        phases_s=timing.phases_s,
        usage=usage if usage is not None else Usage(),
        usage_raw=usage_raw if usage_raw is not None else {},
        stop_reason=stop_reason,
        streamed=timing.streamed,
        attempts=tuple(
            AttemptRecord(
                started_s=a.started_s,
                sent_s=a.sent_s,
                headers_s=a.headers_s,
                status=a.status,
                request_id=a.request_id,
                error=a.error,
            )
            for a in timing.attempts
        ),
        tool_calls=tuple(
            ToolCallRecord(name=t.name, start_s=t.start_s, wall_s=t.wall_s, ok=t.ok)
            for t in timing.tools
        ),
        error=error,
    )


#: Why a request of an external agent was not one of its turns.
SideReason = Literal[
    "no tools", "structured output", "other model", "count_tokens", "not a model request"
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SideRequestRecord:
    """A request an external agent made beside its main loop (a session title, a token count, a
    probe): recorded and shown, never a turn (``docs/agents.md``)."""

    #: Seconds from the session's start to the request's arrival at the proxy.
    start_s: float
    #: Arrival at the proxy to the response's end.
    wall_s: float
    method: str
    path: str
    model: str | None
    why: SideReason
    streamed: bool
    status: int | None
    #: Marks (as for a turn) in seconds from the request's arrival.
    marks_s: dict[str, float | None]
    usage: Usage
    stop_reason: str | None = None
    error: str | None = None

    def to_json(self) -> JSON:
        return {
            "start_s": self.start_s,
            "wall_s": self.wall_s,
            "method": self.method,
            "path": self.path,
            "model": self.model,
            "why": self.why,
            "streamed": self.streamed,
            "status": self.status,
            "marks_s": dict(self.marks_s),
            "usage": self.usage.to_json(),
            "stop_reason": self.stop_reason,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: JSON) -> SideRequestRecord:
        return cls(
            start_s=float(data["start_s"]),
            wall_s=float(data["wall_s"]),
            method=str(data.get("method", "POST")),
            path=str(data["path"]),
            model=data.get("model"),
            why=data["why"],
            streamed=bool(data.get("streamed", False)),
            status=None if data.get("status") is None else int(data["status"]),
            marks_s={str(k): _opt_float(v) for k, v in (data.get("marks_s") or {}).items()},
            usage=Usage.from_json(data.get("usage") or {}),
            stop_reason=data.get("stop_reason"),
            error=data.get("error"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessRecord:
    """The process of an external agent in one session: how it ended, and its time before its
    first request and after its last response."""

    #: The program run (``claude``, ``mini``, the first word of a defined command).
    program: str
    #: Its exit status (negative: killed by that signal); ``None`` when it was killed at the
    #: time limit.
    exit_code: int | None
    timed_out: bool
    #: Process start to its first main-loop request (the whole run when it made none).
    startup_s: float
    #: The last main-loop response's end to the process's exit.
    winddown_s: float
    #: The end of its output (stdout and stderr), keys replaced by ``[REDACTED]``.
    output_tail: str

    def to_json(self) -> JSON:
        return {
            "program": self.program,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "startup_s": self.startup_s,
            "winddown_s": self.winddown_s,
            "output_tail": self.output_tail,
        }

    @classmethod
    def from_json(cls, data: JSON) -> ProcessRecord:
        return cls(
            program=str(data["program"]),
            exit_code=None if data.get("exit_code") is None else int(data["exit_code"]),
            timed_out=bool(data.get("timed_out", False)),
            startup_s=float(data.get("startup_s", 0.0)),
            winddown_s=float(data.get("winddown_s", 0.0)),
            output_tail=str(data.get("output_tail", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockRecord:
    """How late the measuring process's own clock ran during one session, and how busy the
    machine was: what the session's marks can be trusted to (``docs/timing.md``, "When the
    clock is late").

    A monitor thread of the process sleeps a fixed interval again and again; each wake-up's
    overshoot past its planned time is a moment this process was ready to run and did not (the
    cores busy with other work, another thread holding the GIL, a GC pause). A mark taken then
    is late by as much. Recorded by :class:`~pytest_agentspeed.run.lateness.LatenessMonitor`.
    """

    #: Wake-ups sampled in the session's time window.
    samples: int
    #: Overshoot of those wake-ups, milliseconds: median, 99th percentile and largest.
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    #: Share of the machine's CPU time that was busy over the session (all cores, 0-1), from
    #: ``/proc/stat``; ``None`` where the system does not say.
    cpu_busy: float | None
    #: The 1-minute load average at the session's end (runnable threads, all cores); ``None``
    #: where the system does not say.
    load_1m: float | None
    #: The machine's cores.
    cpus: int | None

    def to_json(self) -> JSON:
        return {
            "samples": self.samples,
            "late_ms": {"p50": self.late_p50_ms, "p99": self.late_p99_ms, "max": self.late_max_ms},
            "cpu_busy": self.cpu_busy,
            "load_1m": self.load_1m,
            "cpus": self.cpus,
        }

    @classmethod
    def from_json(cls, data: JSON) -> ClockRecord:
        late = data["late_ms"]
        return cls(
            samples=int(data["samples"]),
            late_p50_ms=float(late["p50"]),
            late_p99_ms=float(late["p99"]),
            late_max_ms=float(late["max"]),
            cpu_busy=_opt_float(data.get("cpu_busy")),
            load_1m=_opt_float(data.get("load_1m")),
            cpus=None if data.get("cpus") is None else int(data["cpus"]),
        )


def session_id(task_id: str, endpoint: str, repeat: int) -> str:
    """The id of a session: ``<task>[<endpoint>-r<repeat>]``, also its pytest item id's shape."""
    return f"{task_id}[{endpoint}-r{repeat}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """One agent run of one task on one endpoint."""

    #: Unique within the run: ``<task>[<endpoint>-r<repeat>]``.
    id: str
    task: str
    endpoint: str
    repeat: int
    #: ``<task>/r<repeat>``: sessions of different arms in the same slot form a pair.
    slot: str
    outcome: Outcome
    #: Why the session ended as ``error`` or ``timeout`` (never contains secrets).
    error: str | None
    #: Agent time: first turn start to last turn end (an agent in another process: its
    #: process's start to its exit, ``docs/timing.md``, External agents).
    wall_s: float
    #: Copying the workspace.
    setup_s: float
    #: Running the check.
    check_s: float
    #: Exit code of the check (``None`` when it timed out or did not run).
    check_exit_code: int | None
    usage: Usage
    phases_s: dict[str, float]
    turns: tuple[TurnRecord, ...]
    agent: str = "builtin"
    #: Seconds since the epoch when the session started (for ordering and drift plots).
    started_at: float = 0.0
    #: How late this process's clock ran during the session; ``None`` in run files written
    #: before it was measured, and for sessions that were not run.
    clock: ClockRecord | None = None
    #: An external agent's requests that were not turns (empty for the built-in agent).
    side_requests: tuple[SideRequestRecord, ...] = ()
    #: An external agent's process; ``None`` for an agent that runs in this process.
    process: ProcessRecord | None = None

    @property
    def passed(self) -> bool:
        """True when the task's check succeeded."""
        return self.outcome == "passed"

    @property
    def throughput_tok_s(self) -> float | None:
        """Output tokens per second of agent time: the article's effective tok/s."""
        if self.wall_s <= 0 or not self.turns:
            return None
        return self.usage.output_tokens / self.wall_s

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "task": self.task,
            "endpoint": self.endpoint,
            "repeat": self.repeat,
            "slot": self.slot,
            "agent": self.agent,
            "outcome": self.outcome,
            "error": self.error,
            "started_at": self.started_at,
            "wall_s": self.wall_s,
            "setup_s": self.setup_s,
            "check_s": self.check_s,
            "check_exit_code": self.check_exit_code,
            "throughput_tok_s": self.throughput_tok_s,
            "usage": self.usage.to_json(),
            "phases_s": dict(self.phases_s),
            "turns": [t.to_json() for t in self.turns],
        } | self._optional_json()

    def _optional_json(self) -> JSON:
        # Written only when present, so the run files of the built-in agent keep their shape.
        extra: JSON = {}
        if self.clock is not None:
            extra["clock"] = self.clock.to_json()
        if self.side_requests:
            extra["side_requests"] = [r.to_json() for r in self.side_requests]
        if self.process is not None:
            extra["process"] = self.process.to_json()
        return extra

    @classmethod
    def from_json(cls, data: JSON) -> SessionRecord:
        outcome = data["outcome"]
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        return cls(
            id=str(data["id"]),
            task=str(data["task"]),
            endpoint=str(data["endpoint"]),
            repeat=int(data["repeat"]),
            slot=str(data["slot"]),
            agent=str(data.get("agent", "builtin")),
            outcome=outcome,
            error=data.get("error"),
            started_at=float(data.get("started_at", 0.0)),
            wall_s=float(data["wall_s"]),
            setup_s=float(data.get("setup_s", 0.0)),
            check_s=float(data.get("check_s", 0.0)),
            check_exit_code=(
                None if data.get("check_exit_code") is None else int(data["check_exit_code"])
            ),
            usage=Usage.from_json(data["usage"]),
            phases_s={str(k): float(v) for k, v in data["phases_s"].items()},
            turns=tuple(TurnRecord.from_json(t) for t in data.get("turns", [])),
            clock=None if data.get("clock") is None else ClockRecord.from_json(data["clock"]),
            side_requests=tuple(
                SideRequestRecord.from_json(r) for r in data.get("side_requests") or []
            ),
            process=(
                None if data.get("process") is None else ProcessRecord.from_json(data["process"])
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRecord:
    """An endpoint as the run file describes it: never with a key."""

    name: str
    api: str
    model: str
    #: Base URL without credentials or query string.
    base_url: str | None
    #: Latency profile of a simulated endpoint, else ``None``.
    profile: str | None = None
    #: Simulator options (time_scale, seed, ...) for simulated endpoints.
    options: JSON = field(default_factory=dict)
    #: Human-readable name from the endpoint's configuration.
    label: str | None = None

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "label": self.label,
            "api": self.api,
            "model": self.model,
            "base_url": self.base_url,
            "profile": self.profile,
            "options": dict(self.options),
        }

    @classmethod
    def from_json(cls, data: JSON) -> EndpointRecord:
        return cls(
            name=str(data["name"]),
            api=str(data["api"]),
            model=str(data["model"]),
            base_url=data.get("base_url"),
            profile=data.get("profile"),
            options=dict(data.get("options") or {}),
            label=data.get("label"),
        )


Verdict = Literal["FAIL", "PASS", "IMPROVED", "INCONCLUSIVE"]
VERDICTS: tuple[Verdict, ...] = ("FAIL", "PASS", "IMPROVED", "INCONCLUSIVE")
#: Not a verdict: the baseline was recorded under conditions that make a comparison
#: meaningless (``analysis.fingerprint.fingerprint_refusals``), so none was made.
NOT_COMPARED: Literal["NOT COMPARED"] = "NOT COMPARED"


def fails(verdict: str, inconclusive: str = "warn") -> bool:
    """Whether a verdict makes the run exit non-zero under the INCONCLUSIVE policy."""
    return verdict == "FAIL" or (verdict == "INCONCLUSIVE" and inconclusive == "fail")


def direction(ratio: float | None) -> Literal["less", "greater"]:
    """The one-sided alternative that speaks to an estimated ratio: ``greater`` (the candidate
    is faster) above 1, else ``less``."""
    return "greater" if ratio is not None and ratio > 1 else "less"


def p_in_direction(ratio: float | None, p: float | None, p_improved: float | None) -> float | None:
    """Of the one-sided p-values that the candidate is slower (``p``) and faster
    (``p_improved``), the one in the direction of the estimated ratio: the one reports show."""
    return p_improved if direction(ratio) == "greater" else p


@dataclass(frozen=True, slots=True, kw_only=True)
class RateCheck:
    """How many sessions of each arm had an outcome (passed, or ended by endpoint errors), and
    Fisher's exact test of the candidate's change for the worse (fewer passes, more errors).

    Errored sessions stay in the throughput sample, but a candidate that errors more is worse
    in a way throughput does not show: the error check gates that.
    """

    #: What is counted, also the JSON key of the counts: ``"passed"`` or ``"errors"``.
    what: Literal["passed", "errors"]
    #: (baseline, candidate) sessions with the outcome.
    counts: tuple[int, int]
    #: (baseline, candidate) sessions in all.
    sessions: tuple[int, int]
    #: Fisher's one-sided p that the candidate is worse; nan when an arm has no session.
    p: float
    regressed: bool

    @property
    def rates(self) -> tuple[float | None, float | None]:
        """Each arm's share of sessions with the outcome; ``None`` for an arm without any."""
        base, cand = (k / n if n else None for k, n in zip(self.counts, self.sessions, strict=True))
        return base, cand

    @property
    def worse(self) -> bool:
        """The candidate's rate moved the wrong way, significantly or not."""
        base, cand = self.rates
        if base is None or cand is None:
            return False
        return cand > base if self.what == "errors" else cand < base

    def to_json(self) -> JSON:
        return {
            self.what: list(self.counts),
            "sessions": list(self.sessions),
            "rates": list(self.rates),
            "p": finite_or_none(self.p),
            "regressed": self.regressed,
        }

    @classmethod
    def from_json(cls, data: JSON) -> RateCheck:
        what: Literal["passed", "errors"] = "errors" if "errors" in data else "passed"
        p = data.get("p")
        return cls(
            what=what,
            counts=_int_pair(data[what]),
            sessions=_int_pair(data["sessions"]),
            p=math.nan if p is None else float(p),
            regressed=bool(data["regressed"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnGroup:
    """Matched turns of replayed sessions taken together (a session pair, or a context bin):
    their median candidate/baseline ratios, and how many turns each rests on."""

    #: The session pair's slot, or the context bin (``<8k``, ``8k-32k``, ...).
    label: str
    #: For a context bin: its cold prefills (``True``) or its warm turns; ``None`` otherwise.
    cold: bool | None
    #: Turns with a TTFT ratio; turns with a decode ratio (enough output in both arms).
    turns: int
    decode_turns: int
    #: ``exp`` of the median per-turn log ratio; ``None`` without such turns.
    ttft_ratio: float | None
    decode_ratio: float | None

    def to_json(self) -> JSON:
        return {
            "label": self.label,
            "cold": self.cold,
            "turns": self.turns,
            "decode_turns": self.decode_turns,
            "ttft_ratio": self.ttft_ratio,
            "decode_ratio": self.decode_ratio,
        }

    @classmethod
    def from_json(cls, data: JSON) -> TurnGroup:
        cold = data.get("cold")
        return cls(
            label=str(data["label"]),
            cold=None if cold is None else bool(cold),
            turns=int(data["turns"]),
            decode_turns=int(data.get("decode_turns", 0)),
            ttft_ratio=_opt_float(data.get("ttft_ratio")),
            decode_ratio=_opt_float(data.get("decode_ratio")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnPoint:
    """One matched turn: where it stood (the baseline turn's context and output) and its
    candidate/baseline ratios. The run file holds it as a list, in this field order."""

    #: Index of its session pair in :attr:`TurnPairs.sessions`, and of the turn in it.
    session: int
    turn: int
    #: The baseline turn's input tokens, cache reads and writes included; its output tokens.
    context_tokens: int
    output_tokens: int
    #: The baseline turn read nothing from the prompt cache (a cold prefill).
    cold: bool
    ttft_ratio: float | None
    decode_ratio: float | None

    def to_json(self) -> list[Any]:
        return [
            self.session,
            self.turn,
            self.context_tokens,
            self.output_tokens,
            int(self.cold),
            self.ttft_ratio,
            self.decode_ratio,
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> TurnPoint:
        session, turn, context, output, cold, ttft, decode = data
        return cls(
            session=int(session),
            turn=int(turn),
            context_tokens=int(context),
            output_tokens=int(output),
            cold=bool(cold),
            ttft_ratio=_opt_float(ttft),
            decode_ratio=_opt_float(decode),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnPairs:
    """The per-turn view of a comparison of replayed sessions, whose turns match one to one
    (``analysis/turn_pairs.py``; ``docs/statistics.md``, Replays: paired turns). It describes;
    the gate stays on sessions."""

    #: The design in words: ``paired by session; 312 turns matched one to one``.
    design: str
    #: Matched turns with a TTFT ratio.
    turns: int
    #: Hodges-Lehmann estimate over the session pairs' median ratios, with its CI (``None``
    #: when too few pairs bound it), for TTFT and for decode rate.
    ttft_ratio: float | None
    ttft_ci: tuple[float, float] | None
    decode_ratio: float | None
    decode_ci: tuple[float, float] | None
    sessions: tuple[TurnGroup, ...]
    #: By context bin, cold and warm apart (empty cells left out).
    bins: tuple[TurnGroup, ...]
    points: tuple[TurnPoint, ...]
    #: Session pairs whose turns did not match, and why (one line each).
    unmatched: tuple[str, ...] = ()

    def to_json(self) -> JSON:
        return {
            "design": self.design,
            "turns": self.turns,
            "ttft_ratio": self.ttft_ratio,
            "ttft_ci": None if self.ttft_ci is None else list(self.ttft_ci),
            "decode_ratio": self.decode_ratio,
            "decode_ci": None if self.decode_ci is None else list(self.decode_ci),
            "sessions": [s.to_json() for s in self.sessions],
            "bins": [b.to_json() for b in self.bins],
            "unmatched": list(self.unmatched),
            "points": [p.to_json() for p in self.points],
        }

    @classmethod
    def from_json(cls, data: JSON) -> TurnPairs:
        ttft_ci, decode_ci = data.get("ttft_ci"), data.get("decode_ci")
        return cls(
            design=str(data["design"]),
            turns=int(data["turns"]),
            ttft_ratio=_opt_float(data.get("ttft_ratio")),
            ttft_ci=None if ttft_ci is None else (float(ttft_ci[0]), float(ttft_ci[1])),
            decode_ratio=_opt_float(data.get("decode_ratio")),
            decode_ci=None if decode_ci is None else (float(decode_ci[0]), float(decode_ci[1])),
            sessions=tuple(TurnGroup.from_json(s) for s in data.get("sessions") or ()),
            bins=tuple(TurnGroup.from_json(b) for b in data.get("bins") or ()),
            points=tuple(TurnPoint.from_json(p) for p in data.get("points") or ()),
            unmatched=tuple(str(u) for u in data.get("unmatched") or ()),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """One candidate arm against one baseline arm: the numbers, the verdict and its reasons.

    Made by :mod:`pytest_agentspeed.analysis.compare`; every output formats these fields, and
    none reads a verdict back out of :attr:`line`.
    """

    metric: str
    baseline: str
    candidate: str
    #: Where the baseline came from: ``"this run"``, a baseline name or a file.
    against: str
    #: How the ratio was estimated: ``hodges_lehmann_log`` or ``bootstrap`` (``None`` in a
    #: run file that does not say).
    estimator: str | None
    paired: bool
    #: Sessions analysed per arm (pairs count once per arm).
    n: tuple[int, int]
    ratio: float | None
    ci: tuple[float, float] | None
    ci_level: float
    test: str
    #: One-sided p that the candidate is worse; and that it is better.
    p: float | None
    p_improved: float | None
    #: Brunner-Munzel's one-sided p in the direction of the estimate.
    brunner_munzel_p: float | None
    welch: dict[str, float] | None
    #: Smallest regression this run could detect with 80% power (fraction).
    mde: float | None
    #: Sessions per arm needed to detect a regression as large as the margin.
    sessions_needed: int | None
    pass_rate: RateCheck
    #: ``None`` in run files written before the error-rate check existed.
    error_rate: RateCheck | None
    tolerance: float
    margin: float
    alpha: float
    verdict: Verdict | Literal["NOT COMPARED"]
    #: The report line (DESIGN section 8), as written when the comparison was made: a run file
    #: shows the line it was written with, whatever a later version would print.
    line: str
    #: Why, in words: one line each.
    reasons: tuple[str, ...] = ()
    #: What makes the comparison less trustworthy (fingerprint differences, dropped sessions).
    warnings: tuple[str, ...] = ()
    #: Why the baseline was refused (then ``verdict`` is ``NOT COMPARED`` and nothing was
    #: computed); empty for a comparison that was made.
    refused: tuple[str, ...] = ()
    #: Replayed sessions: their turns paired one to one (``None`` for live sessions, and in run
    #: files written before replays).
    turn_pairs: TurnPairs | None = None

    @property
    def alternative(self) -> Literal["less", "greater"]:
        """The direction of the estimate: the one-sided test that speaks to it."""
        return direction(self.ratio)

    @property
    def p_shown(self) -> float | None:
        """The one-sided p-value in the direction of the estimate (slower or faster)."""
        return p_in_direction(self.ratio, self.p, self.p_improved)

    def fails(self, inconclusive: str = "warn") -> bool:
        """Whether this comparison should make the run exit non-zero."""
        return fails(self.verdict, inconclusive)

    def to_json(self) -> JSON:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "against": self.against,
            "estimator": self.estimator,
            "paired": self.paired,
            "n": list(self.n),
            "ratio": finite_or_none(self.ratio),
            "ci": None if self.ci is None else [finite_or_none(bound) for bound in self.ci],
            "ci_level": self.ci_level,
            "test": self.test,
            "alternative": self.alternative,
            "p_shown": finite_or_none(self.p_shown),
            "p": finite_or_none(self.p),
            "p_improved": finite_or_none(self.p_improved),
            "brunner_munzel_p": finite_or_none(self.brunner_munzel_p),
            "welch_log": self.welch,
            "mde": finite_or_none(self.mde),
            "sessions_needed": self.sessions_needed,
            "pass_rate": self.pass_rate.to_json(),
            "error_rate": None if self.error_rate is None else self.error_rate.to_json(),
            "tolerance": self.tolerance,
            "margin": self.margin,
            "alpha": self.alpha,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "refused": list(self.refused),
            "line": self.line,
        } | ({} if self.turn_pairs is None else {"turn_pairs": self.turn_pairs.to_json()})

    @classmethod
    def from_json(cls, data: JSON) -> Comparison:
        """Read a comparison as any version wrote it: files from before the error-rate check
        have no ``error_rate``, from before refusals no ``refused``, from before replays no
        ``turn_pairs``."""
        ci = data.get("ci")
        welch = data.get("welch_log")
        error_rate = data.get("error_rate")
        needed = data.get("sessions_needed")
        turn_pairs = data.get("turn_pairs")
        return cls(
            metric=str(data["metric"]),
            baseline=str(data["baseline"]),
            candidate=str(data["candidate"]),
            against=str(data["against"]),
            estimator=data.get("estimator"),
            paired=bool(data["paired"]),
            n=_int_pair(data["n"]),
            ratio=_opt_float(data.get("ratio")),
            # A bound written as null was not finite.
            ci=None if ci is None else (_nan_float(ci[0]), _nan_float(ci[1])),
            ci_level=float(data["ci_level"]),
            test=str(data["test"]),
            p=_opt_float(data.get("p")),
            p_improved=_opt_float(data.get("p_improved")),
            brunner_munzel_p=_opt_float(data.get("brunner_munzel_p")),
            welch=None if welch is None else {str(k): float(v) for k, v in welch.items()},
            mde=_opt_float(data.get("mde")),
            sessions_needed=None if needed is None else int(needed),
            pass_rate=RateCheck.from_json(data["pass_rate"]),
            error_rate=None if error_rate is None else RateCheck.from_json(error_rate),
            tolerance=float(data["tolerance"]),
            margin=float(data["margin"]),
            alpha=float(data["alpha"]),
            verdict=data["verdict"],
            line=str(data["line"]),
            reasons=tuple(str(r) for r in data["reasons"]),
            warnings=tuple(str(w) for w in data["warnings"]),
            refused=tuple(str(r) for r in data.get("refused") or ()),
            turn_pairs=None if turn_pairs is None else TurnPairs.from_json(turn_pairs),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityLevel:
    """One concurrency level of a capacity sweep (``agentspeed replay``): its sessions' speed
    and how many it served per hour. Percentiles interpolate linearly between order statistics
    (``analysis.metrics.percentile``); ``None`` when no session (turn) had the value."""

    concurrency: int
    #: Sessions replayed at this level (its arm is ``c<concurrency>``).
    sessions: int
    #: Wall time from the level's first session's start to its last one's end.
    elapsed_s: float
    #: Session throughput (output tokens per second of session time), over its sessions.
    throughput_p10: float | None
    throughput_p50: float | None
    throughput_p90: float | None
    #: Time to first token over every answered turn of the level.
    ttft_p50: float | None
    ttft_p90: float | None
    #: ``sessions / elapsed_s * 3600``.
    sessions_per_hour: float
    #: Sessions answered in full whose recording passed its task, per hour.
    tasks_per_hour: float
    #: Sessions that ended in an endpoint error.
    errors: int

    def to_json(self) -> JSON:
        return {
            "concurrency": self.concurrency,
            "sessions": self.sessions,
            "elapsed_s": self.elapsed_s,
            "throughput_p10": self.throughput_p10,
            "throughput_p50": self.throughput_p50,
            "throughput_p90": self.throughput_p90,
            "ttft_p50": self.ttft_p50,
            "ttft_p90": self.ttft_p90,
            "sessions_per_hour": self.sessions_per_hour,
            "tasks_per_hour": self.tasks_per_hour,
            "errors": self.errors,
        }

    @classmethod
    def from_json(cls, data: JSON) -> CapacityLevel:
        return cls(
            concurrency=int(data["concurrency"]),
            sessions=int(data["sessions"]),
            elapsed_s=float(data["elapsed_s"]),
            throughput_p10=_opt_float(data.get("throughput_p10")),
            throughput_p50=_opt_float(data.get("throughput_p50")),
            throughput_p90=_opt_float(data.get("throughput_p90")),
            ttft_p50=_opt_float(data.get("ttft_p50")),
            ttft_p90=_opt_float(data.get("ttft_p90")),
            sessions_per_hour=float(data["sessions_per_hour"]),
            tasks_per_hour=float(data["tasks_per_hour"]),
            errors=int(data["errors"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Capacity:
    """A capacity sweep's result: a row per concurrency level, lowest first, and the knee."""

    levels: tuple[CapacityLevel, ...]
    #: The largest level whose throughput P50 is at least ``1 - drop`` times the lowest
    #: level's, when a later level falls below that; ``None`` when none falls.
    knee: int | None
    #: The drop in throughput P50 that marks the knee (0.1: more than 10%).
    drop: float = 0.1
    #: How many times the recorded gaps were slept (1: as recorded, 0: none).
    gaps: float = 1.0

    def to_json(self) -> JSON:
        return {
            "levels": [level.to_json() for level in self.levels],
            "knee": self.knee,
            "drop": self.drop,
            "gaps": self.gaps,
        }

    @classmethod
    def from_json(cls, data: JSON) -> Capacity:
        return cls(
            levels=tuple(CapacityLevel.from_json(level) for level in data["levels"]),
            knee=None if data.get("knee") is None else int(data["knee"]),
            drop=float(data.get("drop", 0.1)),
            gaps=float(data.get("gaps", 1.0)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """Everything one pytest invocation measured."""

    created_at: str
    agentspeed_version: str
    environment: JSON
    config: JSON
    endpoints: tuple[EndpointRecord, ...]
    sessions: tuple[SessionRecord, ...]
    summary: JSON = field(default_factory=dict)
    comparisons: tuple[Comparison, ...] = ()
    schema: str = SCHEMA
    #: A capacity sweep's levels and knee (``agentspeed replay``); ``None`` for other runs.
    capacity: Capacity | None = None

    def to_json(self) -> JSON:
        # Written only when present, so every other run file keeps its shape.
        extra: JSON = {} if self.capacity is None else {"capacity": self.capacity.to_json()}
        return {
            "schema": self.schema,
            "created_at": self.created_at,
            "agentspeed_version": self.agentspeed_version,
            "environment": dict(self.environment),
            "config": dict(self.config),
            "endpoints": [e.to_json() for e in self.endpoints],
            "sessions": [s.to_json() for s in self.sessions],
            "summary": dict(self.summary),
            "comparisons": [c.to_json() for c in self.comparisons],
        } | extra

    @classmethod
    def from_json(cls, data: Any, *, source: str = "run file") -> RunRecord:
        """Build a record from parsed JSON.

        :raises RunFileError: for another major schema version or a malformed document.
        """
        if not isinstance(data, dict):
            raise RunFileError(f"{source}: not an agentspeed run file (top level is not an object)")
        schema = data.get("schema")
        if not isinstance(schema, str) or not schema.startswith("agentspeed.run/"):
            raise RunFileError(f"{source}: not an agentspeed run file (no 'schema' field)")
        major = schema.removeprefix("agentspeed.run/").split(".")[0]
        if major != SCHEMA.rsplit("/", 1)[1]:
            raise RunFileError(
                f"{source}: schema {schema!r} is not supported by this version "
                f"(it reads {SCHEMA}.x); upgrade pytest-agentspeed"
            )
        try:
            return cls(
                schema=schema,
                created_at=str(data["created_at"]),
                agentspeed_version=str(data["agentspeed_version"]),
                environment=dict(data.get("environment") or {}),
                config=dict(data.get("config") or {}),
                endpoints=tuple(EndpointRecord.from_json(e) for e in data.get("endpoints", [])),
                sessions=tuple(SessionRecord.from_json(s) for s in data.get("sessions", [])),
                summary=dict(data.get("summary") or {}),
                comparisons=tuple(Comparison.from_json(c) for c in data.get("comparisons") or ()),
                capacity=(
                    None if data.get("capacity") is None else Capacity.from_json(data["capacity"])
                ),
            )
        except KeyError as exc:
            raise RunFileError(f"{source}: malformed run file (missing key {exc})") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise RunFileError(
                f"{source}: malformed run file ({type(exc).__name__}: {exc})"
            ) from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _nan_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _int_pair(value: Any) -> tuple[int, int]:
    first, second = value
    return int(first), int(second)


def finite_or_none(value: float | None) -> float | None:
    """``value``, or ``None`` for nan and infinities: how a run file holds an undefined
    statistic (JSON has no nan or infinity)."""
    return None if value is None or not math.isfinite(value) else value
