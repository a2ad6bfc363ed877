"""The gate's vocabulary: its metrics, their definition versions, its policies and settings.

Each fact is written here once. This module is light (no numpy, no scipy: nothing but the
standard library), so the options module can import it when pytest declares its options, and
:mod:`~pytest_agentspeed.analysis.compare` decides with the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The metrics the gate can decide on (``--agentspeed-gate-metric``); the first is the default.
GATE_METRICS = ("throughput_tok_s", "session_wall_s", "tasks_per_window")
#: The version of each gate metric's definition, recorded in every run file's config. Bump a
#: metric's number when what its recorded fields mean changes: a baseline recorded under
#: another definition is then refused instead of compared. A run file without the field (or
#: without a metric in it) was written before it existed, under version 1 of every metric.
METRIC_DEFINITIONS: dict[str, int] = {
    "throughput_tok_s": 1,
    "session_wall_s": 1,
    "tasks_per_window": 1,
}
#: What an INCONCLUSIVE verdict does to the exit status (``--agentspeed-inconclusive``).
INCONCLUSIVE_POLICIES = ("warn", "fail")


@dataclass(frozen=True, slots=True, kw_only=True)
class GateSettings:
    """How strict the gate is; the defaults are ``statistics.md`` section 6."""

    metric: str = GATE_METRICS[0]
    #: One-sided significance level.
    alpha: float = 0.05
    #: Drops smaller than this never FAIL.
    tolerance: float = 0.05
    #: The regression the gate must rule out to PASS.
    margin: float = 0.10
    #: What INCONCLUSIVE does to the exit status.
    inconclusive: str = INCONCLUSIVE_POLICIES[0]

    @property
    def ci_level(self) -> float:
        """Two-sided level of the reported CI: its bounds are the one-sided ``1 - alpha`` bounds."""
        return 1 - 2 * self.alpha


def estimator(metric: str) -> str:
    """How the ratio of a gate metric is estimated: a ratio of means has no rank test."""
    return "bootstrap" if metric == "tasks_per_window" else "hodges_lehmann_log"
