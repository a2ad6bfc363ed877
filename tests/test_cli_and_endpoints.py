"""The ``agentspeed`` command and endpoint specs."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from conftest import standalone_sim

from pytest_agentspeed import ConfigError
from pytest_agentspeed.endpoints import (
    api_key,
    parse_endpoint,
    redact,
    strip_url_secrets,
    unique_names,
)
from pytest_agentspeed.tasks import load_task


@pytest.fixture
def standalone() -> Iterator[str]:
    with standalone_sim("ultraspeed") as url:
        yield url


def test_standalone_sim_plays_the_task_for_any_client(standalone: str, example_suite: Path) -> None:
    task = load_task(example_suite / "add-json-output-flag" / "agenttask.toml")
    with (
        anthropic.Anthropic(api_key="anything", base_url=standalone, max_retries=0) as client,
        client.messages.stream(
            model="whatever",
            max_tokens=1024,
            messages=[{"role": "user", "content": f"Please help.\n\n{task.instruction}"}],
        ) as stream,
    ):
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    tool = [b for b in message.content if b.type == "tool_use"]
    assert [(b.name, b.input) for b in tool] == [("list_files", {"path": "."})]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sim", "--profile", "warp"], "invalid choice: 'warp'"),
        (["sim", "--port", "70000"], "expected a port number 0-65535, got '70000'"),
        (["sim", "--time-scale", "0"], "expected a positive number, got '0'"),
        (
            ["sim", "--tasks", "/no/such/dir", "--port", "0"],
            "--tasks /no/such/dir: no such directory",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_with_one_message(args: list[str], expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_agentspeed", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_endpoint_specs() -> None:
    sim = parse_endpoint("sim:ultraspeed?time_scale=0.5&seed=3&jitter=0")
    assert sim.name == "sim:ultraspeed?time_scale=0.5&seed=3&jitter=0"
    assert sim.sim is not None
    assert (sim.sim.profile, sim.sim.time_scale, sim.sim.seed, sim.sim.jitter) == (
        "ultraspeed",
        0.5,
        3,
        False,
    )
    assert parse_endpoint("sim:standard").with_time_scale(0.1).sim.time_scale == 0.1  # type: ignore[union-attr]
    assert parse_endpoint("sim:standard?time_scale=2").with_time_scale(0.1).sim.time_scale == 2  # type: ignore[union-attr]

    real = parse_endpoint("anthropic:claude-x@http://user:pw@127.0.0.1:9000/base/?k=v")
    assert (real.name, real.model, real.api) == ("anthropic:claude-x", "claude-x", "anthropic")
    assert real.public_base_url() == "http://127.0.0.1:9000/base"
    assert real.key_vars == ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")

    for bad, message in [
        ("sim:", "unknown endpoint 'sim:'"),
        ("sim:standard?time_scale=0", "time_scale must be a positive number"),
        ("sim:standard?seed=x", "seed must be an integer"),
        ("sim:standard?api=grpc", "api='grpc'; accepted: anthropic, openai, responses"),
        (
            "openai-responses:gpt-x",
            "endpoint 'openai-responses:gpt-x': the base URL is missing; "
            "expected openai-responses:MODEL@BASE_URL, the base URL with /v1",
        ),
        (
            "openai-responses:@http://h/v1",
            "endpoint 'openai-responses:@http://h/v1': the model is missing; "
            "expected openai-responses:MODEL@BASE_URL",
        ),
        ("anthropic:", "unknown endpoint 'anthropic:'"),
        (
            "anthropic:m@ftp://x",
            "endpoint 'anthropic:m@ftp://x': the base URL must be http(s)://HOST[:PORT][/PATH]; "
            "expected anthropic:MODEL[@BASE_URL]",
        ),
        (
            "anthropic:@http://127.0.0.1:1",
            "endpoint 'anthropic:@http://127.0.0.1:1': the model is missing; "
            "expected anthropic:MODEL[@BASE_URL] (e.g. anthropic:claude-sonnet-4-5)",
        ),
        (
            "openai:gpt-x",
            "endpoint 'openai:gpt-x': the base URL is missing; expected openai:MODEL@BASE_URL, "
            "the base URL with /v1 as the OpenAI SDK takes it "
            "(e.g. openai:qwen3@http://127.0.0.1:8000/v1)",
        ),
        (
            # The credentials and query of a URL are not echoed.
            "openai:m@ftp://me:pw@x/v1?key=k",
            "endpoint 'openai:m@ftp://x/v1': the base URL must be http(s)://HOST[:PORT][/PATH]; "
            "expected openai:MODEL@BASE_URL",
        ),
        ("openai:@http://h/v1", "endpoint 'openai:@http://h/v1': the model is missing; expected"),
        ("mystery", "unknown endpoint 'mystery'"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_endpoint(bad)


def test_the_responses_wire_is_spelled_like_the_chat_one() -> None:
    real = parse_endpoint("openai-responses:gpt-5@http://127.0.0.1:8000/v1")
    assert (real.name, real.api, real.model, real.base_url) == (
        "openai-responses:gpt-5",
        "responses",
        "gpt-5",
        "http://127.0.0.1:8000/v1",
    )
    assert (real.key_vars, real.key_required) == (("OPENAI_API_KEY",), False)
    assert parse_endpoint("sim:standard?api=responses").api == "responses"


def test_a_simulated_endpoint_speaks_the_agents_wire_unless_its_spec_names_one() -> None:
    # The simulator serves every wire at one address: an open spec follows the agent.
    open_spec = parse_endpoint("sim:standard")
    assert open_spec.speaking("responses").api == "responses"
    assert open_spec.speaking("responses").name == "sim:standard"
    assert open_spec.speaking(None) is open_spec
    # A wire the spec names, or a real server's, stays; the run checks it against the agent's.
    named = parse_endpoint("sim:standard?api=openai")
    assert named.speaking("responses") is named
    real = parse_endpoint("openai:m@http://127.0.0.1:1/v1")
    assert real.speaking("responses") is real


def test_names_keys_and_redaction() -> None:
    names = [e.name for e in unique_names([parse_endpoint("sim:standard")] * 3)]
    assert names == ["sim:standard", "sim:standard#2", "sim:standard#3"]
    real = parse_endpoint("anthropic:m@http://127.0.0.1:1")
    assert api_key(real, {"ANTHROPIC_AUTH_TOKEN": "tok"}) == "tok"
    assert api_key(real, {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_AUTH_TOKEN": "tok"}) == "k"
    with pytest.raises(ConfigError, match="set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN"):
        api_key(real, {})
    assert api_key(parse_endpoint("sim:standard"), {}) == "sim"
    assert redact("bad key sk-abc123 here", ["sk-abc123"]) == "bad key *** here"
    assert strip_url_secrets("https://a:b@host/x/?token=1#f") == "https://host/x"


def test_pytest_help_works_in_a_project_without_tasks(tmp_path: Path) -> None:
    # argparse %-formats every help string: one bare "%" (as in "5%") broke `pytest --help` in
    # every project of the environment. Run it where a user would, in an empty directory.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--agentspeed-tolerance=PCT" in done.stdout
    assert "e.g. 5% or 0.05" in " ".join(done.stdout.split())


@pytest.mark.parametrize("command", [None, "compare", "report", "show", "merge", "sim"])
def test_every_agentspeed_help_works(command: str | None, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "pytest_agentspeed", *([command] if command else []), "--help"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: agentspeed"), done.stdout
    assert "Traceback" not in done.stderr
