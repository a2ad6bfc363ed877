"""Paired turn statistics of replayed sessions: where a candidate endpoint wins or loses.

A replay (a session record whose agent is ``replay``) sends the recorded requests in order, so
the replays of two arms in the same slot sent the same requests: their turns match one to one
(same count, same index). Per matched turn this module takes the candidate/baseline ratio of
time to first token and of decode rate, and where the turn stood: the baseline turn's context
length, its output tokens, and whether its prefill was cold. Per session pair it takes the
median per-turn log ratio; across pairs, the one-sample Hodges-Lehmann estimate with its CI
(:func:`~pytest_agentspeed.analysis.stats.hl_paired`); and by context bin, cold and warm apart,
the median ratios and counts.

It describes and never decides. The gate stays on sessions (the paired test on the session
log ratios, :mod:`.compare`): a session's turns share its endpoint state (its cache, the
congestion of its minutes), so they are not independent observations, and a test over turns
would count one session's luck dozens of times (``docs/statistics.md``, Replays: paired
turns). Pure functions over session records; no pytest.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from pytest_agentspeed.analysis.metrics import decode_rate
from pytest_agentspeed.records import SessionRecord, TurnGroup, TurnPairs, TurnPoint, TurnRecord

#: The agent name of a replayed session's record (``replay/session.py``).
REPLAY_AGENT = "replay"
#: Context bins by the baseline turn's input tokens (cache reads and writes included):
#: (label, lowest, highest exclusive). Thousands, as context windows are quoted (128,000).
CONTEXT_BINS: tuple[tuple[str, int, float], ...] = (
    ("<8k", 0, 8_000),
    ("8k-32k", 8_000, 32_000),
    ("32k-128k", 32_000, 128_000),
    (">=128k", 128_000, math.inf),
)


def is_replay(session: SessionRecord) -> bool:
    """A session that replayed a recording (its turns are the recording's requests)."""
    return session.agent == REPLAY_AGENT


def ttft_s(turn: TurnRecord) -> float | None:
    """The turn's time to first token: its ``ttft`` phase, the final request's sending to the
    first token (``docs/timing.md``). The phase, not a mark: the marks are instants from the
    turn's start (``first_token`` would include building the request and retry waits), and
    the phase is what every TTFT of the report is. ``None`` for a turn the endpoint did not
    serve or did not stream (its ``ttft`` is the whole response)."""
    if turn.error is not None or not turn.streamed:
        return None
    value = turn.phases_s.get("ttft", 0.0)
    return value if value > 0 else None


def context_bin(tokens: int) -> str:
    """The label of the context bin ``tokens`` falls in."""
    return next(label for label, low, high in CONTEXT_BINS if low <= tokens < high)


def turn_pairs(
    base: Sequence[SessionRecord],
    cand: Sequence[SessionRecord],
    *,
    ci_level: float,
    paired: bool = True,
) -> TurnPairs | None:
    """The per-turn view of two arms' replays, or ``None`` when no slot holds a replay in
    both arms (live sessions: their turns do not correspond).

    :param ci_level: two-sided level of the Hodges-Lehmann CIs across session pairs.
    :param paired: whether the gate paired the arms' sessions (it names the design).
    """
    by_slot = {s.slot: s for s in cand if is_replay(s)}
    slots = [(s, by_slot[s.slot]) for s in base if is_replay(s) and s.slot in by_slot]
    if not slots:
        return None
    sessions: list[TurnGroup] = []
    points: list[TurnPoint] = []
    unmatched: list[str] = []
    for b, c in slots:
        if len(b.turns) != len(c.turns) or any(
            x.index != y.index for x, y in zip(b.turns, c.turns, strict=False)
        ):
            unmatched.append(
                f"{b.slot}: {len(b.turns)} turns on {b.endpoint}, {len(c.turns)} on "
                f"{c.endpoint}; not matched turn by turn"
            )
            continue
        mine = [
            p
            for x, y in zip(b.turns, c.turns, strict=True)
            if (p := _point(len(sessions), x, y)) is not None
        ]
        points += mine
        sessions.append(_group(b.slot, None, mine))
    ttft_ratio, ttft_ci = _across([s.ttft_ratio for s in sessions], ci_level)
    decode_ratio, decode_ci = _across([s.decode_ratio for s in sessions], ci_level)
    turns = sum(1 for p in points if p.ttft_ratio is not None)
    design = "paired by session" if paired else "independent arms"
    return TurnPairs(
        design=f"{design}; {turns} turns matched one to one",
        turns=turns,
        ttft_ratio=ttft_ratio,
        ttft_ci=ttft_ci,
        decode_ratio=decode_ratio,
        decode_ci=decode_ci,
        sessions=tuple(sessions),
        bins=_bins(points),
        points=tuple(points),
        unmatched=tuple(unmatched),
    )


def _bins(points: Sequence[TurnPoint]) -> tuple[TurnGroup, ...]:
    """A group per context bin, cold prefills first, for the cells that have turns."""
    groups = []
    for label, _, _ in CONTEXT_BINS:
        for cold in (True, False):
            mine = [p for p in points if p.cold is cold and context_bin(p.context_tokens) == label]
            if mine:
                groups.append(_group(label, cold, mine))
    return tuple(groups)


def _point(session: int, base: TurnRecord, cand: TurnRecord) -> TurnPoint | None:
    """The matched turn's ratios, or ``None`` when an arm did not serve it."""
    if base.error is not None or cand.error is not None:
        return None
    ttft_b, ttft_c = ttft_s(base), ttft_s(cand)
    rate_b, rate_c = decode_rate(base), decode_rate(cand)
    return TurnPoint(
        session=session,
        turn=base.index,
        context_tokens=base.usage.all_input_tokens,
        output_tokens=base.usage.output_tokens,
        cold=base.usage.cache_read_tokens == 0,
        ttft_ratio=None if ttft_b is None or ttft_c is None else ttft_c / ttft_b,
        decode_ratio=None if rate_b is None or rate_c is None else rate_c / rate_b,
    )


def _group(label: str, cold: bool | None, points: Sequence[TurnPoint]) -> TurnGroup:
    ttft = [p.ttft_ratio for p in points if p.ttft_ratio is not None]
    decode = [p.decode_ratio for p in points if p.decode_ratio is not None]
    return TurnGroup(
        label=label,
        cold=cold,
        turns=len(ttft),
        decode_turns=len(decode),
        ttft_ratio=median_ratio(ttft),
        decode_ratio=median_ratio(decode),
    )


def median_ratio(ratios: Sequence[float]) -> float | None:
    """``exp`` of the median log ratio (with an even count, the geometric mean of the middle
    two: a ratio and its inverse are symmetric on the log scale); ``None`` for none."""
    if not ratios:
        return None
    return math.exp(statistics.median(math.log(r) for r in ratios))


def _across(
    ratios: Sequence[float | None], ci_level: float
) -> tuple[float | None, tuple[float, float] | None]:
    """The Hodges-Lehmann ratio over the session pairs' median ratios, and its CI when the
    pairs are enough to bound it (the signed-rank test's, as the gate's)."""
    # Here, not at the top: the text outputs import this module for its words, not numpy.
    from pytest_agentspeed.analysis import stats

    logs = [math.log(r) for r in ratios if r is not None]
    if not logs:
        return None, None
    estimate, low, high = stats.hl_paired(logs, ci_level).ratio()
    finite = math.isfinite(low) and math.isfinite(high) and low > 0
    return estimate, ((low, high) if finite else None)


def ratio_words(ratio: float | None, ci: tuple[float, float] | None) -> str:
    """A ratio as outputs write it: ``0.89 [0.59-0.90]``, ``0.89`` without a CI, ``-``."""
    if ratio is None:
        return "-"
    return f"{ratio:.2f}" + ("" if ci is None else f" [{ci[0]:.2f}-{ci[1]:.2f}]")


def turn_pairs_line(pairs: TurnPairs, ci_level: float) -> str:
    """The one line the text outputs give the per-turn view (descriptive: the gate is on
    sessions)."""
    line = (
        f"per turn ({pairs.design}): TTFT ratio {ratio_words(pairs.ttft_ratio, pairs.ttft_ci)}, "
        f"decode ratio {ratio_words(pairs.decode_ratio, pairs.decode_ci)} "
        f"({ci_level * 100:.0f}% CI over {len(pairs.sessions)} session pairs)"
    )
    if pairs.unmatched:
        line += f"; {len(pairs.unmatched)} session pair(s) not matched turn by turn"
    return line
