"""``agentspeed`` at the edges: shards that cannot be merged, a run without sessions, a port
already taken. Each is one line on stderr and exit 2, nothing written."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import agentspeed
from factories import arm, paired_arms, run_record

from pytest_agentspeed.records import EndpointRecord, RunRecord
from pytest_agentspeed.runfile import write_run_file


def shards() -> tuple[RunRecord, RunRecord]:
    """Two shards of one A/B job: tasks t0, t1 in the first, t2-t4 in the second."""
    base, _ = paired_arms(1.0, 0.1, 10)
    sessions = arm("A", base) + arm("B", base * 0.9)
    return (
        run_record([s for s in sessions if s.task in ("t0", "t1")]),
        run_record([s for s in sessions if s.task not in ("t0", "t1")]),
    )


def _config(run: RunRecord, **changes: Any) -> RunRecord:
    return replace(run, config=dict(run.config, **changes))


def _other_model(run: RunRecord) -> RunRecord:
    a, b = run.endpoints
    return replace(run, endpoints=(replace(a, model="m2"), b))


def _other_baseline(run: RunRecord) -> RunRecord:
    return replace(run, endpoints=tuple(reversed(run.endpoints)))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: _config(r, agent="oracle"), "agent differs (builtin vs oracle)"),
        (lambda r: _config(r, time_scale=0.1), "time scale differs (0.05 vs 0.1)"),
        (lambda r: _config(r, window_s=900.0), "window differs (1800.0 vs 900.0)"),
        (
            lambda r: replace(r, environment={"concurrency": 2}),
            "concurrency differs (1 vs 2)",
        ),
        (_other_model, "endpoint 'A' is configured differently"),
        (_other_baseline, "the baseline endpoints differ"),
    ],
    ids=["agent", "time scale", "window", "concurrency", "endpoint", "baseline arm"],
)
def test_shards_of_different_jobs_are_not_merged(tmp_path: Path, change: Any, problem: str) -> None:
    first, second = shards()
    one, two, out = tmp_path / "s1.json", tmp_path / "s2.json", tmp_path / "all.json"
    write_run_file(one, first)
    write_run_file(two, change(second))
    result = agentspeed("merge", one, two, "-o", out)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"agentspeed merge: error: cannot merge {one} and {two}: {problem}\n"
    assert not out.exists()

    # The unchanged shards merge: the refusal is the difference's, not the files'.
    write_run_file(two, second)
    assert agentspeed("merge", one, two, "-o", out).returncode == 0
    assert out.exists()


def test_an_endpoint_only_one_shard_ran_is_not_a_conflict(tmp_path: Path) -> None:
    first, second = shards()
    extra = EndpointRecord(name="C", api="anthropic", model="m", base_url=None)
    one, two, out = tmp_path / "s1.json", tmp_path / "s2.json", tmp_path / "all.json"
    write_run_file(one, first)
    write_run_file(two, replace(second, endpoints=(*second.endpoints, extra)))
    result = agentspeed("merge", one, two, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"merged 20 sessions from 2 runs into {out}\n"


@pytest.mark.parametrize("position", ["baseline", "candidate"])
def test_compare_refuses_a_run_without_sessions(tmp_path: Path, position: str) -> None:
    empty, full = tmp_path / "empty.json", tmp_path / "full.json"
    write_run_file(empty, run_record([]))
    write_run_file(full, run_record(arm("old", paired_arms(1.0, 0.1, 10)[0])))
    files = (empty, full) if position == "baseline" else (full, empty)
    result = agentspeed("compare", *files)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"agentspeed compare: error: {empty}: the run has no sessions\n"


def test_sim_on_a_port_already_in_use_says_so(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pytest_agentspeed", "sim", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"agentspeed sim: error: cannot listen on port {port}: [Errno 98] Address already in use\n"
    )
