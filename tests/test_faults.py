"""Faults: the simulator injects them, the clients classify them, the agent loop retries broken
streams, and a run records them as data (attempts, retry waits, errored sessions, the gate)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from test_plugin import make_task, read_run

from pytest_agentspeed.agents import AgentContext, builtin
from pytest_agentspeed.agents.builtin import BuiltinAgent
from pytest_agentspeed.clients import STREAM_RETRIES, ModelResponse, TurnRequest
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.clients.openai_client import OpenAIClient
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import Usage
from pytest_agentspeed.simulator import MountConfig, ServerConfig
from pytest_agentspeed.simulator.faults import (
    FAULT_KINDS,
    RETRY_AFTER_S,
    STALL_S,
    draw_fault,
    fault_rates,
)
from pytest_agentspeed.simulator.latency import seeded_rng
from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.tasks import Task
from pytest_agentspeed.timing import EventLog, reduce_turn

SCALE = 0.01
MESSAGES = [{"role": "user", "content": "Say hello, at some length."}]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    """One mount per fault kind, each faulting every request, and a mixed one."""
    mounts = [
        MountConfig(key=kind, profile="standard", time_scale=SCALE, faults={kind: 1.0})
        for kind in FAULT_KINDS
    ]
    mounts.append(
        MountConfig(key="mixed", profile="standard", time_scale=SCALE, faults=fault_rates(0.5, {}))
    )
    server = SimulatorProcess(ServerConfig(mounts=tuple(mounts)))
    server.start()
    yield server
    server.stop()


def test_fault_rates_split_and_validate() -> None:
    assert fault_rates(0.2, {}) == dict.fromkeys(FAULT_KINDS, pytest.approx(0.04))
    assert fault_rates(None, {"drop": 0.3}) == {"drop": 0.3}
    assert fault_rates(0.5, {"stall": 0.0}) == dict.fromkeys(("429", "529", "error", "drop"), 0.1)
    for total, kinds, message in [
        (1.5, {}, "faults must be a rate between 0 and 1, not 1.5"),
        (None, {"error": 0.7, "drop": 0.7}, "fault rates add up to 1.4, more than 1"),
        (None, {"teapot": 0.1}, "unknown fault kind 'teapot'"),
    ]:
        with pytest.raises(ValueError, match=message):
            fault_rates(total, kinds)


def test_draws_are_seeded_and_mid_stream_kinds_need_a_stream() -> None:
    rates = fault_rates(0.5, {})
    draws = [draw_fault(rates, seeded_rng(1, "k", "s", i), stream=True) for i in range(2000)]
    again = [draw_fault(rates, seeded_rng(1, "k", "s", i), stream=True) for i in range(2000)]
    assert draws == again
    share = sum(d is not None for d in draws) / len(draws)
    assert 0.46 < share < 0.54
    assert {d for d in draws if d} == set(FAULT_KINDS)
    plain = [draw_fault(rates, seeded_rng(1, "k", "s", i), stream=False) for i in range(2000)]
    assert {d for d in plain if d} == {"429", "529"}
    # The same draw decides: a non-streamed request keeps the pre-stream faults it would get.
    assert [p for p in plain if p] == [d for d in draws if d in ("429", "529")]


@pytest.fixture
def sdks(sim: SimulatorProcess) -> Iterator[Any]:
    """``sdks.anthropic(kind)`` and ``sdks.openai(kind)``: official clients, closed after."""
    made: list[anthropic.Anthropic | openai.OpenAI] = []

    class Factory:
        def anthropic(self, kind: str) -> anthropic.Anthropic:
            made.append(
                anthropic.Anthropic(base_url=sim.base_url(kind), api_key="sim", max_retries=0)
            )
            return made[-1]  # type: ignore[return-value]

        def openai(self, kind: str) -> openai.OpenAI:
            made.append(
                openai.OpenAI(base_url=sim.base_url(kind) + "/v1", api_key="sim", max_retries=0)
            )
            return made[-1]  # type: ignore[return-value]

    yield Factory()
    for client in made:
        client.close()


def test_pre_stream_faults_on_both_wires_as_the_sdks_see_them(sdks: Any) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdks.anthropic("429").messages.create(model="m", max_tokens=50, messages=MESSAGES)
    wait = RETRY_AFTER_S * SCALE
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.response.headers["retry-after-ms"] == str(round(wait * 1000))
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        sdks.anthropic("529").messages.create(
            model="m", max_tokens=50, messages=MESSAGES, stream=True
        )
    assert "retry-after" not in overloaded.value.response.headers
    with pytest.raises(openai.RateLimitError) as openai_limited:
        sdks.openai("429").chat.completions.create(model="m", messages=MESSAGES)
    assert openai_limited.value.response.headers["retry-after-ms"] == str(round(wait * 1000))
    with pytest.raises(openai.InternalServerError) as openai_overloaded:
        sdks.openai("529").chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert openai_overloaded.value.status_code == 529


def _drain(manager: Any, into: list[str] | None = None) -> None:
    """Read a ``messages.stream()`` to its end, keeping the event types seen."""
    with manager as stream:
        for event in stream:
            (into if into is not None else []).append(event.type)


def test_mid_stream_faults_on_both_wires_as_the_sdks_see_them(sdks: Any) -> None:
    # An error event inside the 200 stream: the Anthropic SDK raises a plain APIStatusError.
    events: list[str] = []
    stream = sdks.anthropic("error").messages.stream(model="m", max_tokens=400, messages=MESSAGES)
    with pytest.raises(anthropic.APIStatusError) as error:
        _drain(stream, events)
    assert error.value.status_code == 200
    assert error.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert events[0] == "message_start"
    with pytest.raises(openai.APIError, match="Overloaded"):
        for _ in sdks.openai("error").chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        ):
            pass
    # A dropped connection: the body ends without its last chunk.
    stream = sdks.anthropic("drop").messages.stream(model="m", max_tokens=400, messages=MESSAGES)
    with pytest.raises(Exception, match="incomplete chunked read") as dropped:
        _drain(stream)
    assert type(dropped.value).__name__ == "RemoteProtocolError"
    with pytest.raises(openai.APIConnectionError):
        for _ in sdks.openai("drop").chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        ):
            pass


def test_a_stall_delays_the_rest_of_the_stream(sim: SimulatorProcess, sdks: Any) -> None:
    start = time.perf_counter()
    with sdks.anthropic("stall").messages.stream(
        model="m", max_tokens=400, messages=MESSAGES
    ) as stream:
        message = stream.get_final_message()
    took = time.perf_counter() - start
    assert message.stop_reason == "end_turn"
    entry = sim.schedule()[-1]
    assert entry["fault"] == "stall"
    assert entry["planned"]["stall_s"] == pytest.approx(STALL_S * SCALE)
    # Causal bounds, which load cannot break: the server wrote its last byte no earlier than
    # planned (the stall included; 1 ms for the event loop's clock), and the client, which
    # started before the request arrived, read it after it was written.
    assert entry["planned"]["end_s"] > STALL_S * SCALE
    assert entry["actual"]["end_s"] >= entry["planned"]["end_s"] - 0.001
    assert took >= entry["actual"]["end_s"]


def _request(session: str = "s1") -> TurnRequest:
    return TurnRequest(
        system=[{"type": "text", "text": "You are terse."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
        tools=[],
        max_tokens=400,
        session_id=session,
    )


@pytest.mark.parametrize("wire", ["anthropic", "openai"])
def test_clients_classify_faults(sim: SimulatorProcess, wire: str) -> None:
    def client(kind: str, retries: int = 0) -> AnthropicClient | OpenAIClient:
        if wire == "openai":
            return OpenAIClient(
                model="m", base_url=sim.base_url(kind) + "/v1", api_key="sim", max_retries=retries
            )
        return AnthropicClient(
            model="m", base_url=sim.base_url(kind), api_key="sim", max_retries=retries
        )

    expected = {
        "429": ("rate_limit_error", 429, False),
        "529": ("overloaded_error", 529, False),
        "error": ("overloaded_error", 200, True),
        "drop": ("connection_error", None, True),
    }
    for kind, (error_type, status, mid_stream) in expected.items():
        c = client(kind)
        log = EventLog()
        log.add("turn_start")
        with pytest.raises(EndpointError) as caught:
            c.complete(_request(), log)
        c.close()
        assert (caught.value.error_type, caught.value.status, caught.value.mid_stream) == (
            error_type,
            status,
            mid_stream,
        ), kind
    # The clients retry a 429 as the SDKs do, waiting the server's retry-after-ms each time.
    c = client("429", retries=2)
    log = EventLog()
    log.add("turn_start")
    with pytest.raises(EndpointError):
        c.complete(_request(), log)
    c.close()
    log.add("turn_end")
    timing = reduce_turn(log.events)
    assert [a.status for a in timing.attempts] == [429, 429, 429]
    # Both waits were the server's 20 ms: at least that, and far below the SDKs' own back-off
    # (0.5 s then 1 s, less up to 25% jitter: 1.125 s at the least) that ignoring it would cost.
    assert 2 * RETRY_AFTER_S * SCALE <= timing.phases_s["retry_wait"] < 1.0


class _Flaky:
    """A client whose stream breaks off ``breaks`` times, then replies."""

    def __init__(self, breaks: int, *, mid_stream: bool = True) -> None:
        self.breaks = breaks
        self.mid_stream = mid_stream
        self.calls = 0
        self.retry_wait_s = 0.01

    def complete(self, request: TurnRequest, log: EventLog) -> ModelResponse:
        self.calls += 1
        log.add("attempt")
        log.add("request_sent")
        log.add("headers", status=200)
        if self.calls <= self.breaks:
            log.add("attempt_failed", detail="overloaded_error")
            raise EndpointError("overloaded_error", "Overloaded", 200, mid_stream=self.mid_stream)
        log.add("message_start")
        log.add("block_start", index=0, detail="text")
        log.add("delta", index=0, detail="text_delta", nonempty=True)
        log.add("block_stop", index=0)
        log.add("message_stop")
        log.add("stream_end")
        return ModelResponse(
            content=[{"type": "text", "text": "Done."}],
            tool_calls=(),
            stop_reason="end_turn",
            usage=Usage(input_tokens=10, output_tokens=2),
            usage_raw={},
        )

    def close(self) -> None:
        pass


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A clock (nanoseconds) that only the agent loop's back-off sleeps move forward."""
    now = [0]

    def sleep(seconds: float) -> None:
        now[0] += round(seconds * 1e9)

    monkeypatch.setattr(builtin.time, "sleep", sleep)
    return now


def _run(tmp_path: Path, client: _Flaky, now: list[int]) -> Any:
    task = Task(id="t", instruction="Say done.", workspace={}, check="true")
    agent = BuiltinAgent(clock=lambda: now[0])
    return agent.run(
        AgentContext(task=task, workspace=tmp_path, session_id="t[x-r0]", client=client)
    )


def test_the_agent_loop_sends_a_broken_turn_again(tmp_path: Path, fake_time: list[int]) -> None:
    client = _Flaky(breaks=STREAM_RETRIES)
    run = _run(tmp_path, client, fake_time)
    assert run.stopped == "end_turn"
    assert client.calls == STREAM_RETRIES + 1
    (turn,) = run.turns
    assert [a.error for a in turn.attempts] == ["overloaded_error"] * STREAM_RETRIES + [None]
    # Waits of 0.01 s, then 0.02 s, before the tries (nothing else moves the fake clock):
    # time lost, counted as retry wait, exactly.
    assert STREAM_RETRIES == 2
    assert turn.phases_s["retry_wait"] == pytest.approx(0.03, abs=1e-12)
    assert turn.wall_s == pytest.approx(0.03, abs=1e-12)


def test_the_agent_loop_gives_up_after_its_retries(tmp_path: Path, fake_time: list[int]) -> None:
    client = _Flaky(breaks=STREAM_RETRIES + 1)
    run = _run(tmp_path, client, fake_time)
    assert (run.stopped, client.calls) == ("error", STREAM_RETRIES + 1)
    assert run.error == "overloaded_error: Overloaded"
    assert fake_time[0] == 30_000_000  # no wait after the last try
    # What failed before the response started was the SDK's to retry: not sent again here.
    client = _Flaky(breaks=1, mid_stream=False)
    run = _run(tmp_path, client, fake_time)
    assert (run.stopped, client.calls) == ("error", 1)


#: The failed turns of ``faults=0.3&seed=3`` (3 tasks, 2 repeats): each turn's attempts.
SEED_3_FAILED_TURNS = [
    ["http_529", "http_429", "overloaded_error"],  # the SDK gave up: the session errored
    ["http_429", None],
    ["http_529", None],
    ["http_429", None],
    ["http_429", "http_529", None],
    ["connection_error", None],  # dropped mid-stream: sent again by the agent loop
    ["http_529", None],
]


def _longest_wait(error: str, index: int) -> float:
    """The longest wait after a failed attempt, by the retry policies.

    A 429 carries the server's retry-after-ms; a 529 gets the SDK's back-off, at most
    0.5 s x 2^n on its n-th retry (n no more than the attempt's index in the turn); a stream
    broken mid-way is sent again by the agent after ``retry_wait_s`` (1 s, scaled) x 2^n.
    """
    if error == "http_429":
        return RETRY_AFTER_S * 0.01
    if error in ("http_529", "overloaded_error"):
        return 0.5 * 2**index
    return 1.0 * 0.01 * 2**index


def test_faulty_endpoint_run_records_every_session_and_its_retries(
    pytester: pytest.Pytester,
) -> None:
    for name in ("alpha", "beta", "gamma"):
        make_task(pytester.path, name)
    result = pytester.runpytest_subprocess(
        "--agentspeed-endpoint=sim:standard?faults=0.3&seed=3",
        "--agentspeed-repeat=2",
        "--agentspeed-time-scale=0.01",
        "--agentspeed-allow-task-failures",
        "--agentspeed-json=run.json",
        "--agentspeed-html=report.html",
        "-p",
        "no:cacheprovider",
    )
    run = read_run(pytester.path / "run.json")
    sessions = run["sessions"]
    # Seed 3 decides every draw: which sessions end how, and each failed attempt, exactly.
    assert [s["outcome"] for s in sessions] == ["error"] + ["passed"] * 5
    result.assert_outcomes(passed=5, failed=1)
    retried = [t for s in sessions for t in s["turns"] if t["attempts"][0]["error"]]
    assert [[a["error"] for a in t["attempts"]] for t in retried] == SEED_3_FAILED_TURNS
    assert all(len(t["attempts"]) == 1 for s in sessions for t in s["turns"] if t not in retried)
    for turn in retried:
        # An upper bound on the back-off: each wait at most its policy's longest (below), plus
        # a generous 0.25 s per attempt for the attempt itself on a loaded machine.
        errors = [a["error"] for a in turn["attempts"]]
        bound = sum(_longest_wait(e, i) for i, e in enumerate(errors[:-1]))
        assert 0 < turn["phases_s"]["retry_wait"] < bound + 0.25 * len(errors), turn
    assert run["endpoints"][0]["options"]["faults"] == fault_rates(0.3, {})
    summary = run["summary"]["sim:standard?faults=0.3&seed=3"]
    assert summary["error_rate"] == 1 / 6
    result.stdout.fnmatch_lines(["error rate *17%"])
    assert "error rate" in (pytester.path / "report.html").read_text()


def test_a_candidate_that_errors_more_fails_the_gate(pytester: pytest.Pytester) -> None:
    for name in ("alpha", "beta", "gamma"):
        make_task(pytester.path, name)
    broken = "sim:standard?fault_error=1"
    result = pytester.runpytest_subprocess(
        "--agentspeed-endpoint=sim:standard",
        f"--agentspeed-endpoint={broken}",
        "--agentspeed-repeat=2",
        "--agentspeed-time-scale=0.01",
        "--agentspeed-json=run.json",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 1
    result.assert_outcomes(passed=6, failed=6)
    run = read_run(pytester.path / "run.json")
    errored = [s for s in run["sessions"] if s["endpoint"] == broken]
    assert [s["outcome"] for s in errored] == ["error"] * 6
    # Each errored session sent its only turn three times: the first try and two retries.
    assert all(len(s["turns"][0]["attempts"]) == STREAM_RETRIES + 1 for s in errored)
    (comparison,) = run["comparisons"]
    assert comparison["error_rate"]["errors"] == [0, 6]
    assert comparison["verdict"] == "FAIL"
    assert any("ended 6 of 6 sessions in endpoint errors" in r for r in comparison["reasons"])
    result.stdout.fnmatch_lines(["*endpoint errors 0 vs 6 sessions*"])
    verdict = next(i for i, line in enumerate(result.outlines) if "-> FAIL" in line)
    assert len(result.outlines) - verdict <= 7  # among the last lines, for CI logs
