"""The run core without pytest's plugin machinery: the bench, and the exporters it writes with.

The bench driven by hand must measure what the plugin measures through pytest; the exporters
must write, byte for byte, what the code before them wrote (``tests/golden``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from golden.inputs import BASELINE_NAME, GATE, inputs
from scripted_server import Reply, ScriptedServer, text_reply, tool_reply
from test_plugin import make_task, read_run

from pytest_agentspeed.agents import Progress
from pytest_agentspeed.outputs.exporters import (
    HtmlReport,
    JUnitProperties,
    MarkdownSummary,
    RunFile,
    run_finished,
)
from pytest_agentspeed.records import RunRecord, SessionRecord
from pytest_agentspeed.run.bench import Bench
from pytest_agentspeed.run.judge import USAGE_ERROR_EXIT
from pytest_agentspeed.run.spool import SPOOL_DIR, read_spool
from pytest_agentspeed.settings import Settings
from pytest_agentspeed.tasks import load_task

GOLDEN = Path(__file__).parent / "golden"
TASKS = ("alpha", "beta")


class Lines:
    """A console that keeps the bench's lines; sessions report no progress."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, bool]] = []

    def line(self, text: str, *, yellow: bool = False) -> None:
        self.lines.append((text, yellow))

    def progress(self, name: str) -> Progress:
        return lambda turns, output_tokens, elapsed_s: None


def fixing_model() -> ScriptedServer:
    """Per session: write the fixed greeting, then say it is done."""
    write = tool_reply([("write_file", {"path": "greeting.txt", "content": "hello world\n"})])
    done = text_reply(first_event=0, first_token=0, step=0, pieces=["Fixed", "."])
    return ScriptedServer([Reply(write), Reply(done)] * len(TASKS))


def settings(rootdir: Path, **options: Any) -> Settings:
    return Settings.resolve(options.get, rootdir=rootdir)


def measured(session: dict[str, Any]) -> dict[str, Any]:
    """What a session measured, without its timings."""
    keep = ("id", "task", "endpoint", "repeat", "slot", "agent", "outcome", "usage")
    return {k: session[k] for k in keep} | {
        "turns": [
            (t["stop_reason"], t["usage"], [c["name"] for c in t["tool_calls"]])
            for t in session["turns"]
        ]
    }


def test_the_bench_measures_what_the_plugin_measures(
    tmp_path: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    for name in TASKS:
        make_task(tmp_path, name)
        make_task(pytester.path, name)
    console = Lines()
    with fixing_model().running() as script:
        spec = f"anthropic:claude-test@{script.url}"
        bench = Bench(settings(tmp_path, endpoint=[spec]), console)
        try:
            (slot,) = bench.slots
            for name in TASKS:
                task = load_task(tmp_path / name / "agenttask.toml")
                result = bench.run_task(task, slot)
                bench.judge(task, slot, result)  # passed: does not raise
            finish = bench.finish()
        finally:
            bench.close()
    by_hand = [s.to_json() for s in finish.run.sessions]
    assert [s["id"] for s in by_hand] == [
        "alpha[anthropic:claude-test-r0]",
        "beta[anthropic:claude-test-r0]",
    ]
    assert [s["outcome"] for s in by_hand] == ["passed", "passed"]
    assert [[c for _, _, c in measured(s)["turns"]] for s in by_hand] == [[["write_file"], []]] * 2
    assert (finish.notice, finish.baseline_error, finish.output_error) == (None, None, None)
    assert finish.exit_status is None
    assert console.lines == []
    assert not (tmp_path / SPOOL_DIR).exists()  # every output written: the spool went

    with fixing_model().running() as script:
        result = pytester.runpytest(
            f"--agentspeed-endpoint=anthropic:claude-test@{script.url}",
            "--agentspeed-json=run.json",
            "-p",
            "no:cacheprovider",
        )
    result.assert_outcomes(passed=2)
    through_pytest = read_run(pytester.path / "run.json")["sessions"]
    assert [measured(s) for s in by_hand] == [measured(s) for s in through_pytest]


class Broken:
    """An exporter whose target cannot be written."""

    target = "/nowhere/run.json"

    def session_finished(self, record: SessionRecord) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        raise PermissionError(13, "Permission denied")


class Kept:
    """An exporter that keeps what it is handed."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.runs: list[RunRecord] = []

    def session_finished(self, record: SessionRecord) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        self.runs.append(run)


def test_the_first_exporter_that_cannot_write_stops_the_rest() -> None:
    run, _ = inputs()
    before, after = Kept("before"), Kept("after")
    failure = run_finished([before, Broken(), after], run)
    assert failure is not None
    assert failure.target == "/nowhere/run.json"
    assert failure.error.strerror == "Permission denied"
    assert (before.runs, after.runs) == ([run], [])
    assert run_finished([before, after], run) is None
    assert after.runs == [run]


def test_a_write_error_keeps_the_spool_and_asks_for_exit_4(tmp_path: Path) -> None:
    """The outputs in today's order: the run file cannot be written, so the markdown after it
    is not tried, and the session stays in the spool."""
    (tmp_path / "afile").write_text("a file, not a directory\n")
    target, markdown = tmp_path / "afile" / "run.json", tmp_path / "summary.md"
    bench = Bench(
        settings(tmp_path, agent="oracle", json=str(target), markdown=str(markdown)), Lines()
    )
    task = load_task(make_task(tmp_path, "alpha") / "agenttask.toml")
    (slot,) = bench.slots
    try:
        result = bench.run_task(task, slot)
        finish = bench.finish()
    finally:
        bench.close()
    assert result.record.outcome == "passed"
    assert finish.output_error == (
        f"cannot write {target}: File exists; the run's sessions are kept in "
        f"{tmp_path / SPOOL_DIR} (agentspeed merge reads them)"
    )
    assert finish.exit_status == USAGE_ERROR_EXIT
    assert not markdown.exists()
    spool = tmp_path / SPOOL_DIR / f"{bench.run_id}.main.jsonl"
    assert read_spool(spool).sessions == (result.record,)


def test_the_exporters_write_what_the_code_before_them_wrote(tmp_path: Path) -> None:
    run, stored = inputs()
    against = f"baseline {BASELINE_NAME}"
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("## an earlier step\n\n")
    exporters = [
        RunFile(tmp_path / "run.json"),
        RunFile(tmp_path / "baselines" / "main.json"),
        MarkdownSummary(
            tmp_path / "summary.md", stored=stored, against=against, metric=GATE.metric
        ),
        HtmlReport(tmp_path / "report.html", stored=stored, against=against, gate=GATE),
        MarkdownSummary(
            step_summary, stored=stored, against=against, metric=GATE.metric, append=True
        ),
    ]
    assert run_finished(exporters, run) is None
    properties = []
    for session in run.sessions:
        junit = JUnitProperties([])
        junit.session_finished(session)
        properties.append(junit.into)
    (tmp_path / "junit.json").write_text(json.dumps(properties, indent=1) + "\n")

    def golden(name: str) -> bytes:
        return (GOLDEN / name).read_bytes()

    assert (tmp_path / "run.json").read_bytes() == golden("run.json")
    assert (tmp_path / "baselines" / "main.json").read_bytes() == golden("run.json")
    assert (tmp_path / "summary.md").read_bytes() == golden("summary.md")
    assert step_summary.read_bytes() == b"## an earlier step\n\n" + golden("summary.md")
    assert (tmp_path / "report.html").read_bytes() == golden("report.html")
    assert (tmp_path / "junit.json").read_bytes() == golden("junit.json")


def test_simulated_endpoints_that_name_no_wire_speak_the_external_agents(
    tmp_path: Path,
) -> None:
    """The wire comes from the agent registry, without making the agent (which would import it
    in every pytest run): the bench of a codex run has its open simulated endpoints on the
    Responses wire, a named wire and a real endpoint as they were."""
    specs = ["sim:standard", "sim:ultraspeed?api=openai", "openai:m@http://127.0.0.1:1/v1"]
    bench = Bench(settings(tmp_path, endpoint=specs, agent="codex"), Lines())
    try:
        assert [e.api for e in bench.settings.endpoints] == ["responses", "openai", "openai"]
        assert bench.endpoints["sim:standard"].api == "responses"
    finally:
        bench.close()
    # Making a bench (every pytest run does) imports no agent.
    code = (
        "import sys, pathlib\n"
        "from pytest_agentspeed.run.bench import Bench\n"
        "from pytest_agentspeed.settings import Settings\n"
        "s = Settings.resolve({'agent': 'codex'}.get, rootdir=pathlib.Path(sys.argv[1]))\n"
        "Bench(s, None).close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('pytest_agentspeed.agents.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "['pytest_agentspeed.agents.seam']"
    builtin = Bench(settings(tmp_path, endpoint=specs), Lines())
    try:
        assert [e.api for e in builtin.settings.endpoints] == ["anthropic", "openai", "openai"]
    finally:
        builtin.close()
