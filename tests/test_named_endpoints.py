"""Named endpoints: configuration, request options on the wire, and keys kept out of outputs."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from scripted_server import Reply, ScriptedServer, message_start
from test_plugin import make_task, read_run

from pytest_agentspeed.runfile import BASELINE_DIR

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SECRET = "sk-team-7f3a9c1e5b2d8e4f"


def pyproject(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyprojecttoml(textwrap.dedent(body))


def test_unset_key_variable_is_a_one_line_usage_error_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEAM_LLM_KEY", raising=False)
    pyproject(
        pytester,
        """
        [tool.agentspeed]
        endpoint = "team"
        [tool.agentspeed.endpoints.team]
        api = "openai"
        model = "qwen3-coder"
        base_url = "http://127.0.0.1:9/v1"
        api_key_env = "TEAM_LLM_KEY"
        """,
    )
    make_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == ["ERROR: endpoint 'team' needs an API key: set TEAM_LLM_KEY"]
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('api = "openai"\nmodel = "m"', 'base_url is required for api = "openai"'),
        ('spec = "sim:standard"\ncolour = "red"', "unknown key 'colour'; accepted: api, model"),
        ('spec = "sim:standard"\nmax_tokens = "many"', "max_tokens has the wrong type (str)"),
        ('spec = "sim:standard"\nthinking = "deep"', "thinking must be adaptive, enabled or"),
        ('spec = "sim:standard"\nauth = "basic"', "auth must be bearer or x-api-key"),
        ('api = "grpc"\nmodel = "m"', 'give spec = "...", or api = "anthropic" | "openai"'),
        ('spec = "sim:warp"', "unknown simulator profile 'warp'"),
    ],
)
def test_bad_endpoint_table_is_a_usage_error_naming_the_key(
    pytester: pytest.Pytester, table: str, message: str
) -> None:
    pytester.makepyprojecttoml(
        f'[tool.agentspeed]\nendpoint = "team"\n[tool.agentspeed.endpoints.team]\n{table}\n'
    )
    make_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    stderr = result.stderr.str()
    assert "[tool.agentspeed.endpoints.team]" in stderr or "endpoint 'sim:warp'" in stderr
    assert message in stderr
    assert "Traceback" not in stderr + result.stdout.str()


def test_unknown_endpoint_name_lists_the_configured_ones(pytester: pytest.Pytester) -> None:
    pyproject(
        pytester,
        """
        [tool.agentspeed.endpoints.team]
        spec = "sim:standard"
        """,
    )
    make_task(pytester.path, "alpha")
    result = pytester.runpytest_subprocess("--agentspeed-endpoint=teem")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown endpoint 'teem' (named endpoints: team)*"])


def thinking_then_tool() -> Reply:
    """A thinking block with a signature, then a tool call: the agent must send it back."""
    events: list[dict[str, Any]] = [
        message_start(),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "The file has typos."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "c2lnLW9wYXF1ZQ=="},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_w",
                "name": "write_file",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {
                "type": "input_json_delta",
                "partial_json": '{"path": "greeting.txt", "content": "hello world\\n"}',
            },
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
        {"type": "message_stop"},
    ]
    # The thinking block closes 250 ms after its delta: marks are the bytes' arrival times,
    # and a block whose events all arrive in one read has no reasoning time to measure. With
    # both cores busy a reader thread can wake 10 ms late and read the two together (seen at
    # a 10 ms gap); a quarter of a second it does not lose.
    return Reply([(0.0 if i < 4 else 0.25, e) for i, e in enumerate(events)])


@pytest.mark.parametrize("auth", ["bearer", "x-api-key"])
def test_anthropic_request_options_reach_the_wire(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, auth: str
) -> None:
    """The SDK authenticates with a Bearer token (vLLM accepts only that); ``x-api-key``
    also sends the key in the header older gateways read."""
    monkeypatch.setenv("TEAM_LLM_KEY", SECRET)
    make_task(pytester.path, "alpha")
    with ScriptedServer([thinking_then_tool()]).running() as script:
        pyproject(
            pytester,
            f"""
            [tool.agentspeed]
            endpoint = "gateway"
            [tool.agentspeed.endpoints.gateway]
            api = "anthropic"
            model = "claude-team"
            base_url = "{script.url}"
            api_key_env = "TEAM_LLM_KEY"
            label = "Team gateway"
            thinking_budget = 2048
            max_tokens = 6000
            auth = "{auth}"
            headers = {{ x-tenant = "t1" }}
            extra_body = {{ service_tier = "priority" }}
            """,
        )
        result = pytester.runpytest_subprocess("--agentspeed-json=run.json")
    result.assert_outcomes(passed=1)
    first, second = script.requests[:2]
    assert first["model"] == "claude-team"
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert first["max_tokens"] == 6000
    assert first["service_tier"] == "priority"
    # The thinking block goes back exactly as it came, signature included.
    assistant = second["messages"][-2]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "The file has typos.",
        "signature": "c2lnLW9wYXF1ZQ==",
    }
    headers = script.headers[0]
    assert headers["x-tenant"] == "t1"
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers.get("x-api-key") == (SECRET if auth == "x-api-key" else None)
    run = read_run(pytester.path / "run.json")
    (endpoint,) = run["endpoints"]
    assert (endpoint["name"], endpoint["label"]) == ("gateway", "Team gateway")
    assert endpoint["options"]["thinking_budget"] == 2048
    assert endpoint["options"]["headers"] == ["x-tenant"]
    turn = run["sessions"][0]["turns"][0]
    assert turn["phases_s"]["reasoning"] > 0


def test_named_simulated_endpoints_reason_and_never_write_the_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, example_suite: Path
) -> None:
    """Two named simulated endpoints, one per wire, one with a key (looked up and sent as a
    real endpoint's would be): the key is in no file the run writes, nor in its output."""
    import shutil

    monkeypatch.setenv("TEAM_LLM_KEY", SECRET)
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    shutil.copytree(example_suite / "fix-pagination-off-by-one", pytester.path / "task")
    pyproject(
        pytester,
        """
        [tool.agentspeed]
        endpoint = ["team", "local"]
        time_scale = 0.02
        json = "out/run.json"
        html = "out/report.html"
        markdown = "out/summary.md"
        [tool.agentspeed.endpoints.team]
        spec = "sim:standard"
        api_key_env = "TEAM_LLM_KEY"
        label = "Team MiMo"
        thinking_budget = 1024
        [tool.agentspeed.endpoints.local]
        spec = "sim:frontier?api=openai"
        label = "Local vLLM"
        extra_body = { reasoning_effort = "low" }
        """,
    )
    result = pytester.runpytest_subprocess(
        "--junitxml=out/junit.xml",
        "--agentspeed-save=main",
        "-p",
        "no:cacheprovider",
        "-v",
    )
    result.assert_outcomes(passed=2)
    run = read_run(pytester.path / "out" / "run.json")
    assert [(e["name"], e["label"], e["api"]) for e in run["endpoints"]] == [
        ("team", "Team MiMo", "anthropic"),
        ("local", "Local vLLM", "openai"),
    ]
    for session in run["sessions"]:
        assert any(t["phases_s"]["reasoning"] > 0 for t in session["turns"]), session["arm"]
    html = (pytester.path / "out" / "report.html").read_text()
    assert "team (Team MiMo)" in html

    written = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert {"run.json", "report.html", "summary.md", "junit.xml", "step-summary.md"} <= {
        p.name for p in written
    }
    assert pytester.path / BASELINE_DIR / "main.json" in written
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in result.stdout.str() + result.stderr.str()
