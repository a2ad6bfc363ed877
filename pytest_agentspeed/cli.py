"""The ``agentspeed`` command.

Subcommands:

* ``agentspeed sim``: serve the simulated endpoint standalone, for agents outside pytest.

Exit codes: 0 success, 2 usage error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_agentspeed import __version__
from pytest_agentspeed.simulator.profiles import PROFILES


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    code: int = args.run(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentspeed", description="Session-level speed of autonomous coding agents."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = commands.add_parser(
        "sim",
        help="serve the simulated endpoint on 127.0.0.1",
        description="Serve a simulated LLM endpoint (Anthropic Messages wire) on 127.0.0.1. "
        "It plays realistic trajectories for the tasks under --tasks and answers anything "
        "else with a short generic reply.",
    )
    sim.add_argument(
        "--profile", choices=sorted(PROFILES), default="standard", help="latency profile"
    )
    sim.add_argument("--port", type=_port, default=8765, help="port (0: any free port)")
    sim.add_argument(
        "--tasks",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="directory searched for agenttask.toml files (repeatable)",
    )
    sim.add_argument(
        "--time-scale", type=_positive, default=1.0, metavar="F", help="multiply every delay by F"
    )
    sim.add_argument("--seed", type=int, default=1, help="seed of every random draw")
    sim.add_argument("--no-jitter", action="store_true", help="use medians instead of random draws")
    sim.set_defaults(run=_sim)
    return parser


def _sim(args: argparse.Namespace) -> int:
    from pytest_agentspeed.simulator.server import MountConfig, ServerConfig, bind, serve

    for root in args.tasks:
        if not root.exists():
            print(f"agentspeed sim: error: --tasks {root}: no such directory", file=sys.stderr)
            return 2
    try:
        sock = bind(args.port)
    except OSError as exc:
        print(f"agentspeed sim: error: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    config = ServerConfig(
        mounts=(
            MountConfig(
                key="",
                profile=args.profile,
                time_scale=args.time_scale,
                seed=args.seed,
                jitter=not args.no_jitter,
            ),
        ),
        task_dirs=tuple(str(p) for p in args.tasks),
    )
    print(
        f"agentspeed sim: profile {args.profile} on http://127.0.0.1:{port} "
        f"(time scale {args.time_scale:g}); Ctrl-C stops it",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        serve(config, sock)
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return port


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value
