"""pytest-agentspeed: session-level speed of autonomous coding agents, as pytest tests.

The supported public surface is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_agentspeed.errors import (
    AgentSpeedError,
    ConfigError,
    EndpointError,
    RunFileError,
    TaskError,
)

if TYPE_CHECKING:
    from pytest_agentspeed.records import SessionRecord
    from pytest_agentspeed.tasks import Check, Limits, SpeedLimits, Task

__version__ = "0.1.0"

# The plugin is imported by every pytest run in the environment, including the ones that task
# checks start in every session; names that need more than the exceptions load on first use.
_LAZY = {
    "Check": "pytest_agentspeed.tasks",
    "Limits": "pytest_agentspeed.tasks",
    "SessionRecord": "pytest_agentspeed.records",
    "SpeedLimits": "pytest_agentspeed.tasks",
    "Task": "pytest_agentspeed.tasks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_agentspeed' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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
