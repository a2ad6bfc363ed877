"""Writes the golden files with the code of the day they were made (see ``inputs.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_agentspeed.edge.hooks import junit_properties
from pytest_agentspeed.outputs.html_report import render_report
from pytest_agentspeed.outputs.table import table_of
from pytest_agentspeed.outputs.terminal import markdown_report, scale_note
from pytest_agentspeed.runfile import write_run_file
from tests.golden.inputs import BASELINE_NAME, GATE, inputs

HERE = Path(__file__).parent

run, stored = inputs()
against = f"baseline {BASELINE_NAME}"
write_run_file(HERE / "run.json", run)
table = table_of(run, stored, against, metric=GATE.metric)
(HERE / "summary.md").write_text(markdown_report(table, run.comparisons, note=scale_note(run)))
(HERE / "report.html").write_text(
    render_report(run, baseline=stored, baseline_name=against, gate=GATE)
)
(HERE / "junit.json").write_text(
    json.dumps([junit_properties(s) for s in run.sessions], indent=1) + "\n"
)
