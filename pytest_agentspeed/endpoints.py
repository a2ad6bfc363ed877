"""Endpoint specs: which LLM API a session talks to.

Accepted forms (DESIGN section 5)::

    sim:PROFILE[?api=anthropic|openai|responses&time_scale=F&seed=N&jitter=0|1&faults=R&fault_KIND=R
                &speed=F&paths=fixed|varied]
    anthropic:MODEL[@BASE_URL]
    openai:MODEL@BASE_URL
    openai-responses:MODEL@BASE_URL   (the Responses API, POST /v1/responses)
    NAME            (an endpoint defined under [tool.agentspeed.endpoints.NAME])

Parsing is pure and happens when options are read, so a typo is a usage error before anything
runs. API keys are looked up only when a session is about to use the endpoint
(:func:`api_key`), so a configured endpoint never bothers a pytest run that collects no task.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.simulator import (
    FAULT_KINDS,
    MAX_SPEED,
    PATHS,
    Paths,
    fault_rates,
    profile_names,
)

#: The wire an endpoint speaks: Anthropic Messages, OpenAI Chat Completions, or the OpenAI
#: Responses API (``openai-responses:`` specs, ``api = "responses"``).
Api = Literal["anthropic", "openai", "responses"]
APIS: tuple[Api, ...] = ("anthropic", "openai", "responses")

#: Latency profiles of the simulated endpoint.
SIM_PROFILES = profile_names()
_SIM_OPTIONS = (
    "api",
    "time_scale",
    "seed",
    "jitter",
    "faults",
    *(f"fault_{k}" for k in FAULT_KINDS),
    "speed",
    "paths",
)
_FORMS = (
    "sim:PROFILE[?options], anthropic:MODEL[@BASE_URL], openai:MODEL@BASE_URL, "
    "openai-responses:MODEL@BASE_URL or a named endpoint"
)
ANTHROPIC_KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
OPENAI_KEY_VARS = ("OPENAI_API_KEY",)
DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Request options of a named endpoint, with the type each takes.
ENDPOINT_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "max_tokens": int,
    "thinking_budget": int,
    "thinking": str,
    "headers": dict,
    "extra_body": dict,
    "timeout_s": (int, float),
    "auth": str,
}
_TABLE_KEYS = ("api", "model", "base_url", "api_key_env", "label", "spec", *ENDPOINT_OPTIONS)


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


def parse_endpoint(spec: str, named: Mapping[str, Endpoint] | None = None) -> Endpoint:
    """Parse one endpoint spec, or look up a named endpoint.

    :raises ConfigError: naming the spec and the accepted forms.
    """
    spec = spec.strip()
    if named and spec in named:
        return named[spec]
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        known = f" (named endpoints: {', '.join(sorted(named))})" if named else ""
        raise ConfigError(f"unknown endpoint {spec!r}{known}; accepted forms: {_FORMS}")
    if kind == "sim":
        return _parse_sim(spec, rest)
    if kind == "anthropic":
        return _parse_anthropic(spec, rest)
    if kind == "openai":
        return _parse_openai(spec, rest)
    if kind == "openai-responses":
        return _parse_openai(spec, rest, api="responses")
    raise ConfigError(f"unknown endpoint {spec!r}; accepted forms: {_FORMS}")


def is_spec_or_name(value: str) -> bool:
    """Whether ``value`` can be an endpoint: a valid spec, or something a name could be.

    Names are checked against the configuration later; specs are checked here.
    """
    if ":" not in value:
        return bool(NAME_RE.match(value))
    parse_endpoint(value)
    return True


def named_endpoint(name: str, table: Mapping[str, Any], source: str) -> Endpoint:
    """An endpoint defined under ``[tool.agentspeed.endpoints.NAME]``.

    :param source: where the table came from, for error messages.
    :raises ConfigError: naming the key at fault.
    """
    where = f"{source}: [tool.agentspeed.endpoints.{name}]"
    if not NAME_RE.match(name):
        raise ConfigError(f"{where}: endpoint names use letters, digits, '.', '_' and '-'")
    for key in table:
        if key not in _TABLE_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}; accepted: {', '.join(_TABLE_KEYS)}")

    def text(key: str, default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string")
        return value

    options: dict[str, Any] = {}
    for key, kind in ENDPOINT_OPTIONS.items():
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ConfigError(f"{where}: {key} has the wrong type ({type(value).__name__})")
            options[key] = value
    if options.get("thinking") not in (None, "adaptive", "enabled", "disabled"):
        raise ConfigError(f"{where}: thinking must be adaptive, enabled or disabled")
    if options.get("auth") not in (None, "bearer", "x-api-key"):
        raise ConfigError(f"{where}: auth must be bearer or x-api-key")

    spec = text("spec")
    if spec is not None:
        base = parse_endpoint(spec)
    else:
        api = text("api")
        model = text("model")
        if api not in APIS or not model:
            raise ConfigError(
                f'{where}: give spec = "...", or api = "anthropic" | "openai" | "responses" '
                "and model"
            )
        base_url = text("base_url")
        if api != "anthropic" and not base_url:
            raise ConfigError(f'{where}: base_url is required for api = "{api}"')
        prefix = "openai-responses" if api == "responses" else api
        base = parse_endpoint(f"{prefix}:{model}" + (f"@{base_url}" if base_url else ""))
    key_env = text("api_key_env")
    return replace(
        base,
        name=name,
        label=text("label"),
        options=options,
        key_vars=(key_env,) if key_env else base.key_vars,
        key_required=True if key_env else base.key_required,
    )


def unique_names(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Give repeated names a ``#2``, ``#3`` suffix so test ids and arms stay distinct."""
    seen: dict[str, int] = {}
    out = []
    for ep in endpoints:
        n = seen.get(ep.name, 0) + 1
        seen[ep.name] = n
        out.append(ep if n == 1 else replace(ep, name=f"{ep.name}#{n}"))
    return out


def api_key(endpoint: Endpoint, environ: Mapping[str, str] | None = None) -> str | None:
    """The endpoint's key, from the first of its variables that is set.

    ``None`` when no variable is set and the endpoint does not need one.

    :raises ConfigError: naming the variables when a required key is not set.
    """
    env = os.environ if environ is None else environ
    for var in endpoint.key_vars:
        value = env.get(var)
        if value:
            return value
    if not endpoint.key_vars:
        return "sim"
    if not endpoint.key_required:
        return None
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
    if api not in APIS:
        raise ConfigError(f"endpoint {spec!r}: api={api!r}; accepted: {', '.join(APIS)}")
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
    try:
        faults = fault_rates(
            _rate(spec, "faults", options["faults"]) if "faults" in options else None,
            {
                key[6:]: _rate(spec, key, value)
                for key, value in options.items()
                if key.startswith("fault_")
            },
        )
    except ValueError as exc:
        raise ConfigError(f"endpoint {spec!r}: {exc}") from None
    speed = _speed(spec, options.get("speed", "1"))
    paths = next((p for p in PATHS if p == options.get("paths", "fixed")), None)
    if paths is None:
        raise ConfigError(
            f"endpoint {spec!r}: paths={options['paths']!r}; accepted: {', '.join(PATHS)}"
        )
    return Endpoint(
        name=spec,
        api=api,
        model=f"sim-{profile}",
        sim=SimOptions(
            profile=profile,
            time_scale=time_scale,
            seed=seed,
            jitter=jitter == "1",
            faults=faults,
            api_given="api" in options,
            speed=speed,
            paths=paths,
        ),
    )


def _rate(spec: str, key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"endpoint {spec!r}: {key} must be a rate between 0 and 1") from None


def _parse_anthropic(spec: str, rest: str) -> Endpoint:
    model, at, base_url = rest.partition("@")
    if at:
        _check_base_url("anthropic", model, base_url, "anthropic:MODEL[@BASE_URL]")
    if not model or not re.fullmatch(r"[\w.:/-]+", model):
        raise ConfigError(
            f"endpoint {_shown('anthropic', model, at, base_url)!r}: "
            f"{'the model is missing' if not model else f'bad model name {model!r}'}; "
            "expected anthropic:MODEL[@BASE_URL] (e.g. anthropic:claude-sonnet-4-5)"
        )
    if not at:
        base_url = os.environ.get("ANTHROPIC_BASE_URL", DEFAULT_ANTHROPIC_URL)
    return Endpoint(
        name=f"anthropic:{model}",
        api="anthropic",
        model=model,
        base_url=base_url,
        key_vars=ANTHROPIC_KEY_VARS,
    )


#: What an ``openai:`` spec looks like, for its error messages.
_OPENAI_FORM = (
    "openai:MODEL@BASE_URL, the base URL with /v1 as the OpenAI SDK takes it "
    "(e.g. openai:qwen3@http://127.0.0.1:8000/v1)"
)


def _parse_openai(spec: str, rest: str, api: Api = "openai") -> Endpoint:
    """An ``openai:`` (Chat Completions) or ``openai-responses:`` (Responses API) spec: the same
    form, the same key variable, another path below the base URL."""
    kind = "openai-responses" if api == "responses" else "openai"
    model, at, base_url = rest.partition("@")
    if not at:
        raise ConfigError(
            f"endpoint {spec!r}: the base URL is missing; "
            f"expected {_OPENAI_FORM.replace('openai:', f'{kind}:')}"
        )
    form = _OPENAI_FORM.replace("openai:", f"{kind}:")
    _check_base_url(kind, model, base_url, form)
    if not model:
        raise ConfigError(
            f"endpoint {_shown(kind, model, at, base_url)!r}: the model is missing; expected {form}"
        )
    return Endpoint(
        name=f"{kind}:{model}",
        api=api,
        model=model,
        base_url=base_url,
        key_vars=OPENAI_KEY_VARS,
        key_required=False,
    )


def _check_base_url(kind: str, model: str, base_url: str, form: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint {_shown(kind, model, '@', base_url)!r}: the base URL must be "
            f"http(s)://HOST[:PORT][/PATH]; expected {form}"
        )


def _shown(kind: str, model: str, at: str, base_url: str) -> str:
    """A spec as an error may echo it: a base URL's credentials and query (which may carry
    a key) left out."""
    return f"{kind}:{model}{at}{strip_url_secrets(base_url) if at else ''}"


def _speed(spec: str, value: str) -> float:
    """``speed=F``: a multiple of the profile's speed, above 0 and at most :data:`MAX_SPEED`."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= MAX_SPEED:
        raise ConfigError(
            f"endpoint {spec!r}: speed must be a number above 0 and at most {MAX_SPEED:g} "
            f"(0.9: 10% slower than the profile), got {value!r}"
        )
    return number


def _positive_float(spec: str, key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ConfigError(f"endpoint {spec!r}: {key} must be a positive number, got {value!r}")
    return number
