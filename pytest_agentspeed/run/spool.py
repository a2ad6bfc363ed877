"""The spool: every finished session, on disk the moment it ends.

A run writes its run file at the very end; a crash, a SIGKILL from CI or a Ctrl-C before then
would lose every session measured so far. So each process that runs sessions appends them to
its own spool file, ``.agentspeed/spool/<run id>.<process>.jsonl``: a header line (the run's
settings, as a run file without sessions) and then one line per session, each written whole
and fsynced before the session's test item reports.

While its run is alive a spool file is held under an exclusive ``flock``; the lock goes when
the run closes or its process ends, however it ends. A completed run deletes its spool files.
Any that are left, unlocked, belong to a run that did not finish: :func:`recover` turns them
into run files, and ``agentspeed merge`` reads them like run files. A line cut short by the
kill is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pytest_agentspeed.errors import RunFileError
from pytest_agentspeed.records import RunRecord, SessionRecord

if TYPE_CHECKING:
    from pytest_agentspeed.analysis.gate import GateSettings

SPOOL_DIR = Path(".agentspeed") / "spool"
RECOVERED_DIR = Path(".agentspeed") / "recovered"
SPOOL_SCHEMA = "agentspeed.spool/1"
SUFFIX = ".jsonl"


class Spool:
    """The spool file of one process of one run; created on the first session.

    :param path: the file.
    :param header: the run's settings, as :meth:`RunRecord.to_json` without sessions.
    """

    def __init__(self, path: Path, header: RunRecord) -> None:
        self.path = path
        self.header = header
        self._file: IO[str] | None = None

    def append(self, session: SessionRecord) -> None:
        """Write one finished session to disk, whole, before returning."""
        if self._file is None:
            self._file = self._open()
        self._write(json.dumps(session.to_json(), allow_nan=False))

    def _open(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held for the run
        # Held until the run closes: a live run's spool is never "recovered" by another.
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        header = {"spool": SPOOL_SCHEMA, "run": self.header.to_json()}
        self._file = f
        self._write(json.dumps(header, allow_nan=False))
        return f

    def _write(self, line: str) -> None:
        assert self._file is not None
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """This process is done with the run: the file stays, its lock goes."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """The run ended and wrote its outputs: the spool is no longer needed."""
        if self._file is not None:
            self.path.unlink(missing_ok=True)
            self._file.close()
            self._file = None


def discard_run(rootdir: Path, run_id: str) -> None:
    """The run's outputs are written: its spool files (every process's) can go, and the
    spool's directories with them when they are empty."""
    folder = rootdir / SPOOL_DIR
    if not folder.is_dir():
        return
    for path in folder.glob(f"{run_id}.*{SUFFIX}"):
        path.unlink(missing_ok=True)
    # Leave no empty directories behind in the user's project.
    with contextlib.suppress(OSError):
        folder.rmdir()
        folder.parent.rmdir()


def spool_path(rootdir: Path, run_id: str, process: str) -> Path:
    """Where one process of a run spools its sessions."""
    return rootdir / SPOOL_DIR / f"{run_id}.{process}{SUFFIX}"


def is_spool(path: Path) -> bool:
    """Whether ``path`` looks like a spool file (by name; the content is checked on read)."""
    return path.name.endswith(SUFFIX)


def read_spool(path: Path) -> RunRecord:
    """The sessions a spool holds, as a run record (not analysed).

    :raises RunFileError: when it is not a spool file or its header is unreadable.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    # Every whole line ends in "\n"; what follows the last one is a session a kill cut off
    # mid-write, which never finished being recorded.
    complete = data.split(b"\n")[:-1]
    try:
        header = json.loads(complete[0]) if complete else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("spool") != SPOOL_SCHEMA:
        raise RunFileError(f"{path}: not an agentspeed spool file")
    sessions: list[Any] = []
    for number, line in enumerate(complete[1:], start=2):
        try:
            sessions.append(json.loads(line))
        except ValueError:
            raise RunFileError(f"{path}: line {number} is not a session record") from None
    run = header.get("run")
    if not isinstance(run, dict):
        raise RunFileError(f"{path}: not an agentspeed spool file (no run header)")
    return RunRecord.from_json({**run, "sessions": sessions}, source=str(path))


def spool_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Spool files named directly, or found in named directories."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if is_spool(p))
        else:
            yield path


def abandoned(rootdir: Path) -> list[Path]:
    """Spool files of runs that ended without finishing (no live process holds them)."""
    folder = rootdir / SPOOL_DIR
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if is_spool(p) and not _locked(p)]


def _locked(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return True  # gone already: its run finished after all


def run_id_of(path: Path) -> str:
    """The run a spool file belongs to (its name up to the process part)."""
    return path.name.removesuffix(SUFFIX).rsplit(".", 1)[0]


def merge_spools(paths: list[Path]) -> RunRecord:
    """One run record from the spool files of one run (its processes' files)."""
    runs = [read_spool(p) for p in paths]
    first = runs[0]
    sessions = sorted((s for r in runs for s in r.sessions), key=lambda s: s.started_at)
    return RunRecord(
        created_at=first.created_at,
        agentspeed_version=first.agentspeed_version,
        environment=first.environment,
        config=first.config,
        endpoints=first.endpoints,
        sessions=tuple(sessions),
    )


def recover(rootdir: Path, gate: GateSettings) -> list[tuple[Path, int]]:
    """Turn abandoned spool files into analysed run files under ``.agentspeed/recovered/``.

    Returns each run file written with its session count. A spool file is deleted only after
    its run file is on disk; one that cannot be read is left where it is.
    """
    from pytest_agentspeed.analysis.summary import analysed
    from pytest_agentspeed.runfile import write_run_file

    by_run: dict[str, list[Path]] = {}
    for path in abandoned(rootdir):
        by_run.setdefault(run_id_of(path), []).append(path)
    written: list[tuple[Path, int]] = []
    for run_id, paths in by_run.items():
        try:
            run = merge_spools(paths)
        except RunFileError:
            continue
        target = rootdir / RECOVERED_DIR / f"{run_id}.json"
        if run.sessions:
            write_run_file(target, analysed(run, gate))
            written.append((target, len(run.sessions)))
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink()
    return written


def recovered_lines(rootdir: Path, gate: GateSettings) -> list[str]:
    """:func:`recover`, and the lines that tell the user where the sessions went."""
    return [
        f"agentspeed: recovered {count} sessions of an interrupted run into {path} "
        f"(agentspeed show, report and merge read it)"
        for path, count in recover(rootdir, gate)
    ]


def new_run_id() -> str:
    """A run id that sorts by start time and does not collide between machines (it names the
    run's spool files)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"
