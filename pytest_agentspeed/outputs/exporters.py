"""Exporters: where a run's sessions and its record are written.

An exporter hears of each finished session (:meth:`Exporter.session_finished`) and of the
finished run (:meth:`Exporter.run_finished`). The built-in ones are the run file, a saved
baseline, the markdown summary (also appended to GitHub's step summary), the HTML report and a
test item's JUnit properties. :func:`run_finished` calls a list of them in order; the first
one that cannot write stops the rest, and the caller keeps the run's spool.

What rendering needs (statistics, jinja2) is imported when an output is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pytest_agentspeed.runfile import write_run_file, write_text_atomic

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pytest_agentspeed.analysis.gate import GateSettings
    from pytest_agentspeed.records import RunRecord, SessionRecord

#: A JUnit ``<property>``: name and value.
Property = tuple[str, object]


class Exporter(Protocol):
    """Something a run's results are written to."""

    @property
    def target(self) -> Path | str:
        """What it writes, as an error message names it (a path, usually)."""
        ...

    def session_finished(self, record: SessionRecord) -> None:
        """A session ended: an item's exporter (the JUnit properties) is told in the process
        that ran the session, before the item reports; the run's exporters are told of every
        session, in order, when the run ends, just before :meth:`run_finished`.

        :raises OSError: when it cannot write; the exporters after it are not called.
        """
        ...

    def run_finished(self, run: RunRecord) -> None:
        """The run ended: ``run`` holds every session and the comparisons.

        :raises OSError: when it cannot write; the exporters after it are not called.
        """
        ...


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """The exporter that could not write, and why."""

    target: Path | str
    error: OSError


def run_finished(exporters: Sequence[Exporter], run: RunRecord) -> WriteFailure | None:
    """Hand the finished run to each exporter in order (its sessions, then the run); stop at
    the first that cannot write."""
    for exporter in exporters:
        try:
            for session in run.sessions:
                exporter.session_finished(session)
            exporter.run_finished(run)
        except OSError as exc:
            return WriteFailure(exporter.target, exc)
    return None


class RunFile:
    """The run record as a run file: ``--agentspeed-json``, or a saved baseline."""

    def __init__(self, path: Path) -> None:
        self.target = path

    def session_finished(self, record: SessionRecord) -> None:
        """Nothing: the file is written whole, at the end (the spool keeps sessions till then)."""

    def run_finished(self, run: RunRecord) -> None:
        write_run_file(self.target, run)


class MarkdownSummary:
    """The verdicts, then the table, as markdown: ``--agentspeed-markdown``, or appended to
    an existing file (GitHub's ``$GITHUB_STEP_SUMMARY``).

    :param stored: the stored baseline the run was compared with, if any; its columns are
        named after ``against``.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        stored: RunRecord | None,
        against: str,
        metric: str,
        append: bool = False,
    ) -> None:
        self.target = path
        self.stored = stored
        self.against = against
        self.metric = metric
        self.append = append

    def session_finished(self, record: SessionRecord) -> None:
        """Nothing: the summary is of the whole run."""

    def run_finished(self, run: RunRecord) -> None:
        from pytest_agentspeed.outputs.table import table_of
        from pytest_agentspeed.outputs.terminal import clock_warning, markdown_report, scale_note

        table = table_of(run, self.stored, self.against, metric=self.metric)
        markdown = markdown_report(
            table, run.comparisons, note=scale_note(run), warning=clock_warning(run)
        )
        if self.append:
            with open(self.target, "a", encoding="utf-8") as f:
                f.write(markdown)
        else:
            write_text_atomic(Path(self.target), markdown)


class HtmlReport:
    """The HTML speed report (``--agentspeed-html``), one self-contained file."""

    def __init__(
        self, path: Path, *, stored: RunRecord | None, against: str, gate: GateSettings
    ) -> None:
        self.target = path
        self.stored = stored
        self.against = against
        self.gate = gate

    def session_finished(self, record: SessionRecord) -> None:
        """Nothing: the report is of the whole run."""

    def run_finished(self, run: RunRecord) -> None:
        from pytest_agentspeed.outputs.html_report import render_report

        html = render_report(run, baseline=self.stored, baseline_name=self.against, gate=self.gate)
        write_text_atomic(self.target, html)


class JUnitProperties:
    """Each session's numbers as JUnit ``<property>`` pairs, added to ``into`` (a pytest
    item's ``user_properties``, which ``--junitxml`` writes)."""

    target = "JUnit properties"

    def __init__(self, into: list[Property]) -> None:
        self.into = into

    def session_finished(self, record: SessionRecord) -> None:
        self.into.extend(junit_properties(record))

    def run_finished(self, run: RunRecord) -> None:
        """Nothing: pytest writes the JUnit file."""


def junit_properties(record: SessionRecord) -> list[Property]:
    """A session's numbers as JUnit ``<property>`` pairs."""
    throughput = record.throughput_tok_s
    return [
        ("agentspeed.endpoint", record.endpoint),
        ("agentspeed.outcome", record.outcome),
        ("agentspeed.turns", len(record.turns)),
        ("agentspeed.wall_s", round(record.wall_s, 6)),
        ("agentspeed.output_tokens", record.usage.output_tokens),
        ("agentspeed.throughput_tok_s", None if throughput is None else round(throughput, 3)),
    ]
