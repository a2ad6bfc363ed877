"""``agentspeed report``: the HTML speed report of a run file, against a stored baseline
(``--baseline``) and with the gate metric's history over saved runs (``--history``).

Bad input exits 2 with one line on stderr (:func:`pytest_agentspeed.cli.main` prints it): a
missing or unreadable ``RUN.json``, ``BASE.json`` or run file in ``DIR``, a ``DIR`` that is
missing or holds no run file. Every file is read before the report is written, so a bad one
leaves an existing report as it was. A ``*.json`` in ``DIR`` that is JSON but no run file
(another tool's output kept beside them) is skipped with a note on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_agentspeed.edge.options import add_gate_options, gate_from_args


def add_report(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``agentspeed report`` and its options."""
    report = commands.add_parser(
        "report",
        help="write the HTML speed report of a run file",
        description="Render RUN.json as one self-contained HTML file (works offline). With "
        "--baseline, every arm is compared with BASE.json, whose arms get columns of their own; "
        "these comparisons replace those RUN.json holds against a stored baseline. With "
        "--history, the gate metric of every endpoint over the run files in DIR (and RUN.json), "
        "oldest first, and the gate's verdict on each run against the one before.",
    )
    report.add_argument("run", type=Path, metavar="RUN.json")
    report.add_argument("-o", "--output", type=Path, required=True, metavar="PATH")
    report.add_argument("--baseline", type=Path, metavar="BASE.json")
    report.add_argument(
        "--history",
        type=Path,
        metavar="DIR",
        help="directory of saved run files (*.json) to draw the gate metric's trend from",
    )
    add_gate_options(report.add_argument, prefix="--", dest_prefix="")
    report.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace) -> int:
    """Write the report; returns the exit code (errors are raised for ``main`` to print)."""
    from pytest_agentspeed.outputs.html_report import render_report
    from pytest_agentspeed.runfile import read_run_file, write_text_atomic

    gate = gate_from_args(args)
    run = read_run_file(args.run)
    baseline = None if args.baseline is None else read_run_file(args.baseline)
    history = None
    if args.history is not None:
        from pytest_agentspeed.analysis.history import history_of, read_history

        runs, notes = read_history(args.history, args.run, run)
        for note in notes:
            print(f"agentspeed report: note: {note}", file=sys.stderr)
        history = history_of(runs, gate)
    html = render_report(
        run,
        baseline=baseline,
        baseline_name=f"baseline {args.baseline.name}" if args.baseline else "baseline",
        gate=gate,
        history=history,
    )
    write_text_atomic(args.output, html)
    print(f"report: {args.output} ({len(html.encode()) / 1024:,.0f} KB)")
    if history is not None:
        fails = sum(t.fails for t in history.trends)
        print(
            f"history: {len(history.runs)} runs, {len(history.trends)} endpoint(s), "
            f"{fails} step(s) the gate calls FAIL"
        )
    return 0
