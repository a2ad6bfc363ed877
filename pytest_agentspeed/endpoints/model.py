"""What an endpoint is: its wire, its model, where it is, how a simulated one behaves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pytest_agentspeed.simulator import FAULT_KINDS, Paths, profile_names

#: The wire an endpoint speaks: Anthropic Messages, OpenAI Chat Completions, or the OpenAI
#: Responses API (``openai-responses:`` specs, ``api = "responses"``).
Api = Literal["anthropic", "openai", "responses"]
APIS: tuple[Api, ...] = ("anthropic", "openai", "responses")

#: Latency profiles of the simulated endpoint.
SIM_PROFILES = profile_names()
SIM_OPTIONS = (
    "api",
    "time_scale",
    "seed",
    "jitter",
    "faults",
    *(f"fault_{k}" for k in FAULT_KINDS),
    "speed",
    "paths",
)
ANTHROPIC_KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
OPENAI_KEY_VARS = ("OPENAI_API_KEY",)
DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    """How a simulated endpoint behaves."""

    profile: str
    #: Multiplies every simulated delay; ``None`` means "use the run's --agentspeed-time-scale".
    time_scale: float | None = None
    seed: int = 1
    #: False switches off every random draw of the latency model (medians are used).
    jitter: bool = True
    #: Fault rates per kind (empty: no faults).
    faults: Mapping[str, float] = field(default_factory=dict)
    #: The spec named its wire (``?api=``); otherwise the wire follows the agent's
    #: (:meth:`Endpoint.speaking`), as the simulated endpoint serves every wire.
    api_given: bool = False
    #: The model side runs at this multiple of the profile's speed (0.9: 10% slower).
    speed: float = 1.0
    #: ``fixed``: every session plays the task's plan; ``varied``: each its own path.
    paths: Paths = "fixed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """An LLM API a session talks to. Never holds a key."""

    #: Name in test ids, tables and run files.
    name: str
    api: Api
    model: str
    #: Base URL; ``None`` for simulated endpoints until their server is running.
    base_url: str | None = None
    sim: SimOptions | None = None
    #: Environment variables that may hold the key, in order of preference.
    key_vars: tuple[str, ...] = field(default=())
    #: False for servers that take no key (an OpenAI-compatible server on localhost).
    key_required: bool = True
    #: Human-readable name shown next to ``name`` in reports.
    label: str | None = None
    #: Request options (see :data:`ENDPOINT_OPTIONS`).
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The prefix of the plugin's endpoint kind that made it (:mod:`.kinds`); ``None`` for
    #: the kinds that come with the package.
    kind: str | None = None

    @property
    def simulated(self) -> bool:
        return self.sim is not None

    def with_time_scale(self, default: float) -> Endpoint:
        """Fill in the run's time scale where the spec did not set one."""
        if self.sim is None or self.sim.time_scale is not None:
            return self
        return replace(self, sim=replace(self.sim, time_scale=default))

    def speaking(self, api: Api | None) -> Endpoint:
        """This endpoint on the wire ``api`` of an external agent, when it is a simulated one
        whose spec left the wire open (``sim:standard``): the simulator serves every wire at
        the same address, so the default A/B works for any agent. Unchanged otherwise (a
        wire the spec or a real server fixes is checked against the agent's before the run)."""
        if api is None or self.sim is None or self.sim.api_given or api == self.api:
            return self
        return replace(self, api=api)

    def public_options(self) -> dict[str, Any]:
        """Simulator and request options, safe to write down: header values are left out
        (a gateway's own key often travels in one), their names kept."""
        out: dict[str, Any] = {}
        if self.sim is not None:
            out.update(
                time_scale=self.sim.time_scale,
                seed=self.sim.seed,
                jitter=self.sim.jitter,
                speed=self.sim.speed,
                paths=self.sim.paths,
            )
            if self.sim.faults:
                out["faults"] = dict(self.sim.faults)
        for key, value in self.options.items():
            out[key] = sorted(value) if key == "headers" else value
        return out

    def public_base_url(self) -> str | None:
        """The base URL without credentials or query, safe to write down."""
        return None if self.base_url is None else strip_url_secrets(self.base_url)


def strip_url_secrets(url: str) -> str:
    """Drop user info, query and fragment from a URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
