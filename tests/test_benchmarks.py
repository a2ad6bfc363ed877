"""The benchmarks' own arithmetic: what they join, separate and build, on exact inputs."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from factories import run_record, session

from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.records import AttemptRecord, ClockRecord, SessionRecord, Usage

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
#: Turns the seeded mixed run of 60 sessions x 4 turns retries (one in ten, drawn).
RETRIED_TURNS = 25


def load(name: str) -> ModuleType:
    """A benchmark script as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_calibration_takes_session_time_from_the_schedule_and_overhead_apart() -> None:
    """Unscaled time is planned / scale plus drawn tool time; the real overhead (client, sleep
    overshoot, server lateness) is kept in real seconds, never divided by the scale."""
    calibration = load("calibration")
    schedule = {
        "r1": {
            "time_scale": 0.05,
            "degraded": False,
            "planned": {"first_token_s": 0.25, "end_s": 1.0},
            "actual": {"end_s": 1.25},
        },
        "r2": {
            "time_scale": 0.05,
            "degraded": False,
            "planned": {"first_token_s": 0.5, "end_s": 2.0},
            "actual": {"end_s": 2.0},
        },
    }
    result = calibration.SessionResult(
        profile="standard",
        seed=1,
        session_id="s",
        output_tokens=900,
        wall_s=4.5,
        request_ids=["r1", "r2"],
        tool_drawn_s=30.0,
        sleep_requested_s=1.5,
        sleep_taken_s=1.625,
    )
    s = calibration.figures(result, schedule)
    assert s.model_s == pytest.approx(60.0)  # (1.0 + 2.0) / 0.05
    assert s.time_s == pytest.approx(90.0)
    assert s.tok_s == pytest.approx(10.0)
    assert s.ttfts_s == pytest.approx([5.0, 10.0])
    assert s.late_s == pytest.approx(0.25)
    assert s.overshoot_s == pytest.approx(0.125)
    assert s.client_s == pytest.approx(4.5 - 3.25 - 1.625)
    # Wall time less what the schedule planned and the sleeps asked for, in real seconds.
    assert s.overhead_s == pytest.approx(4.5 - 3.0 - 1.5)
    assert calibration.ratios([s]) is None


def test_report_scale_mixed_run_has_errors_retries_and_thinking() -> None:
    report_scale = load("report_scale")
    run = report_scale.synthetic_run(60, 4, mixed=True)
    errors = [s for s in run.sessions if s.outcome == "error"]
    assert [s.id for s in errors] == ["task14[ultraspeed-r0]", "task29[ultraspeed-r0]"]
    for s in errors:
        assert s.error == "endpoint error: 529 overloaded_error after 3 attempts"
        assert [a.status for a in s.turns[-1].attempts] == [529, 529, 529]
        assert s.turns[-1].phases_s["retry_wait"] == 3.5
    turns = [t for s in run.sessions for t in s.turns]
    assert all(t.phases_s["reasoning"] > 0 for t in turns if t.error is None)
    assert all(t.usage.thinking_tokens for t in turns if t.error is None)
    retried = [t for t in turns if len(t.attempts) == 2]
    assert len(retried) == RETRIED_TURNS
    assert all(t.phases_s["retry_wait"] == 1.2 for t in retried)
    plain = report_scale.synthetic_run(60, 4)
    assert {s.outcome for s in plain.sessions} <= {"passed", "failed"}
    assert all(
        len(t.attempts) == 1 and t.phases_s["reasoning"] == 0
        for s in plain.sessions
        for t in s.turns
    )


def test_simulator_cost_takes_lateness_per_write_and_at_the_logged_marks() -> None:
    """Each write's lateness is its send time minus its plan (a batch's writes share the send
    time); the marks are the three moments every version of the log keeps; an entry without
    per-write times (an older server) adds marks only; a stream cut short, its sent writes."""
    simulator_cost = load("simulator_cost")
    entry = {
        "planned": {"headers_s": 0.1, "first_token_s": 1.0, "end_s": 1.5},
        "actual": {"headers_s": 0.1005, "first_token_s": 1.002, "end_s": 1.5},
        "writes": {"planned_s": [0.1, 1.0, 1.25, 1.5], "sent_s": [0.1005, 1.002, 1.5, 1.5]},
    }
    older = {key: entry[key] for key in ("planned", "actual")}
    cut = entry | {"writes": {"planned_s": [0.1, 1.0, 1.25], "sent_s": [0.101]}}
    writes, marks = simulator_cost.lateness([entry, older, cut])
    assert writes == pytest.approx([0.5, 2.0, 250.0, 0.0, 1.0])
    assert marks == pytest.approx([0.5, 2.0, 0.0] * 3)


def test_client_cost_serves_valid_streams_and_subtracts_the_baseline() -> None:
    """The canned streams are what the clients accept (one event per write, the reply
    assembled from every delta); the cost is the medians' difference per extra delta."""
    import httpx2

    from pytest_agentspeed.clients import TurnRequest
    from pytest_agentspeed.clients.anthropic_client import AnthropicClient
    from pytest_agentspeed.clients.openai_client import OpenAIClient
    from pytest_agentspeed.clients.responses_client import ResponsesClient
    from pytest_agentspeed.clients.sse import SSEParser
    from pytest_agentspeed.timing import EventLog

    cost = load("client_cost")
    # (median 2.5 s - median 0.5 s) over 20,000 more deltas: 100 us each.
    assert cost.per_event_us([3.0, 2.0, 2.5], [0.5, 0.6, 0.4], 20_001) == pytest.approx(100.0)

    clients = {
        "anthropic": lambda t: AnthropicClient(
            model="m", base_url="http://b.invalid", api_key="k", transport=t
        ),
        "openai": lambda t: OpenAIClient(
            model="m", base_url="http://b.invalid/v1", api_key="k", transport=t
        ),
        "responses": lambda t: ResponsesClient(
            model="m", base_url="http://b.invalid/v1", api_key="k", transport=t
        ),
    }
    for wire, make, expected in (
        ("anthropic", cost.anthropic_events, 8),
        ("openai", cost.openai_events, 7),
        ("responses", cost.responses_events, 11),
    ):
        writes = make(3)
        parser = SSEParser()
        assert [len(parser.feed(w, k)) for k, w in enumerate(writes)] == [1] * expected
        body = b"".join(writes)
        transport = httpx2.MockTransport(lambda _, body=body: httpx2.Response(200, content=body))
        client = clients[wire](transport)
        request = TurnRequest(system=[], messages=[], tools=[], max_tokens=1, session_id="s")
        reply = client.complete(request, EventLog())
        client.close()
        # The Responses client also keeps each output item as it came ("item").
        content = [{k: v for k, v in b.items() if k != "item"} for b in reply.content]
        assert content == [{"type": "text", "text": " word" * 3}], wire
        assert (reply.stop_reason, reply.usage.output_tokens) == ("end_turn", 3), wire


def test_concurrency_fidelity_joins_turns_with_the_servers_sends() -> None:
    """Client lateness is the recorded TTFT less the server's first-token send; the server's
    is sent less planned, per write when the log has them (else first token and end); the
    decode error is against the rate the server actually sent at."""
    fidelity = load("concurrency_fidelity")

    def turned(arm: str, slot: int, request_id: str, ttft: float, tokens: int) -> SessionRecord:
        base = session(arm, slot, 1.0)
        turn = replace(
            base.turns[0],
            phases_s=base.turns[0].phases_s | {"ttft": ttft, "generation": 0.5},
            marks_s=base.turns[0].marks_s | {"first_token": ttft},
            usage=Usage(output_tokens=tokens),
            attempts=(
                AttemptRecord(
                    started_s=0.0,
                    sent_s=0.0,
                    headers_s=0.0,
                    status=200,
                    request_id=request_id,
                    error=None,
                ),
            ),
        )
        return replace(base, turns=(turn,))

    clock = ClockRecord(
        samples=10,
        late_p50_ms=0.1,
        late_p99_ms=7.5,
        late_max_ms=9.0,
        cpu_busy=0.9,
        load_1m=4.0,
        cpus=2,
    )
    sessions = [
        replace(turned("a", 0, "r1", ttft=0.2025, tokens=500), clock=clock),
        turned("a", 1, "r2", ttft=0.1010, tokens=8),
    ]
    run = analysed(run_record(sessions), GateSettings())
    schedule = [
        {
            "request_id": "r1",
            "planned": {"first_token_s": 0.2, "end_s": 0.6},
            "actual": {"first_token_s": 0.2, "end_s": 0.6},
            "writes": {"planned_s": [0.1, 0.2, 0.6], "sent_s": [0.1005, 0.2, 0.603]},
        },
        {
            "request_id": "r2",
            "planned": {"first_token_s": 0.1, "end_s": 0.3},
            "actual": {"first_token_s": 0.1, "end_s": 0.302},
        },
    ]
    f = fidelity.figures(run, schedule)
    assert f.sessions == 2
    assert f.client_late_ms == pytest.approx([2.5, 1.0])
    assert f.sim_late_ms == pytest.approx([0.5, 0.0, 3.0, 0.0, 2.0])
    # 500 tokens in 0.5 s recorded, 0.4 s sent: 20% slower; 8 tokens say nothing of decode.
    assert f.decode_err_pct == pytest.approx([-20.0])
    assert (f.monitor_p99_ms, f.late_sessions) == (7.5, 1)
    assert fidelity.fmt([1.0, 2.0, 3.0]) == "2.0 / 3.0 / 3.0"
    assert fidelity.decode_fmt([-20.0, 10.0]) == "-5.0 / 19.9"
