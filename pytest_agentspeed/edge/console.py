"""The terminal: lines in the middle of a run, and the agentspeed section at its end.

:class:`TerminalConsole` is the bench's :class:`~pytest_agentspeed.run.bench.Console` under
pytest: its lines get past output capture, and long sessions show a heartbeat. The summary
functions print what :meth:`Bench.finish <pytest_agentspeed.run.bench.Bench.finish>` returned.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_agentspeed.run.bench import Bench, Finish

#: A session running longer than this between progress lines gets another one.
HEARTBEAT_S = 10.0


class TerminalConsole:
    """The bench's lines on pytest's terminal."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def line(self, text: str, *, yellow: bool = False) -> None:
        say(self.config, text, yellow=yellow)

    def progress(self, name: str) -> _Heartbeat:
        return _Heartbeat(self.config, name)


class _Heartbeat:
    """Shows that a long session is alive: which task, which turn, how long so far."""

    def __init__(self, config: pytest.Config, nodeid: str) -> None:
        self.config = config
        self.nodeid = nodeid
        self.last = time.monotonic()

    def __call__(self, turns: int, output_tokens: int, elapsed_s: float) -> None:
        now = time.monotonic()
        if now - self.last < HEARTBEAT_S:
            return
        self.last = now
        say(
            self.config,
            f"agentspeed: {self.nodeid}: turn {turns}, {output_tokens:,} output tokens, "
            f"{elapsed_s:.0f} s",
        )


def say(config: pytest.Config, line: str, **markup: bool) -> None:
    """A line on the terminal now, in the middle of a test, past output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line, **markup)
    else:
        reporter.write_line(line, **markup)


def write_summary(reporter: pytest.TerminalReporter, bench: Bench, finish: Finish) -> None:
    """The agentspeed section: the table (or the no-model agent's count), the warning of a
    clock that ran late, the files written, and what went wrong around them."""
    from pytest_agentspeed.outputs.table import table_of
    from pytest_agentspeed.outputs.terminal import clock_warning, scale_note
    from pytest_agentspeed.runfile import baseline_path

    run = finish.run
    write = reporter.write_line
    reporter.write_sep("=", "agentspeed")
    s = bench.settings
    if bench.agent.expects_check_to_fail:
        from pytest_agentspeed.run.runner import CHECK_COULD_NOT_RUN

        valid = sum(
            1
            for x in run.sessions
            if x.outcome == "failed" and x.check_exit_code not in CHECK_COULD_NOT_RUN
        )
        write(
            f"{s.agent} agent: {valid} of {len(run.sessions)} tasks valid "
            f"(their check fails on the untouched workspace)"
        )
    elif not bench.agent.needs_endpoint:
        passed = sum(1 for x in run.sessions if x.passed)
        write(f"{s.agent} agent: {passed} of {len(run.sessions)} tasks passed")
    else:
        table = table_of(run, finish.stored, bench.against, metric=s.gate.metric)
        for i, line in enumerate(table.lines()):
            # The deciding rows, under the header and above the rule, in bold.
            write(line, bold=0 < i <= table.key_rows)
        note = scale_note(run)
        if note:
            write(f"({note})")
        warning = clock_warning(run)
        if warning:
            write(f"warning: {warning}", yellow=True)
    # After a failed write (said below, in red) the files named here may not exist.
    written = finish.output_error is None
    if s.json_path is not None and written:
        write(f"run file: {s.json_path}")
    if s.html_path is not None and written:
        write(f"report: {s.html_path}")
    if s.save is not None and bench.agent.needs_endpoint and written:
        path = baseline_path(s.rootdir, s.save)
        write(f"saved baseline {s.save!r}: {_shown_path(path)}")
    if finish.notice:
        write(finish.notice, yellow=True)
    if finish.baseline_error:
        write(f"ERROR: {finish.baseline_error}", red=True)
    if finish.output_error:
        write(f"ERROR: {finish.output_error}", red=True)


def write_verdicts(
    reporter: pytest.TerminalReporter, refused: str | None, finish: Finish | None
) -> None:
    """The verdict lines (or why there was no comparison), each in its colour."""
    if refused is not None:
        reporter.write_line(refused, red=True)
    if finish is None:
        return
    from pytest_agentspeed.outputs.terminal import verdict_lines

    for c in finish.run.comparisons:
        verdict = c.verdict
        lines = verdict_lines([c])
        # The comparison's own line in its colour, its details plain.
        reporter.write_line(
            lines[0],
            red=verdict in ("FAIL", "NOT COMPARED"),
            green=verdict in ("PASS", "IMPROVED"),
            yellow=verdict == "INCONCLUSIVE",
        )
        for line in lines[1:]:
            reporter.write_line(line)


def _shown_path(path: Path) -> Path:
    """``path`` relative to the working directory when it lies under it (the file to commit,
    as ``git add`` takes it), else as it is."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
