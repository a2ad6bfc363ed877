"""The capacity sweep (``agentspeed replay``): its levels, its rows and knee from constructed
records, the command end to end with a replay function of the test's own, and the real replay
on the real simulator showing its load factor."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import session

from pytest_agentspeed import cli
from pytest_agentspeed.clients import RawSender
from pytest_agentspeed.endpoints import Endpoint, parse_endpoint
from pytest_agentspeed.errors import ConfigError
from pytest_agentspeed.outputs.capacity import capacity_lines
from pytest_agentspeed.records import (
    Capacity,
    CapacityLevel,
    RunRecord,
    SessionRecord,
    Usage,
    session_id,
)
from pytest_agentspeed.replay import recording as recording_module
from pytest_agentspeed.replay import session as session_module
from pytest_agentspeed.replay.recording import RecordedRequest, Recording
from pytest_agentspeed.run.capacity import (
    Replayed,
    knee,
    level_row,
    parse_levels,
    session_plan,
)
from pytest_agentspeed.settings import parse_replay_gaps

# --------------------------------------------------------------------------------------------
# Levels and gaps


@pytest.mark.parametrize(
    ("text", "levels"),
    [("1,2,4,8,16", (1, 2, 4, 8, 16)), ("4,2", (2, 4)), (" 8 , 1 ", (1, 8)), ("3", (3,))],
)
def test_levels_are_read_and_sorted(text: str, levels: tuple[int, ...]) -> None:
    assert parse_levels(text) == levels


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "level '0' is not a whole number of at least 1"),
        ("a", "level 'a' is not a whole number of at least 1"),
        ("-1", "level '-1' is not a whole number of at least 1"),
        ("1.5", "level '1.5' is not a whole number of at least 1"),
        (
            "",
            "expected a comma-separated list of whole numbers of at least 1, like 1,2,4,8, got ''",
        ),
        ("1,,2", "got '1,,2'"),
        ("2,4,2", "level 2 is given twice in '2,4,2'"),
    ],
)
def test_bad_levels_are_refused_saying_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_levels(text)
    assert message in str(info.value)
    assert "like 1,2,4,8" in str(info.value)


def test_gaps_are_recorded_none_or_a_factor() -> None:
    assert [parse_replay_gaps(t) for t in ("recorded", "none", "0", "2.5")] == [1.0, 0.0, 0.0, 2.5]
    for bad in ("-1", "fast", "nan", "inf"):
        with pytest.raises(ConfigError, match="expected recorded, none or a factor"):
            parse_replay_gaps(bad)


def test_a_level_cycles_through_the_recordings_twice_its_concurrency_at_least() -> None:
    recordings = [_recording(name) for name in ("a", "b", "c")]
    plan = [(r.name, round_) for r, round_ in session_plan(recordings, 4, 0)]
    assert plan == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2)]
    assert len(session_plan(recordings, 1, 0)) == 3  # every recording once
    assert len(session_plan(recordings, 1, 7)) == 7  # --sessions


# --------------------------------------------------------------------------------------------
# A level's row and the knee, with exact values


def _replayed(k: int, throughput: float, ttft: float, outcome: str, recorded: bool) -> Replayed:
    record = session("c2", k, throughput)
    turn = replace(record.turns[0], phases_s=dict(record.turns[0].phases_s, ttft=ttft))
    failed = outcome == "error"
    turn = replace(turn, error="overloaded_error: x") if failed else turn
    record = replace(record, turns=(turn,), outcome=outcome, error="x" if failed else None)  # type: ignore[arg-type]
    return Replayed(record, recorded)


def test_a_level_row_has_exact_percentiles_rates_and_errors() -> None:
    replayed = [
        _replayed(0, 10.0, 0.5, "passed", True),
        _replayed(1, 20.0, 0.1, "passed", True),
        _replayed(2, 30.0, 0.3, "passed", False),  # answered, but the recorded task failed
        _replayed(3, 40.0, 0.2, "passed", True),
        _replayed(4, 50.0, 9.9, "error", True),  # its one turn failed: no TTFT
    ]
    row = level_row(2, replayed, 36.0)
    assert row.concurrency == 2
    assert row.sessions == 5
    # Throughput over every session (the errored one keeps what it did): 10..50.
    assert row.throughput_p10 == pytest.approx(14.0)
    assert row.throughput_p50 == pytest.approx(30.0)
    assert row.throughput_p90 == pytest.approx(46.0)
    # TTFT over the answered turns only: 0.1, 0.2, 0.3, 0.5.
    assert row.ttft_p50 == pytest.approx(0.25)
    assert row.ttft_p90 == pytest.approx(0.44)
    assert row.sessions_per_hour == pytest.approx(500.0)  # 5 in 36 s
    assert row.tasks_per_hour == pytest.approx(300.0)  # 3 answered in full and recorded passed
    assert row.errors == 1


def _level(c: int, p50: float | None) -> CapacityLevel:
    return CapacityLevel(
        concurrency=c,
        sessions=2 * c,
        elapsed_s=10.0,
        throughput_p10=None if p50 is None else p50 - 5,
        throughput_p50=p50,
        throughput_p90=None if p50 is None else p50 + 5,
        ttft_p50=0.5 * c,
        ttft_p90=0.75 * c,
        sessions_per_hour=720.0 * c,
        tasks_per_hour=360.0 * c,
        errors=0,
    )


@pytest.mark.parametrize(
    ("p50s", "expected"),
    [
        ([100, 95, 89, 92], 2),  # 8 is back over the floor, but 4 fell after 2
        ([100, 95, 91, 90], None),  # never below 90: no knee
        ([100, 90, 80, 70], 2),  # exactly 0.9 x still holds
        ([100, 80, 95, 70], 4),  # the largest level that holds before a later fall
        ([100, 80, 70, 60], 1),
        ([100, 120, 130, 85], 4),  # against the lowest level, not the best
        ([100, 95, None, 96], 2),  # a level with no throughput has fallen
        ([None, 50, 40, 30], None),  # nothing to compare with
        ([100], None),
    ],
)
def test_the_knee_is_the_last_level_within_ten_percent_before_a_fall(
    p50s: list[float | None], expected: int | None
) -> None:
    levels = [_level(c, p) for c, p in zip((1, 2, 4, 8), p50s, strict=False)]
    assert knee(levels) == expected
    assert knee(list(reversed(levels))) == expected  # read lowest first whatever the order


def test_the_knee_line_says_what_it_is_measured_against() -> None:
    levels = tuple(_level(c, p) for c, p in zip((1, 2, 4, 8), (100, 95, 80, 70), strict=True))
    lines = capacity_lines(Capacity(levels=levels, knee=2))
    assert lines[-2] == (
        "knee: concurrency 2; beyond it session throughput P50 drops by more than 10% "
        "(below 90.0 tok/s, 0.9 x concurrency 1's 100.0)"
    )
    flat = Capacity(levels=levels[:2], knee=None)
    assert capacity_lines(flat)[-2] == (
        "knee: none; session throughput P50 stays within 10% of concurrency 1's (100.0 tok/s) "
        "up to concurrency 2"
    )
    assert lines[-1].startswith("(percentiles interpolate linearly between order statistics")


def test_run_files_keep_the_capacity_and_older_ones_read_without_it() -> None:
    levels = tuple(_level(c, p) for c, p in zip((1, 2), (100.0, None), strict=True))
    capacity = Capacity(levels=levels, knee=1, drop=0.1, gaps=0.5)
    run = RunRecord(
        created_at="2026-01-01T00:00:00+00:00",
        agentspeed_version="0",
        environment={},
        config={},
        endpoints=(),
        sessions=(),
        capacity=capacity,
    )
    data = json.loads(json.dumps(run.to_json()))
    assert RunRecord.from_json(data).capacity == capacity
    older = {k: v for k, v in data.items() if k != "capacity"}
    assert RunRecord.from_json(older).capacity is None
    assert "capacity" not in replace(run, capacity=None).to_json()


# --------------------------------------------------------------------------------------------
# The command, end to end, with a replay of the test's own


def _recording(
    name: str, *, wire: str = "anthropic", outcome: str = "passed", turns: int = 1
) -> Recording:
    """A recorded session of ``turns`` requests, each one the conversation so far."""
    messages: list[dict[str, Any]] = []
    requests = []
    for i in range(turns):
        if i:
            messages.append({"role": "assistant", "content": f"Answer {i} about {name}."})
        messages.append({"role": "user", "content": f"Question {i + 1} about {name}."})
        body = {
            "model": "recorded-model",
            "max_tokens": 64,
            "stream": True,
            "system": [{"type": "text", "text": "You are a coding agent."}],
            "messages": list(messages),
        }
        requests.append(
            RecordedRequest(
                kind="turn",
                index=i,
                method="POST",
                path="/v1/messages" if wire == "anthropic" else "/v1/chat/completions",
                header_names=("content-type",),
                body=body,
                gap_s=0.0,
                gap_phases={},
                wall_s=1.0,
                status=200,
                usage=Usage(input_tokens=20, output_tokens=48),
                stop_reason="end_turn",
            )
        )
    return Recording(
        name=name,
        session=f"{name}[sim-r0]",
        task=name,
        agent="builtin",
        wire=wire,  # type: ignore[arg-type]
        model="recorded-model",
        endpoint="sim",
        recorded_at=0.0,
        outcome=outcome,
        wall_s=1.0,
        requests=tuple(requests),
        source=f"/recordings/{name}.rec.gz",
    )


class FakeReplay:
    """Answers with a session record whose throughput falls as more are in flight, and holds
    the first ``c`` sessions of each level at a barrier, so a level that does not keep ``c``
    in flight at once fails (the barrier breaks) rather than passing by luck."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight: dict[str, int] = {}
        self.started: dict[str, int] = {}
        self.barriers: dict[str, threading.Barrier] = {}
        #: Every client a session was sent through (kept, so no id is reused).
        self.clients: list[RawSender] = []

    def __call__(
        self,
        recording: Recording,
        client: RawSender,
        *,
        endpoint: Endpoint,
        repeat: int,
        gaps: float,
    ) -> SessionRecord:
        c = int(endpoint.name.removeprefix("c"))
        with self.lock:
            self.in_flight += 1
            if all(client is not seen for seen in self.clients):
                self.clients.append(client)
            arm = endpoint.name
            self.most_in_flight[arm] = max(self.most_in_flight.get(arm, 0), self.in_flight)
            first = self.started.get(arm, 0) < c
            self.started[arm] = self.started.get(arm, 0) + 1
            barrier = self.barriers.setdefault(arm, threading.Barrier(c))
        try:
            if first:
                barrier.wait(timeout=60)
            record = session(arm, 0, 100.0 / c, wall=2.0)
            broken = recording.name == "broken"
            record = replace(
                record,
                id=session_id(recording.name, arm, repeat),
                task=recording.name,
                repeat=repeat,
                slot=f"{recording.name}/r{repeat}",
                agent="replay",
                outcome="error" if broken else "passed",
                error="overloaded_error: HTTP 529: Overloaded" if broken else None,
                turns=tuple(
                    replace(t, phases_s=dict(t.phases_s, ttft=0.25 * c)) for t in record.turns
                ),
            )
            return record
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def fake_replay(monkeypatch: pytest.MonkeyPatch) -> FakeReplay:
    fake = FakeReplay()
    recordings = [
        _recording("alpha"),
        _recording("beta", outcome="failed"),
        _recording("broken"),
    ]
    monkeypatch.setattr(recording_module, "read_recordings", lambda path: recordings)
    monkeypatch.setattr(session_module, "replay_session", fake)
    return fake


def _table(lines: list[str]) -> dict[int, list[str]]:
    """The printed table's rows by concurrency."""
    rows = {}
    for line in lines:
        cells = line.split()
        if cells and cells[0].isdigit() and len(cells) == 10:
            rows[int(cells[0])] = cells
    return rows


def test_the_command_sweeps_the_levels_and_prints_what_its_run_file_says(
    fake_replay: FakeReplay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_file, html = tmp_path / "capacity.json", tmp_path / "capacity.html"
    argv = ["replay", str(tmp_path), "--endpoint", "sim:standard", "--concurrency", "4,1,2"]
    code = cli.main([*argv, "--gaps", "none", "--json", str(run_file), "--html", str(html)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    progress = [line for line in out if line.startswith("agentspeed replay: concurrency")]
    assert [line.split(":")[1].strip() for line in progress] == [
        "concurrency 1",
        "concurrency 2",
        "concurrency 4",
    ]
    # c in flight at once at every level (the barrier held), never more, each its own client.
    assert fake_replay.most_in_flight == {"c1": 1, "c2": 2, "c4": 4}
    assert len(fake_replay.clients) == 1 + 2 + 4

    run = json.loads(run_file.read_text())
    levels = run["capacity"]["levels"]
    assert [level["concurrency"] for level in levels] == [1, 2, 4]
    assert [level["sessions"] for level in levels] == [3, 4, 8]  # max(3 recordings, 2c)
    assert [level["errors"] for level in levels] == [1, 1, 2]  # each session of "broken"
    assert [level["throughput_p50"] for level in levels] == [100.0, 50.0, 25.0]
    assert [level["ttft_p50"] for level in levels] == [0.25, 0.5, 1.0]
    assert run["capacity"]["knee"] == 1
    assert run["capacity"]["gaps"] == 0.0
    sessions = run["sessions"]
    assert [s["endpoint"] for s in sessions] == ["c1"] * 3 + ["c2"] * 4 + ["c4"] * 8
    assert sorted(s["id"] for s in sessions if s["endpoint"] == "c2") == [
        "alpha[c2-r0]",
        "alpha[c2-r1]",
        "beta[c2-r0]",
        "broken[c2-r0]",
    ]
    assert [e["name"] for e in run["endpoints"]] == ["c1", "c2", "c4"]

    # The printed numbers are the run file's, to the decimals printed.
    printed = _table(out)
    assert sorted(printed) == [1, 2, 4]
    for level in levels:
        cells = printed[level["concurrency"]]
        assert int(cells[1]) == level["sessions"]
        for cell, key, decimals in (
            (cells[2], "throughput_p10", 1),
            (cells[3], "throughput_p50", 1),
            (cells[4], "throughput_p90", 1),
            (cells[5], "ttft_p50", 3),
            (cells[6], "ttft_p90", 3),
            (cells[7], "sessions_per_hour", 1),
            (cells[8], "tasks_per_hour", 1),
        ):
            assert float(cell) == pytest.approx(level[key], abs=0.5 * 10**-decimals)
        assert int(cells[9]) == level["errors"]
        # Tasks: alpha's answered sessions only (beta's recording failed, broken errored).
        alpha = sum(
            1
            for s in sessions
            if s["endpoint"] == f"c{level['concurrency']}" and s["task"] == "alpha"
        )
        assert level["tasks_per_hour"] == pytest.approx(alpha / level["elapsed_s"] * 3600)
    knee_lines = [line for line in out if line.startswith("knee:")]
    assert knee_lines == [
        "knee: concurrency 1; beyond it session throughput P50 drops by more than 10% "
        "(below 90.0 tok/s, 0.9 x concurrency 1's 100.0)"
    ]

    # `agentspeed show` prints the same section from the file, line for line.
    assert cli.main(["show", str(run_file)]) == 0
    shown = capsys.readouterr().out.splitlines()
    section = capacity_lines(RunRecord.from_json(run).capacity)  # type: ignore[arg-type]
    assert shown[-len(section) :] == section
    assert out[-len(section) - 2 : -2] == section  # then "run file: ..." and "report: ..."

    # The HTML report has the section, with the same cells, the knee and the chart.
    page = html.read_text()
    assert 'id="capacity"' in page
    table = page[
        page.index('id="capacity-table"') : page.index(
            "</table>", page.index('id="capacity-table"')
        )
    ]
    cells = re.findall(r"<t[dh][^>]*>([^<]*)</t[dh]>", table)
    assert cells[10:20] == printed[1]
    assert "knee: concurrency 1; beyond it" in page
    assert 'aria-label="Session throughput and TTFT against concurrency"' in page
    report = tmp_path / "again.html"
    assert cli.main(["report", str(run_file), "-o", str(report)]) == 0
    assert 'id="capacity-table"' in report.read_text()


def test_a_wire_the_endpoint_does_not_speak_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        recording_module, "read_recordings", lambda path: [_recording("a", wire="openai")]
    )
    argv = ["replay", str(tmp_path), "--endpoint", "sim:standard?api=anthropic"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        "agentspeed replay: error: /recordings/a.rec.gz: recorded on the openai wire, but "
        "sim:standard?api=anthropic speaks anthropic; replay it on an endpoint of its wire\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "argument --concurrency: level '0' is not a whole number"),
        (["--concurrency", ""], "argument --concurrency: expected a comma-separated list"),
        (["--gaps", "soon"], "argument --gaps: expected recorded, none or a factor"),
        (["--sessions", "0"], "argument --sessions: expected a positive integer"),
    ],
)
def test_bad_arguments_are_the_usage_and_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["replay", str(tmp_path), "--endpoint", "sim:standard", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: agentspeed replay")
    assert err[-1].startswith(f"agentspeed replay: error: {message}")


def test_a_bad_endpoint_spec_is_the_usage_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["replay", str(tmp_path), "--endpoint", "nowhere"])
    assert info.value.code == 2
    assert "argument --endpoint: unknown endpoint 'nowhere'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The real replay on the real simulator


def test_a_missing_recordings_path_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none"
    assert cli.main(["replay", str(missing), "--endpoint", "sim:standard"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentspeed replay: error: ")
    assert str(missing) in err
    assert err.count("\n") == 1


def test_the_sweep_on_the_simulator_shows_its_load() -> None:
    """On ``sim:standard`` (load_slope 0.05: each other request in flight slows a response by
    5%), eight sessions at once are each slower than one alone: the server's own log shows the
    load it applied, and the sweep's throughput P50 falls with it."""
    from pytest_agentspeed.run.capacity import replay_endpoint, sweep
    from pytest_agentspeed.run.pool import EndpointPool

    recordings = [_recording(name, turns=3) for name in ("a", "b", "c", "d")]
    endpoint = replay_endpoint(parse_endpoint("sim:standard?jitter=0&time_scale=0.05"), recordings)
    pool = EndpointPool([endpoint], time_scale=0.05, shared_sim_file=None)
    try:
        records, capacity = sweep(
            recordings,
            (1, 2, 4, 8),
            sessions=8,
            endpoint=endpoint,
            clients=lambda: pool.new_client(endpoint),
            replay=session_module.replay_session,
            gaps=0.0,
        )
        schedule = pool.simulator().schedule()
    finally:
        pool.close()
    assert [level.sessions for level in capacity.levels] == [8, 8, 8, 16]
    assert [level.errors for level in capacity.levels] == [0, 0, 0, 0]
    assert [r.outcome for r in records] == ["passed"] * 40
    # The levels ran one after the other, 3 requests a session: the log in level order.
    assert len(schedule) == 3 * 40
    load = [entry["components"]["load"] for entry in schedule]
    c1, c8 = load[: 3 * 8], load[3 * 24 :]
    assert set(c1) == {1.0}  # alone: no load
    assert max(c8) >= 1 + 0.05 * 4  # at least 5 requests in flight at once at some point
    p1, p8 = capacity.levels[0].throughput_p50, capacity.levels[-1].throughput_p50
    assert p1 is not None
    assert p8 is not None
    assert p8 < p1


def test_the_command_on_the_simulator_prints_what_its_run_file_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``agentspeed replay`` itself, at 1, 2, 4 and 8 on ``sim:ultraspeed`` (load_slope 0.10,
    requests always in flight: no gaps): the printed table is the run file's capacity block,
    and the load shows (throughput P50 at 8 below 1's)."""
    from pytest_agentspeed.replay.recording import write_recording

    for name in ("a", "b", "c", "d"):
        write_recording(tmp_path / "rec", _recording(name, turns=3))
    run_file = tmp_path / "capacity.json"
    code = cli.main(
        [
            "replay",
            str(tmp_path / "rec"),
            "--endpoint",
            "sim:ultraspeed?jitter=0",
            "--concurrency",
            "1,2,4,8",
            "--gaps",
            "none",
            "--time-scale",
            "0.05",
            "--json",
            str(run_file),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    capacity = RunRecord.from_json(json.loads(run_file.read_text())).capacity
    assert capacity is not None
    section = capacity_lines(capacity)
    assert out[-len(section) - 1 : -1] == section  # then "run file: ..."
    assert [level.concurrency for level in capacity.levels] == [1, 2, 4, 8]
    assert [level.errors for level in capacity.levels] == [0, 0, 0, 0]
    first, last = capacity.levels[0].throughput_p50, capacity.levels[-1].throughput_p50
    assert first is not None
    assert last is not None
    assert last < first
