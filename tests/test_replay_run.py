"""Record once, replay on two endpoints: the whole path through pytest (``docs/replay.md``).

Real pytest runs (``pytester``, in their own processes), the real simulator over loopback, the
built-in agent recording, and the replay items sending the recorded requests; the simulator's
own request log (``context_sha256`` of every request it served) proves what each arm got.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import StartSim

from pytest_agentspeed.replay.recording import read_recordings, write_recording
from pytest_agentspeed.simulator import MountConfig, context_digest

TASKS = ("fix-pagination-off-by-one", "document-slug-separator")
KEY = "sk-replay-test-0123456789abcdef"
PIN = "extra_body = {ignore_eos = true}\n"


@pytest.fixture
def project(pytester: pytest.Pytester, example_suite: Path) -> Path:
    """Two tasks of the example suite as the pytester project, delays x0.05."""
    for name in TASKS:
        shutil.copytree(example_suite / name, pytester.path / name)
    (pytester.path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["."]\n\n'
        '[tool.agentspeed]\nendpoint = ["sim:standard"]\ntime_scale = 0.05\n'
    )
    return pytester.path


@pytest.fixture
def two_arms(start_sim: StartSim, project: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A simulator of the test's own with a standard and an ultraspeed mount, named in the
    project as the endpoints ``a`` and ``b`` (vLLM-like: ``ignore_eos`` pins the output), and
    ``live`` on mount a to record on."""
    sim = start_sim(
        MountConfig(key="a", profile="standard", time_scale=0.05),
        MountConfig(key="b", profile="ultraspeed", time_scale=0.05),
        task_dirs=(project,),
    )
    monkeypatch.setenv("REPLAY_TEST_KEY", KEY)
    # `live` (mount a) is for recording: ignore_eos would run a live session's replies to
    # max_tokens; `a` and `b` are for replays, whose output it pins.
    arms = (("live", "a", ""), ("a", "a", PIN), ("b", "b", PIN))
    with (project / "pyproject.toml").open("a") as f:
        for name, mount, extra in arms:
            f.write(
                f'\n[tool.agentspeed.endpoints.{name}]\napi = "anthropic"\n'
                f'model = "sim-{name}"\nbase_url = "{sim.base_url(mount)}"\n'
                f'api_key_env = "REPLAY_TEST_KEY"\n{extra}'
            )
    return sim


def _record(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--agentspeed-record", *args)


def test_recorded_requests_reach_each_arm_in_order_and_are_gated(
    pytester: pytest.Pytester, project: Path, two_arms: Any
) -> None:
    # Recorded on a named endpoint whose key is real-looking: it reaches the endpoint, never
    # a recording.
    recorded = _record(pytester, "rec", "--agentspeed-endpoint", "live")
    recorded.assert_outcomes(passed=2)
    recordings = read_recordings(project / "rec")
    assert sorted(r.name for r in recordings) == sorted(f"{t}.live-r0" for t in TASKS)
    for path in (project / "rec").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
        assert KEY.encode() not in gzip.decompress(path.read_bytes())

    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--agentspeed-replay",
        "rec",
        "--agentspeed-endpoint",
        "a",
        "--agentspeed-endpoint",
        "b",
        "--agentspeed-repeat",
        "2",
        "--agentspeed-json",
        "run.json",
    )
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        [
            "*agentspeed: 8 replays of rec on a, b; 2 repeat(s)*",
            "*the replays will send * requests*expected from the cache*",
            "*throughput ratio*",
        ]
    )
    assert KEY not in result.stdout.str() + result.stderr.str()

    served: dict[tuple[str, str], list[str]] = {}
    for entry in two_arms.schedule():
        served.setdefault((entry["mount"], entry["session"]), []).append(entry["context_sha256"])
    run = json.loads((project / "run.json").read_text())
    assert run["config"]["agent"] == "replay"
    sessions = run["sessions"]
    assert len(sessions) == 8
    for recording in recordings:
        sent = [context_digest(r.body) for r in recording.requests]
        assert len(sent) >= 3
        for arm in ("a", "b"):
            for repeat in (0, 1):
                sid = f"{recording.name}[{arm}-r{repeat}]"
                # Every recorded request, in order, and nothing else, to each arm.
                assert served[(arm, sid)] == sent, sid
                (session,) = [s for s in sessions if s["id"] == sid]
                assert session["outcome"] == "passed"
                assert session["agent"] == "replay"
                assert sum(session["phases_s"].values()) == pytest.approx(
                    session["wall_s"], abs=1e-6
                )
                # The output pinned to the recording's, request by request.
                outputs = [t["usage"]["output_tokens"] for t in session["turns"]]
                recorded_out = [r.usage.output_tokens for r in recording.requests]
                assert outputs == recorded_out
    (comparison,) = run["comparisons"]
    assert comparison["paired"] is True
    assert comparison["verdict"] in ("IMPROVED", "PASS", "INCONCLUSIVE", "FAIL")


def test_a_replay_run_with_no_test_paths_replays_only(
    pytester: pytest.Pytester, project: Path
) -> None:
    _record(pytester, "rec", "-k", "pagination").assert_outcomes(passed=1, deselected=1)
    (project / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", "--agentspeed-replay", "rec"
    )
    # Neither the task files nor the plain test: only the recording's replay, on the one arm.
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*::replay[[]fix-pagination-off-by-one.sim-standard-r0[]][[]sim:standard-r0[]] PASSED*"]
    )


def _write(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_bytes(data)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: None, "ERROR: rec: no such recording"),
        (lambda d: d.mkdir(), "ERROR: rec: no recordings (*.rec.gz) in this directory"),
        (
            lambda d: _write(d, "x.rec.gz", b"not gzip at all"),
            "x.rec.gz: not a recording (not gzip",
        ),
        (
            lambda d: _write(d, "x.rec.gz", gzip.compress(b'{"kind": "agentspeed-rec')),
            "x.rec.gz: not valid JSON (it stops mid-document at line 1; is the file truncated?)",
        ),
        (
            lambda d: _write(d, "x.rec.gz", gzip.compress(b'{"kind": 1}' * 50)[:-12]),
            "x.rec.gz: the compressed data stops short; is the file truncated?",
        ),
        (
            lambda d: _write(d, "x.rec.gz", gzip.compress(b"[1, 2]")),
            'x.rec.gz: not a recording (no "kind": "agentspeed-recording")',
        ),
        (
            lambda d: _write(
                d,
                "x.rec.gz",
                gzip.compress(json.dumps({"kind": "agentspeed-recording", "schema": 99}).encode()),
            ),
            "written by a later pytest-agentspeed",
        ),
    ],
    ids=[
        "missing",
        "empty-dir",
        "not-gzip",
        "truncated-json",
        "truncated-gzip",
        "not-a-recording",
        "future-schema",
    ],
)
def test_a_recording_that_cannot_be_read_is_one_line_and_exit_4(
    pytester: pytest.Pytester, project: Path, make: Any, says: str
) -> None:
    make(project / "rec")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--agentspeed-replay", "rec")
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr.str()
    assert says in errors[0]
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_recording_on_another_wire_is_refused_before_any_session(
    pytester: pytest.Pytester, project: Path
) -> None:
    _record(pytester, "rec", "-k", "pagination").assert_outcomes(passed=1, deselected=1)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--agentspeed-replay",
        "rec",
        "--agentspeed-endpoint",
        "sim:standard?api=openai",
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: *openai wire*recordings*anthropic wire*own wire*"])


def test_record_and_replay_together_are_refused(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--agentspeed-replay", "rec", "--agentspeed-record", "rec2"
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: *a replay is not recorded again*"])


def test_an_endpoint_that_rejects_a_recorded_request_fails_that_item_in_one_line(
    pytester: pytest.Pytester, project: Path, two_arms: Any
) -> None:
    _record(pytester, "rec", "-k", "pagination").assert_outcomes(passed=1, deselected=1)
    (recording,) = read_recordings(project / "rec")
    # The second request's body is one the endpoint refuses (400 invalid_request_error).
    second = recording.requests[1]
    broken = replace(second, body={**second.body, "messages": "not a list"})
    requests = (recording.requests[0], broken, *recording.requests[2:])
    write_recording(project / "bad", replace(recording, requests=requests))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--agentspeed-replay", "bad", "--agentspeed-endpoint", "a"
    )
    assert result.ret == 1
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*endpoint error: invalid_request_error: HTTP 400: *"])
    assert "Traceback" not in result.stdout.str()
    # Nothing after the refused request was sent.
    sid = f"{recording.name}[a-r0]"
    served = [e for e in two_arms.schedule() if e["session"] == sid]
    assert [e["context_sha256"] for e in served] == [context_digest(recording.requests[0].body)]


@pytest.mark.parametrize("seeds", [(11, 12), (13, 14), (15, 16)])
def test_a_to_a_replays_do_not_fail(
    pytester: pytest.Pytester, project: Path, seeds: tuple[int, int]
) -> None:
    """The same endpoint on both arms, other seeds: whatever the draws, the gate must not call
    a regression. (``benchmarks/replay_power.py --aa-runs`` runs the larger seeded batch.)"""
    _record(pytester, "rec").assert_outcomes(passed=2)
    first, second = seeds
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--agentspeed-replay",
        "rec",
        f"--agentspeed-endpoint=sim:standard?seed={first}",
        f"--agentspeed-endpoint=sim:standard?seed={second}",
        "--agentspeed-repeat=3",
        "--agentspeed-time-scale=0.1",
        "--agentspeed-json=run.json",
    )
    # 2 recordings x 3 repeats: 6 pairs, enough for the paired test to reach alpha at all.
    result.assert_outcomes(passed=12)
    assert result.ret == 0
    (comparison,) = json.loads((project / "run.json").read_text())["comparisons"]
    assert comparison["n"] == [6, 6]
    assert comparison["verdict"] != "FAIL", comparison["line"]
