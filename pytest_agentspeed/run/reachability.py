"""Endpoints that cannot be reached: after a few sessions in a row that never got through,
the endpoint's remaining sessions are not run.

Each of them would spend the client's whole connect timeouts and retries (tens of seconds on
a dead host) to learn the same thing; they are recorded as errors instead
(:func:`~pytest_agentspeed.run.runner.not_run`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_agentspeed.records import SessionRecord

#: After this many sessions in a row that could not reach their endpoint at all, the
#: endpoint's remaining sessions are not run.
UNREACHABLE_AFTER = 3
#: The error of a session that was not run for it.
NOT_RUN_REASON = (
    f"connection_error: not run: the endpoint could not be reached in "
    f"{UNREACHABLE_AFTER} sessions in a row"
)


class Reachability:
    """Per endpoint, the sessions in a row that could not reach it."""

    def __init__(self) -> None:
        self._in_a_row: dict[str, int] = {}

    def given_up(self, endpoint: str) -> bool:
        """Whether the endpoint's remaining sessions are not to be run."""
        return self._in_a_row.get(endpoint, 0) >= UNREACHABLE_AFTER

    def note(self, endpoint: str, record: SessionRecord) -> str | None:
        """Count a finished session; the line to show when this one made the endpoint given
        up on, else ``None``."""
        unreachable = (
            record.outcome == "error"
            and (record.error or "").startswith("connection_error")
            and all(t.error is not None for t in record.turns)
        )
        if not unreachable:
            self._in_a_row[endpoint] = 0
            return None
        self._in_a_row[endpoint] = count = self._in_a_row.get(endpoint, 0) + 1
        if count != UNREACHABLE_AFTER:
            return None
        return (
            f"agentspeed: {endpoint} could not be reached in {count} sessions in a row; "
            f"its remaining sessions are not run (recorded as errors)"
        )
