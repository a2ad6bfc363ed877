"""Reading and writing run files.

Writes are atomic (a temporary file in the same directory, then ``os.replace``), so a crash
never leaves half a run file where a whole one was. Reads fail with one clear
:class:`~pytest_agentspeed.errors.RunFileError` for a missing, corrupt or unknown-schema file.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_agentspeed.errors import RunFileError
from pytest_agentspeed.records import RunRecord


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
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


def read_run_file(path: Path) -> RunRecord:
    """Read and check a run file.

    :raises RunFileError: when it is missing, not JSON, or of an unknown schema.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RunFileError(f"{path}: not valid JSON ({exc}); is the file truncated?") from None
    return RunRecord.from_json(data, source=str(path))


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


def _git_commit() -> str | None:
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
