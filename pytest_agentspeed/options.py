"""Options: declared once, read once into a frozen :class:`Settings`.

Each option can also be set in ``[tool.agentspeed]`` of the ``pyproject.toml`` next to pytest's
rootdir (or the one pytest took its configuration from); the command line wins. Values are
checked when read: a bad one is a usage error naming the option or key and the accepted forms.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_agentspeed.endpoints import Endpoint, parse_endpoint, unique_names
from pytest_agentspeed.errors import ConfigError

AGENT_NAMES = ("builtin", "oracle", "nop")
DEFAULT_ENDPOINT = "sim:standard"
DEFAULT_WINDOW_S = 1800.0

AddOption = Callable[..., Any]


def add_run_options(addoption: AddOption, prefix: str = "--agentspeed-") -> None:
    """Declare the run options (the plugin passes its option group's ``addoption``)."""
    addoption(
        f"{prefix}endpoint",
        action="append",
        dest="agentspeed_endpoint",
        metavar="SPEC",
        type=_arg(_endpoint_spec),
        help="Endpoint to run tasks on: sim:PROFILE[?options] or anthropic:MODEL[@BASE_URL]. "
        "Repeat for an A/B run; the first is the baseline. Default: sim:standard",
    )
    addoption(
        f"{prefix}repeat",
        dest="agentspeed_repeat",
        metavar="N",
        type=_arg(_positive_int),
        help="Sessions per task and endpoint (default 1)",
    )
    addoption(
        f"{prefix}agent",
        dest="agentspeed_agent",
        metavar="NAME",
        type=_arg(_agent_name),
        help="Agent: builtin (default), oracle (lays solution/ over the workspace) or nop",
    )
    addoption(
        f"{prefix}time-scale",
        dest="agentspeed_time_scale",
        metavar="F",
        type=_arg(_positive_float),
        help="Multiply every delay of simulated endpoints by F (default 1.0)",
    )
    addoption(
        f"{prefix}window",
        dest="agentspeed_window",
        metavar="SECONDS",
        type=_arg(_positive_float),
        help="Window for runs and tasks per window (default 1800)",
    )
    addoption(
        f"{prefix}json",
        dest="agentspeed_json",
        metavar="PATH",
        help="Write the run file (JSON, schema agentspeed.run/1) to PATH",
    )
    addoption(
        f"{prefix}allow-task-failures",
        dest="agentspeed_allow_task_failures",
        action="store_true",
        default=None,
        help="Record a failed check instead of failing the test item",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every option's value, resolved once: command line over pyproject over defaults."""

    endpoints: tuple[Endpoint, ...]
    repeat: int
    agent: str
    time_scale: float
    window_s: float
    json_path: Path | None
    allow_task_failures: bool
    #: The pyproject.toml the ``[tool.agentspeed]`` values came from, if any.
    config_file: Path | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Resolve all options.

        :raises pytest.UsageError: for an invalid value in ``[tool.agentspeed]``.
        """
        try:
            return cls._resolve(config)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None

    @classmethod
    def _resolve(cls, config: pytest.Config) -> Settings:
        path, table = _tool_table(config)
        file = _FileValues(path, table)

        def opt(name: str) -> Any:
            return config.getoption(f"agentspeed_{name}")

        specs: list[str] = opt("endpoint") or file.endpoints() or [DEFAULT_ENDPOINT]
        time_scale = opt("time_scale") or file.get("time_scale", _positive_float) or 1.0
        endpoints = unique_names([parse_endpoint(s).with_time_scale(time_scale) for s in specs])
        json_opt = opt("json")
        json_file = file.get("json", str)
        json_path = (
            Path(json_opt)
            if json_opt
            else (path.parent / json_file if json_file and path else None)
        )
        allow = opt("allow_task_failures")
        if allow is None:
            allow = file.get("allow_task_failures", _boolean) or False
        return cls(
            endpoints=tuple(endpoints),
            repeat=opt("repeat") or file.get("repeat", _positive_int) or 1,
            agent=opt("agent") or file.get("agent", _agent_name) or "builtin",
            time_scale=time_scale,
            window_s=opt("window") or file.get("window", _positive_float) or DEFAULT_WINDOW_S,
            json_path=json_path,
            allow_task_failures=bool(allow),
            config_file=path,
        )


_KEYS = ("endpoint", "repeat", "agent", "time_scale", "window", "json", "allow_task_failures")


class _FileValues:
    """``[tool.agentspeed]`` values, validated with the same parsers as the command line."""

    def __init__(self, path: Path | None, table: dict[str, Any]) -> None:
        self.path = path
        self.table = {k.replace("-", "_"): v for k, v in table.items()}
        for key in self.table:
            if key not in _KEYS:
                raise ConfigError(
                    f"{path}: [tool.agentspeed] unknown key {key!r}; accepted: {', '.join(_KEYS)}"
                )

    def get(self, key: str, parse: Callable[[Any], Any]) -> Any:
        if key not in self.table:
            return None
        try:
            return parse(self.table[key])
        except (ConfigError, ValueError, TypeError) as exc:
            raise ConfigError(f"{self.path}: [tool.agentspeed] {key}: {exc}") from None

    def endpoints(self) -> list[str] | None:
        value = self.table.get("endpoint")
        if value is None:
            return None
        specs = [value] if isinstance(value, str) else value
        if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
            raise ConfigError(
                f"{self.path}: [tool.agentspeed] endpoint: expected a string or a list of strings"
            )
        for spec in specs:
            self.get_spec(spec)
        return specs

    def get_spec(self, spec: str) -> None:
        try:
            parse_endpoint(spec)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: [tool.agentspeed] endpoint: {exc}") from None


def _tool_table(config: pytest.Config) -> tuple[Path | None, dict[str, Any]]:
    inipath = config.inipath
    candidates = [inipath] if inipath is not None and inipath.name == "pyproject.toml" else []
    candidates.append(config.rootpath / "pyproject.toml")
    for path in candidates:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"{path}: cannot read [tool.agentspeed]: {exc}") from None
        table = data.get("tool", {}).get("agentspeed")
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.agentspeed] must be a table")
        return path, table
    return None, {}


def _arg(parse: Callable[[Any], Any]) -> Callable[[str], Any]:
    """Adapt a value parser to argparse, which reports ArgumentTypeError with the option."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except (ConfigError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _endpoint_spec(value: str) -> str:
    parse_endpoint(value)
    return value


def _positive_int(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool | float) or number < 1:
        raise ConfigError(f"expected a positive integer, got {value!r}")
    return number


def _positive_float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or not number > 0:
        raise ConfigError(f"expected a positive number, got {value!r}")
    return number


def _agent_name(value: Any) -> str:
    if value not in AGENT_NAMES:
        raise ConfigError(f"unknown agent {value!r}; accepted: {', '.join(AGENT_NAMES)}")
    return str(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value
