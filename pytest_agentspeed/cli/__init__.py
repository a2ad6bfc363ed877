"""The ``agentspeed`` command.

Subcommands:

* ``agentspeed compare BASE.json CAND.json``: the gate between two run files;
* ``agentspeed report RUN.json -o PATH [--baseline BASE.json] [--history DIR]``: the HTML
  speed report (:mod:`.report`);
* ``agentspeed show RUN.json``: a run file's summary table and stored verdicts;
* ``agentspeed merge A.json B.json -o ALL.json``: run files from CI shards into one; also
  reads the spool files an interrupted run left in ``.agentspeed/spool/``;
* ``agentspeed sim``: serve the simulated endpoint standalone, for agents outside pytest;
* ``agentspeed replay RECORDINGS --endpoint SPEC``: an endpoint's capacity in agent sessions.

Exit codes: 0 success (for ``compare``: PASS, IMPROVED, or INCONCLUSIVE under the default
policy), 1 the gate FAILed, 2 bad input (a missing, corrupt or unknown-schema file, an unknown
endpoint, bad arguments, an output that cannot be written): one line on stderr, never a
traceback; 6 (``compare``) the baseline was refused as not comparable (another time scale,
agent or gate metric definition, or no task in common): no verdict. ``replay`` counts endpoint
errors in its table. ``docs/errors.md`` lists every message.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_agentspeed import __version__
from pytest_agentspeed.cli.report import add_report
from pytest_agentspeed.edge.options import add_gate_options, arg_type, gate_from_args
from pytest_agentspeed.errors import AgentSpeedError
from pytest_agentspeed.settings import parse_positive_int, positive_float
from pytest_agentspeed.simulator import MAX_SPEED, PATHS, profile_names

if TYPE_CHECKING:
    from pytest_agentspeed.records import RunRecord


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code: int = args.handler(args)
    except AgentSpeedError as exc:
        print(f"agentspeed {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_EXIT
    except OSError as exc:
        # Reads raise RunFileError; what is left is writing -o (a directory, a missing parent
        # that cannot be made, no permission). Name the path the user gave, not the temp file
        # the atomic write goes through.
        output = getattr(args, "output", None)
        if output is not None:
            where = f"cannot write {output}: "
        else:
            where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"agentspeed {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return code


#: What a command ended by a closed pipe returns (128 + SIGPIPE, as shells report it).
BROKEN_PIPE_EXIT = 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentspeed", description="Session-level speed of autonomous coding agents."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    compare = commands.add_parser(
        "compare",
        help="gate a candidate run file against a baseline run file",
        description="Compare an arm of CAND.json with an arm of BASE.json and print the verdict. "
        "Exit 1 on FAIL (and on INCONCLUSIVE with --inconclusive fail), 2 on bad input.",
    )
    compare.add_argument("baseline", type=Path, metavar="BASE.json")
    compare.add_argument("candidate", type=Path, metavar="CAND.json")
    compare.add_argument(
        "--baseline-endpoint", metavar="NAME", help="arm of BASE.json (default: its first)"
    )
    compare.add_argument(
        "--candidate-endpoint",
        metavar="NAME",
        help="arm of CAND.json (default: its first, or its second when both files are the same)",
    )
    add_gate_options(compare.add_argument, prefix="--", dest_prefix="")
    compare.set_defaults(handler=_compare)

    add_report(commands)

    show = commands.add_parser("show", help="print a run file's summary table and verdicts")
    show.add_argument("run", type=Path, metavar="RUN.json")
    show.set_defaults(handler=_show)

    merge = commands.add_parser(
        "merge",
        help="merge run files from CI shards (or an interrupted run's spool) into one",
        description="Merge the sessions of run files made by shards of one job (same endpoints, "
        "agent, time scale, window and concurrency) into one run file, recomputing the summary "
        "and the in-run comparisons. Spool files (.agentspeed/spool/*.jsonl) hold the finished "
        "sessions of a run that was killed before it wrote its run file; pass them, or the "
        "directory, to recover those sessions.",
    )
    merge.add_argument(
        "runs",
        type=Path,
        nargs="+",
        metavar="RUN",
        help="run files, spool files (.jsonl) of interrupted runs, or a spool directory",
    )
    merge.add_argument("-o", "--output", type=Path, required=True, metavar="ALL.json")
    add_gate_options(merge.add_argument, prefix="--", dest_prefix="")
    merge.set_defaults(handler=_merge)

    sim = commands.add_parser(
        "sim",
        help="serve the simulated endpoint on 127.0.0.1",
        description="Serve a simulated LLM endpoint on 127.0.0.1: the Anthropic Messages "
        "(/v1/messages), Chat Completions (/v1/chat/completions) and Responses (/v1/responses) "
        "wires at one address. "
        "It plays realistic trajectories for the tasks under --tasks and answers anything "
        "else with a short generic reply.",
    )
    sim.add_argument(
        "--profile", choices=sorted(profile_names()), default="standard", help="latency profile"
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
        "--time-scale",
        type=arg_type(positive_float),
        default=1.0,
        metavar="F",
        help="multiply every delay by F",
    )
    sim.add_argument("--seed", type=int, default=1, help="seed of every random draw")
    sim.add_argument("--no-jitter", action="store_true", help="use medians instead of random draws")
    sim.add_argument(
        "--faults",
        type=_rate,
        default=0.0,
        metavar="RATE",
        help="inject faults (429, 529, mid-stream error, drop, stall) in this share of requests",
    )
    sim.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="F",
        help="run the model side (queue, prefill, decode) at F times the profile's speed "
        f"(0.9: 10%% slower; above 0, at most {MAX_SPEED:g})",
    )
    sim.add_argument(
        "--paths",
        choices=PATHS,
        default="fixed",
        help="fixed: every session plays the task's plan; varied: each session its own "
        "path (verbosity, extra exploring turns)",
    )
    sim.set_defaults(handler=_sim)
    _add_replay(commands)
    return parser


def _add_replay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pytest_agentspeed.endpoints import parse_endpoint
    from pytest_agentspeed.run.capacity import parse_levels
    from pytest_agentspeed.settings import parse_replay_gaps

    replay = commands.add_parser(
        "replay",
        help="the capacity of an endpoint in agent sessions: replay recordings at rising "
        "concurrency",
        description="Replay the recorded sessions, that many in flight at once at each "
        "level; per level, session throughput and TTFT percentiles, sessions and tasks per "
        "hour, and the knee (docs/replay.md).",
    )
    replay.add_argument("recordings", type=Path, metavar="RECORDINGS", help="file or directory")
    replay.add_argument(
        "--endpoint",
        type=arg_type(parse_endpoint),
        required=True,
        metavar="SPEC",
        help="the endpoint to replay on (sim:PROFILE, anthropic:MODEL@URL, openai:MODEL@URL, ...)",
    )
    replay.add_argument(
        "--concurrency",
        type=arg_type(parse_levels),
        default=(1, 2, 4, 8),
        metavar="LEVELS",
        help="comma-separated levels, sorted before use (default: 1,2,4,8)",
    )
    replay.add_argument(
        "--sessions",
        type=arg_type(parse_positive_int),
        default=0,
        metavar="N",
        help="sessions per level, at least (never fewer than the recordings or twice the level)",
    )
    replay.add_argument(
        "--gaps",
        type=arg_type(parse_replay_gaps),
        default=1.0,
        metavar="recorded|none|FACTOR",
        help="sleep the recorded gaps between requests (default), none, or times FACTOR",
    )
    replay.add_argument(
        "--time-scale",
        type=arg_type(positive_float),
        default=1.0,
        metavar="F",
        help="multiply a simulated endpoint's delays by F (default 1)",
    )
    replay.add_argument("--json", type=Path, metavar="PATH", help="the run file to write")
    replay.add_argument("--html", type=Path, metavar="PATH", help="the HTML report to write")
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from pytest_agentspeed.run.capacity import sweep_command

    return sweep_command(
        args.recordings,
        args.endpoint,
        args.concurrency,
        sessions=args.sessions,
        gaps=args.gaps,
        time_scale=args.time_scale,
        json_path=args.json,
        html_path=args.html,
    )


def _compare(args: argparse.Namespace) -> int:
    from pytest_agentspeed.analysis.compare import NOT_COMPARED_EXIT, compare_runs
    from pytest_agentspeed.analysis.summary import arms
    from pytest_agentspeed.outputs.table import summary_table
    from pytest_agentspeed.outputs.terminal import verdict_lines
    from pytest_agentspeed.records import NOT_COMPARED
    from pytest_agentspeed.runfile import read_run_file

    gate = gate_from_args(args)
    same = args.baseline.resolve() == args.candidate.resolve()
    base = read_run_file(args.baseline)
    cand = base if same else read_run_file(args.candidate)
    base_arm = _pick_arm(base, args.baseline, args.baseline_endpoint, 0)
    default_candidate = 1 if same and len(arms(cand)) > 1 else 0
    cand_arm = _pick_arm(cand, args.candidate, args.candidate_endpoint, default_candidate)
    comparison = compare_runs(
        base,
        cand,
        baseline_arm=base_arm,
        candidate_arm=cand_arm,
        against=str(args.baseline),
        settings=gate,
        baseline_label=f"the baseline {args.baseline}",
        candidate_label=f"the candidate {args.candidate}",
    )
    left, right = f"baseline: {base_arm}", f"candidate: {cand_arm}"
    summary = {left: base.summary.get(base_arm, {}), right: cand.summary.get(cand_arm, {})}
    for line in summary_table(summary, [left, right]):
        print(line)
    for line in verdict_lines([comparison]):
        print(line)
    if comparison.fails(gate.inconclusive):
        return 1
    return NOT_COMPARED_EXIT if comparison.verdict == NOT_COMPARED else 0


def _show(args: argparse.Namespace) -> int:
    from pytest_agentspeed.outputs.capacity import capacity_lines
    from pytest_agentspeed.outputs.table import table_of
    from pytest_agentspeed.outputs.terminal import clock_warning, scale_note, verdict_lines
    from pytest_agentspeed.runfile import read_run_file

    run = read_run_file(args.run)
    print(
        f"{args.run}: {len(run.sessions)} sessions, pytest-agentspeed "
        f"{run.agentspeed_version}, {run.created_at}"
    )
    note = scale_note(run, explained=False)
    if note:
        print(note)
    warning = clock_warning(run)
    if warning:
        print(f"warning: {warning}")
    for line in table_of(run).lines():
        print(line)
    for line in verdict_lines(run.comparisons):
        print(line)
    for line in [] if run.capacity is None else capacity_lines(run.capacity):
        print(line)
    return 0


def _merge(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from datetime import UTC, datetime

    from pytest_agentspeed.analysis.summary import analysed
    from pytest_agentspeed.runfile import write_run_file

    runs = _read_shards(args.runs)
    if not runs:
        raise AgentSpeedError("no run files or spool files to merge")
    first_path, first = runs[0]
    seen: dict[str, Path] = {}
    for path, run in runs:
        problem = _merge_conflict(first, run)
        if problem:
            raise AgentSpeedError(f"cannot merge {first_path} and {path}: {problem}")
        for session in run.sessions:
            if session.id in seen:
                raise AgentSpeedError(
                    f"cannot merge: session {session.id} is in both {seen[session.id]} and {path}"
                )
            seen[session.id] = path
    sessions = sorted((s for _, run in runs for s in run.sessions), key=lambda s: s.started_at)
    endpoints = {e.name: e for _, run in runs for e in run.endpoints}
    merged = replace(
        first,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        agentspeed_version=__version__,
        environment=dict(first.environment, shards=len(runs)),
        endpoints=tuple(endpoints.values()),
        sessions=tuple(sessions),
    )
    write_run_file(args.output, analysed(merged, gate_from_args(args)))
    print(f"merged {len(sessions)} sessions from {len(runs)} runs into {args.output}")
    return 0


def _read_shards(paths: Sequence[Path]) -> list[tuple[Path, RunRecord]]:
    """Run files, and spool files of interrupted runs (one run per run id, whichever
    processes spooled it); a directory stands for the spool files in it."""
    from pytest_agentspeed.run.spool import is_spool, merge_spools, run_id_of, spool_files
    from pytest_agentspeed.runfile import read_run_file

    runs: list[tuple[Path, RunRecord]] = []
    spools: dict[str, list[Path]] = {}
    for path in spool_files(paths):
        if is_spool(path):
            spools.setdefault(run_id_of(path), []).append(path)
        else:
            runs.append((path, read_run_file(path)))
    runs += [(group[0], merge_spools(group)) for group in spools.values()]
    return runs


def _merge_conflict(a: RunRecord, b: RunRecord) -> str | None:
    """Why two shards' sessions cannot be analysed as one run, or ``None``."""
    for key, name in (("agent", "agent"), ("time_scale", "time scale"), ("window_s", "window")):
        if a.config.get(key) != b.config.get(key):
            return f"{name} differs ({a.config.get(key)} vs {b.config.get(key)})"
    if a.environment.get("concurrency") != b.environment.get("concurrency"):
        return (
            f"concurrency differs ({a.environment.get('concurrency')} vs "
            f"{b.environment.get('concurrency')})"
        )
    ends_a = {e.name: e for e in a.endpoints}
    for e in b.endpoints:
        if e.name in ends_a and ends_a[e.name] != e:
            return f"endpoint {e.name!r} is configured differently"
    if [e.name for e in a.endpoints][:1] != [e.name for e in b.endpoints][:1]:
        return "the baseline endpoints differ"
    return None


def _pick_arm(run: RunRecord, path: Path, name: str | None, default: int) -> str:
    from pytest_agentspeed.analysis.summary import arms

    names = arms(run)
    if not names:
        raise AgentSpeedError(f"{path}: the run has no sessions")
    if name is None:
        return names[min(default, len(names) - 1)]
    if name not in names:
        raise AgentSpeedError(f"{path}: no endpoint {name!r}; it has: {', '.join(names)}")
    return name


def _sim(args: argparse.Namespace) -> int:
    from pytest_agentspeed.simulator import MountConfig, ServerConfig, bind, fault_rates, serve

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
                faults=fault_rates(args.faults, {}) if args.faults else {},
                speed=args.speed,
                paths=args.paths,
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


def _speed(text: str) -> float:
    return _number(
        text, lambda v: 0 < v <= MAX_SPEED, f"a number above 0 and at most {MAX_SPEED:g}"
    )


def _rate(text: str) -> float:
    return _number(text, lambda v: 0 <= v <= 1, "a rate between 0 and 1")


def _number(text: str, ok: Callable[[float], bool], expected: str) -> float:
    """A number the option accepts, else argparse's error saying what is expected."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value
