"""Tasks: what the agent is asked to do, where it starts, and how success is decided.

A task comes either from a directory holding ``agenttask.toml`` (:func:`load_task`) or from
Python (:class:`Task`). Loading validates strictly: unknown keys, wrong types, a missing
instruction or check raise :class:`~pytest_agentspeed.errors.TaskError` naming the file and
the key, because a typo in a benchmark definition silently changes what is measured.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, cast

from pytest_agentspeed.errors import TaskError
from pytest_agentspeed.trajectory_file import load_trajectory

TASK_FILE = "agenttask.toml"
#: Larger task files (``agenttask.toml``, ``trajectory.toml``, the instruction file) are
#: refused: they are almost certainly not what the user meant to collect.
MAX_TASK_FILE_BYTES = 1_000_000
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Check:
    """The command that decides success; run in the workspace after the agent stops."""

    command: str
    #: Seconds before the check is killed (and counts as failed).
    timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The agent's budget for one session."""

    max_turns: int = 40
    #: Agent wall-clock budget; the agent is told what is left.
    timeout_s: float = 900.0
    #: Per model response.
    max_tokens: int = 8192


@dataclass(frozen=True, slots=True)
class SpeedLimits:
    """Optional per-task speed assertions, checked like test assertions."""

    max_session_s: float | None = None
    min_throughput_tok_s: float | None = None


Files = Mapping[str, str]


class Task:
    """An agent coding task.

    :param id: unique name of the task; becomes the test id.
    :param instruction: what the agent is asked to do.
    :param workspace: the starting files, either a directory to copy or a mapping of relative
        path to text.
    :param check: the command deciding success (exit 0), or a :class:`Check`.
    :param solution: files that, laid over the workspace, solve the task (used by the
        ``oracle`` agent and by the simulated endpoint to play a realistic trajectory).
    :param tags: free-form labels.
    :param limits: the agent's budget.
    :param speed: optional per-task speed assertions.
    :param trajectory: a ``trajectory.toml`` scripting the simulated model's turns.
    :param source: the ``agenttask.toml`` the task came from, if any.
    """

    __slots__ = (
        "check",
        "id",
        "instruction",
        "limits",
        "solution",
        "source",
        "speed",
        "tags",
        "trajectory",
        "workspace",
    )

    def __init__(
        self,
        *,
        id: str,
        instruction: str,
        workspace: Path | Files | None = None,
        check: str | Check,
        solution: Path | Files | None = None,
        tags: tuple[str, ...] | list[str] = (),
        limits: Limits | None = None,
        speed: SpeedLimits | None = None,
        trajectory: Path | None = None,
        source: Path | None = None,
    ) -> None:
        # Python callers are not type-checked: check what arrived, not what was annotated.
        if not isinstance(cast(Any, id), str) or not _ID_RE.match(id):
            raise TaskError(
                source, "id", f"{id!r} is not a valid task id (letters, digits, '_', '.', '-')"
            )
        if not isinstance(cast(Any, instruction), str) or not instruction.strip():
            raise TaskError(source, "instruction", "must be a non-empty string")
        if isinstance(workspace, Mapping):
            _check_files(workspace, source, "workspace")
        if isinstance(solution, Mapping):
            _check_files(solution, source, "solution")
        self.id = id
        self.instruction = instruction
        self.workspace: Path | Files = {} if workspace is None else workspace
        self.check = Check(check) if isinstance(check, str) else check
        self.solution = solution
        self.tags = tuple(tags)
        self.limits = limits or Limits()
        self.speed = speed or SpeedLimits()
        self.trajectory = trajectory
        self.source = source

    def __repr__(self) -> str:
        return f"Task(id={self.id!r})"

    def workspace_files(self) -> dict[str, str]:
        """The starting files as text (relative POSIX path -> content)."""
        return _read_files(self.workspace)

    def solution_files(self) -> dict[str, str]:
        """The solution files as text; empty when the task has none."""
        return {} if self.solution is None else _read_files(self.solution)

    def materialize(self, dest: Path) -> None:
        """Create the starting workspace in the (existing, empty) directory ``dest``."""
        _lay_over(self.workspace, dest)

    def apply_solution(self, dest: Path) -> bool:
        """Lay the solution over ``dest``; returns False when the task has no solution."""
        if self.solution is None:
            return False
        _lay_over(self.solution, dest)
        return True


def load_task(path: Path) -> Task:
    """Load and validate a task from its ``agenttask.toml``.

    :param path: the ``agenttask.toml`` file.
    :raises TaskError: naming the file and the key at fault.
    """
    text = _read_definition(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TaskError(path, None, f"not valid TOML: {exc}") from None

    root = path.parent
    t = _Table(path, data, "")
    t.only("id", "instruction", "instruction_file", "tags", "check", "limits", "speed")
    task_id = t.get("id", str, default=root.name)
    instruction = t.get("instruction", str, default=None)
    instruction_file = t.get("instruction_file", str, default=None)
    if instruction is not None and instruction_file is not None:
        raise TaskError(path, "instruction_file", "give either instruction or instruction_file")
    if instruction_file is not None:
        ipath = root / instruction_file
        try:
            instruction = _read_definition(ipath)
        except TaskError as exc:
            raise TaskError(path, "instruction_file", f"{ipath}: {exc.message}") from None
    if instruction is None:
        raise TaskError(path, "instruction", "missing: give instruction or instruction_file")
    tags = t.get("tags", list, default=[])
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise TaskError(path, f"tags[{i}]", f"expected a string, got {_kind(tag)}")

    check_table = t.table("check", required=True)
    check_table.only("command", "timeout_s")
    check = Check(
        command=check_table.get("command", str, default=None, required=True),
        timeout_s=check_table.positive("timeout_s", default=120.0),
    )
    limits_table = t.table("limits")
    limits_table.only("max_turns", "timeout_s", "max_tokens")
    limits = Limits(
        max_turns=int(limits_table.positive("max_turns", default=40, integer=True)),
        timeout_s=limits_table.positive("timeout_s", default=900.0),
        max_tokens=int(limits_table.positive("max_tokens", default=8192, integer=True)),
    )
    speed_table = t.table("speed")
    speed_table.only("max_session_s", "min_throughput_tok_s")
    speed = SpeedLimits(
        max_session_s=speed_table.positive("max_session_s", default=None),
        min_throughput_tok_s=speed_table.positive("min_throughput_tok_s", default=None),
    )

    workspace = root / "workspace"
    if not workspace.is_dir():
        raise TaskError(
            path, None, "no workspace/ directory next to it (the agent's starting files)"
        )
    solution = root / "solution"
    trajectory = root / "trajectory.toml"
    if trajectory.is_file():
        # Only the simulated endpoint reads it, mid-run, where a broken script surfaces as an
        # HTTP 500; checked here, it is a collection error naming the file and key, whatever
        # the agent and endpoint.
        _read_definition(trajectory)
        load_trajectory(trajectory)
    return Task(
        id=task_id,
        instruction=instruction,
        workspace=workspace,
        check=check,
        solution=solution if solution.is_dir() else None,
        tags=tuple(tags),
        limits=limits,
        speed=speed,
        trajectory=trajectory if trajectory.is_file() else None,
        source=path,
    )


def _read_definition(path: Path) -> str:
    """The text of a file of a task definition (``agenttask.toml``, ``trajectory.toml``, the
    instruction file).

    :raises TaskError: naming ``path`` when it cannot be read, is larger than
        :data:`MAX_TASK_FILE_BYTES` or is not UTF-8 (with the offset of the first bad byte, so
        an editor can find it).
    """
    try:
        size = path.stat().st_size
        if size > MAX_TASK_FILE_BYTES:
            raise TaskError(path, None, f"file is {size:,} bytes; task files are at most 1 MB")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TaskError(path, None, f"cannot read: {exc.strerror}") from None


class _Table:
    """A TOML table being validated; knows its file and key prefix for error messages."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str) -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def only(self, *allowed: str) -> None:
        for name in self.data:
            if name not in allowed:
                raise TaskError(
                    self.path, self.key(name), f"unknown key; accepted here: {', '.join(allowed)}"
                )

    def get(self, name: str, kind: type, *, default: Any, required: bool = False) -> Any:
        if name not in self.data:
            if required:
                raise TaskError(self.path, self.key(name), "missing (required)")
            return default
        value = self.data[name]
        if not isinstance(value, kind):
            raise TaskError(
                self.path, self.key(name), f"expected {_kind_name(kind)}, got {_kind(value)}"
            )
        return value

    def positive(self, name: str, *, default: Any, integer: bool = False) -> Any:
        if name not in self.data:
            return default
        value = self.data[name]
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            expected = "a positive integer" if integer else "a positive number"
            raise TaskError(self.path, self.key(name), f"expected {expected}, got {_kind(value)}")
        if value <= 0:
            raise TaskError(self.path, self.key(name), f"must be positive, got {value}")
        return value if integer else float(value)

    def table(self, name: str, *, required: bool = False) -> _Table:
        value = self.get(name, dict, default={}, required=required)
        return _Table(self.path, value, f"{self.key(name)}.")


def _kind_name(kind: type) -> str:
    names: dict[type, str] = {str: "a string", list: "an array", dict: "a table"}
    return names.get(kind, kind.__name__)


def _kind(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _check_files(files: Files, source: Path | None, key: str) -> None:
    for rel, text in files.items():
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise TaskError(source, f"{key}[{rel!r}]", "paths must be relative, without '..'")
        if not isinstance(text, str):
            raise TaskError(source, f"{key}[{rel!r}]", f"expected a string, got {_kind(text)}")


def _read_files(files: Path | Files) -> dict[str, str]:
    if not isinstance(files, Path):
        return dict(files)
    out: dict[str, str] = {}
    for p in sorted(files.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            out[p.relative_to(files).as_posix()] = p.read_text(encoding="utf-8", errors="replace")
    return out


def _lay_over(files: Path | Files, dest: Path) -> None:
    if isinstance(files, Path):
        shutil.copytree(
            files,
            dest,
            symlinks=True,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"),
        )
        return
    for rel, text in files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
