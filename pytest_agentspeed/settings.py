"""The run's settings: one frozen :class:`Settings`, resolved once, with no pytest.

Every option can also be set in ``[tool.agentspeed]`` of the ``pyproject.toml`` next to pytest's
rootdir (or the one pytest took its configuration from); the command line wins. Values are
checked when read, by the same parsers whether they came from the command line (the edge's
:mod:`~pytest_agentspeed.edge.options` makes them argparse types) or the file: a bad one is a
:class:`ConfigError` naming the option or key and the accepted forms.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_agentspeed.agents import check_agent_name, register_agent
from pytest_agentspeed.analysis.gate import GATE_METRICS, INCONCLUSIVE_POLICIES, GateSettings
from pytest_agentspeed.endpoints import (
    Endpoint,
    is_spec_or_name,
    named_endpoint,
    parse_endpoint,
    unique_names,
)
from pytest_agentspeed.errors import ConfigError

if TYPE_CHECKING:
    from pytest_agentspeed.agents.external import Sandbox

_BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULT_ENDPOINT = "sim:standard"
DEFAULT_WINDOW_S = 1800.0


def gate_settings(
    metric: str | None, tolerance: float | None, margin: float | None, inconclusive: str | None
) -> GateSettings:
    """The gate's settings with defaults filled in.

    :raises ConfigError: when the tolerance is not smaller than the margin.
    """
    _check_gate(tolerance, margin)
    default = GateSettings()
    return GateSettings(
        metric=metric or default.metric,
        tolerance=default.tolerance if tolerance is None else tolerance,
        margin=default.margin if margin is None else margin,
        inconclusive=inconclusive or default.inconclusive,
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
    markdown_path: Path | None
    html_path: Path | None
    #: Baseline name to save this run as, and baseline (name or path) to compare with.
    save: str | None
    compare: str | None
    gate_metric: str | None
    tolerance: float | None
    margin: float | None
    inconclusive: str | None
    #: pytest's rootdir: baselines live in ``<rootdir>/.agentspeed/baselines``.
    rootdir: Path
    #: The pyproject.toml the ``[tool.agentspeed]`` values came from, if any.
    config_file: Path | None
    #: ``[tool.agentspeed] sandbox``: how every external agent is confined (``None``: not).
    sandbox: Sandbox | None = None
    #: Where each session's recording is written (``--agentspeed-record``); ``None``: none.
    record_dir: Path | None = None
    #: The recordings to replay instead of running tasks (``--agentspeed-replay``).
    replay_path: Path | None = None
    #: The recorded gaps between a replay's requests are slept times this (0: not slept).
    replay_gaps: float = 1.0
    #: Export each session as an OpenTelemetry trace, and the GenAI client metrics, over OTLP
    #: (``--agentspeed-otel``; where to is read from the standard ``OTEL_*`` variables).
    otel: bool = False
    #: Where the benchmark-history file goes (``--agentspeed-benchmark-json``), and in which
    #: of :data:`BENCHMARK_FORMATS`.
    benchmark_json: Path | None = None
    benchmark_format: str = "github-action-benchmark"

    @property
    def gate(self) -> GateSettings:
        """The gate's settings (imports the statistics; only needed once tasks ran)."""
        return gate_settings(self.gate_metric, self.tolerance, self.margin, self.inconclusive)

    @classmethod
    def resolve(
        cls, option: Callable[[str], Any], *, rootdir: Path, inipath: Path | None = None
    ) -> Settings:
        """Resolve all options: command line over ``[tool.agentspeed]`` over defaults.

        :param option: an option's command-line value by its name without the prefix
            (``"endpoint"``, ``"time_scale"``, ...), ``None`` when it was not given; a dict's
            ``get`` will do.
        :param rootdir: pytest's rootdir (baselines live under it; its pyproject.toml is read).
        :param inipath: the file pytest took its configuration from, if any.
        :raises ConfigError: for an invalid value in ``[tool.agentspeed]``.
        """
        opt = option
        path, table = _tool_table(inipath, rootdir)
        file = _FileValues(path, table)
        sandbox = file.get("sandbox", _sandbox)
        # Before the agent name is checked: a defined agent is as good a name as a registered
        # one (a plugin's or a conftest.py's, registered by now).
        file.define_agents(sandbox)
        agent = opt("agent")
        if agent is not None:
            check_agent_name(agent)

        named = file.named_endpoints()
        specs: list[str] = opt("endpoint") or file.endpoints(named) or [DEFAULT_ENDPOINT]
        time_scale = opt("time_scale") or file.get("time_scale", positive_float) or 1.0
        endpoints = unique_names(
            [parse_endpoint(s, named).with_time_scale(time_scale) for s in specs]
        )

        def output_path(name: str) -> Path | None:
            # On the command line relative to the working directory, in the file to the file.
            given = opt(name)
            in_file = file.get(name, str)
            out = Path(given) if given else (path.parent / in_file if in_file and path else None)
            if out is not None and out.is_dir() and name != "replay":
                # Found now, not after an hour of sessions.
                option = name.replace("_", "-")
                raise ConfigError(f"--agentspeed-{option} {out}: is a directory; give a file path")
            return out

        allow = opt("allow_task_failures")
        if allow is None:
            allow = file.get("allow_task_failures", _boolean) or False
        gate = {
            "gate_metric": opt("gate_metric") or file.get("gate_metric", parse_gate_metric),
            "tolerance": _first(opt("tolerance"), file.get("tolerance", parse_fraction)),
            "margin": _first(opt("margin"), file.get("margin", parse_fraction)),
            "inconclusive": opt("inconclusive") or file.get("inconclusive", parse_inconclusive),
        }
        _check_gate(gate["tolerance"], gate["margin"])
        record_dir, replay_path = _record_dir(opt, file, rootdir), output_path("replay")
        if record_dir is not None and replay_path is not None:
            raise ConfigError(
                "--agentspeed-record and --agentspeed-replay: a replay is not recorded again; "
                "record live sessions, then replay their recordings"
            )
        gaps = _first(opt("replay_gaps"), file.get("replay_gaps", parse_replay_gaps), 1.0)
        otel = _first(opt("otel"), file.get("otel", _boolean), False)
        if otel:
            _check_otel_extra()
        benchmark_format = (
            opt("benchmark_format")
            or file.get("benchmark_format", parse_benchmark_format)
            or BENCHMARK_FORMATS[0]
        )
        return cls(
            endpoints=tuple(endpoints),
            repeat=opt("repeat") or file.get("repeat", parse_positive_int) or 1,
            agent=agent or file.get("agent", check_agent_name) or "builtin",
            time_scale=time_scale,
            window_s=opt("window") or file.get("window", positive_float) or DEFAULT_WINDOW_S,
            json_path=output_path("json"),
            allow_task_failures=bool(allow),
            markdown_path=output_path("markdown"),
            html_path=output_path("html"),
            save=opt("save") or file.get("save", parse_baseline_name),
            compare=opt("compare") or file.get("compare", str),
            rootdir=rootdir,
            config_file=path,
            sandbox=sandbox,
            record_dir=record_dir,
            replay_path=replay_path,
            replay_gaps=gaps,
            otel=bool(otel),
            benchmark_json=output_path("benchmark_json"),
            benchmark_format=benchmark_format,
            **gate,
        )


#: The modules ``--agentspeed-otel`` needs: the ``[otel]`` extra's packages.
OTEL_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def _check_otel_extra() -> None:
    """Refuse ``--agentspeed-otel`` now, not after the run, when the SDK or the OTLP/HTTP
    exporter is not installed; found without importing them (the plugin stays light)."""
    import importlib.util

    for name in OTEL_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            raise ConfigError(
                "--agentspeed-otel needs the otel extra: "
                "install pytest-agentspeed[otel] (docs/otel.md)"
            )


_KEYS = (
    "endpoint",
    "endpoints",
    "repeat",
    "agent",
    "time_scale",
    "window",
    "json",
    "allow_task_failures",
    "markdown",
    "html",
    "save",
    "compare",
    "gate_metric",
    "tolerance",
    "margin",
    "inconclusive",
    "agents",
    "sandbox",
    "record",
    "replay",
    "replay_gaps",
    "otel",
    "benchmark_json",
    "benchmark_format",
)

#: The benchmark-history formats ``--agentspeed-benchmark-json`` writes: github-action-benchmark's
#: "custom" JSON (the default) and Bencher's Metric Format.
BENCHMARK_FORMATS = ("github-action-benchmark", "bencher")

#: Where ``--agentspeed-record`` with no directory writes, under pytest's rootdir.
RECORD_DIR = Path(".agentspeed") / "recordings"
#: ``--agentspeed-record`` given without a directory.
RECORD_DEFAULT = "<default>"


def _record_dir(opt: Callable[[str], Any], file: _FileValues, rootdir: Path) -> Path | None:
    """The recordings' directory: the option's (relative to the working directory), the
    file's ``record`` (a directory relative to the file, or ``true``), else none."""
    given = opt("record")
    if given == RECORD_DEFAULT:
        return rootdir / RECORD_DIR
    if given:
        return Path(given)
    in_file = file.get("record", _directory_or_true)
    if in_file is True:
        return rootdir / RECORD_DIR
    if isinstance(in_file, str) and file.path is not None:
        return file.path.parent / in_file
    return None


def _directory_or_true(value: Any) -> str | bool | None:
    if isinstance(value, bool):
        return value or None
    if isinstance(value, str) and value:
        return value
    raise ConfigError("expected a directory or true")


def parse_replay_gaps(value: Any) -> float:
    """The recorded gaps between a replay's requests: ``recorded`` (1), ``none`` (0) or a
    factor of at least 0 on them (``--agentspeed-replay-gaps``, ``agentspeed replay --gaps``).

    :raises ConfigError: for anything else.
    """
    if isinstance(value, str) and value in _GAP_WORDS:
        return _GAP_WORDS[value]
    try:
        factor = float(value)
    except (TypeError, ValueError):
        factor = -1.0
    if isinstance(value, bool) or not factor >= 0 or factor == float("inf"):
        raise ConfigError(f"expected recorded, none or a factor of at least 0, got {value!r}")
    return factor


_GAP_WORDS = {"recorded": 1.0, "none": 0.0}


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

    def named_endpoints(self) -> dict[str, Endpoint]:
        tables = self.table.get("endpoints") or {}
        if not isinstance(tables, dict):
            raise ConfigError(f"{self.path}: [tool.agentspeed.endpoints] must be a table")
        out = {}
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise ConfigError(
                    f"{self.path}: [tool.agentspeed.endpoints.{name}] must be a table"
                )
            out[name] = named_endpoint(name, table, str(self.path))
        return out

    def define_agents(self, sandbox: Sandbox | None) -> None:
        """Register the agents of ``[tool.agentspeed.agents.NAME]`` (a second definition of a
        name replaces the first; the agents that come with the package cannot be replaced)."""
        tables = self.table.get("agents") or {}
        if not tables:
            return
        if not isinstance(tables, dict):
            raise ConfigError(f"{self.path}: [tool.agentspeed.agents] must be a table")
        from pytest_agentspeed.agents.defined import agent_from_table
        from pytest_agentspeed.agents.external import ExternalAgent

        for name, table in tables.items():
            spec = agent_from_table(name, table, path=self.path, sandbox=sandbox)
            try:
                register_agent(
                    name,
                    partial(ExternalAgent, spec),
                    description=spec.description,
                    wire=spec.api,
                )
            except ConfigError as exc:
                raise ConfigError(f"{self.path}: [tool.agentspeed.agents.{name}]: {exc}") from None

    def endpoints(self, named: dict[str, Endpoint]) -> list[str] | None:
        value = self.table.get("endpoint")
        if value is None:
            return None
        specs = [value] if isinstance(value, str) else value
        if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
            raise ConfigError(
                f"{self.path}: [tool.agentspeed] endpoint: expected a string or a list of strings"
            )
        for spec in specs:
            try:
                parse_endpoint(spec, named)
            except ConfigError as exc:
                raise ConfigError(f"{self.path}: [tool.agentspeed] endpoint: {exc}") from None
        return specs


def _tool_table(inipath: Path | None, rootdir: Path) -> tuple[Path | None, dict[str, Any]]:
    candidates = [inipath] if inipath is not None and inipath.name == "pyproject.toml" else []
    candidates.append(rootdir / "pyproject.toml")
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


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _check_gate(tolerance: float | None, margin: float | None) -> None:
    default = GateSettings()
    tolerance = default.tolerance if tolerance is None else tolerance
    margin = default.margin if margin is None else margin
    if tolerance >= margin:
        raise ConfigError(
            # :g, not :.0%: 7.5% against 7% must not read "(8%) must be smaller than (7%)".
            f"the tolerance ({tolerance * 100:g}%) must be smaller than the margin "
            f"({margin * 100:g}%): "
            "slowdowns between the two are what INCONCLUSIVE is for"
        )


def parse_fraction(value: Any) -> float:
    """``5%``, ``"0.05"`` or ``0.05``: a fraction strictly between 0 and 1."""
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        number = -1.0
    if isinstance(value, bool) or not 0 < number < 1:
        raise ConfigError(f"expected a percentage like 5% or a fraction like 0.05, got {value!r}")
    return number


def parse_benchmark_format(value: Any) -> str:
    if value not in BENCHMARK_FORMATS:
        raise ConfigError(f"unknown format {value!r}; accepted: {', '.join(BENCHMARK_FORMATS)}")
    return str(value)


def parse_gate_metric(value: Any) -> str:
    if value not in GATE_METRICS:
        raise ConfigError(f"unknown metric {value!r}; accepted: {', '.join(GATE_METRICS)}")
    return str(value)


def parse_inconclusive(value: Any) -> str:
    if value not in INCONCLUSIVE_POLICIES:
        raise ConfigError(f"unknown policy {value!r}; accepted: {', '.join(INCONCLUSIVE_POLICIES)}")
    return str(value)


def parse_baseline_name(value: Any) -> str:
    if not isinstance(value, str) or not _BASELINE_NAME.match(value):
        raise ConfigError(f"baseline names use letters, digits, '.', '_' and '-' (got {value!r})")
    return value


def parse_endpoint_spec(value: str) -> str:
    if not is_spec_or_name(value):
        raise ConfigError(
            f"unknown endpoint {value!r}; accepted forms: sim:PROFILE[?options], "
            "anthropic:MODEL[@BASE_URL], openai:MODEL@BASE_URL or a named endpoint"
        )
    return value


def parse_positive_int(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool | float) or number < 1:
        raise ConfigError(f"expected a positive integer, got {value!r}")
    return number


def positive_float(value: Any) -> float:
    """A number greater than 0, from an option or a ``[tool.agentspeed]`` value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or not number > 0:
        raise ConfigError(f"expected a positive number, got {value!r}")
    return number


def _sandbox(value: Any) -> Sandbox:
    # Imported when the key is there: the agent definitions are not read at every start.
    from pytest_agentspeed.agents.defined import parse_sandbox

    return parse_sandbox(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value
