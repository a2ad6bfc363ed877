"""Bad inputs: one line naming the file and what is wrong, a documented exit code, no traceback.

``docs/errors.md`` lists every case. Bad option values and endpoint specs are tested where the
options are (``test_plugin.py``, ``test_cli_and_endpoints.py``, ``test_named_endpoints.py``),
the unreadable baseline's first case in ``test_gate.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from factories import arm, paired_arms, run_record
from scripted_server import Reply, ScriptedServer, tool_reply
from test_plugin import make_task, read_run

from pytest_agentspeed.agents.builtin import BuiltinAgent
from pytest_agentspeed.cli import main
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.run.runner import run_session
from pytest_agentspeed.runfile import write_run_file
from pytest_agentspeed.tasks import load_task

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

# -- run files --------------------------------------------------------------------------------

#: A bad run file: writes itself next to a good one, returns the message expected after
#: "PATH: " (a regular expression).
BadRunFile = Callable[[Path, Path], str]


def _corrupt(path: Path, good: Path) -> str:
    path.write_text("this is not JSON\n")
    return re.escape("not valid JSON (Expecting value at line 1 column 1)")


def _truncated(path: Path, good: Path) -> str:
    text = good.read_text()
    path.write_text(text[: len(text) // 2])
    return r"not valid JSON \(it stops mid-document at line \d+; is the file truncated\?\)"


def _future_schema(path: Path, good: Path) -> str:
    data = json.loads(good.read_text())
    data["schema"] = "agentspeed.run/2"
    path.write_text(json.dumps(data))
    return re.escape(
        "schema 'agentspeed.run/2' is not supported by this version "
        "(it reads agentspeed.run/1.x); upgrade pytest-agentspeed"
    )


def _json_list(path: Path, good: Path) -> str:
    path.write_text(json.dumps([json.loads(good.read_text())]))
    return re.escape("not an agentspeed run file (top level is not an object)")


def _not_utf8(path: Path, good: Path) -> str:
    # A run file some tool re-saved as Latin-1: valid JSON, one byte that is not UTF-8.
    raw = good.read_bytes().replace(
        b'"agentspeed_version": "0.1.0"', b'"agentspeed_version": "\xe9"'
    )
    path.write_bytes(raw)
    return re.escape(f"not UTF-8 text (invalid continuation byte at byte {raw.index(0xE9)})")


def _empty(path: Path, good: Path) -> str:
    path.write_bytes(b"")
    return re.escape("empty file, not a run file")


def _missing_key(path: Path, good: Path) -> str:
    data = json.loads(good.read_text())
    del data["created_at"]
    path.write_text(json.dumps(data))
    return re.escape("malformed run file (missing key 'created_at')")


BAD_RUN_FILES: dict[str, BadRunFile] = {
    "corrupt": _corrupt,
    "truncated": _truncated,
    "future-schema": _future_schema,
    "json-list": _json_list,
    "not-utf8": _not_utf8,
    "empty": _empty,
    "missing-key": _missing_key,
}
#: The cases the plugin's --agentspeed-compare is run with (each one a pytest run).
MAIN_CASES = ("corrupt", "truncated", "future-schema", "json-list", "not-utf8")


@pytest.fixture
def good(tmp_path: Path) -> Path:
    base, cand = paired_arms(0.9, 0.1, 10)
    path = tmp_path / "good.json"
    write_run_file(path, run_record(arm("old", base) + arm("new", cand)))
    return path


def bad_file(kind: str, good: Path) -> tuple[Path, str]:
    path = good.with_name(f"{kind}.json")
    return path, BAD_RUN_FILES[kind](path, good)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, command: str, path: Path, message: str) -> None:
    expected = f"agentspeed {command}: error: {re.escape(str(path))}: {message}\n"
    assert re.fullmatch(expected, err), err


@pytest.mark.parametrize("kind", BAD_RUN_FILES)
def test_bad_run_file_through_show_and_compare(
    kind: str, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, message = bad_file(kind, good)
    for command, args in [
        ("show", [str(bad)]),
        ("compare", [str(good), str(bad)]),  # as the candidate
        ("compare", [str(bad), str(good)]),  # as the baseline
    ]:
        code, out, err = run_cli(capsys, command, *args)
        assert (code, out) == (2, ""), (command, args, err)
        assert_one_line_error(err, command, bad, message)


@pytest.mark.parametrize("existing", [False, True], ids=["new-output", "existing-output"])
@pytest.mark.parametrize("kind", BAD_RUN_FILES)
def test_bad_run_file_through_report_and_merge_writes_nothing(
    kind: str, existing: bool, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, message = bad_file(kind, good)
    out_dir = good.parent / "out"
    out_dir.mkdir()
    for command, args, output in [
        ("report", [str(bad)], out_dir / "report.html"),
        ("report", [str(good), "--baseline", str(bad)], out_dir / "report.html"),
        ("merge", [str(good), str(bad)], out_dir / "all.json"),
        ("merge", [str(bad), str(good)], out_dir / "all.json"),
    ]:
        if existing:
            output.write_text("the previous output\n")
            os.utime(output, (1_000_000_000, 1_000_000_000))
        before = sorted(out_dir.iterdir())
        code, out, err = run_cli(capsys, command, *args, "-o", str(output))
        assert (code, out) == (2, ""), (command, args, err)
        assert_one_line_error(err, command, bad, message)
        # No temp file left behind, the old output neither replaced nor touched.
        assert sorted(out_dir.iterdir()) == before
        if existing:
            assert output.read_text() == "the previous output\n"
            assert output.stat().st_mtime == 1_000_000_000
        else:
            assert not output.exists()


@pytest.mark.parametrize("kind", MAIN_CASES)
def test_the_command_exits_2_without_a_traceback(kind: str, good: Path) -> None:
    """The same through ``python -m pytest_agentspeed``: the exit code reaches the shell."""
    bad, message = bad_file(kind, good)
    result = subprocess.run(
        [sys.executable, "-m", "pytest_agentspeed", "compare", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "compare", bad, message)


def test_an_output_that_cannot_be_written_is_one_line_exit_2(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_dir = good.parent / "a-dir"
    a_dir.mkdir()
    blocker = good.parent / "a-file"
    blocker.write_text("not a directory\n")
    for command, output, reason in [
        ("report", a_dir, "Is a directory"),
        ("merge", a_dir, "Is a directory"),
        ("report", blocker / "report.html", "File exists"),  # its parent is a file
    ]:
        code, out, err = run_cli(capsys, command, str(good), "-o", str(output))
        assert (code, out) == (2, ""), err
        assert err == f"agentspeed {command}: error: cannot write {output}: {reason}\n"
    assert list(a_dir.iterdir()) == []
    assert sorted(p.name for p in good.parent.iterdir()) == ["a-dir", "a-file", "good.json"]


@pytest.mark.parametrize("kind", MAIN_CASES)
def test_unreadable_stored_baseline_is_refused_before_any_session(
    pytester: pytest.Pytester, kind: str
) -> None:
    make_task(pytester.path, "alpha")
    good = pytester.path / "good.json"
    write_run_file(good, run_record(arm("oracle", [10.0, 11.0])))
    bad, message = bad_file(kind, good)
    result = pytester.runpytest_subprocess(
        "--agentspeed-agent=oracle", f"--agentspeed-compare={bad}", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, errors
    assert re.fullmatch(f"ERROR: --agentspeed-compare: {re.escape(str(bad))}: {message}", errors[0])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "passed" not in result.stdout.str()  # refused before any session ran


# -- task files -------------------------------------------------------------------------------


def _task_not_utf8(task: Path) -> tuple[Path, str]:
    path = task / "agenttask.toml"
    path.write_bytes(b'instruction = "Fix the caf\xe9."\n[check]\ncommand = "true"\n')
    return path, "not UTF-8 text (invalid continuation byte at byte 26)"


def _task_huge(task: Path) -> tuple[Path, str]:
    path = task / "agenttask.toml"
    with path.open("a") as f:
        f.write("# padding\n" * 150_000)
    return path, f"file is {path.stat().st_size:,} bytes; task files are at most 1 MB"


def _no_workspace(task: Path) -> tuple[Path, str]:
    shutil.rmtree(task / "workspace")
    return (
        task / "agenttask.toml",
        "no workspace/ directory next to it (the agent's starting files)",
    )


def _trajectory_not_utf8(task: Path) -> tuple[Path, str]:
    path = task / "trajectory.toml"
    path.write_bytes(b'[[turn]]\ntext = "Caf\xe9 fixed."\n')
    return path, "not UTF-8 text (invalid continuation byte at byte 20)"


def _trajectory_huge(task: Path) -> tuple[Path, str]:
    path = task / "trajectory.toml"
    path.write_text('[[turn]]\ntext = "Done."\n' + "# padding\n" * 150_000)
    return path, f"file is {path.stat().st_size:,} bytes; task files are at most 1 MB"


def _trajectory_unknown_key(task: Path) -> tuple[Path, str]:
    path = task / "trajectory.toml"
    path.write_text('[[turn]]\ntxt = "Done."\n')
    return path, "key 'turn[0].txt': unknown key; accepted: reasoning, text, tool"


@pytest.mark.parametrize(
    "breaks",
    [
        _task_not_utf8,
        _task_huge,
        _no_workspace,
        _trajectory_not_utf8,
        _trajectory_huge,
        _trajectory_unknown_key,
    ],
    ids=lambda f: f.__name__.lstrip("_").replace("_", "-"),
)
def test_broken_task_files_are_collection_errors_naming_the_file(
    pytester: pytest.Pytester, breaks: Callable[[Path], tuple[Path, str]]
) -> None:
    path, message = breaks(make_task(pytester.path, "broken"))
    # The oracle never reads trajectory.toml: it must still be checked when collected.
    result = pytester.runpytest_subprocess("--agentspeed-agent=oracle", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting broken/agenttask.toml*",
            f"{path}: {message}",
            "*Interrupted: 1 error during collection*",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# -- at run time ------------------------------------------------------------------------------


def processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory`` (a check's shell and children)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")) == directory:
                    found.append(int(proc.name))
            except OSError:
                continue  # exited meanwhile, or not ours to look at
    return found


def kept_workspace(result: pytest.RunResult) -> Path:
    # The failure section names the workspace; the short summary repeats it when pytest
    # does not truncate (it never does when the CI variable is set), so count distinct paths.
    (path,) = {
        line.split(": ", 1)[1] for line in result.outlines if line.startswith("workspace kept for ")
    }
    return Path(path)


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc")
def test_a_check_that_hangs_is_killed_at_its_timeout(pytester: pytest.Pytester) -> None:
    make_task(
        pytester.path,
        "hang",
        body='instruction = "Wait."\n[check]\ncommand = "sleep 1000"\ntimeout_s = 1\n',
    )
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--agentspeed-agent=oracle", "--agentspeed-json=run.json", "-p", "no:cacheprovider"
    )
    elapsed = time.monotonic() - started
    workspace = kept_workspace(result)
    try:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "task 'hang' on oracle: check timed out after 1 s (check.timeout_s)",
                "0 turns, 0 output tokens, * s of agent time",
                "check `sleep 1000` printed (tail):",
                "[[]check timed out after 1 s[]]",
            ]
        )
        assert elapsed < 30, elapsed  # about 4 s: the 1 s timeout, not the 1000 s sleep
        assert processes_in(workspace) == []  # the shell and its sleep were killed
        (session,) = read_run(pytester.path / "run.json")["sessions"]
        assert session["outcome"] == "failed"
        assert session["check_exit_code"] is None
        assert 1.0 <= session["check_s"] < 10
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def test_an_unreachable_endpoint_ends_the_session_as_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-dummy-not-a-key")
    monkeypatch.setenv("TMPDIR", str(tmp := pytester.mkdir("tmp")))
    with socket.socket() as sock:  # a port that was free a moment ago; nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    make_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess(
        # Credentials in the URL are not the user's to see again in a message.
        f"--agentspeed-endpoint=anthropic:claude-test@http://me:pw-SECRET@127.0.0.1:{port}",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    error = f"connection_error: cannot reach the endpoint at http://127.0.0.1:{port} (ConnectError)"
    head = f"task 'alpha' on anthropic:claude-test-r0: endpoint error: {error}"
    at = result.outlines.index(head)
    # One line of reason, then the session's numbers.
    assert result.outlines[at + 1].startswith("1 turns, 0 output tokens, ")
    # The agent never got to change anything: the workspace is a copy of the task's, and goes.
    assert "workspace kept for" not in result.stdout.str()
    assert list(tmp.iterdir()) == []
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "SECRET" not in result.stdout.str() + (pytester.path / "run.json").read_text()
    run = read_run(pytester.path / "run.json")
    (session,) = run["sessions"]
    assert session["outcome"] == "error"
    assert session["error"] == error
    assert session["check_exit_code"] is None
    assert run["summary"]["anthropic:claude-test"]["error_rate"] == 1.0


@pytest.mark.parametrize("changed", [False, True])
def test_an_errored_session_keeps_its_workspace_only_when_the_agent_changed_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changed: bool
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp := tmp_path / "tmp"))
    tmp.mkdir()
    task = load_task(make_task(tmp_path, "alpha") / "agenttask.toml")
    refused = Reply(status=400, error_type="invalid_request_error")  # not retried
    write = tool_reply([("write_file", {"path": "greeting.txt", "content": "hello\n"})])
    replies = [Reply(write), refused] if changed else [refused]
    with ScriptedServer(replies).running() as script:
        client = AnthropicClient(model="m", base_url=script.url, api_key="sk-test")
        try:
            result = run_session(task, BuiltinAgent(), client, endpoint="e", repeat=0)
        finally:
            client.close()
    assert result.record.outcome == "error"
    assert len(result.record.turns) == (2 if changed else 1)
    if changed:
        assert result.workspace is not None
        assert (result.workspace / "greeting.txt").read_text() == "hello\n"
        assert list(tmp.iterdir()) == [result.workspace]
    else:
        assert result.workspace is None
        assert list(tmp.iterdir()) == []


def test_an_endpoint_that_stays_unreachable_is_not_tried_for_every_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-dummy-not-a-key")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    make_task(pytester.path, "alpha")
    endpoint = "anthropic:claude-test"  # the endpoint's name: the spec without its URL
    result = pytester.runpytest_subprocess(
        f"--agentspeed-endpoint={endpoint}@http://127.0.0.1:{port}",
        "--agentspeed-repeat=5",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    assert "workspace kept for" not in result.stdout.str()
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(
        [
            f"agentspeed: {endpoint} could not be reached in 3 sessions in a row; its "
            "remaining sessions are not run (recorded as errors)"
        ]
    )
    sessions = read_run(pytester.path / "run.json")["sessions"]
    assert [s["outcome"] for s in sessions] == ["error"] * 5
    assert [len(s["turns"]) for s in sessions] == [1, 1, 1, 0, 0]
    assert sessions[3]["error"] == (
        "connection_error: not run: the endpoint could not be reached in 3 sessions in a row"
    )
    summary = read_run(pytester.path / "run.json")["summary"][endpoint]
    assert summary["error_rate"] == 1.0
    # Sessions that were not run have no time: the mean is over the three that tried.
    assert summary["session_wall_s"]["mean"] == pytest.approx(
        sum(s["wall_s"] for s in sessions[:3]) / 3
    )
