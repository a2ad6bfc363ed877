"""What a run measured: frozen records and their JSON form (the run file, DESIGN section 9).

The JSON written by :meth:`RunRecord.to_json` is the contract other tools read; its shape is
versioned by ``schema`` (``agentspeed.run/1``). Readers accept any ``agentspeed.run/1.x`` and
refuse another major version with a clear message.
"""

from __future__ import annotations

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
        }

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
    #: Agent time: first turn start to last turn end.
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
        }

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
    comparisons: tuple[JSON, ...] = ()
    schema: str = SCHEMA

    def to_json(self) -> JSON:
        return {
            "schema": self.schema,
            "created_at": self.created_at,
            "agentspeed_version": self.agentspeed_version,
            "environment": dict(self.environment),
            "config": dict(self.config),
            "endpoints": [e.to_json() for e in self.endpoints],
            "sessions": [s.to_json() for s in self.sessions],
            "summary": dict(self.summary),
            "comparisons": list(self.comparisons),
        }

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
                comparisons=tuple(data.get("comparisons") or ()),
            )
        except KeyError as exc:
            raise RunFileError(f"{source}: malformed run file (missing key {exc})") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise RunFileError(
                f"{source}: malformed run file ({type(exc).__name__}: {exc})"
            ) from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
