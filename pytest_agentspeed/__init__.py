"""pytest-agentspeed: session-level speed of autonomous coding agents, as pytest tests.

The supported public surface is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

from pytest_agentspeed.errors import (
    AgentSpeedError,
    ConfigError,
    EndpointError,
    RunFileError,
    TaskError,
)
from pytest_agentspeed.records import SessionRecord
from pytest_agentspeed.tasks import Check, Limits, SpeedLimits, Task

__version__ = "0.1.0"

__all__ = [
    "AgentSpeedError",
    "Check",
    "ConfigError",
    "EndpointError",
    "Limits",
    "RunFileError",
    "SessionRecord",
    "SpeedLimits",
    "Task",
    "TaskError",
    "__version__",
]
