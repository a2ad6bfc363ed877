"""What a simulator server is started with: its mounts (one per simulated endpoint) and the
task directories it knows. Plain data, light to import: the plugin builds these before it
knows whether a server is needed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: How a simulated endpoint's model walks through a task: ``fixed`` plays the task's plan as it
#: is for every session; ``varied`` gives each session its own path (see
#: :mod:`~pytest_agentspeed.simulator.paths`).
Paths = Literal["fixed", "varied"]
PATHS: tuple[Paths, ...] = ("fixed", "varied")
#: The range ``speed`` may take (exclusive of 0).
MAX_SPEED = 100.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MountConfig:
    """One simulated endpoint served by the server."""

    #: URL path segment (``/e/<key>``); empty for the root mount.
    key: str
    profile: str
    time_scale: float = 1.0
    seed: int = 1
    jitter: bool = True
    #: Fault rates per kind (see :mod:`~pytest_agentspeed.simulator.faults`).
    faults: Mapping[str, float] = field(default_factory=dict)
    #: The model side (queue, TTFT floor, prefill, decode, stalls) runs at this multiple of the
    #: profile's speed: each of its delays is divided by it (0.9: 10% slower). The network
    #: round trip is not the model's and keeps its time.
    speed: float = 1.0
    #: ``fixed``: every session plays the task's plan; ``varied``: each its own path.
    paths: Paths = "fixed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """What the server process is started with."""

    mounts: tuple[MountConfig, ...]
    task_dirs: tuple[str, ...] = ()
    #: The schedule log keeps this many most recent responses.
    schedule_limit: int = 50_000
    #: Log each request's ``context_sha256`` (tests that prove what a replay sent): hashing a
    #: long conversation costs milliseconds on the event loop, so it is off unless asked for.
    log_context: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "mounts": [asdict(m) for m in self.mounts],
            "task_dirs": list(self.task_dirs),
            "schedule_limit": self.schedule_limit,
            "log_context": self.log_context,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerConfig:
        return cls(
            mounts=tuple(MountConfig(**m) for m in data["mounts"]),
            task_dirs=tuple(data.get("task_dirs", ())),
            schedule_limit=int(data.get("schedule_limit", 50_000)),
            log_context=bool(data.get("log_context", False)),
        )
