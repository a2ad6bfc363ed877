"""The stash key under which the run's :class:`~pytest_agentspeed.run.bench.Bench` is kept.

In a module of its own so that collection and the hooks can both reach the bench without
importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_agentspeed.run.bench import Bench

BENCH_KEY: pytest.StashKey[Bench] = pytest.StashKey()
