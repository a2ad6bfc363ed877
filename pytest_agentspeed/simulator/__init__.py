"""The simulated LLM endpoint: plans and serves realistic model trajectories."""

from __future__ import annotations
