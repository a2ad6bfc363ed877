"""Where each session sits in a run: its slot (endpoint, repeat, arm), and on which wire.

Every task, and every test using the ``agentspeed`` fixture, is run once per slot; the pytest
edge makes one item per slot and orders items by slot so the arms interleave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pytest_agentspeed.agents import agent_wire
from pytest_agentspeed.endpoints import APIS, Endpoint

if TYPE_CHECKING:
    from pytest_agentspeed.settings import Settings


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a session sits in the run: which endpoint, which repeat."""

    #: Endpoint name, or the agent's name for agents that need no endpoint.
    endpoint: str
    repeat: int
    #: Position of the endpoint among the run's endpoints (the baseline is 0).
    arm: int

    @property
    def label(self) -> str:
        return f"{self.endpoint}-r{self.repeat}" if self.arm >= 0 else self.endpoint


def plan_slots(
    agent: str, *, needs_endpoint: bool, endpoints: Sequence[Endpoint], repeat: int
) -> list[Slot]:
    """The slots every task (or fixture test) is run in: one per (repeat, endpoint), or a
    single one named after an agent that needs no endpoint."""
    if not needs_endpoint:
        return [Slot(agent, 0, -1)]
    return [Slot(ep.name, r, i) for r in range(repeat) for i, ep in enumerate(endpoints)]


def speaking_agents_wire(settings: Settings) -> Settings:
    """``settings`` with each simulated endpoint whose spec left the wire open speaking the
    wire of the run's agent when it is a program behind the proxy (:meth:`Endpoint.speaking`):
    the default ``sim:standard`` serves Codex the Responses wire, mini-swe-agent Chat
    Completions. The wire comes from the agent registry: making the agent here would import
    it in every pytest run."""
    wire = agent_wire(settings.agent)
    if wire not in APIS:
        return settings
    return replace(settings, endpoints=tuple(e.speaking(wire) for e in settings.endpoints))
