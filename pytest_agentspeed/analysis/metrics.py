"""Per-arm metrics (DESIGN section 7), computed in one place for every output.

:func:`summarize_arm` returns plain JSON-able numbers; the run file stores them as its
``summary`` and the terminal table formats them, so every output shows the same values.
Failed and errored sessions stay in: dropping slow or broken sessions would bias throughput
upward.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_agentspeed.records import SessionRecord, TurnRecord
from pytest_agentspeed.timing import ALL_PHASES, PHASES

#: Turns with fewer output tokens say nothing about decode speed.
DECODE_MIN_TOKENS = 16
#: Turns at least this long show the endpoint's burst speed on long outputs.
BURST_MIN_TOKENS = 500
#: Generation speed-ups for the what-if (Amdahl) estimate.
WHAT_IF_FACTORS = (2, 10)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between order statistics.

    Matches ``numpy.percentile``'s default method; ``None`` for no values.
    """
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def median_ci(values: Sequence[float], level: float) -> tuple[float, float] | None:
    """The distribution-free confidence interval of the median of ``values``: the order
    statistics whose rank below the median is a Binomial(n, 1/2) count, so their coverage is
    at least ``level`` whatever the distribution (Conover, *Practical Nonparametric
    Statistics*, 3.2). ``None`` when there are too few values for any interval to reach
    ``level`` (fewer than 5 at 90%).

    :param level: two-sided confidence level, e.g. 0.90.
    """
    n = len(values)
    # 1 - 0.9 is 0.09999999999999998: round the float noise off, as the gate does.
    tail = round((1 - level) / 2, 12)
    below, k = 0.0, 0
    # k: how many order statistics each bound leaves outside (the largest whose two tails
    # together stay within 1 - level).
    while k < n and below + math.comb(n, k) / 2**n <= tail:
        below += math.comb(n, k) / 2**n
        k += 1
    if k == 0:
        return None
    ordered = sorted(values)
    return ordered[k - 1], ordered[n - k]


def distribution(values: Sequence[float]) -> dict[str, float | None]:
    """P10, P50, P90 and mean of ``values`` (``None`` each when there are none)."""
    return {
        "p10": percentile(values, 10),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "mean": mean(values),
        "n": len(values),
    }


def served_turns(sessions: Iterable[SessionRecord]) -> list[TurnRecord]:
    """Turns that got a response (an endpoint failure has no TTFT or decode rate)."""
    return [t for s in sessions for t in s.turns if t.error is None]


def is_cached(turn: TurnRecord) -> bool:
    """A turn whose input came mostly from the prompt cache."""
    total = turn.usage.all_input_tokens
    return total > 0 and turn.usage.cache_read_tokens >= total / 2


def decode_rate(turn: TurnRecord) -> float | None:
    """Output tokens per second of reasoning plus generation."""
    busy = turn.phases_s["reasoning"] + turn.phases_s["generation"]
    if turn.usage.output_tokens < DECODE_MIN_TOKENS or busy <= 0:
        return None
    return turn.usage.output_tokens / busy


def session_throughputs(sessions: Iterable[SessionRecord]) -> list[float]:
    """Each session's throughput, where it has one (sessions without turns have none)."""
    return [t for s in sessions if (t := s.throughput_tok_s) is not None]


def session_walls(sessions: Iterable[SessionRecord]) -> list[float]:
    """The session times of sessions that made a model call."""
    return [s.wall_s for s in sessions if s.turns]


def turn_ttfts(sessions: Iterable[SessionRecord]) -> list[float]:
    """Time to first token of every served turn."""
    return [t.phases_s["ttft"] for t in served_turns(sessions)]


def phases_of(sessions: Iterable[SessionRecord]) -> list[str]:
    """The phases to report for ``sessions``: :data:`~pytest_agentspeed.timing.PHASES`, and
    those of an agent measured from outside (``startup``, ``agent``, ``winddown``) when some
    session has them, in :data:`~pytest_agentspeed.timing.ALL_PHASES` order. The built-in
    agent's summaries keep exactly the keys they always had."""
    present = {p for s in sessions for p in s.phases_s}
    return [p for p in ALL_PHASES if p in PHASES or p in present]


def measured_from_outside(session: SessionRecord) -> bool:
    """A session of an agent in another process (its process recorded), timed at the proxy."""
    return session.process is not None


def _outside_metrics(sessions: Sequence[SessionRecord]) -> dict[str, Any]:
    """What only an agent measured from outside has: its side requests per session, and the
    share of its served turns that were not streamed (their TTFT is the whole response: no
    first token could be told apart). Empty for other arms, whose summaries keep their keys."""
    if not any(measured_from_outside(s) for s in sessions):
        return {}
    turns = served_turns(sessions)
    return {
        "side_requests_per_session": mean([float(len(s.side_requests)) for s in sessions]),
        "non_streamed_turn_share": (
            sum(1 for t in turns if not t.streamed) / len(turns) if turns else None
        ),
    }


def summarize_arm(
    sessions: Sequence[SessionRecord], *, window_s: float, concurrency: int
) -> dict[str, Any]:
    """Every metric of one arm.

    :param window_s: the window for runs and tasks per window (Little's law).
    :param concurrency: sessions that ran in parallel.
    """
    n = len(sessions)
    outcomes = {k: sum(1 for s in sessions if s.outcome == k) for k in ("passed", "failed")}
    outcomes |= {k: sum(1 for s in sessions if s.outcome == k) for k in ("error", "timeout")}
    pass_rate = outcomes["passed"] / n if n else None
    error_rate = outcomes["error"] / n if n else None
    throughputs = session_throughputs(sessions)
    walls = session_walls(sessions)
    turns = served_turns(sessions)
    ttfts = turn_ttfts(sessions)
    rates = [r for t in turns if (r := decode_rate(t)) is not None]
    long_rates = [
        r for t in turns if t.usage.output_tokens >= BURST_MIN_TOKENS and (r := decode_rate(t))
    ]
    total_wall = sum(s.wall_s for s in sessions)
    phase_totals = {p: sum(s.phases_s.get(p, 0.0) for s in sessions) for p in phases_of(sessions)}
    input_all = sum(s.usage.all_input_tokens for s in sessions)
    mean_wall = mean(walls)
    # Sessions cut short by endpoint errors say nothing about how many runs fit in a window:
    # an arm whose every session errored has no runs per window, not a huge number of them.
    completed = any(s.outcome != "error" for s in sessions)
    runs = window_s * concurrency / mean_wall if mean_wall and completed else None
    busy = phase_totals["reasoning"] + phase_totals["generation"]
    return {
        "sessions": n,
        "outcomes": outcomes,
        "pass_rate": pass_rate,
        "error_rate": error_rate,
        "throughput_tok_s": distribution(throughputs),
        "session_wall_s": {"mean": mean_wall, "median": percentile(walls, 50)},
        "output_tokens_per_session": mean([float(s.usage.output_tokens) for s in sessions]),
        "turns_per_session": mean([float(len(s.turns)) for s in sessions]),
        "output_tokens_per_turn": mean([float(t.usage.output_tokens) for t in turns]),
        "ttft_s": distribution(ttfts)
        | {
            "cached": distribution([t.phases_s["ttft"] for t in turns if is_cached(t)]),
            "cold": distribution([t.phases_s["ttft"] for t in turns if not is_cached(t)]),
        },
        "decode_tok_s": distribution(rates) | {"burst": percentile(long_rates, 90)},
        "phase_share": {
            p: (v / total_wall if total_wall > 0 else None) for p, v in phase_totals.items()
        },
        # Seconds, not only shares: a phase can shrink while its share stays put.
        "phase_s_per_session": {p: (v / n if n else None) for p, v in phase_totals.items()},
        "runs_per_window": runs,
        "tasks_per_window": None if runs is None or pass_rate is None else runs * pass_rate,
        "window_s": window_s,
        "concurrency": concurrency,
        "cache_hit_ratio": (
            sum(s.usage.cache_read_tokens for s in sessions) / input_all if input_all else None
        ),
        "what_if": {
            f"{k}x": (total_wall / (total_wall - busy + busy / k) if total_wall > 0 else None)
            for k in WHAT_IF_FACTORS
        },
    } | _outside_metrics(sessions)


def summarize_run(
    sessions: Sequence[SessionRecord],
    arms: Sequence[str],
    *,
    window_s: float,
    concurrency: int,
) -> dict[str, Any]:
    """The summary of every arm, in arm order."""
    return {
        arm: summarize_arm(
            [s for s in sessions if s.endpoint == arm], window_s=window_s, concurrency=concurrency
        )
        for arm in arms
    }
