"""The run record's header: its settings and environment, before any session.

The same header opens the run file and every spool file of the run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_agentspeed.records import RunRecord
    from pytest_agentspeed.settings import Settings


def run_header(settings: Settings, *, concurrency: int) -> RunRecord:
    """The run's settings and environment, without sessions.

    :param concurrency: sessions that ran in parallel (the number of xdist workers, else 1).
    """
    from pytest_agentspeed import __version__
    from pytest_agentspeed.analysis.gate import METRIC_DEFINITIONS
    from pytest_agentspeed.records import EndpointRecord, RunRecord
    from pytest_agentspeed.runfile import environment

    s = settings
    return RunRecord(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        agentspeed_version=__version__,
        environment=environment(concurrency),
        config={
            "window_s": s.window_s,
            "repeat": s.repeat,
            "time_scale": s.time_scale if any(e.simulated for e in s.endpoints) else None,
            "agent": s.agent if s.replay_path is None else "replay",
            # Which definition of each gate metric the numbers were recorded under.
            "metric_definitions": dict(METRIC_DEFINITIONS),
        }
        | (
            {}
            if s.replay_path is None
            else {"replay": {"recordings": str(s.replay_path), "gaps": s.replay_gaps}}
        ),
        endpoints=tuple(
            EndpointRecord(
                name=e.name,
                label=e.label,
                api=e.api,
                model=e.model,
                base_url=e.public_base_url(),
                profile=e.sim.profile if e.sim else None,
                options=e.public_options(),
            )
            for e in s.endpoints
        ),
        sessions=(),
    )
