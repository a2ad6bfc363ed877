"""Agents defined in ``[tool.agentspeed.agents.NAME]``: tables read into
:class:`~pytest_agentspeed.agents.external.AgentCommand`\\ s and registered by name.

A table (``docs/agents.md``)::

    [tool.agentspeed.agents.my-agent]
    command = ["python", "{project}/agent.py", "{instruction_file}"]   # required
    api = "openai"                                                      # required
    base_url_env = "OPENAI_BASE_URL"        # or a list; default by api
    key_env = ["OPENAI_API_KEY"]            # or a string; default by api
    env = { MY_FLAG = "1", HTTP_PROXY = "" }  # "" removes a variable
    timeout_s = 600
    sandbox = "bwrap"
    install = "pip install my-agent"        # named when the program is missing
    description = "my agent"                # for --help

Every mistake is a :class:`~pytest_agentspeed.errors.ConfigError` naming the file, the table,
the key and what is accepted, as for the other ``[tool.agentspeed]`` values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from pytest_agentspeed.agents.external import (
    APIS,
    PLACEHOLDER_RE,
    PLACEHOLDERS,
    SANDBOXES,
    AgentCommand,
    Api,
    Sandbox,
    default_env_names,
)
from pytest_agentspeed.errors import ConfigError

__all__ = ["agent_from_table", "parse_sandbox"]

_KEYS = (
    "command",
    "api",
    "base_url_env",
    "key_env",
    "env",
    "timeout_s",
    "sandbox",
    "install",
    "description",
)
_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_sandbox(value: Any) -> Sandbox:
    """``"bwrap"``: the only confinement there is."""
    if value not in SANDBOXES:
        raise ConfigError(f"unknown sandbox {value!r}; accepted: {', '.join(SANDBOXES)}")
    return cast(Sandbox, value)


def agent_from_table(
    name: str, table: Any, *, path: Path | None, sandbox: Sandbox | None = None
) -> AgentCommand:
    """The agent ``[tool.agentspeed.agents.NAME]`` of ``path`` defines.

    :param sandbox: ``[tool.agentspeed] sandbox``, which confines every external agent; the
        table's own ``sandbox`` confines this one.
    :raises ConfigError: for a bad name, a missing or unknown key, or a bad value.
    """
    where = f"{path}: [tool.agentspeed.agents.{name}]"
    if not _AGENT_NAME.match(name):
        raise ConfigError(
            f"{where}: agent names use letters, digits, '.', '_' and '-', "
            "and start with a letter or digit"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    for key in table:
        if key not in _KEYS:
            raise ConfigError(f"{where} unknown key {key!r}; accepted: {', '.join(_KEYS)}")
    for key in ("command", "api"):
        if key not in table:
            raise ConfigError(f"{where} {key}: required")

    def parsed(key: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        try:
            return parse(table.get(key, default))
        except (ConfigError, ValueError) as exc:
            raise ConfigError(f"{where} {key}: {exc}") from None

    api: Api = parsed("api", _api)
    default_base_url_env, default_key_env = default_env_names(api)
    timeout_s: float | None = parsed("timeout_s", _timeout)
    own_sandbox: Sandbox | None = parsed("sandbox", _optional(parse_sandbox))
    return AgentCommand(
        name=name,
        command=parsed("command", _command),
        api=api,
        base_url_env=parsed("base_url_env", _names, list(default_base_url_env)),
        key_env=parsed("key_env", _names, list(default_key_env)),
        env=parsed("env", _env, {}),
        timeout_s=timeout_s,
        sandbox=own_sandbox or sandbox,
        install=parsed("install", _optional(_string)),
        description=parsed("description", _optional(_string)),
        project_dir=None if path is None else path.parent,
    )


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else parse(value)


def _api(value: Any) -> Api:
    if value not in APIS:
        raise ValueError(f"expected one of {', '.join(map(repr, APIS))}, got {value!r}")
    return cast(Api, value)


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _command(value: Any) -> tuple[str, ...]:
    accepted = "expected a non-empty list of strings, the program first"
    if not isinstance(value, list) or not value:
        raise ValueError(f'{accepted}, like ["my-agent", "{{instruction}}"]; got {value!r}')
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"{accepted}; got {item!r} in it")
        _check_placeholders(item, "command")
    if not value[0].strip():
        raise ValueError(f"{accepted}; the program is empty")
    return tuple(value)


def _names(value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(
        isinstance(n, str) and _ENV_NAME.match(n) for n in names
    ):
        raise ValueError(
            "expected an environment variable name or a list of them "
            f'(like "OPENAI_API_KEY" or ["A", "B"]), got {value!r}'
        )
    return tuple(names)


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f'expected a table of strings, like {{ MY_FLAG = "1" }}; got {value!r}')
    out: dict[str, str] = {}
    for name, item in cast(Mapping[str, Any], value).items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if not isinstance(item, str):
            raise ValueError(f'{name}: expected a string ("" removes the variable), got {item!r}')
        _check_placeholders(item, f"env {name}")
        out[name] = item
    return out


def _check_placeholders(text: str, where: str) -> None:
    for match in PLACEHOLDER_RE.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {match.group(0)} in {where}; accepted: "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            )
