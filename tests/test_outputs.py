"""The outputs of a run: a stored baseline's column, seconds per phase, the deciding rows, the
verdict first in markdown, arms without runs per window, chart ticks and waterfall labels."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from factories import arm, paired_arms, run_record
from test_gate import FAST, SLOW, agentspeed, run, tasks
from test_plugin import read_run
from test_records_and_metrics import SLOW as TWO_SESSIONS
from test_records_and_metrics import session, turn
from test_report import browser, open_page  # noqa: F401  (browser is a fixture)

# Modules, not names: on the code before these outputs existed each test fails on its own.
from pytest_agentspeed.analysis.compare import compare_runs
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.metrics import summarize_run
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.outputs import charts, terminal
from pytest_agentspeed.outputs import table as tables
from pytest_agentspeed.outputs.html_report import render_report
from pytest_agentspeed.runfile import write_run_file

DECIDING = [
    "session throughput P50",
    "pass rate",
    "error rate",
    "mean session time",
    "TTFT P50",
    "decode P50",
    "tasks / window",
]


class Page(HTMLParser):
    """The parts of a report the tests read: text by element id and class, and table cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {}
        self.classes: dict[str, int] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._h1: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for cls in a.get("class", "").split():
            self.classes[cls] = self.classes.get(cls, 0) + 1
        if tag == "table" and "id" in a:
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "h1":
            self._h1 = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "h1" and self._h1 is not None:
            self.text["h1"] = "".join(self._h1).strip()
            self._h1 = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._h1 is not None:
            self._h1.append(data)


def table_rows(lines: list[str]) -> dict[str, list[str]]:
    """Aligned table lines as label -> cells (cells are apart by two spaces or more)."""
    return {
        cells[0]: cells[1:]
        for line in lines
        if (cells := re.split(r"\s{2,}", line.strip())) and not line.startswith("---")
    }


def tok_s(value: float) -> str:
    return f"{value:,.0f} tok/s"


def change(base: float, cand: float) -> str:
    rounded = round((cand / base - 1) * 100)
    return f"{rounded:+d}%" if rounded else "+0%"


# -- a stored baseline shows its column ---------------------------------------------------------


def test_a_stored_baseline_run_shows_the_baseline_column_in_every_output(
    pytester: pytest.Pytester,
) -> None:
    tasks(pytester, 2)
    assert run(pytester, f"--agentspeed-endpoint={FAST}", "--agentspeed-save=main").ret == 0
    result = run(
        pytester,
        f"--agentspeed-endpoint={SLOW}",
        "--agentspeed-compare=main",
        "--agentspeed-json=run.json",
        "--agentspeed-markdown=summary.md",
        "--agentspeed-html=report.html",
    )
    stored = read_run(pytester.path / ".agentspeed" / "baselines" / "main.json")
    cand = read_run(pytester.path / "run.json")
    (comparison,) = cand["comparisons"]
    assert comparison["against"] == "baseline main"
    base_p50 = stored["summary"][FAST]["throughput_tok_s"]["p50"]
    cand_p50 = cand["summary"][SLOW]["throughput_tok_s"]["p50"]
    column = f"{FAST} (baseline main)"
    first_row = [tok_s(base_p50), tok_s(cand_p50), change(base_p50, cand_p50)]

    # Terminal: the baseline's column, the candidate's, the difference; deciding rows first.
    out = result.outlines
    start = out.index(next(line for line in out if "= agentspeed =" in line)) + 1
    assert re.split(r"\s{2,}", out[start].strip()) == [column, SLOW, "difference"]
    assert [line[:24].strip() for line in out[start + 1 : start + 8]] == DECIDING
    assert set(out[start + 8]) == {"-"}
    rows = table_rows(out[start + 1 : start + 40])
    assert rows["session throughput P50"] == first_row
    assert rows["sessions"] == ["4", "4"]
    assert rows["pass rate"] == ["100%", "100%", "+0 pp"]

    # Markdown: the verdict first, then the same columns. A loaded machine may hold the
    # measuring process up: then a warning comes before the verdict.
    markdown = (pytester.path / "summary.md").read_text()
    verdict = (
        f"**{comparison['verdict']}** `{comparison['line']}`\n\n"
        f"- {SLOW} vs {FAST} (baseline main)\n"
    )
    assert re.match(
        r"## agentspeed\n\n(\*\*Warning:\*\* measurement compromised: .*\n\n)?"
        + re.escape(verdict),
        markdown,
    ), markdown[:400]
    table = markdown[markdown.index("\n|") + 1 :].splitlines()
    assert table[0] == f"|  | {column} | {SLOW} | difference |"
    assert table[2] == "| **session throughput P50** | " + " | ".join(first_row) + " |"
    assert table[9] == "| sessions | 4 | 4 |  |"

    # HTML: one banner, a header naming what is compared with what, the same columns.
    page = Page((pytester.path / "report.html").read_text())
    assert page.classes["banner"] == 1
    assert page.text["h1"] == f"agentspeed report: {SLOW} vs baseline main"
    summary = page.tables["summary-table"]
    assert summary[0] == ["", column, SLOW, "difference"]
    assert summary[1] == ["session throughput P50", *first_row]
    assert page.classes["key"] == len(DECIDING)


def test_report_command_with_a_baseline_file_has_one_banner_and_a_clear_header(
    tmp_path: Path,
) -> None:
    base, slower = paired_arms(0.75, 0.08, 10)
    gate = GateSettings()
    stored = analysed(run_record(arm("old", base)), gate)
    cand = run_record(arm("new", slower))
    # As a pytest run with --agentspeed-compare main writes it: its comparison is in the file.
    made = compare_runs(
        stored,
        cand,
        baseline_arm="old",
        candidate_arm="new",
        against="baseline main",
        settings=gate,
    )
    cand = analysed(cand, gate, extra=[made])
    write_run_file(tmp_path / "main.json", stored)
    write_run_file(tmp_path / "cand.json", cand)
    out = tmp_path / "r.html"
    result = agentspeed(
        "report",
        str(tmp_path / "cand.json"),
        "--baseline",
        str(tmp_path / "main.json"),
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    page = Page(html)
    assert page.classes["banner"] == 1
    assert html.count("-&gt; FAIL</code></h3>") == 1  # one block of comparison statistics
    assert page.text["h1"] == "agentspeed report: new vs baseline main.json"
    lead = re.search(r'<p class="lead">([^<]*)</p>', html)
    assert lead is not None
    assert lead.group(1).startswith(
        "10 sessions on new (2026-11-29T00:00:00+00:00) · baseline main.json: "
        "10 sessions on old (2026-11-29T00:00:00+00:00) · "
    )
    assert "<title>agentspeed report · new vs baseline main.json</title>" in html
    assert page.tables["summary-table"][0] == ["", "old (baseline main.json)", "new", "difference"]


def test_a_stored_baseline_with_two_arms_pairs_each_arm_with_its_own(tmp_path: Path) -> None:
    base, cand = paired_arms(0.8, 0.1, 10)
    stored = analysed(run_record(arm("A", base) + arm("B", base)), GateSettings())
    now = analysed(run_record(arm("A", cand) + arm("B", cand)), GateSettings())
    table = tables.table_of(now, stored, "baseline main")
    assert table.cells()[0] == [
        "",
        "A (baseline main)",
        "B (baseline main)",
        "A",
        "B",
        "A vs A (baseline main)",
        "B vs B (baseline main)",
        "B vs A",
    ]


# -- seconds per session by phase -------------------------------------------------------------


FAST_TWO = [
    session(
        "B",
        0,
        [
            turn(0, ttft=1.0, generation=0.5, tool=1.0, out=100),
            turn(1, ttft=1.0, generation=0.5, tool=0.0, out=600),
        ],
    ),
    session("B", 1, [turn(0, ttft=2.0, generation=0.5, tool=2.5, out=100)]),
]


def test_seconds_per_session_by_phase_side_by_side_with_the_difference() -> None:
    summary = summarize_run([*TWO_SESSIONS, *FAST_TWO], ["A", "B"], window_s=1800, concurrency=1)
    # A: TTFT 5 + 4 s, generation 4 + 1 s, tools 1 + 5 s over two sessions.
    assert summary["A"]["phase_s_per_session"] == {
        "retry_wait": 0.0,
        "ttft": 4.5,
        "reasoning": 0.0,
        "generation": 2.5,
        "tool": 3.0,
        "overhead": 0.0,
    }
    assert summary["B"]["phase_s_per_session"]["ttft"] == 2.0
    rows = {r[0]: r[1:] for r in tables.Table(summary=summary, columns=["A", "B"]).cells()}
    assert rows["time / session: ttft"] == ["4.50 s", "2.00 s", "-2.50 s"]
    assert rows["time / session: generation"] == ["2.50 s", "0.75 s", "-1.75 s"]
    assert rows["time / session: tool"] == ["3.00 s", "1.75 s", "-1.25 s"]
    assert rows["time / session: retry wait"] == ["0.00 s", "0.00 s", "+0.00 s"]

    html = render_report(analysed(run_record([*TWO_SESSIONS, *FAST_TWO]), GateSettings()))
    chart = html[html.index('aria-label="Seconds per session by phase"') :]
    chart = chart[: chart.index("</svg>")]
    assert ">4.50 s</text>" in chart
    assert ">2.00 s (-2.50 s)</text>" in chart


def test_run_files_without_seconds_per_phase_still_show_them() -> None:
    run = analysed(run_record([*TWO_SESSIONS, *FAST_TWO]), GateSettings())
    old = replace(
        run,
        summary={
            name: {k: v for k, v in s.items() if k != "phase_s_per_session"}
            for name, s in run.summary.items()
        },
    )
    rows = {r[0]: r[1:] for r in tables.table_of(old).cells()}
    assert rows["time / session: ttft"] == ["4.50 s", "2.00 s", "-2.50 s"]


# -- the deciding rows first, the verdict first ------------------------------------------------


def test_the_deciding_rows_lead_with_the_gate_metric() -> None:
    summary = summarize_run([*TWO_SESSIONS, *FAST_TWO], ["A", "B"], window_s=1800, concurrency=1)
    assert [r[0] for r in tables.table_cells(summary, ["A", "B"])[1:8]] == DECIDING
    table = tables.Table(summary=summary, columns=["A", "B"])
    assert table.key_rows == 7
    by_time = tables.Table(summary=summary, columns=["A", "B"], metric="session_wall_s")
    assert [r[0] for r in by_time.cells()[1:7]] == [
        "mean session time",
        "pass rate",
        "error rate",
        "TTFT P50",
        "decode P50",
        "tasks / window",
    ]
    assert by_time.key_rows == 6
    lines = table.lines()
    assert lines[8] == "-" * max(len(line) for line in lines)
    assert lines[9].startswith("sessions ")


def test_markdown_puts_the_verdict_first() -> None:
    base, cand = paired_arms(0.75, 0.08, 10)
    run = analysed(run_record(arm("A", base) + arm("B", cand)), GateSettings())
    (c,) = run.comparisons
    markdown = terminal.markdown_report(tables.table_of(run), run.comparisons, note="scaled")
    assert markdown.startswith(
        f"## agentspeed\n\n**FAIL** `{c.line}`\n\n- B vs A (this run)\n- {c.reasons[0]}\n"
    )
    lines = markdown.splitlines()
    header = lines.index("|  | A | B | difference |")
    assert lines[header + 2].startswith("| **session throughput P50** | ")
    assert lines[header + 9].startswith("| sessions | 10 | 10 |")
    assert lines[-1] == "_scaled_"


# -- no runs per window without a completed session --------------------------------------------


def test_an_arm_whose_every_session_errored_has_no_runs_per_window(tmp_path: Path) -> None:
    errored = [
        replace(s, outcome="error", error="connection refused") for s in arm("B", [40.0] * 5)
    ]
    run = analysed(run_record(arm("A", [50.0] * 5) + errored), GateSettings())
    assert run.summary["B"]["runs_per_window"] is None
    assert run.summary["B"]["tasks_per_window"] is None
    assert run.summary["A"]["runs_per_window"] == pytest.approx(18.0)
    write_run_file(tmp_path / "run.json", run)
    stored = read_run(tmp_path / "run.json")["summary"]["B"]
    assert stored["runs_per_window"] is None
    assert stored["tasks_per_window"] is None

    table = tables.table_of(run)
    rows = table_rows(table.lines())
    assert rows["runs / window"] == ["18.0", "-"]
    assert rows["tasks / window"] == ["18.0", "-"]
    markdown = terminal.markdown_report(table, run.comparisons)
    assert "| runs / window | 18.0 | - |  |" in markdown
    html = render_report(run)
    cells = {r[0]: r[1:] for r in Page(html).tables["summary-table"]}
    assert cells["runs / window"] == ["18.0", "-", ""]
    chart = html[html.index('aria-label="Runs and tasks per window"') :]
    chart = chart[: chart.index("</svg>")]
    assert chart.count('class="value"') == 4
    assert chart.count(">-</text>") == 2


# -- charts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "labels"),
    [
        (1.0, 1.2, ["1.00", "1.05", "1.10", "1.15", "1.20"]),
        (1.0, 1.12 * 1.08, ["1.00", "1.05", "1.10", "1.15", "1.20", "1.25"]),
        (1.0, 1.23 * 1.08, ["1.0", "1.1", "1.2", "1.3", "1.4"]),
        (1.0, 1.1, ["1.00", "1.05", "1.10"]),
        (0, 1, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (166, 270, ["150", "175", "200", "225", "250", "275"]),
        (0, 12_000, ["0", "2,500", "5,000", "7,500", "10,000", "12,500"]),
        (0.0012, 0.0031, ["0.0010", "0.0015", "0.0020", "0.0025", "0.0030", "0.0035"]),
        (2, 9, ["2", "4", "6", "8", "10"]),
    ],
)
def test_tick_labels_are_distinct_and_exact(lo: float, hi: float, labels: list[str]) -> None:
    ticks = charts.nice_ticks(lo, hi)
    assert charts.tick_labels(ticks) == labels
    assert ticks[0] <= lo
    assert ticks[-1] >= hi


def test_tick_labels_never_repeat_over_many_ranges() -> None:
    for lo in (0.0, 0.9, 1.0, 3.3, 150.0):
        for span in (0.013, 0.07, 0.23, 0.5, 1.7, 9.0, 44.0, 870.0):
            ticks = charts.nice_ticks(lo, lo + span)
            labels = charts.tick_labels(ticks)
            assert len(set(labels)) == len(labels), (lo, span, labels)
            assert [float(label.replace(",", "")) for label in labels] == pytest.approx(ticks)


def test_the_what_if_axis_has_distinct_ticks() -> None:
    # The chart: speed-ups of 1.05x and 1.12x were ticked 1, 1.1, 1.1, 1.1, 1.2, 1.2.
    svg = str(charts.bars([("A · 2x", 1.05), ("A · 10x", 1.12)], unit="x", title="t", start=1.0))
    labels = re.findall(r'<text class="tick-label"[^>]*>([^<]*)</text>', svg)
    assert labels == ["1.00", "1.05", "1.10", "1.15", "1.20", "1.25"]


def test_phases_have_their_own_palette() -> None:
    phase_colours = {colour for colour, _ in charts.PHASE_STYLE.values()}
    assert len(phase_colours) == len(charts.PHASE_STYLE)
    assert phase_colours.isdisjoint(charts.ARM_COLOURS)


def test_waterfall_numbers_every_turn_or_says_which() -> None:
    phases = {"ttft": 0.5, "generation": 0.25, "tool": 0.25}
    short = str(charts.waterfall([phases] * 12, ["ttft", "generation", "tool"]))
    labels = re.findall(r'<g class="tick-label" text-anchor="end">(.*?)</g>', short)[0]
    assert re.findall(r">(\d+)</text>", labels) == [str(i) for i in range(1, 13)]
    assert ">turn</text>" in short
    assert "seconds from session start (s)</text>" in short

    long = str(charts.waterfall([phases] * 100, ["ttft", "generation", "tool"]))
    labels = re.findall(r'<g class="tick-label" text-anchor="end">(.*?)</g>', long)[0]
    numbers = re.findall(r">(\d+)</text>", labels)
    assert numbers == ["1", *(str(i) for i in range(5, 101, 5))]
    assert "seconds from session start (s); turns numbered every 5</text>" in long
    assert [charts.turn_label_step(n) for n in (1, 40, 41, 80, 81, 200, 201, 4001)] == [
        1,
        1,
        2,
        2,
        5,
        5,
        10,
        200,
    ]


def test_sessions_table_has_a_repeat_column() -> None:
    base, cand = paired_arms(0.8, 0.1, 10)
    html = render_report(analysed(run_record(arm("A", base) + arm("B", cand)), GateSettings()))
    sessions = Page(html).tables["sessions"]
    assert sessions[0] == [
        "task",
        "endpoint",
        "repeat",
        "outcome",
        "agent time (s)",
        "output tokens",
        "tok/s",
        "turns",
    ]
    # Slot i is task t{i % 5}, repeat i // 5 (factories.session).
    assert [row[:3] for row in sessions[1::2][:7]] == [
        ["t0", "A", "0"],
        ["t1", "A", "0"],
        ["t2", "A", "0"],
        ["t3", "A", "0"],
        ["t4", "A", "0"],
        ["t0", "A", "1"],
        ["t1", "A", "1"],
    ]


def test_new_parts_of_the_report_in_chromium(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    base, cand = paired_arms(0.8, 0.1, 10)
    stored = analysed(run_record(arm("A", base)), GateSettings())
    now = analysed(run_record(arm("A", cand)), GateSettings())
    report = tmp_path / "report.html"
    report.write_text(render_report(now, baseline=stored, baseline_name="baseline main.json"))
    page, errors, requests, dialogs = open_page(browser, report)
    assert errors == []
    assert requests == [report.as_uri()]

    key = page.locator("#summary-table tr.key")
    assert key.count() == len(DECIDING)
    background = "el => getComputedStyle(el.querySelector('td')).backgroundColor"
    assert key.first.evaluate(background) == "rgb(255, 246, 221)"
    plain = page.locator("#summary-table tbody tr:not(.key)").first
    assert plain.evaluate(background) == "rgba(0, 0, 0, 0)"

    chart = page.locator("svg.chart[aria-label='Seconds per session by phase']")
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 400
    assert box["height"] > 200
    assert chart.locator("text.group-label").all_text_contents() == [
        charts.PHASE_LABELS[p] for p in charts.PHASE_STYLE
    ]

    def repeats() -> list[str]:
        return [
            str(v)
            for v in page.locator("#sessions tbody").evaluate_all(
                "els => els.map(e => e.dataset.repeat)"
            )
        ]

    page.click("#sessions th[data-key=repeat]")
    assert repeats() == ["0"] * 5 + ["1"] * 5
    page.click("#sessions th[data-key=repeat]")
    assert repeats() == ["1"] * 5 + ["0"] * 5
    assert dialogs == []
