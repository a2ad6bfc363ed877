"""The HTML report: rendered from real and hand-made runs, checked in real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import pytest
from factories import arm, paired_arms, run_record
from test_plugin import read_run

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.outputs.charts import nice_ticks
from pytest_agentspeed.outputs.html_report import render_report
from pytest_agentspeed.records import ToolCallRecord

CHROMIUM = "/usr/bin/chromium"
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by playwright (its own browser download does not work here)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("AGENTSPEED_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing but AGENTSPEED_REQUIRE_BROWSER is set")
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def missing(reason: str) -> NoReturn:
    """Skip where a browser is optional; fail where CI says it must run."""
    if os.environ.get("AGENTSPEED_REQUIRE_BROWSER"):
        pytest.fail(f"{reason}, and AGENTSPEED_REQUIRE_BROWSER is set")
    pytest.skip(reason)


def artifact_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("AGENTSPEED_ARTIFACT_DIR") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(browser: Any, report: Path) -> tuple[Any, list[str], list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests, dialogs


def test_report_of_the_example_suite_in_chromium(
    pytester: pytest.Pytester, example_suite: Path, browser: Any, tmp_path: Path
) -> None:
    for name in ("fix-pagination-off-by-one", "empty-stock-report"):
        shutil.copytree(example_suite / name, pytester.path / name)
    result = pytester.runpytest_subprocess(
        "--agentspeed-endpoint=sim:standard?jitter=0",
        "--agentspeed-endpoint=sim:ultraspeed?jitter=0",
        "--agentspeed-repeat=3",
        "--agentspeed-time-scale=0.05",
        "--agentspeed-json=run.json",
        "--agentspeed-html=report.html",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["report: report.html"])
    report = pytester.path / "report.html"
    page, errors, requests, dialogs = open_page(browser, report)

    assert errors == []
    assert requests == [report.as_uri()]  # nothing fetched but the file itself
    # The banner states the verdict the run decided, and its line (which verdict a run of
    # tool-running tasks gets on a loaded machine is test_gate's business, not the report's).
    (comparison,) = read_run(pytester.path / "run.json")["comparisons"]
    assert page.locator("#verdict .banner .verdict").all_text_contents() == [comparison["verdict"]]
    assert page.locator("#verdict code").first.text_content() == comparison["line"]
    header = page.locator("#summary-table thead th").all_text_contents()
    assert header[1:] == ["sim:standard?jitter=0", "sim:ultraspeed?jitter=0", "difference"]
    assert page.locator("#summary-table tbody tr").count() >= 20

    charts = page.locator("svg.chart:visible")
    assert charts.count() >= 6
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 40
    for label in (
        "share of session time (%)",
        "session throughput (output tok/s)",
        "time to first token (s)",
    ):
        assert page.locator(f"svg.chart text:has-text('{label}')").count() == 1

    def order() -> list[float]:
        return [
            float(v)
            for v in page.locator("#sessions tbody").evaluate_all(
                "els => els.map(e => e.dataset.tps)"
            )
        ]

    before = order()
    page.click("#sessions th[data-key=tps]")
    ascending = order()
    assert ascending == sorted(before)
    assert ascending != before
    page.click("#sessions th[data-key=tps]")
    assert order() == sorted(before, reverse=True)

    page.fill("#filter", "empty-stock")
    assert page.locator("#sessions tbody:visible").count() == 6
    assert page.locator("#shown").text_content() == "6 of 12 sessions"
    page.fill("#filter", "")

    first = page.locator("#sessions tr.session").first
    detail = page.locator("#sessions tr.detail").first
    assert not detail.is_visible()
    first.click()
    assert detail.is_visible()
    assert first.get_attribute("aria-expanded") == "true"
    waterfall = detail.locator("svg.chart")
    assert waterfall.count() == 1
    assert (waterfall.bounding_box() or {"height": 0})["height"] > 40
    assert detail.locator("svg.chart path").count() >= 3

    page.screenshot(path=str(artifact_dir(tmp_path) / "report.png"), full_page=True)
    assert dialogs == []
    run = read_run(pytester.path / "run.json")
    assert len(run["sessions"]) == 12


def hostile_run() -> Any:
    base, cand = paired_arms(0.8, 0.1, 10)
    # Every string a run file carries can be hostile: task and endpoint names, tool names the
    # model chose, stop reasons and error messages from servers.
    sessions = arm("A", base) + [replace(s, endpoint=f"B{ATTRIBUTE}") for s in arm("B", cand)]
    evil = sessions[0]
    turn = replace(
        evil.turns[0],
        tool_calls=(ToolCallRecord(name=SCRIPT, start_s=0.0, wall_s=0.1, ok=False),),
        stop_reason=ATTRIBUTE,
        error=f"turn {SCRIPT}",
    )
    sessions[0] = replace(
        evil, task=f"task{ATTRIBUTE}", error=f"server said {SCRIPT}", turns=(turn,)
    )
    run = run_record(sessions)
    return analysed(run, GateSettings())


def test_strings_from_models_tools_and_files_are_text(browser: Any, tmp_path: Path) -> None:
    html = render_report(hostile_run())
    assert SCRIPT not in html
    assert ATTRIBUTE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    report = tmp_path / "hostile.html"
    report.write_text(html)
    page, errors, requests, dialogs = open_page(browser, report)
    page.locator("#sessions tr.session").first.click()
    page.wait_for_timeout(200)
    text = page.locator("body").inner_text()
    assert SCRIPT in text
    assert f"task{ATTRIBUTE}" in text
    assert f"B{ATTRIBUTE}" in text
    assert dialogs == []
    assert errors == []
    assert requests == [report.as_uri()]
    assert page.locator("img").count() == 0


def test_report_is_self_contained_and_states_the_time_scale() -> None:
    base, cand = paired_arms(0.8, 0.1, 10)
    html = render_report(analysed(run_record(arm("A", base) + arm("B", cand)), GateSettings()))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<link" not in html
    assert "Simulated delays were scaled by <strong>0.05</strong>" in html
    assert html.count('<svg class="chart"') >= 6 + 20  # six charts and a waterfall per session
    # The banner's verdict (not the CSS class ".v-FAIL", which every report carries).
    assert re.findall(r'<div class="verdict">([^<]*)</div>', html) == ["FAIL"]


def test_report_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pytest_agentspeed.runfile import write_run_file

    base, cand = paired_arms(0.8, 0.1, 10)
    write_run_file(tmp_path / "cand.json", analysed(run_record(arm("new", cand)), GateSettings()))
    write_run_file(tmp_path / "base.json", analysed(run_record(arm("old", base)), GateSettings()))
    out = tmp_path / "r.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_agentspeed",
            "report",
            str(tmp_path / "cand.json"),
            "-o",
            str(out),
            "--baseline",
            str(tmp_path / "base.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert "old (baseline base.json)" in html
    assert "-&gt; FAIL" in html
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_agentspeed",
            "report",
            str(tmp_path / "nope.json"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


def test_nice_ticks_cover_the_range() -> None:
    assert nice_ticks(166, 270) == [150, 175, 200, 225, 250, 275]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(1.0, 1.2) == [1.0, 1.05, 1.1, 1.15, 1.2]
    assert nice_ticks(5, 5)[-1] >= 5
