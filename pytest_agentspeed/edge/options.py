"""Options: declared once (for pytest and, in part, the command line), read once from
``pytest.Config`` into a :class:`~pytest_agentspeed.settings.Settings`.

The values are parsed by :mod:`pytest_agentspeed.settings`, whose parsers become argparse
types here, so a bad value on the command line is an argparse error naming the option.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pytest

from pytest_agentspeed.agents import agent_choices
from pytest_agentspeed.analysis.gate import GATE_METRICS, GateSettings
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.settings import (
    BENCHMARK_FORMATS,
    RECORD_DEFAULT,
    Settings,
    gate_settings,
    parse_baseline_name,
    parse_benchmark_format,
    parse_endpoint_spec,
    parse_fraction,
    parse_gate_metric,
    parse_inconclusive,
    parse_positive_int,
    parse_replay_gaps,
    positive_float,
)

AddOption = Callable[..., Any]


def add_run_options(addoption: AddOption, prefix: str = "--agentspeed-") -> None:
    """Declare the run options (the plugin passes its option group's ``addoption``)."""
    addoption(
        f"{prefix}endpoint",
        action="append",
        dest="agentspeed_endpoint",
        metavar="SPEC",
        type=arg_type(parse_endpoint_spec),
        help="Endpoint to run tasks on: sim:PROFILE[?options], anthropic:MODEL[@BASE_URL], "
        "openai:MODEL@BASE_URL, openai-responses:MODEL@BASE_URL, or a name from "
        "[tool.agentspeed.endpoints]. Repeat for an A/B "
        "run; the first is the baseline. Default: sim:standard",
    )
    addoption(
        f"{prefix}repeat",
        dest="agentspeed_repeat",
        metavar="N",
        type=arg_type(parse_positive_int),
        help="Sessions per task and endpoint (default 1)",
    )
    addoption(
        f"{prefix}agent",
        dest="agentspeed_agent",
        metavar="NAME",
        # The name is checked when the settings are read: pytest parses the command line before
        # it loads conftest.py files, which may register agents.
        help=f"Agent: {_percent(agent_choices())}, or one of [tool.agentspeed.agents]. "
        "Default: builtin",
    )
    addoption(
        f"{prefix}time-scale",
        dest="agentspeed_time_scale",
        metavar="F",
        type=arg_type(positive_float),
        help="Multiply every delay of simulated endpoints by F (default 1.0)",
    )
    addoption(
        f"{prefix}window",
        dest="agentspeed_window",
        metavar="SECONDS",
        type=arg_type(positive_float),
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
    addoption(
        f"{prefix}html",
        dest="agentspeed_html",
        metavar="PATH",
        help="Write the HTML speed report (one self-contained file) to PATH",
    )
    addoption(
        f"{prefix}markdown",
        dest="agentspeed_markdown",
        metavar="PATH",
        help="Write the summary table and verdict as markdown to PATH (also appended to "
        "$GITHUB_STEP_SUMMARY when it is set)",
    )
    addoption(
        f"{prefix}save",
        dest="agentspeed_save",
        metavar="NAME",
        type=arg_type(parse_baseline_name),
        help="Save this run as the baseline NAME (.agentspeed/baselines/NAME.json)",
    )
    addoption(
        f"{prefix}compare",
        dest="agentspeed_compare",
        metavar="NAME|PATH",
        help="Compare this run with a stored baseline (a name, or a run file's path)",
    )
    addoption(
        f"{prefix}record",
        dest="agentspeed_record",
        metavar="DIR",
        nargs="?",
        const=RECORD_DEFAULT,
        help="Record every session's requests for replay into DIR (default .agentspeed/recordings)",
    )
    addoption(
        f"{prefix}replay",
        dest="agentspeed_replay",
        metavar="PATH",
        help="Replay the recordings in PATH (a directory or one file) on each endpoint "
        "instead of running tasks live",
    )
    addoption(
        f"{prefix}replay-gaps",
        dest="agentspeed_replay_gaps",
        metavar="GAPS",
        type=arg_type(parse_replay_gaps),
        help="Between a replay's requests sleep the recorded gaps (recorded, the default), "
        "none, or the recorded gaps times a FACTOR",
    )
    addoption(
        f"{prefix}otel",
        dest="agentspeed_otel",
        action="store_true",
        default=None,
        help="Export each session as an OpenTelemetry trace (GenAI conventions) and the GenAI "
        "client metrics over OTLP, as the OTEL_* variables say; needs pytest-agentspeed[otel]",
    )
    addoption(
        f"{prefix}benchmark-json",
        dest="agentspeed_benchmark_json",
        metavar="PATH",
        help="Write each arm's figures for a benchmark-history tool to PATH: "
        "github-action-benchmark's custom JSON (bigger-is-better figures in PATH, "
        "smaller-is-better ones in PATH with .smaller before its suffix), or Bencher's "
        "with --agentspeed-benchmark-format bencher",
    )
    addoption(
        f"{prefix}benchmark-format",
        dest="agentspeed_benchmark_format",
        metavar="FORMAT",
        type=arg_type(parse_benchmark_format),
        help=f"Format of --agentspeed-benchmark-json: {', '.join(BENCHMARK_FORMATS)} "
        f"(default {BENCHMARK_FORMATS[0]})",
    )
    add_gate_options(addoption, prefix=prefix, dest_prefix="agentspeed_")


def add_gate_options(addoption: AddOption, *, prefix: str, dest_prefix: str) -> None:
    """Declare how strict the gate is; shared by the plugin and ``agentspeed compare``."""
    addoption(
        f"{prefix}gate-metric",
        dest=f"{dest_prefix}gate_metric",
        metavar="METRIC",
        type=arg_type(parse_gate_metric),
        help=f"Metric the gate decides on: {', '.join(GATE_METRICS)} "
        f"(default {GateSettings().metric})",
    )
    addoption(
        f"{prefix}tolerance",
        dest=f"{dest_prefix}tolerance",
        metavar="PCT",
        type=arg_type(parse_fraction),
        # argparse %-formats help strings (pytest --help too): a literal percent sign is "%%".
        help="Slowdowns smaller than this never FAIL, e.g. 5%% or 0.05 (default 5%%)",
    )
    addoption(
        f"{prefix}margin",
        dest=f"{dest_prefix}margin",
        metavar="PCT",
        type=arg_type(parse_fraction),
        help="PASS needs evidence that any slowdown is smaller than this (default 10%%)",
    )
    addoption(
        f"{prefix}inconclusive",
        dest=f"{dest_prefix}inconclusive",
        metavar="POLICY",
        type=arg_type(parse_inconclusive),
        help="What an INCONCLUSIVE verdict does: warn (default, exit 0) or fail",
    )


def gate_from_args(args: argparse.Namespace) -> GateSettings:
    """The gate's settings from what :func:`add_gate_options` declared with no ``dest_prefix``
    (the ``agentspeed`` commands), defaults filled in."""
    return gate_settings(args.gate_metric, args.tolerance, args.margin, args.inconclusive)


def arg_type(parse: Callable[[Any], Any]) -> Callable[[str], Any]:
    """Adapt a value parser that raises :class:`ConfigError` to an argparse ``type``.

    argparse reports an ``ArgumentTypeError`` with the option's name and exits 2.
    """

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except (ConfigError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def settings_from_config(config: pytest.Config) -> Settings:
    """Resolve all options of this pytest run.

    :raises pytest.UsageError: for an invalid value in ``[tool.agentspeed]``.
    """
    try:
        return Settings.resolve(
            lambda name: config.getoption(f"agentspeed_{name}"),
            rootdir=config.rootpath,
            inipath=config.inipath,
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _percent(help_text: str) -> str:
    """``help_text`` for argparse, which %-formats help strings."""
    return help_text.replace("%", "%%")
