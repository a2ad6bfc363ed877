"""The stored baseline a run is compared with (``--agentspeed-compare NAME|PATH``).

Read twice: before any session runs, to refuse a baseline that cannot be compared with what
the run will measure (:func:`refusals`, the same rules as after the run), and at the end, to
compare with (:func:`read_stored`: a missing or empty one is a notice, an unreadable one an
error).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_agentspeed.errors import ConfigError, RunFileError
from pytest_agentspeed.runfile import baseline_path, read_run_file

if TYPE_CHECKING:
    from pytest_agentspeed.endpoints import Endpoint
    from pytest_agentspeed.records import RunRecord


@dataclass(frozen=True, slots=True)
class Stored:
    """The stored baseline, or why there is none to compare with."""

    record: RunRecord | None
    #: It is missing or has no sessions.
    notice: str | None = None
    #: It cannot be read.
    error: str | None = None


def read_stored(rootdir: Path, name: str | None) -> Stored:
    """The baseline to compare with at the end of the run."""
    if name is None:
        return Stored(None)
    path = baseline_path(rootdir, name)
    if not path.exists():
        hint = f"; create it with --agentspeed-save {name}" if path.stem == name else ""
        return Stored(None, notice=f"no baseline at {path}, nothing to compare with{hint}")
    try:
        stored = read_run_file(path)
    except RunFileError as exc:
        return Stored(None, error=str(exc))
    if not stored.sessions:
        return Stored(None, notice=f"baseline {name!r} has no sessions; nothing to compare with")
    return Stored(stored)


def read_before_run(rootdir: Path, name: str | None) -> RunRecord | None:
    """The baseline to check before any session runs; ``None`` when there is none (yet).

    :raises ConfigError: when it cannot be read (a usage error, before an hour of sessions).
    """
    if name is None:
        return None
    path = baseline_path(rootdir, name)
    if not path.exists():
        return None
    try:
        return read_run_file(path)
    except RunFileError as exc:
        raise ConfigError(f"--agentspeed-compare: {exc}") from None


def refusals(
    stored: RunRecord,
    header: RunRecord,
    endpoints: Sequence[Endpoint],
    planned: Collection[tuple[str, str]] | None,
    *,
    metric: str,
    baseline_label: str,
) -> list[str]:
    """Why the stored baseline cannot be compared with what this run will measure: the same
    rules as after the run (``compare.fingerprint_refusals``).

    :param header: this run's header (its settings, no sessions).
    :param planned: the (task id, endpoint name) of each session the run will measure;
        ``None`` when some tasks are known only when they run (each arm's task set is then
        checked after the run).
    """
    from pytest_agentspeed.analysis.fingerprint import fingerprint, fingerprint_refusals
    from pytest_agentspeed.analysis.summary import baseline_arm_for

    found: list[str] = []
    for endpoint in endpoints:
        arm = endpoint.name
        cand = fingerprint(header, arm)
        cand["tasks"] = sorted({task for task, on in planned or () if on == arm})
        base = fingerprint(stored, baseline_arm_for(stored, arm))
        for reason in fingerprint_refusals(
            base, cand, metric=metric, baseline_label=baseline_label
        ):
            if reason not in found:
                found.append(reason)
    return found
