"""Sending a replay: a whole recorded session replayed to the real simulator on loopback,
measured like a live session."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from conftest import StartSim
from factories import PATHS, WIRES, client_for, recorded, recording, sim_endpoint

from pytest_agentspeed.clients import STREAM_RETRIES, ModelResponse, RawRequest, RawSender
from pytest_agentspeed.endpoints import Api
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import SessionRecord, Usage
from pytest_agentspeed.replay.recording import Recording
from pytest_agentspeed.replay.session import replay_session
from pytest_agentspeed.run.runner import session_id
from pytest_agentspeed.simulator import MountConfig
from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.timing import ALL_PHASES, EventLog

#: Recorded per request: output tokens (small, so the simulator's own replies are longer and
#: the pin decides), the gap before it; and the tail after the last answer.
OUTPUTS = (3, 5, 2, 4)
GAPS = (0.004, 0.012, 0.008, 0.010)
TAIL = 0.006


def four_turns(wire: Api) -> Recording:
    """A recorded session of four turns on ``wire``."""
    requests = tuple(
        recorded(wire, i, output=out, gap=gap)
        for i, (out, gap) in enumerate(zip(OUTPUTS, GAPS, strict=True))
    )
    return recording(wire, requests, tail_s=TAIL)


@pytest.fixture
def sim(start_sim: StartSim) -> SimulatorProcess:
    return start_sim(MountConfig(key="r", profile="ultraspeed", time_scale=0.01, jitter=False))


def replay_on(sim: SimulatorProcess, rec: Recording, **kw: Any) -> SessionRecord:
    """``rec`` replayed to the simulator's mount on its own wire (repeat 0 unless given)."""
    client = client_for(rec.wire, sim.base_url("r"))
    try:
        return replay_session(rec, client, endpoint=sim_endpoint(rec.wire), **({"repeat": 0} | kw))
    finally:
        client.close()


class Sleeps:
    """An injected ``sleep`` that keeps what it was asked and does not sleep."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


# A whole session replayed to the real simulator.


@pytest.mark.parametrize("wire", WIRES)
def test_a_recording_is_served_in_order_and_its_phases_sum_to_its_wall(
    sim: SimulatorProcess, wire: Api
) -> None:
    rec = four_turns(wire)
    progress: list[tuple[int, int, float]] = []
    record = replay_on(sim, rec, repeat=2, progress=lambda *a: progress.append(a))
    sid = session_id(rec.name, "sim", 2)
    assert (record.id, record.task, record.agent, record.slot) == (
        sid,
        rec.name,
        "replay",
        f"{rec.name}/r2",
    )
    assert (record.outcome, record.error) == ("passed", None)
    # The server's own log: every request, in order, as the replayed session's turns 0..3.
    log = sim.schedule()
    assert [(e["session"], e["turn"], e["side"]) for e in log] == [(sid, t, None) for t in range(4)]
    # The output pinned to the recorded length. The simulator's replies are longer than these,
    # so max_tokens caps them; min_tokens/ignore_eos (pin "exact", sent here) lengthen shorter
    # ones once the simulator honours them.
    assert [e["output_tokens"] for e in log] == list(OUTPUTS)
    assert [t.usage.output_tokens for t in record.turns] == list(OUTPUTS)
    assert record.usage.output_tokens == sum(OUTPUTS)
    assert [t.index for t in record.turns] == [0, 1, 2, 3]
    assert [t.error for t in record.turns] == [None] * 4
    # Each turn starts after the previous one's answer and its own gap (a sleep lasts at least
    # what it was asked).
    ended = 0.0
    for turn, gap in zip(record.turns, GAPS, strict=True):
        assert turn.start_s is not None
        assert turn.start_s >= ended + gap
        ended = turn.start_s + turn.wall_s
    # Phases: the requests' own, the slept gaps as recorded, and overhead the rest.
    assert set(record.phases_s) == set(ALL_PHASES)
    assert sum(record.phases_s.values()) == pytest.approx(record.wall_s, abs=1e-9)
    assert min(record.phases_s.values()) >= 0
    for phase in ("ttft", "generation", "retry_wait", "reasoning"):
        assert record.phases_s[phase] == pytest.approx(
            sum(t.phases_s[phase] for t in record.turns), abs=1e-12
        )
    # A sleep lasts at least what it was asked: the gaps' tool shares are at least the
    # recorded ones.
    asked_tool = sum(g * 0.75 for g in GAPS[1:]) + TAIL / 2
    assert record.phases_s["tool"] >= asked_tool
    assert record.phases_s["startup"] == record.phases_s["agent"] == 0.0
    assert [(n, tokens) for n, tokens, _ in progress] == [
        (1, 3),
        (2, 8),
        (3, 10),
        (4, 14),
    ]


@pytest.mark.parametrize(("gaps", "factor"), [(0.0, None), (1.0, 1.0), (2.0, 2.0)])
def test_the_gaps_slept_are_the_recorded_ones_times_the_factor(
    sim: SimulatorProcess, gaps: float, factor: float | None
) -> None:
    sleeps = Sleeps()
    record = replay_on(sim, four_turns("anthropic"), gaps=gaps, sleep=sleeps)
    assert record.outcome == "passed"
    expected = [] if factor is None else [g * factor for g in (*GAPS, TAIL)]
    assert sleeps.asked == expected
    assert len(sim.schedule()) == 4
    assert sum(record.phases_s.values()) == pytest.approx(record.wall_s, abs=1e-9)


def test_an_endpoint_that_rejects_a_request_ends_the_replay_there(
    sim: SimulatorProcess,
) -> None:
    wire: Api = "anthropic"
    bad = recorded(wire, 1, output=5, gap=0.0)
    bad = replace(bad, body=bad.body | {"tools": "not a list"})
    requests = (
        recorded(wire, 0, output=3),
        bad,
        recorded(wire, 2, output=2),
        recorded(wire, 3, output=4),
    )
    record = replay_on(sim, recording(wire, requests, tail_s=TAIL))
    assert record.outcome == "error"
    assert record.error is not None
    assert "\n" not in record.error
    assert record.error.startswith("invalid_request_error: HTTP 400: tools")
    assert [(t.index, t.error) for t in record.turns] == [(0, None), (1, record.error)]
    # The rejected request was not logged as a turn by the server; nothing after it was sent.
    assert [e["turn"] for e in sim.schedule()] == [0]
    assert sum(record.phases_s.values()) == pytest.approx(record.wall_s, abs=1e-9)


# Broken streams are sent again, as the built-in agent sends a turn again.


class Flaky:
    """A RawSender whose streams break off ``breaks`` times, then answer."""

    retry_wait_s = 0.25

    def __init__(self, breaks: int) -> None:
        self.breaks = breaks
        self.bodies: list[dict[str, Any]] = []

    def send_raw(self, request: RawRequest, log: EventLog) -> ModelResponse:
        self.bodies.append(request.body)
        log.add("attempt")
        if len(self.bodies) <= self.breaks:
            log.add("attempt_failed", detail="overloaded_error")
            raise EndpointError("overloaded_error", "Overloaded", 200, mid_stream=True)
        return ModelResponse(
            content=[], tool_calls=(), stop_reason="end_turn", usage=Usage(), usage_raw={}
        )


def replay_flaky(breaks: int) -> tuple[Flaky, Sleeps, Any]:
    rec = recording("anthropic", (recorded("anthropic", 0, output=3),))
    client, sleeps = Flaky(breaks), Sleeps()
    sender: RawSender = client
    result = replay_session(
        rec, sender, endpoint=sim_endpoint("anthropic"), repeat=0, gaps=0, sleep=sleeps
    )
    return client, sleeps, result


def test_a_broken_stream_is_sent_again_with_the_agents_back_off() -> None:
    client, sleeps, record = replay_flaky(STREAM_RETRIES)
    assert len(client.bodies) == STREAM_RETRIES + 1
    assert client.bodies[0] == client.bodies[-1]
    assert sleeps.asked == [0.25, 0.5]
    assert record.outcome == "passed"
    client, sleeps, record = replay_flaky(STREAM_RETRIES + 1)
    assert (len(client.bodies), record.outcome) == (STREAM_RETRIES + 1, "error")
    assert record.error == "overloaded_error: Overloaded"


def test_a_recording_of_another_wire_is_refused() -> None:
    with pytest.raises(ValueError, match="openai wire"):
        replay_session(four_turns("openai"), Flaky(0), endpoint=sim_endpoint("anthropic"), repeat=0)


def test_a_side_request_is_replayed_in_its_place_and_recorded_beside_the_turns(
    sim: SimulatorProcess,
) -> None:
    wire: Api = "anthropic"
    title = recorded(wire, 0, output=6, kind="side")
    title = replace(title, body={k: v for k, v in title.body.items() if k != "tools"})
    requests = (recorded(wire, 0, output=3), title, recorded(wire, 1, output=5))
    record = replay_on(sim, recording(wire, requests, tail_s=TAIL))
    assert record.outcome == "passed"
    assert [t.index for t in record.turns] == [0, 1]
    (side,) = record.side_requests
    assert (side.why, side.model, side.path, side.status) == (
        "no tools",
        "sim-model",
        PATHS[wire],
        200,
    )
    assert side.usage.output_tokens == 6
    assert record.usage.output_tokens == 3 + 6 + 5
    first, second = record.turns
    assert first.start_s is not None
    assert second.start_s is not None
    assert first.start_s + first.wall_s <= side.start_s <= second.start_s - side.wall_s
    # In its recorded place: the server saw the side request (its conversation that of turn 0,
    # its pinned length 6) between the turns.
    assert [(e["turn"], e["output_tokens"]) for e in sim.schedule()] == [(0, 3), (0, 6), (1, 5)]
    assert sum(record.phases_s.values()) == pytest.approx(record.wall_s, abs=1e-9)
