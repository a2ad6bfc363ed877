"""When the measuring process's clock ran too late for its marks to be trusted.

Each session records how late its process got to run while it was measured
(:class:`~pytest_agentspeed.records.ClockRecord`). A mark taken while the process was held up
is late by as much, and a phase between two marks is off by at most that: a turn's TTFT or its
decode time by up to ``L`` when its marks were late by up to ``L``. This module decides when
that is too much, in one place, for every output and the gate (the reasoning behind the
numbers is ``docs/timing.md``, "When the clock is late"):

* a session ran **late** when its clock's P99 lateness exceeds its limit: the smaller of
  :data:`LATE_LIMIT_MS` and :data:`TTFT_SHARE` of its median TTFT;
* a set of sessions (a comparison's two arms, a run) is **compromised** when at least
  :data:`COMPROMISED_SHARE` of them ran late.

Plain functions over session records; no pytest, no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pytest_agentspeed.analysis.metrics import percentile, turn_ttfts
from pytest_agentspeed.records import SessionRecord

#: A session's clock may be late by this much at its P99 (ms): the precision the marks are
#: documented to (``docs/timing.md``, Precision), and small against every phase of a real
#: endpoint's turn (TTFT 0.3-3 s, decode phases of 0.1 s and up: under 5%, the gate's default
#: tolerance).
LATE_LIMIT_MS = 5.0
#: ... and by no more than this share of its median TTFT, for the runs whose phases are short
#: (scaled simulated delays): the gate's default tolerance, so a late mark cannot move a
#: median TTFT by more than the gate ignores.
TTFT_SHARE = 0.05
#: A comparison (or a run) is compromised when at least this share of its sessions ran late:
#: one session held up once among many moves a rank-based comparison little.
COMPROMISED_SHARE = 0.10
#: How the verdict line and the warnings say it.
COMPROMISED = "measurement compromised"


def limit_ms(session: SessionRecord) -> float:
    """The lateness ``session``'s clock could have at its P99 without distorting its phases
    (ms)."""
    ttfts = turn_ttfts([session])
    median = percentile(ttfts, 50)
    if median is None or median <= 0:
        return LATE_LIMIT_MS
    return min(LATE_LIMIT_MS, TTFT_SHARE * median * 1e3)


def ran_late(session: SessionRecord) -> bool:
    """Whether ``session``'s clock ran later than its limit at its P99."""
    return session.clock is not None and session.clock.late_p99_ms > limit_ms(session)


def clock_summary(sessions: Sequence[SessionRecord]) -> dict[str, Any] | None:
    """How late the clock of ``sessions`` ran, for the summary and the run's environment;
    ``None`` when none of them was measured (run files from before the clock was)."""
    measured = [s for s in sessions if s.clock is not None]
    if not measured:
        return None
    late = [s for s in measured if ran_late(s)]
    clocks = [s.clock for s in measured if s.clock is not None]
    p99s = [c.late_p99_ms for c in clocks]
    busy = [c.cpu_busy for c in clocks if c.cpu_busy is not None]
    worst = max(late or measured, key=lambda s: s.clock.late_p99_ms if s.clock else 0.0)
    return {
        "sessions": len(measured),
        "late_sessions": len(late),
        # The worst session's, and the limit that session was held to.
        "late_p99_ms": max(p99s),
        "limit_ms": round(limit_ms(worst), 3),
        "late_p50_ms": percentile([c.late_p50_ms for c in clocks], 50),
        "late_max_ms": max(c.late_max_ms for c in clocks),
        "cpu_busy": sum(busy) / len(busy) if busy else None,
        "cpus": next((c.cpus for c in clocks if c.cpus is not None), None),
        "compromised": compromised(len(late), len(measured)),
    }


def compromised(late: int, measured: int) -> bool:
    """Whether ``late`` sessions of ``measured`` are too many to trust the set's numbers."""
    return late > 0 and late >= math.ceil(COMPROMISED_SHARE * measured)


def compromise(sessions: Sequence[SessionRecord]) -> str | None:
    """How the measurement of ``sessions`` was compromised, in the words the verdict line
    ends with (``client clock late P99 12.3 ms (limit 5 ms) in 7 of 20 sessions``); ``None``
    when it was not (or was not measured)."""
    summary = clock_summary(sessions)
    if summary is None or not summary["compromised"]:
        return None
    return late_words(summary)


def with_compromise(line: str, sessions: Sequence[SessionRecord]) -> tuple[str, list[str]]:
    """A comparison's report ``line`` of ``sessions`` (both arms), and its warnings, as they are
    when the measurement was compromised: the line ends ``; measurement compromised: ...``.

    The verdict stands (both arms' numbers are what was measured), but whoever reads the line
    must know its marks are less precise than they look. Unchanged, no warning, for sessions
    whose clock kept time (or was not measured).
    """
    late = compromise(sessions)
    if late is None:
        return line, []
    warning = (
        f"{COMPROMISED}: {late}; their marks may be off by that much "
        f"(docs/timing.md, When the clock is late)"
    )
    return f"{line}; {COMPROMISED}: {late}", [warning]


def late_words(summary: dict[str, Any]) -> str:
    """A :func:`clock_summary` in words: the worst session's P99, its limit, how many."""
    return (
        f"client clock late P99 {summary['late_p99_ms']:.1f} ms "
        f"(limit {summary['limit_ms']:.3g} ms) in {summary['late_sessions']} of "
        f"{summary['sessions']} sessions"
    )


def load_words(summary: dict[str, Any]) -> str | None:
    """The machine's load in a :func:`clock_summary`: ``CPU 97% busy on 2 cores``."""
    busy, cpus = summary.get("cpu_busy"), summary.get("cpus")
    if busy is None:
        return None
    cores = "" if cpus is None else f" on {cpus} core{'s' if cpus != 1 else ''}"
    return f"CPU {busy * 100:.0f}% busy{cores}"
