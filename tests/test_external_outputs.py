"""A run with sessions of an agent measured from outside (turns placed on the session's
timeline, side requests, its process), through every output: the run file, the metrics, the
table, the markdown summary and the HTML report (in Chromium too)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from factories import arm, external_session, run_record
from test_report import browser, open_page  # noqa: F401  (browser is a fixture)

from pytest_agentspeed import cli
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.metrics import summarize_arm
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.outputs import charts
from pytest_agentspeed.outputs.html_report import render_report
from pytest_agentspeed.outputs.table import table_of
from pytest_agentspeed.outputs.terminal import markdown_report
from pytest_agentspeed.records import SCHEMA
from pytest_agentspeed.runfile import read_run_file, write_run_file
from pytest_agentspeed.timing import ALL_PHASES, PHASES

TAIL = "Error: the model said <script>alert(1)</script>"


def external_run() -> Any:
    """Arm ``ext``: four sessions of an external agent, the third not streamed, the fourth an
    error with its output's tail."""
    sessions = [
        external_session("ext", 0),
        external_session("ext", 1),
        external_session("ext", 2, streamed=False),
        external_session("ext", 3, outcome="error", output_tail=TAIL),
    ]
    return analysed(run_record(sessions), GateSettings())


def test_the_factory_session_adds_up() -> None:
    s = external_session("ext", 0)
    assert s.wall_s == 1.4
    # Start-up 100 ms, 2 ms of overhead, 100 ms TTFT and 100 ms generation per turn, 198 ms of
    # the agent's own time between turns, wind-down 298 ms.
    expected_ms = {"overhead": 6, "ttft": 300, "generation": 300}
    expected_ms |= {"startup": 100, "agent": 396, "winddown": 298}
    assert s.phases_s == {p: expected_ms.get(p, 0) * 1_000_000 / 1e9 for p in ALL_PHASES}
    assert [t.start_s for t in s.turns] == [0.1, 0.5, 0.9]
    assert s.usage.output_tokens == 22
    assert s.process is not None
    assert (s.process.startup_s, s.process.winddown_s) == (0.1, 0.298)


def test_run_file_round_trip_keeps_the_new_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = external_run()
    path = tmp_path / "run.json"
    write_run_file(path, run)
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA == "agentspeed.run/1"
    session = data["sessions"][3]
    assert [t["start_s"] for t in session["turns"]] == [0.1, 0.5, 0.9]
    assert [r["why"] for r in session["side_requests"]] == ["no tools"]
    assert session["process"] == {
        "program": "claude",
        "exit_code": 1,
        "timed_out": False,
        "startup_s": 0.1,
        "winddown_s": 0.298,
        "output_tail": TAIL,
    }
    assert set(session["phases_s"]) == set(ALL_PHASES)
    assert set(session["turns"][0]["phases_s"]) == {*PHASES, "agent"}
    assert read_run_file(path) == run

    # `agentspeed show` prints the table of the file it reads: the external rows with it.
    assert cli.main(["show", str(path)]) == 0
    shown = {re.split(r"\s{2,}", line)[0]: line for line in capsys.readouterr().out.splitlines()}
    assert re.split(r"\s{2,}", shown["time / session: agent"]) == [
        "time / session: agent",
        "0.40 s",
    ]
    assert re.split(r"\s{2,}", shown["share: startup"]) == ["share: startup", "7%"]


def test_metrics_report_the_external_phases_and_their_shares_sum_to_one() -> None:
    run = external_run()
    summary = summarize_arm(run.sessions, window_s=1800.0, concurrency=1)
    assert list(summary["phase_share"]) == list(ALL_PHASES)
    assert sum(summary["phase_share"].values()) == 1.0
    assert summary["phase_s_per_session"]["agent"] == 0.396
    assert summary["side_requests_per_session"] == 1.0
    # Three turns a session, one of the twelve not streamed.
    assert summary["non_streamed_turn_share"] == 1 / 12
    builtin = summarize_arm(arm("A", [50.0]), window_s=1800.0, concurrency=1)
    assert list(builtin["phase_share"]) == list(PHASES)
    assert "side_requests_per_session" not in builtin


def test_table_and_markdown_show_the_external_rows_only_where_a_column_has_them() -> None:
    mixed = analysed(
        run_record([*arm("A", [50.0, 60.0]), external_session("ext", 0)]), GateSettings()
    )
    table = table_of(mixed)
    cells = {row[0]: row[1:] for row in table.cells()}
    assert cells["time / session: startup"][:2] == ["-", "0.10 s"]
    assert cells["time / session: agent"][:2] == ["-", "0.40 s"]
    assert cells["time / session: winddown"][:2] == ["-", "0.30 s"]
    assert cells["share: agent"][:2] == ["-", "28%"]
    assert cells["side requests / session"][:2] == ["-", "1.0"]
    assert cells["non-streamed turns (TTFT = whole response)"][:2] == ["-", "0%"]
    assert table.phases == list(ALL_PHASES)

    builtin = table_of(analysed(run_record(arm("A", [50.0, 60.0])), GateSettings()))
    labels = [row[0] for row in builtin.cells()]
    assert not any("startup" in label or "side requests" in label for label in labels)
    assert builtin.phases == list(PHASES)

    markdown = markdown_report(table, mixed.comparisons)
    assert "| time / session: agent | - | 0.40 s |" in markdown
    assert "| share: winddown | - | 21% |" in markdown
    assert "| side requests / session | - | 1.0 |" in markdown


def test_html_report_draws_side_requests_and_shows_the_process() -> None:
    html = render_report(external_run())
    # One outlined bar per session's title request, labelled with why it is no turn.
    assert html.count('class="side-request"') == 4
    assert html.count(">no tools · small</text>") == 4
    assert html.count("agent process <code>claude</code>: exit code 0") == 3
    assert html.count("agent process <code>claude</code>: exit code 1") == 1
    assert "start-up 0.10 s · wind-down 0.30 s · 1 side request" in html
    # Only the error session's output tail, escaped.
    assert html.count('class="output-tail"') == 1
    assert "Error: the model said &lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The non-streamed turn is numbered with a star and said why.
    assert html.count("not streamed (marked *): turn 2;") == 1
    assert ">2*</text>" in html
    assert "* not streamed: TTFT is the whole response" in html
    for phase in ("startup", "agent", "winddown"):
        assert f'id="p-{phase}"' in html
        assert charts.PHASE_LABELS[phase] in html


def test_html_report_of_an_external_agent_in_chromium(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    report = tmp_path / "report.html"
    report.write_text(render_report(external_run()))
    page, errors, requests, dialogs = open_page(browser, report)
    assert errors == []
    assert requests == [report.as_uri()]
    assert dialogs == []

    rows = page.locator("#sessions tr.session")
    rows.nth(0).click()
    detail = page.locator("#sessions tr.detail").nth(0)
    assert detail.is_visible()
    side = detail.locator("rect.side-request")
    assert side.count() == 1
    box = side.bounding_box()
    assert box is not None
    assert box["width"] > 10
    turn_boxes = [b for b in (p.bounding_box() for p in detail.locator("path").all()) if b]
    # The side request starts where turn 1 does (2 ms later), and lies under every turn.
    assert box["y"] > max(b["y"] for b in turn_boxes)
    assert "agent process claude: exit code 0" in detail.inner_text()

    rows.nth(3).click()
    tail = page.locator("#sessions tr.detail").nth(3).locator("pre.output-tail")
    assert tail.is_visible()
    assert tail.inner_text() == TAIL
