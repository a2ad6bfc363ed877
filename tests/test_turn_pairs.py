"""Paired turn statistics of replayed sessions: exact values on records built by hand, the
design the comparison names, run files with and without them, and the report's section."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from factories import arm, run_record, session

from pytest_agentspeed.analysis.compare import compare_arms
from pytest_agentspeed.analysis.gate import GateSettings
from pytest_agentspeed.analysis.summary import analysed
from pytest_agentspeed.analysis.turn_pairs import context_bin, turn_pairs
from pytest_agentspeed.outputs.html_report import render_report
from pytest_agentspeed.outputs.table import table_of
from pytest_agentspeed.outputs.terminal import markdown_report
from pytest_agentspeed.records import Comparison, RunRecord, SessionRecord, TurnRecord, Usage
from pytest_agentspeed.timing import MARKS, PHASES

GATE = GateSettings()
GOLDEN = Path(__file__).parent / "golden"
SECTION = "Per-turn ratios against context length"

#: A turn: (TTFT s, generation s, output tokens, input tokens, cache-read tokens).
Turn = tuple[float, float, int, int, int]


def replay(arm_name: str, slot: int, turns: list[Turn], *, agent: str = "replay") -> SessionRecord:
    """A replayed session of ``turns`` (one-turn factory session, its turns replaced)."""
    records = []
    for i, (ttft, gen, out, inp, read) in enumerate(turns):
        phases = dict.fromkeys(PHASES, 0.0) | {"ttft": ttft, "generation": gen, "tool": 1.0}
        records.append(
            TurnRecord(
                index=i,
                wall_s=sum(phases.values()),
                marks_s=dict.fromkeys(MARKS, None),
                phases_s=phases,
                usage=Usage(input_tokens=inp, cache_read_tokens=read, output_tokens=out),
                usage_raw={},
                stop_reason="tool_use",
                streamed=True,
                attempts=(),
                tool_calls=(),
            )
        )
    base = session(arm_name, slot, 10.0)
    usage = sum((t.usage for t in records), Usage())
    return replace(
        base,
        agent=agent,
        turns=tuple(records),
        usage=usage,
        wall_s=sum(t.wall_s for t in records),
    )


def one_turn_pairs(ratios: list[float]) -> tuple[list[SessionRecord], list[SessionRecord]]:
    """A session pair per ratio: one turn, the candidate's TTFT ``ratio`` times the baseline's,
    its generation ``1 / ratio`` times (a decode ratio of ``ratio``)."""
    base = [replay("a", i, [(1.0, 1.0, 100, 1000, 0)]) for i in range(len(ratios))]
    cand = [replay("b", i, [(r, 1.0 / r, 100, 1000, 0)]) for i, r in enumerate(ratios)]
    return base, cand


def test_per_turn_and_per_session_ratios_exact() -> None:
    # Slot 0: TTFT ratios 0.5, 0.8, 1.0 (median 0.8); decode ratios 2, - (10 tokens), 1.
    # Slot 1: TTFT ratios 2, 1, 0.5 (median 1); decode ratios 0.5, 1, 4 (median 1).
    base = [
        replay(
            "a", 0, [(1.0, 1.0, 100, 1000, 0), (1.0, 1.0, 10, 1000, 4000), (2.0, 2.0, 200, 9000, 0)]
        ),
        replay(
            "a",
            1,
            [(1.0, 1.0, 100, 1_000, 39_000), (1.0, 1.0, 100, 200_000, 0), (1.0, 4.0, 400, 300, 0)],
        ),
    ]
    cand = [
        replay(
            "b", 0, [(0.5, 0.5, 100, 1000, 0), (0.8, 3.0, 10, 1000, 4000), (2.0, 2.0, 200, 9000, 0)]
        ),
        replay(
            "b",
            1,
            [(2.0, 2.0, 100, 1_000, 39_000), (1.0, 1.0, 100, 200_000, 0), (0.5, 1.0, 400, 300, 0)],
        ),
    ]
    pairs = turn_pairs(base, cand, ci_level=0.9)
    assert pairs is not None
    assert pairs.design == "paired by session; 6 turns matched one to one"
    assert pairs.turns == 6
    assert [
        (p.session, p.turn, p.context_tokens, p.output_tokens, p.cold) for p in pairs.points
    ] == [
        (0, 0, 1000, 100, True),
        (0, 1, 5000, 10, False),
        (0, 2, 9000, 200, True),
        (1, 0, 40_000, 100, False),
        (1, 1, 200_000, 100, True),
        (1, 2, 300, 400, True),
    ]
    assert [p.ttft_ratio for p in pairs.points] == [0.5, 0.8, 1.0, 2.0, 1.0, 0.5]
    assert [p.decode_ratio for p in pairs.points] == [2.0, None, 1.0, 0.5, 1.0, 4.0]
    s0, s1 = pairs.sessions
    assert (s0.label, s0.turns, s0.decode_turns) == ("t0/r0", 3, 2)
    assert s0.ttft_ratio == pytest.approx(0.8)
    assert s0.decode_ratio == pytest.approx(math.sqrt(2))  # geometric middle of 1 and 2
    assert (s1.label, s1.turns, s1.decode_turns) == ("t1/r0", 3, 3)
    assert s1.ttft_ratio == pytest.approx(1.0)
    assert s1.decode_ratio == pytest.approx(1.0)
    # Two pairs: the Hodges-Lehmann estimate is the middle Walsh average of ln 0.8 and 0;
    # two pairs cannot bound it at alpha 0.05.
    assert pairs.ttft_ratio == pytest.approx(math.sqrt(0.8))
    assert pairs.ttft_ci is None
    assert pairs.decode_ratio == pytest.approx(2**0.25)
    bins = [(b.label, b.cold, b.turns, b.decode_turns) for b in pairs.bins]
    assert bins == [
        ("<8k", True, 2, 2),
        ("<8k", False, 1, 0),
        ("8k-32k", True, 1, 1),
        ("32k-128k", False, 1, 1),
        (">=128k", True, 1, 1),
    ]
    cold_small = pairs.bins[0]
    assert cold_small.ttft_ratio == pytest.approx(0.5)
    assert cold_small.decode_ratio == pytest.approx(math.sqrt(8))  # 2 and 4
    assert pairs.unmatched == ()


def test_context_bins_edges() -> None:
    assert [context_bin(n) for n in (0, 7_999, 8_000, 31_999, 32_000, 127_999, 128_000)] == [
        "<8k",
        "<8k",
        "8k-32k",
        "8k-32k",
        "32k-128k",
        "32k-128k",
        ">=128k",
    ]


def test_hodges_lehmann_across_six_pairs_with_its_ci() -> None:
    ratios = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    pairs = turn_pairs(*one_turn_pairs(ratios), ci_level=0.9)
    assert pairs is not None
    logs = np.log(ratios)
    walsh = sorted((logs[i] + logs[j]) / 2 for i in range(6) for j in range(i, 6))
    assert pairs.ttft_ratio == pytest.approx(math.exp(float(np.median(walsh))))
    # 6 pairs at one-sided 0.05: P(T <= 2) = 3/64 < 0.05 <= P(T <= 3) = 5/64, so the bounds
    # are the third Walsh average from each end: (ln .5 + ln .7) / 2 and ln .9.
    assert pairs.ttft_ci == pytest.approx((math.sqrt(0.35), 0.9))
    assert pairs.decode_ratio == pytest.approx(pairs.ttft_ratio)
    assert pairs.decode_ci == pytest.approx((math.sqrt(0.35), 0.9))


def test_turn_count_mismatch_is_not_matched_and_said() -> None:
    base = [
        replay("a", 0, [(1.0, 1.0, 100, 1000, 0)] * 3),
        replay("a", 1, [(1.0, 1.0, 100, 1000, 0)] * 3),
    ]
    cand = [
        replay("b", 0, [(0.5, 1.0, 100, 1000, 0)] * 3),
        replay("b", 1, [(0.5, 1.0, 100, 1000, 0)] * 2),
    ]
    pairs = turn_pairs(base, cand, ci_level=0.9)
    assert pairs is not None
    assert pairs.unmatched == ("t1/r0: 3 turns on a, 2 on b; not matched turn by turn",)
    assert [s.label for s in pairs.sessions] == ["t0/r0"]
    assert pairs.turns == 3
    assert pairs.design == "paired by session; 3 turns matched one to one"
    # Nothing matched at all: still no crash, and zero turns said.
    none = turn_pairs(base[1:], cand[1:], ci_level=0.9)
    assert none is not None
    assert (none.turns, none.sessions, none.points, none.ttft_ratio) == (0, (), (), None)
    assert none.design == "paired by session; 0 turns matched one to one"


def test_turns_an_arm_did_not_serve_are_left_out() -> None:
    base = [replay("a", 0, [(1.0, 1.0, 100, 1000, 0)] * 2)]
    cand = replay("b", 0, [(0.5, 1.0, 100, 1000, 0)] * 2)
    failed = replace(cand.turns[1], error="overloaded")
    cand = replace(cand, turns=(cand.turns[0], failed))
    pairs = turn_pairs(base, [cand], ci_level=0.9)
    assert pairs is not None
    assert [(p.turn, p.ttft_ratio) for p in pairs.points] == [(0, 0.5)]


def test_live_sessions_have_no_turn_pairs_and_keep_their_line() -> None:
    base = [replay("a", i, [(1.0, 1.0, 100, 1000, 0)], agent="builtin") for i in range(6)]
    cand = [replay("b", i, [(0.5, 1.0, 100, 1000, 0)], agent="builtin") for i in range(6)]
    assert turn_pairs(base, cand, ci_level=0.9) is None
    # A replay in one arm only pairs nothing either.
    assert turn_pairs(base, [replace(c, agent="replay") for c in cand], ci_level=0.9) is None
    c = compare_arms(base, cand, baseline="a", candidate="b", against="this run", settings=GATE)
    assert c.turn_pairs is None
    assert " paired, MDE" in c.line
    assert "turn_pairs" not in c.to_json()


def test_a_replay_comparison_names_its_design_and_round_trips() -> None:
    base, cand = one_turn_pairs([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    c = compare_arms(base, cand, baseline="a", candidate="b", against="this run", settings=GATE)
    assert c.turn_pairs is not None
    # The gate stays on sessions (6 pairs, signed-rank), and its line says how it paired.
    assert (c.paired, c.n, c.test) == (True, (6, 6), "wilcoxon_signed_rank")
    assert "n=6/6 paired by session; 6 turns matched one to one, MDE" in c.line
    data = json.loads(json.dumps(c.to_json()))
    assert data["turn_pairs"]["points"][0] == [0, 0, 1000, 100, 1, 0.5, 0.5]
    assert Comparison.from_json(data) == c


def test_old_run_files_read_without_turn_pairs() -> None:
    data = json.loads((GOLDEN / "run.json").read_text(encoding="utf-8"))
    assert all("turn_pairs" not in c for c in data["comparisons"])
    run = RunRecord.from_json(data)
    assert run.comparisons
    assert all(c.turn_pairs is None for c in run.comparisons)
    assert json.loads(json.dumps(run.to_json())) == data


def _replay_run() -> RunRecord:
    base, cand = one_turn_pairs([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    return analysed(run_record(base + cand), GATE)


def test_report_has_the_per_turn_section_only_for_replays() -> None:
    html = render_report(_replay_run(), gate=GATE)
    assert SECTION in html
    section = html[html.index('<section id="turn-pairs">') :]
    section = section[: section.index("</section>")]
    assert "paired by session; 6 turns matched one to one" in section
    # One point per turn and series, all at 1,000 context tokens, cold (hollow).
    assert section.count("<circle ") == 6 + 1  # the legend's marker
    assert section.count('<rect x="') == 6 + 1
    assert "ratio 1: no difference" in section
    assert "<td>&lt;8k</td><td>cold</td><td>6</td>" in section
    live = analysed(
        run_record(arm("a", [10, 11, 12, 13, 14]) + arm("b", [9, 10, 11, 12, 13])), GATE
    )
    assert SECTION not in render_report(live, gate=GATE)


def test_markdown_summary_gets_one_line_for_replays() -> None:
    run = _replay_run()
    md = markdown_report(table_of(run, None, "baseline"), run.comparisons)
    lines = [line for line in md.splitlines() if "per turn" in line]
    assert lines == [
        "- per turn (paired by session; 6 turns matched one to one): TTFT ratio 0.73 "
        "[0.59-0.90], decode ratio 0.73 [0.59-0.90] (90% CI over 6 session pairs)"
    ]
