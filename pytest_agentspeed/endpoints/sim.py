"""The ``sim:PROFILE[?options]`` spec: a simulated endpoint and how it behaves."""

from __future__ import annotations

from urllib.parse import parse_qsl

from pytest_agentspeed.endpoints.model import APIS, SIM_OPTIONS, SIM_PROFILES, Endpoint, SimOptions
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.simulator import MAX_SPEED, PATHS, fault_rates


def parse_sim(spec: str, rest: str) -> Endpoint:
    profile, _, query = rest.partition("?")
    if profile not in SIM_PROFILES:
        raise ConfigError(
            f"endpoint {spec!r}: unknown simulator profile {profile!r}; "
            f"accepted: {', '.join(SIM_PROFILES)}"
        )
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in SIM_OPTIONS:
            raise ConfigError(
                f"endpoint {spec!r}: unknown option {key!r}; accepted: {', '.join(SIM_OPTIONS)}"
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
