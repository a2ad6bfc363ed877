"""Reading and writing run files.

Writes are atomic (a temporary file in the same directory, then ``os.replace``), so a crash
never leaves half a run file where a whole one was. Reads fail with one clear
:class:`~pytest_agentspeed.errors.RunFileError` for a missing, corrupt or unknown-schema file.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_agentspeed.errors import AgentSpeedError, RunFileError
from pytest_agentspeed.records import RunRecord


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (its directory made if missing), with ``mode``, or
    the mode a plain ``open()`` would give it when ``None``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600), which a private file keeps from its first byte.
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def write_run_file(path: Path, run: RunRecord) -> None:
    """Write a run file atomically."""
    write_json_atomic(path, run.to_json())


def read_bytes(path: Path, error: type[AgentSpeedError], *, missing: str) -> bytes:
    """``path``'s bytes; ``error`` with one line that names it when it is ``missing`` or
    cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_run_file(path: Path) -> RunRecord:
    """Read and check a run file.

    :raises RunFileError: when it is missing, unreadable, not UTF-8, not JSON, or of an
        unknown schema; the message is one line that names the file.
    """
    raw = read_bytes(path, RunFileError, missing="no such file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Same shape as a task file's: the offset lets `head -c` or an editor find the byte.
        raise RunFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise RunFileError(f"{path}: empty file, not a run file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path}: not valid JSON ({json_problem(text, exc)})") from None
    except RecursionError:
        raise RunFileError(f"{path}: not valid JSON (nested too deeply)") from None
    return RunRecord.from_json(data, source=str(path))


def json_problem(text: str, exc: json.JSONDecodeError) -> str:
    """What is wrong with a JSON document, telling a cut-off file from a corrupt one (a run
    file's, a recording's)."""
    # A file cut short (a killed writer, a partial copy) fails at its very end, or inside a
    # string that never closes; anything earlier is corruption, and "truncated?" would mislead.
    end = text.rstrip()
    if exc.pos >= len(end) or exc.msg.startswith("Unterminated string"):
        return f"it stops mid-document at line {end.count(chr(10)) + 1}; is the file truncated?"
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"


def environment(concurrency: int) -> dict[str, Any]:
    """Where the run happened (computed once, when the run file is written)."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "git_commit": _git_commit(),
        "concurrency": concurrency,
    }


@functools.cache
def _git_commit() -> str | None:
    # Once per process: the spool's header and the run file both ask, a run apart.
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


#: Where named baselines live, under pytest's rootdir.
BASELINE_DIR = Path(".agentspeed") / "baselines"


def baseline_path(rootdir: Path, name_or_path: str) -> Path:
    """The file of a named baseline, or the path itself when it looks like one."""
    if name_or_path.endswith(".json") or "/" in name_or_path or os.sep in name_or_path:
        return Path(name_or_path)
    return rootdir / BASELINE_DIR / f"{name_or_path}.json"
