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
from dataclasses import replace
from typing import Any

from pytest_agentspeed.endpoints.kinds import PREFIX_RE, endpoint_kind, is_built_in, kind_forms
from pytest_agentspeed.endpoints.model import (
    ANTHROPIC_KEY_VARS,
    APIS,
    DEFAULT_ANTHROPIC_URL,
    OPENAI_KEY_VARS,
    SIM_OPTIONS,
    SIM_PROFILES,
    Api,
    Endpoint,
    SimOptions,
    strip_url_secrets,
)
from pytest_agentspeed.errors import ConfigError

__all__ = [
    "ANTHROPIC_KEY_VARS",
    "APIS",
    "DEFAULT_ANTHROPIC_URL",
    "ENDPOINT_OPTIONS",
    "NAME_RE",
    "OPENAI_KEY_VARS",
    "SIM_OPTIONS",
    "SIM_PROFILES",
    "Api",
    "Endpoint",
    "SimOptions",
    "api_key",
    "is_spec_or_name",
    "named_endpoint",
    "parse_endpoint",
    "redact",
    "strip_url_secrets",
    "unique_names",
]

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


def parse_endpoint(spec: str, named: Mapping[str, Endpoint] | None = None) -> Endpoint:
    """Parse one endpoint spec, or look up a named endpoint.

    :raises ConfigError: naming the spec and the accepted forms.
    """
    spec = spec.strip()
    if named and spec in named:
        return named[spec]
    prefix, sep, rest = spec.partition(":")
    kind = endpoint_kind(prefix) if sep and rest else None
    if kind is None:
        known = f" (named endpoints: {', '.join(sorted(named))})" if named else ""
        raise ConfigError(f"unknown endpoint {spec!r}{known}; accepted forms: {_forms()}")
    endpoint = kind.parse(spec, rest)
    if is_built_in(kind):
        return endpoint
    if not isinstance(endpoint, Endpoint):
        raise ConfigError(
            f"endpoint {spec!r}: the {prefix!r} kind's parser returned {endpoint!r}, "
            "not an Endpoint"
        )
    return replace(endpoint, kind=prefix)


def _forms() -> str:
    return f"{kind_forms()} or a named endpoint"


def is_spec_or_name(value: str) -> bool:
    """Whether ``value`` can be an endpoint: a valid spec, or something a name could be.

    Names are checked against the configuration later; specs of the built-in kinds are checked
    here, and so are those of kinds known by now. A spec of another kind is checked when the
    settings are read: pytest parses its command line before it loads the ``conftest.py``
    files, and before any plugin's ``pytest_agentspeed_endpoint_kinds`` is called.
    """
    if ":" not in value:
        return bool(NAME_RE.match(value))
    prefix = value.strip().partition(":")[0]
    if endpoint_kind(prefix) is None and PREFIX_RE.match(prefix):
        return True
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
