"""Endpoint specs: which LLM API a session talks to.

Accepted forms (DESIGN section 5)::

    sim:PROFILE[?api=anthropic&time_scale=F&seed=N&jitter=0|1]
    anthropic:MODEL[@BASE_URL]

Parsing is pure and happens when options are read, so a typo is a usage error before anything
runs. API keys are looked up only when a session is about to use the endpoint
(:func:`api_key`), so a configured endpoint never bothers a pytest run that collects no task.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.simulator.profiles import PROFILES

Api = Literal["anthropic", "openai"]

#: Latency profiles of the simulated endpoint.
SIM_PROFILES = tuple(PROFILES)
_SIM_OPTIONS = ("api", "time_scale", "seed", "jitter")
_FORMS = "sim:PROFILE[?options] or anthropic:MODEL[@BASE_URL]"
ANTHROPIC_KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
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

    @property
    def simulated(self) -> bool:
        return self.sim is not None

    def with_time_scale(self, default: float) -> Endpoint:
        """Fill in the run's time scale where the spec did not set one."""
        if self.sim is None or self.sim.time_scale is not None:
            return self
        return replace(self, sim=replace(self.sim, time_scale=default))

    def public_base_url(self) -> str | None:
        """The base URL without credentials or query, safe to write down."""
        return None if self.base_url is None else strip_url_secrets(self.base_url)


def parse_endpoint(spec: str) -> Endpoint:
    """Parse one endpoint spec.

    :raises ConfigError: naming the spec and the accepted forms.
    """
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ConfigError(f"unknown endpoint spec {spec!r}; accepted forms: {_FORMS}")
    if kind == "sim":
        return _parse_sim(spec, rest)
    if kind == "anthropic":
        return _parse_anthropic(spec, rest)
    if kind == "openai":
        raise ConfigError(
            f"endpoint {spec!r}: the OpenAI-compatible wire is not supported by this version yet; "
            f"accepted forms: {_FORMS}"
        )
    raise ConfigError(f"unknown endpoint spec {spec!r}; accepted forms: {_FORMS}")


def unique_names(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Give repeated names a ``#2``, ``#3`` suffix so test ids and arms stay distinct."""
    seen: dict[str, int] = {}
    out = []
    for ep in endpoints:
        n = seen.get(ep.name, 0) + 1
        seen[ep.name] = n
        out.append(ep if n == 1 else replace(ep, name=f"{ep.name}#{n}"))
    return out


def api_key(endpoint: Endpoint, environ: dict[str, str] | None = None) -> str:
    """The endpoint's key, from the first of its variables that is set.

    :raises ConfigError: naming the variables when none is set.
    """
    env = os.environ if environ is None else environ
    for var in endpoint.key_vars:
        value = env.get(var)
        if value:
            return value
    if not endpoint.key_vars:
        return "sim"
    raise ConfigError(
        f"endpoint {endpoint.name!r} needs an API key: set {' or '.join(endpoint.key_vars)}"
    )


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ``***`` (for error messages from endpoints)."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def strip_url_secrets(url: str) -> str:
    """Drop user info, query and fragment from a URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _parse_sim(spec: str, rest: str) -> Endpoint:
    profile, _, query = rest.partition("?")
    if profile not in SIM_PROFILES:
        raise ConfigError(
            f"endpoint {spec!r}: unknown simulator profile {profile!r}; "
            f"accepted: {', '.join(SIM_PROFILES)}"
        )
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in _SIM_OPTIONS:
            raise ConfigError(
                f"endpoint {spec!r}: unknown option {key!r}; accepted: {', '.join(_SIM_OPTIONS)}"
            )
        options[key] = value
    api = options.get("api", "anthropic")
    if api != "anthropic":
        raise ConfigError(
            f"endpoint {spec!r}: api={api!r} is not supported by this version yet; accepted: "
            "anthropic"
        )
    time_scale = None
    if "time_scale" in options:
        time_scale = _positive_float(spec, "time_scale", options["time_scale"])
    seed = 1
    if "seed" in options:
        try:
            seed = int(options["seed"])
        except ValueError:
            raise ConfigError(f"endpoint {spec!r}: seed must be an integer") from None
    jitter = options.get("jitter", "1")
    if jitter not in ("0", "1"):
        raise ConfigError(f"endpoint {spec!r}: jitter must be 0 or 1")
    return Endpoint(
        name=spec,
        api="anthropic",
        model=f"sim-{profile}",
        sim=SimOptions(profile=profile, time_scale=time_scale, seed=seed, jitter=jitter == "1"),
    )


def _parse_anthropic(spec: str, rest: str) -> Endpoint:
    model, at, base_url = rest.partition("@")
    if not model or not re.fullmatch(r"[\w.:/-]+", model):
        raise ConfigError(f"endpoint {spec!r}: expected anthropic:MODEL[@BASE_URL]")
    if at:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"endpoint {spec.split('@')[0]}@...: base URL must be http(s)://HOST[:PORT][/PATH]"
            )
    else:
        base_url = os.environ.get("ANTHROPIC_BASE_URL", DEFAULT_ANTHROPIC_URL)
    return Endpoint(
        name=f"anthropic:{model}",
        api="anthropic",
        model=model,
        base_url=base_url,
        key_vars=ANTHROPIC_KEY_VARS,
    )


def _positive_float(spec: str, key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ConfigError(f"endpoint {spec!r}: {key} must be a positive number, got {value!r}")
    return number
