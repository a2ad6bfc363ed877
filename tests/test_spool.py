"""Nothing measured is lost: the spool, recovery after a kill, and parallel runs under xdist."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import session
from test_plugin import make_task, read_run

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.errors import RunFileError
from pytest_agentspeed.records import RunRecord
from pytest_agentspeed.run.spool import (
    SPOOL_DIR,
    Spool,
    abandoned,
    read_spool,
    recover,
    spool_path,
)

HEADER = RunRecord(
    created_at="2026-11-29T00:00:00+00:00",
    agentspeed_version="0",
    environment={"concurrency": 1},
    config={"window_s": 1800.0, "repeat": 1, "time_scale": 0.05, "agent": "builtin"},
    endpoints=(),
    sessions=(),
)


def _spool_and_die(path: Path, slots: list[int]) -> None:
    """Spool sessions in a child process that then dies without cleaning up (as when killed):
    the file stays, its lock goes with the process."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from factories import session
        from test_spool import HEADER
        from pytest_agentspeed.run.spool import Spool
        spool = Spool(__import__("pathlib").Path({str(path)!r}), HEADER)
        for slot in {slots!r}:
            spool.append(session("a", slot, 50.0))
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_spool_round_trip_and_a_line_cut_by_a_kill(tmp_path: Path) -> None:
    path = spool_path(tmp_path, "run1", "main")
    spool = Spool(path, HEADER)
    records = [session("a", i, 50.0) for i in range(3)]
    for record in records:
        spool.append(record)
    assert [s.id for s in read_spool(path).sessions] == [r.id for r in records]
    # A kill mid-write leaves a partial last line: it is skipped, the rest recovered.
    with path.open("a") as f:
        f.write('{"id": "t[a-r3]", "ta')
    run = read_spool(path)
    assert [s.id for s in run.sessions] == [r.id for r in records]
    assert run.config == HEADER.config
    spool.discard()
    assert not path.exists()


def test_bad_spool_files_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("not json\n")
    with pytest.raises(RunFileError, match=r"x.jsonl: not an agentspeed spool file"):
        read_spool(path)
    path.write_text(json.dumps({"spool": "agentspeed.spool/1", "run": HEADER.to_json()}) + "\nxx\n")
    with pytest.raises(RunFileError, match=r"x.jsonl: line 2 is not a session record"):
        read_spool(path)


def test_a_live_runs_spool_is_not_recovered(tmp_path: Path) -> None:
    live = Spool(spool_path(tmp_path, "live", "main"), HEADER)
    live.append(session("a", 0, 50.0))
    dead = spool_path(tmp_path, "dead", "gw0")
    _spool_and_die(dead, [1])
    assert abandoned(tmp_path) == [dead]
    written = recover(tmp_path, GateSettings())
    target = tmp_path / ".agentspeed" / "recovered" / "dead.json"
    assert written == [(target, 1)]
    recovered = read_run(target)
    assert [s["id"] for s in recovered["sessions"]] == [session("a", 1, 50.0).id]
    assert list(recovered["summary"]) == ["a"]
    assert recovered["summary"]["a"]["sessions"] == 1
    assert recovered["summary"]["a"]["throughput_tok_s"]["p50"] == 50.0
    assert not dead.exists()
    assert spool_path(tmp_path, "live", "main").exists()
    live.discard()


#: A check that holds its session until the test releases it (or two minutes pass): the run is
#: killed while it waits, so exactly the sessions before it have finished, however slowly the
#: machine runs. Released in the test's cleanup, so nothing outlives it for long.
HOLD = """
import pathlib, sys, time
release = pathlib.Path(sys.argv[1])
for _ in range(2400):
    if release.exists():
        break
    time.sleep(0.05)
"""


def _tasks(root: Path, done: int, held: int) -> list[str]:
    """``done`` tasks with an instant check, then ``held`` whose check waits for a release
    file; returns the ids of the sessions that can finish."""
    (root / "hold.py").write_text(HOLD)
    for i in range(done + held):
        command = "true" if i < done else f"python {root / 'hold.py'} {root / 'release'}"
        make_task(
            root,
            f"task{i}",
            body=f"""
                instruction = "Task {i}: nothing to do."
                [check]
                command = "{command}"
                timeout_s = 300
            """,
        )
    return [f"task{i}[oracle-r0]" for i in range(done)]


@pytest.fixture
def release(tmp_path: Path) -> Iterator[None]:
    yield
    (tmp_path / "release").touch()


def _spooled_ids(root: Path) -> list[str]:
    ids = []
    for path in sorted((root / SPOOL_DIR).glob("*.jsonl")):
        lines = path.read_bytes().split(b"\n")[1:-1]
        ids += [json.loads(line)["id"] for line in lines]
    return ids


def test_sigkill_then_merge_recovers_exactly_the_finished_sessions(
    tmp_path: Path, release: None
) -> None:
    done = _tasks(tmp_path, 3, 5)
    out = tmp_path / "out.txt"
    with out.open("w") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"),
                *("--agentspeed-agent=oracle", "--agentspeed-json=run.json"),
            ],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300  # a deadline only: the held check keeps the count at 3
        while len(_spooled_ids(tmp_path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finished = _spooled_ids(tmp_path)
    assert finished == done, out.read_text()
    assert not (tmp_path / "run.json").exists()
    # Every item pytest reported done is in the spool (oracle items are named by task).
    lines = out.read_text().splitlines()
    reported = {line.split("::")[1].split("[")[0] for line in lines if " PASSED" in line}
    assert reported <= {sid.split("[")[0] for sid in finished}

    merged = subprocess.run(
        [
            *(sys.executable, "-m", "pytest_agentspeed", "merge", str(tmp_path / SPOOL_DIR)),
            *("-o", str(tmp_path / "recovered.json")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.startswith(f"merged {len(finished)} sessions from 1 runs into ")
    run = read_run(tmp_path / "recovered.json")
    assert [s["id"] for s in run["sessions"]] == done
    assert run["config"]["agent"] == "oracle"


INTERRUPTIBLE_PYTEST = (
    "import signal, sys, pytest; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


def test_ctrl_c_writes_the_finished_sessions(tmp_path: Path, release: None) -> None:
    done = _tasks(tmp_path, 2, 6)
    proc = subprocess.Popen(
        [
            # Ctrl-C as a terminal delivers it, even when this test itself runs in the
            # background (a shell's "cmd &"), whose children inherit SIGINT ignored.
            *(sys.executable, "-c", INTERRUPTIBLE_PYTEST, "-q", "-p", "no:cacheprovider"),
            *("--agentspeed-agent=oracle", "--agentspeed-json=run.json"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300  # a deadline only: the held check keeps the count at 2
    while len(_spooled_ids(tmp_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    # A deadline, not a measurement: winding down (the summary imports scipy) takes seconds,
    # and many more on a loaded machine.
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    run = read_run(tmp_path / "run.json")
    assert [s["id"] for s in run["sessions"]] == done
    # Written whole, the spool is gone: nothing for the next run to recover.
    assert not (tmp_path / ".agentspeed").exists()


def test_the_next_run_recovers_an_interrupted_one(pytester: pytest.Pytester) -> None:
    path = spool_path(pytester.path, "20261129T000000-abcdef", "main")
    _spool_and_die(path, [0])
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    target = Path(".agentspeed") / "recovered" / "20261129T000000-abcdef.json"
    result.stdout.fnmatch_lines(
        [f"agentspeed: recovered 1 sessions of an interrupted run into *{target}*"]
    )
    recovered = read_run(pytester.path / target)["sessions"]
    assert [s["id"] for s in recovered] == [session("a", 0, 50.0).id]
    assert not path.exists()


def test_a_completed_run_leaves_no_spool(pytester: pytest.Pytester) -> None:
    make_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess(
        "--agentspeed-agent=oracle", "--agentspeed-json=run.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".agentspeed").exists()


def test_an_output_that_cannot_be_written_keeps_the_sessions(pytester: pytest.Pytester) -> None:
    make_task(pytester.path, "alpha")
    (pytester.path / "outputs").mkdir()
    early = pytester.runpytest_subprocess("--agentspeed-agent=oracle", "--agentspeed-json=outputs")
    assert early.ret == pytest.ExitCode.USAGE_ERROR
    early.stderr.fnmatch_lines(["ERROR: --agentspeed-json outputs: is a directory; give a file*"])
    # A path that only fails at the end (its parent is a file): one line, sessions kept.
    (pytester.path / "afile").write_text("")
    late = pytester.runpytest_subprocess(
        "--agentspeed-agent=oracle", "--agentspeed-json=afile/run.json", "-p", "no:cacheprovider"
    )
    assert late.ret == pytest.ExitCode.USAGE_ERROR
    late.stdout.fnmatch_lines(
        ["ERROR: cannot write afile/run.json: *; the run's sessions are kept*"]
    )
    assert "Traceback" not in late.stdout.str() + late.stderr.str()
    assert [s.split("[")[0] for s in _spooled_ids(pytester.path)] == ["alpha"]


RECORD_SCHEDULE = textwrap.dedent(
    """
    import json
    from pathlib import Path

    def pytest_sessionfinish(session):
        # The controller's simulated endpoint: every worker's requests must be in its log.
        if hasattr(session.config, "workerinput"):
            return
        plugin = session.config.pluginmanager.get_plugin("agentspeed-session")
        sim = plugin.bench.pool._sim
        Path("schedule.json").write_text(json.dumps(sim.schedule() if sim else None))
    """
)


def test_xdist_workers_share_one_simulated_endpoint(pytester: pytest.Pytester) -> None:
    make_task(pytester.path, "alpha")
    make_task(pytester.path, "beta")
    pytester.makeconftest(RECORD_SCHEDULE)
    result = pytester.runpytest_subprocess(
        "-n",
        "4",
        "--agentspeed-repeat=4",
        "--agentspeed-time-scale=0.01",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=8)
    run = read_run(pytester.path / "run.json")
    assert len(run["sessions"]) == 8
    assert len({s["id"] for s in run["sessions"]}) == 8
    assert run["environment"]["concurrency"] == 4
    assert run["summary"]["sim:standard"]["concurrency"] == 4
    schedule = json.loads((pytester.path / "schedule.json").read_text())
    turns = sum(len(s["turns"]) for s in run["sessions"])
    assert len(schedule) == turns
    # Sessions ran side by side on that one server: some requests found others in flight.
    assert max(e["in_flight"] for e in schedule) >= 1
    assert not (pytester.path / ".agentspeed").exists()
    # One run file, from the controller; the workers wrote none.
    assert sorted(p.name for p in pytester.path.glob("*.json")) == ["run.json", "schedule.json"]
