"""The plugin in real pytest runs (pytester subprocesses) against real servers on loopback."""

from __future__ import annotations

import json
import statistics
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from scripted_server import Reply, ScriptedServer, text_reply, tool_reply

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CHECK = (
    'python -c \\"import pathlib, sys; '
    "sys.exit(0 if pathlib.Path('greeting.txt').read_text() == 'hello world\\\\n' else 1)\\\""
)


def make_task(root: Path, name: str, *, body: str | None = None) -> Path:
    """A tiny task: fix the typos in greeting.txt (checked without starting pytest)."""
    task = root / name
    (task / "workspace").mkdir(parents=True)
    (task / "solution").mkdir()
    (task / "workspace" / "greeting.txt").write_text("helo wrld\n")
    (task / "solution" / "greeting.txt").write_text("hello world\n")
    if body is None:
        body = f"""
            instruction = "Task {name}: fix the typos in greeting.txt."
            [check]
            command = "{CHECK}"
            timeout_s = 30
            [limits]
            max_turns = 12
            timeout_s = 120
            max_tokens = 2048
        """
    (task / "agenttask.toml").write_text(textwrap.dedent(body))
    return task


def make_scripted_task(root: Path, name: str, *, answer_words: int = 500) -> Path:
    """:func:`make_task` with a ``trajectory.toml``: write the fix, read it back, then answer at
    length (``answer_words`` tokens).

    Its tools are a file write and a read, so a session's time is the simulated model's: no
    test command whose run time a loaded machine stretches by seconds, and the long answer
    makes the endpoints' decode rates tell.
    """
    task = make_task(root, name)
    (task / "trajectory.toml").write_text(
        textwrap.dedent(
            f"""
            [[turn]]
            text = "Writing the greeting."
            [[turn.tool]]
            name = "write_file"
            input = {{ path = "greeting.txt", content = "hello world\\n" }}

            [[turn]]
            text = "Check it."
            [[turn.tool]]
            name = "read_file"
            input = {{ path = "greeting.txt" }}

            [[turn]]
            text = "{" word" * answer_words}"
            """
        )
    )
    return task


def read_run(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def assert_turns_consistent(run: dict[str, Any]) -> None:
    """Each turn's phases are non-negative and its marks in order, within its wall time.

    (That the phases sum to the wall time, and the session's totals to its turns', holds by
    construction of the records; ``test_timing`` checks each phase's exact value.)
    """
    order = [
        "request_sent",
        "headers",
        "first_event",
        "first_token",
        "first_output",
        "last_token",
        "stream_end",
        "tools_end",
    ]
    for session in run["sessions"]:
        for turn in session["turns"]:
            negative = {k: v for k, v in turn["phases_s"].items() if v < 0}
            assert not negative, (session["id"], turn["index"], negative)
            marks = [turn["marks_s"][m] for m in order if turn["marks_s"][m] is not None]
            assert marks == sorted(marks), (session["id"], turn["index"], turn["marks_s"])
            assert marks[0] >= 0
            assert marks[-1] <= turn["wall_s"]


def test_ab_run_on_the_simulator_interleaves_arms_and_writes_the_run_file(
    pytester: pytest.Pytester,
) -> None:
    make_task(pytester.path, "alpha")
    make_task(pytester.path, "beta")
    result = pytester.runpytest_subprocess(
        "--agentspeed-endpoint=sim:standard",
        "--agentspeed-endpoint=sim:ultraspeed",
        "--agentspeed-repeat=2",
        "--agentspeed-time-scale=0.02",
        "--agentspeed-json=run.json",
        "-v",
    )
    result.assert_outcomes(passed=8)
    ran = [line.split("::")[1].split(" ")[0] for line in result.outlines if " PASSED" in line]
    assert ran == [
        "alpha[sim:standard-r0]",
        "alpha[sim:ultraspeed-r0]",
        "beta[sim:standard-r0]",
        "beta[sim:ultraspeed-r0]",
        "alpha[sim:standard-r1]",
        "alpha[sim:ultraspeed-r1]",
        "beta[sim:standard-r1]",
        "beta[sim:ultraspeed-r1]",
    ]
    result.stdout.fnmatch_lines(
        [
            "*agentspeed: 8 sessions on sim:standard, sim:ultraspeed; 2 repeat(s)*x0.02",
            "*= agentspeed =*",
            "*sim:standard*sim:ultraspeed*difference",
            "session throughput P50 * tok/s * tok/s *%",
            "pass rate * 100% * 100% * +0 pp",
            "sessions * 4 * 4",
            "run file: run.json",
        ]
    )
    run = read_run(pytester.path / "run.json")
    assert run["schema"] == "agentspeed.run/1"
    assert run["config"] == {
        "window_s": 1800.0,
        "repeat": 2,
        "time_scale": 0.02,
        "agent": "builtin",
        "metric_definitions": {"throughput_tok_s": 1, "session_wall_s": 1, "tasks_per_window": 1},
    }
    assert [e["name"] for e in run["endpoints"]] == ["sim:standard", "sim:ultraspeed"]
    assert [e["profile"] for e in run["endpoints"]] == ["standard", "ultraspeed"]
    assert [s["id"] for s in run["sessions"]] == ran
    assert {s["slot"] for s in run["sessions"]} == {"alpha/r0", "alpha/r1", "beta/r0", "beta/r1"}
    assert all(s["outcome"] == "passed" for s in run["sessions"])
    for session in run["sessions"]:
        tools = [c["name"] for t in session["turns"] for c in t["tool_calls"]]
        assert tools[0] == "list_files"
        assert "run_command" in tools
        assert session["turns"][-1]["stop_reason"] == "end_turn"
        assert session["turns"][1]["usage"]["cache_read_tokens"] > 0
    assert_turns_consistent(run)
    assert set(run["summary"]) == {"sim:standard", "sim:ultraspeed"}
    assert run["summary"]["sim:standard"]["sessions"] == 4


def test_example_suite_passes_with_the_oracle(
    pytester: pytest.Pytester, example_suite: Path
) -> None:
    # Under nop it passes too (each check fails untouched): test_validate_tasks.py.
    oracle = pytester.runpytest_subprocess(
        str(example_suite), "--agentspeed-agent=oracle", "-p", "no:cacheprovider"
    )
    oracle.assert_outcomes(passed=6)
    oracle.stdout.fnmatch_lines(
        [
            "*agentspeed: 6 sessions with the oracle agent (no model)*",
            "oracle agent: 6 of 6 tasks passed",
        ]
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'instruction = "x"\n[check\ncommand = "true"\n',
            "*broken/agenttask.toml: not valid TOML: Expected*",
        ),
        (
            'instructoin = "x"\n[check]\ncommand = "true"\n',
            "*agenttask.toml: key 'instructoin': unknown key*",
        ),
        (
            'instruction = "x"\n[check]\ncommand = "true"\ntimeout_s = "10"\n',
            "*agenttask.toml: key 'check.timeout_s': expected a positive number, got a string",
        ),
        ('instruction = "x"\n', "*agenttask.toml: key 'check': missing (required)"),
        ('[check]\ncommand = "true"\n', "*agenttask.toml: key 'instruction': missing*"),
        (
            'instruction = "x"\n[check]\ncommand = "true"\n[limits]\nmax_turns = 1.5\n',
            "*key 'limits.max_turns': expected a positive integer, got a float",
        ),
    ],
    ids=[
        "bad toml",
        "unknown key",
        "wrong type",
        "missing check",
        "missing instruction",
        "float turns",
    ],
)
def test_malformed_task_is_a_collection_error_naming_file_and_key(
    pytester: pytest.Pytester, body: str, expected: str
) -> None:
    make_task(pytester.path, "broken", body=body)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting broken/agenttask.toml*", expected])
    assert "Traceback" not in result.stdout.str()
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--agentspeed-endpoint=bogus"],
            "*unknown endpoint 'bogus'; accepted forms: sim:PROFILE*",
        ),
        (
            ["--agentspeed-endpoint=sim:warp"],
            "*unknown simulator profile 'warp'; accepted: standard, ultraspeed, frontier, small-*",
        ),
        (["--agentspeed-endpoint=sim:standard?warp=9"], "*unknown option 'warp'*"),
        (["--agentspeed-repeat=0"], "*--agentspeed-repeat: expected a positive integer, got '0'*"),
        (
            ["--agentspeed-agent=smart"],
            "*unknown agent 'smart'; accepted: builtin, oracle, nop, claude-code, codex, "
            "mini-swe-agent*",
        ),
        (["--agentspeed-time-scale=-1"], "*--agentspeed-time-scale: expected a positive number*"),
    ],
)
def test_bad_options_are_one_line_usage_errors(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    assert_usage_error(pytester, args, expected)


def assert_usage_error(pytester: pytest.Pytester, args: list[str], expected: str) -> None:
    """A run with ``args`` on a one-task suite stops before any session with exit 4 and the
    line ``expected`` (an fnmatch pattern) on stderr, and no traceback."""
    make_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_missing_api_key_is_a_usage_error_only_when_tasks_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    pytester.makepyprojecttoml('[tool.agentspeed]\nendpoint = "anthropic:claude-test"\n')
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    plain = pytester.runpytest_subprocess()
    plain.assert_outcomes(passed=1)

    make_task(pytester.path, "alpha")
    with_task = pytester.runpytest_subprocess()
    assert with_task.ret == pytest.ExitCode.USAGE_ERROR
    with_task.stderr.fnmatch_lines(
        [
            "ERROR: endpoint 'anthropic:claude-test' needs an API key: set ANTHROPIC_API_KEY "
            "or ANTHROPIC_AUTH_TOKEN"
        ]
    )
    assert "Traceback" not in with_task.stderr.str() + with_task.stdout.str()


def test_a_run_without_tasks_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.agentspeed]\nendpoint = ["sim:standard", "sim:ultraspeed"]\njson = "run.json"\n'
    )
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    before = sorted(p.name for p in pytester.path.iterdir())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "agentspeed" not in result.stdout.str().replace("agentspeed-", "")
    # pytester's own basetemp aside, the run left nothing behind: no run file, no spool.
    pytester_files = ("runpytest", "stdout", "stderr")
    after = [p.name for p in pytester.path.iterdir() if not p.name.startswith(pytester_files)]
    assert sorted(after) == before


def test_unknown_pyproject_key_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.agentspeed]\nrepeats = 3\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*?tool.agentspeed? unknown key 'repeats'; accepted: endpoint*"])


def test_python_tasks_use_the_fixture_on_every_endpoint(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_py_task=f"""
        from pytest_agentspeed import Task

        def test_greeting(agentspeed):
            task = Task(
                id="greeting",
                instruction="Python task: fix the typos in greeting.txt.",
                workspace={{"greeting.txt": "helo wrld\\n"}},
                solution={{"greeting.txt": "hello world\\n"}},
                check="{CHECK}",
            )
            session = agentspeed.run(task)
            assert session.passed, session.outcome
            assert session.endpoint == agentspeed.endpoint
            assert len(session.turns) >= 4
        """
    )
    result = pytester.runpytest_subprocess(
        "--agentspeed-endpoint=sim:standard",
        "--agentspeed-endpoint=sim:ultraspeed",
        "--agentspeed-time-scale=0.02",
        "--agentspeed-json=run.json",
        "-v",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*test_greeting?sim:standard-r0? PASSED*", "*test_greeting?sim:ultraspeed-r0? PASSED*"]
    )
    run = read_run(pytester.path / "run.json")
    assert [s["task"] for s in run["sessions"]] == ["greeting", "greeting"]
    assert_turns_consistent(run)


TURNS = 5
PIECES = ["Hel", "lo", " there", ",", " all", " done", "."]
#: Where the stream's events sit in a scripted turn (see ``text_reply``).
FIRST_EVENT, FIRST_TOKEN, LAST_TEXT = 0, 2, 2 + len(PIECES) - 1


def test_plain_anthropic_endpoint_is_measured_with_the_same_precision(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any server speaking the wire: what it did comes back as phases and marks.

    Each measurement is held against the server's own send log (when each request arrived and
    each event was written), not against the script: on a loaded machine the server's sleeps
    overshoot. What is left is loopback delivery, so the median over the turns must be within
    a few milliseconds (20 allowed for a loaded machine), while a phase taken from the wrong
    event is off by 50 ms or more.
    """
    secret = "sk-ant-test-0123456789abcdef-SECRET"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    make_task(pytester.path, "alpha")
    replies = []
    for turn in range(TURNS):
        # Each turn: the first attempt overloaded (retried by the SDK after 50 ms), then a
        # stream: first event at 20 ms, first token at 150 ms, a piece every 10 ms; every turn
        # but the last ends with a tool call, so that the agent sends the next.
        tool = ("read_file", {"path": "greeting.txt"}) if turn < TURNS - 1 else None
        replies += [
            Reply(status=529, error_type="overloaded_error", headers={"retry-after-ms": "50"}),
            Reply(
                text_reply(
                    first_event=0.020, first_token=0.150, step=0.010, pieces=PIECES, tool=tool
                )
            ),
        ]
    script = ScriptedServer(replies)
    with script.running():
        result = pytester.runpytest_subprocess(
            f"--agentspeed-endpoint=anthropic:claude-test@{script.url}",
            "--agentspeed-json=run.json",
            "--agentspeed-allow-task-failures",
        )
    result.assert_outcomes(passed=1)
    assert script.headers[0]["authorization"] == f"Bearer {secret}"
    run = read_run(pytester.path / "run.json")
    assert run["endpoints"] == [
        {
            "name": "anthropic:claude-test",
            "label": None,
            "api": "anthropic",
            "model": "claude-test",
            "base_url": script.url,
            "profile": None,
            "options": {},
        }
    ]
    (session,) = run["sessions"]
    assert session["outcome"] == "failed"  # the scripted model fixed nothing
    turns = session["turns"]
    assert len(turns) == TURNS
    assert len(script.sent) == 2 * TURNS  # no request beyond the script
    misses: dict[str, list[float]] = {
        k: [] for k in ("ttft", "generation", "retry_wait", "first_event", "tokens")
    }
    for i, turn in enumerate(turns):
        assert [a["status"] for a in turn["attempts"]] == [529, 200]
        assert [a["error"] for a in turn["attempts"]] == ["http_529", None]
        assert turn["attempts"][1]["request_id"] == f"req_scripted_{2 * i + 2}"
        assert turn["usage"]["output_tokens"] == len(PIECES) + (i < TURNS - 1)
        phases, marks = turn["phases_s"], turn["marks_s"]
        assert phases["reasoning"] == 0
        # The client slept the server's retry-after-ms between the attempts: a causal bound.
        assert phases["retry_wait"] >= 0.050
        sent = script.sent[2 * i + 1]  # the stream; 2 * i was the 529
        last_token = sent[-4] if i < TURNS - 1 else sent[LAST_TEXT]  # tool JSON, or text
        misses["retry_wait"].append(
            phases["retry_wait"] - (script.arrivals[2 * i + 1] - script.arrivals[2 * i])
        )
        misses["ttft"].append(phases["ttft"] - sent[FIRST_TOKEN])
        misses["generation"].append(phases["generation"] - (sent[-1] - sent[FIRST_TOKEN]))
        misses["first_event"].append(
            marks["first_token"] - marks["first_event"] - (sent[FIRST_TOKEN] - sent[FIRST_EVENT])
        )
        misses["tokens"].append(
            marks["last_token"] - marks["first_token"] - (last_token - sent[FIRST_TOKEN])
        )
    for name, values in misses.items():
        assert abs(statistics.median(values)) < 0.020, (name, values)
    assert_turns_consistent(run)
    for text in (
        result.stdout.str(),
        result.stderr.str(),
        (pytester.path / "run.json").read_text(),
    ):
        assert secret not in text


def test_model_cannot_reach_outside_the_workspace(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    secret_file = outside / "secret.txt"
    secret_file.write_text("do not read\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-key-for-env-test-XYZ")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-for-env-test-XYZ")
    monkeypatch.setenv("MY_SECRET_VALUE", "secret-for-env-test-XYZ")
    task = make_task(pytester.path, "alpha")
    (task / "workspace" / "escape").symlink_to(outside, target_is_directory=True)
    calls = [
        ("read_file", {"path": "../alpha/agenttask.toml"}),
        ("read_file", {"path": str(secret_file)}),
        ("read_file", {"path": "/etc/passwd"}),
        ("read_file", {"path": "escape/secret.txt"}),
        ("write_file", {"path": "escape/secret.txt", "content": "owned\n"}),
        ("write_file", {"path": "../planted.txt", "content": "owned\n"}),
        ("edit_file", {"path": "escape/secret.txt", "old_text": "do", "new_text": "did"}),
        ("run_command", {"command": "env"}),
    ]
    script = ScriptedServer([Reply(tool_reply(calls))])
    with script.running():
        result = pytester.runpytest_subprocess(
            f"--agentspeed-endpoint=anthropic:claude-test@{script.url}",
            "--agentspeed-allow-task-failures",
        )
    result.assert_outcomes(passed=1)
    results = [
        b for b in script.requests[1]["messages"][-1]["content"] if b["type"] == "tool_result"
    ]
    assert [r["is_error"] for r in results] == [True] * 7 + [False]
    env_output = results[-1]["content"]
    assert env_output.startswith("exit code: 0")
    for value in ("sk-ant-key-for-env-test-XYZ", "tok-for-env-test-XYZ", "secret-for-env-test-XYZ"):
        assert value not in env_output
    assert "do not read" not in json.dumps(script.requests[1])
    assert secret_file.read_text() == "do not read\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    # Workspaces are made under the temporary directory; "../" would land right there.
    assert not (Path(tempfile.gettempdir()) / "planted.txt").exists()


def test_long_sessions_show_which_task_and_turn(pytester: pytest.Pytester) -> None:
    make_task(pytester.path, "alpha")
    # Every turn counts as "long" here, so each one prints its heartbeat line.
    pytester.makeconftest("import pytest_agentspeed.edge.console as s\ns.HEARTBEAT_S = 0.0\n")
    result = pytester.runpytest_subprocess("--agentspeed-time-scale=0.01")
    result.assert_outcomes(passed=1)
    item = "alpha/agenttask.toml::alpha[[]sim:standard-r0[]]"
    result.stdout.fnmatch_lines(
        [
            f"agentspeed: {item}: turn 1, * output tokens, 0 s",
            f"agentspeed: {item}: turn 2, * output tokens, 0 s",
        ]
    )


def test_an_endpoint_error_fails_the_item_and_never_echoes_the_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-ant-echoed-by-a-careless-server-0042"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    make_task(pytester.path, "alpha")
    careless = Reply(
        status=400, error_type="invalid_request_error", error_message=f"bad key {secret}"
    )
    with ScriptedServer([careless]).running() as script:
        result = pytester.runpytest_subprocess(
            f"--agentspeed-endpoint=anthropic:claude-test@{script.url}",
            "--agentspeed-json=run.json",
        )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*endpoint error: invalid_request_error: HTTP 400: bad key ****"])
    run = read_run(pytester.path / "run.json")
    (session,) = run["sessions"]
    assert session["outcome"] == "error"
    assert session["check_exit_code"] is None
    assert session["turns"][0]["error"] == "invalid_request_error: HTTP 400: bad key ***"
    assert run["summary"]["anthropic:claude-test"]["error_rate"] == 1.0
    for text in (
        result.stdout.str(),
        result.stderr.str(),
        (pytester.path / "run.json").read_text(),
    ):
        assert secret not in text


def test_ultraspeed_beats_standard_on_throughput_and_ttft(pytester: pytest.Pytester) -> None:
    """The README's A/B: ultraspeed is faster on the same task, both at the medians of every
    draw (no jitter).

    Robust by design on a loaded machine: the task is scripted so that its tools are file
    writes and reads (a test command's run time, which load stretches by seconds, would swamp
    the arms' difference), its last turn is a long answer (1,000 tokens: planned 0.77 s of
    decode on standard against 0.1 s on ultraspeed at this time scale), and each arm runs
    three sessions whose medians are compared, so one disturbed session moves nothing.
    """
    make_scripted_task(pytester.path, "scripted", answer_words=1000)
    result = pytester.runpytest_subprocess(
        "--agentspeed-endpoint=sim:standard?jitter=0",
        "--agentspeed-endpoint=sim:ultraspeed?jitter=0",
        "--agentspeed-time-scale=0.1",
        "--agentspeed-repeat=3",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=6)
    run = read_run(pytester.path / "run.json")
    standard, ultra = (run["summary"][f"sim:{p}?jitter=0"] for p in ("standard", "ultraspeed"))
    assert standard["sessions"] == ultra["sessions"] == 3
    # The same trajectory on both arms: the same tokens, so throughput compares their times.
    assert {s["usage"]["output_tokens"] for s in run["sessions"]} == {
        run["sessions"][0]["usage"]["output_tokens"]
    }
    assert ultra["throughput_tok_s"]["p50"] > standard["throughput_tok_s"]["p50"]
    assert ultra["ttft_s"]["p50"] < standard["ttft_s"]["p50"]
    assert ultra["decode_tok_s"]["p50"] > 3 * standard["decode_tok_s"]["p50"]


def test_trajectory_toml_scripts_the_simulated_model(pytester: pytest.Pytester) -> None:
    task = make_task(pytester.path, "scripted")
    (task / "solution" / "greeting.txt").unlink()  # the script alone must solve it
    (task / "trajectory.toml").write_text(
        textwrap.dedent(
            """
            [[turn]]
            text = "Writing the greeting."
            [[turn.tool]]
            name = "write_file"
            input = { path = "greeting.txt", content = "hello world\\n" }

            [[turn]]
            reasoning = "Check it."
            [[turn.tool]]
            name = "read_file"
            input = { path = "greeting.txt" }

            [[turn]]
            text = "Done: greeting.txt now says hello world."
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "--agentspeed-time-scale=0.01", "--agentspeed-json=run.json"
    )
    result.assert_outcomes(passed=1)
    (session,) = read_run(pytester.path / "run.json")["sessions"]
    assert [[c["name"] for c in t["tool_calls"]] for t in session["turns"]] == [
        ["write_file"],
        ["read_file"],
        [],
    ]
    assert session["turns"][-1]["stop_reason"] == "end_turn"
