"""The five tools the built-in agent gives the model, confined to one workspace.

The model works on one workspace directory through five tools (``list_files``, ``read_file``,
``write_file``, ``edit_file``, ``run_command``; see :data:`TOOL_SPECS`). :class:`ToolBox` binds
them to a workspace root and dispatches calls. Mistakes of the model (unknown tool, wrong input
types, missing file, a path outside the workspace, an ``old_text`` that occurs 0 or 2+ times)
come back as a :class:`ToolResult` with ``is_error=True`` and a clear message; they never raise.

Rules the tools enforce:

* File tools stay inside the workspace. A path must be relative; it is joined to the root and
  resolved like ``realpath`` (every symlink followed, including the final component and
  symlinked directories) and refused unless the result lies inside the resolved root. So
  absolute paths, ``..`` that escapes, and symlinks that lead outside are refused before
  anything is read, created or written. Symlinks that stay inside the workspace are fine.
* Commands run with the workspace as working directory through
  :func:`pytest_agentspeed.processes.run_command`: in their own process group, killed as a
  group on timeout and when the shell exits, with bounded output and a scrubbed environment.

This confinement is NOT a sandbox against a hostile model. It keeps an honest model from
wandering off by accident; ``run_command`` can still reach anything the user running the
benchmark can (read ``~``, talk to the network, escape the process group with ``setsid``).
Run untrusted models in a container or VM.

POSIX only (process groups, ``/bin/sh``).
"""

from __future__ import annotations

import codecs
import fnmatch
import math
import os
import signal
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_agentspeed.processes import run_command

__all__ = ["TOOL_SPECS", "ToolBox", "ToolResult"]

_MAX_LIST_ENTRIES = 2000
_MAX_READ_CHARS = 100_000

# Directory (and file) names list_files leaves out: version control metadata, tool caches and
# installed dependencies are noise for the model and can be huge.
_EXCLUDED_NAMES = frozenset(
    {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules", ".venv"}
)
_EXCLUDED_FILE_PATTERNS = ("*.pyc",)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one tool call gives back to the model.

    :param text: the ``tool_result`` content.
    :param is_error: ``True`` when the call was refused or failed (sent as ``is_error``).
    """

    text: str
    is_error: bool


# --------------------------------------------------------------------------- tool specs


def _spec(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "input_schema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
    }


_PATH_HELP = "Path relative to the workspace root, with forward slashes."

TOOL_SPECS: tuple[dict[str, Any], ...] = (
    _spec(
        "list_files",
        "List the files under a directory of the workspace, recursively: one path per line, "
        "relative to the workspace root, sorted. Leaves out .git, caches (__pycache__, "
        ".pytest_cache, .mypy_cache, .ruff_cache), node_modules, .venv and *.pyc files. "
        f"Shows at most {_MAX_LIST_ENTRIES:,} entries.",
        {
            "path": {
                "type": "string",
                "description": "Directory to list, relative to the workspace root "
                "(default '.', the whole workspace).",
            }
        },
        [],
    ),
    _spec(
        "read_file",
        "Read a text file of the workspace. Files longer than "
        f"{_MAX_READ_CHARS:,} characters are truncated, with a note saying so; "
        "bytes that are not valid UTF-8 are replaced.",
        {"path": {"type": "string", "description": _PATH_HELP}},
        ["path"],
    ),
    _spec(
        "write_file",
        "Create a file, or replace its whole content, creating parent directories as needed. "
        "For a small change to an existing file prefer edit_file.",
        {
            "path": {"type": "string", "description": _PATH_HELP},
            "content": {"type": "string", "description": "The complete new content."},
        },
        ["path", "content"],
    ),
    _spec(
        "edit_file",
        "Replace one exact occurrence of old_text in a file with new_text. old_text must match "
        "the file character for character (whitespace and indentation included) and occur "
        "exactly once; include enough surrounding lines to make it unique.",
        {
            "path": {"type": "string", "description": _PATH_HELP},
            "old_text": {"type": "string", "description": "The exact text to replace."},
            "new_text": {"type": "string", "description": "The text to put in its place."},
        },
        ["path", "old_text", "new_text"],
    ),
    _spec(
        "run_command",
        "Run a shell command (/bin/sh -c) in the workspace root. Returns 'exit code: N' on the "
        "first line, then stdout and stderr combined (long output keeps only its first and "
        "last 8 KB). stdin is empty. When the command exits or times out, all processes it "
        "started are killed, so do not start background servers.",
        {
            "command": {"type": "string", "description": "The shell command line."},
            "timeout_s": {
                "type": "number",
                "description": "Seconds before the command is killed (default 120; values "
                "above the harness maximum are lowered to it).",
            },
        },
        ["command"],
    ),
)

_TOOL_FIELDS: dict[str, frozenset[str]] = {
    spec["name"]: frozenset(spec["input_schema"]["properties"]) for spec in TOOL_SPECS
}


# --------------------------------------------------------------------------- the tool box


class _ToolError(Exception):
    """A model mistake; its message goes back to the model as an error result."""


class ToolBox:
    """The five tools bound to one workspace root.

    :param root: the workspace directory; resolved (symlinks followed) once, here.
    :param default_timeout_s: ``run_command`` timeout when the model gives none.
    :param max_timeout_s: the largest timeout the model may ask for; larger requests are
        lowered to it.
    :raises NotADirectoryError: ``root`` is not an existing directory.
    :raises ValueError: the timeouts are not positive or the default exceeds the maximum.
    """

    def __init__(
        self, root: Path, *, default_timeout_s: float = 120.0, max_timeout_s: float = 600.0
    ) -> None:
        resolved = Path(os.path.realpath(root))
        if not resolved.is_dir():
            raise NotADirectoryError(f"workspace root is not a directory: {root}")
        if not 0 < default_timeout_s <= max_timeout_s or not math.isfinite(max_timeout_s):
            raise ValueError(
                "need 0 < default_timeout_s <= max_timeout_s, got "
                f"{default_timeout_s!r} and {max_timeout_s!r}"
            )
        self._root = resolved
        self._default_timeout_s = float(default_timeout_s)
        self._max_timeout_s = float(max_timeout_s)
        self._handlers: dict[str, Callable[[Mapping[str, Any]], ToolResult]] = {
            "list_files": self._list_files,
            "read_file": self._read_file,
            "write_file": self._write_file,
            "edit_file": self._edit_file,
            "run_command": self._run_command,
        }

    @property
    def root(self) -> Path:
        """The resolved workspace root."""
        return self._root

    def call(self, name: str, tool_input: Mapping[str, Any]) -> ToolResult:
        """Run tool ``name`` with ``tool_input`` (the model's JSON input).

        Never raises for a model mistake or a failing file operation: those come back as a
        result with ``is_error=True``.
        """
        name_obj: object = name
        handler = self._handlers.get(name_obj) if isinstance(name_obj, str) else None
        if handler is None:
            return ToolResult(
                f"unknown tool {name_obj!r}; the available tools are: {', '.join(_TOOL_FIELDS)}",
                is_error=True,
            )
        input_obj: object = tool_input
        if not isinstance(input_obj, Mapping):
            return ToolResult(
                f"the input of {name} must be a JSON object, got {type(input_obj).__name__}",
                is_error=True,
            )
        unexpected = sorted(str(key) for key in input_obj if key not in _TOOL_FIELDS[name])
        if unexpected:
            accepted = ", ".join(sorted(_TOOL_FIELDS[name]))
            return ToolResult(
                f"unexpected input field(s) for {name}: {', '.join(unexpected)}; "
                f"accepted: {accepted}",
                is_error=True,
            )
        try:
            return handler(input_obj)
        except _ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        except OSError as exc:
            return ToolResult(f"{name} failed: {self._describe_os_error(exc)}", is_error=True)
        except UnicodeEncodeError as exc:
            # JSON can carry lone surrogates ("\ud800"), which no file or argv can hold.
            return ToolResult(
                f"{name} failed: the input contains characters that cannot be encoded as "
                f"UTF-8 ({exc.reason})",
                is_error=True,
            )
        except ValueError as exc:
            # E.g. a NUL character in a command line.
            return ToolResult(f"{name} failed: {exc}", is_error=True)

    # ---------------------------------------------------------------- the tools

    def _list_files(self, tool_input: Mapping[str, Any]) -> ToolResult:
        path = _optional_str(tool_input, "path") or "."
        target = self._resolve(path)
        if not target.exists():
            raise _ToolError(f"no such directory: {path!r}")
        if not target.is_dir():
            raise _ToolError(f"{path!r} is a file, not a directory; use read_file to read it")
        entries = sorted(self._walk(target))
        if not entries:
            return ToolResult(f"(no files under {self._display(target)})", is_error=False)
        lines = entries[:_MAX_LIST_ENTRIES]
        if len(entries) > _MAX_LIST_ENTRIES:
            lines.append(
                f"[... {len(entries) - _MAX_LIST_ENTRIES:,} more files not shown "
                f"({len(entries):,} in total); list a subdirectory to see them]"
            )
        return ToolResult("\n".join(lines), is_error=False)

    def _read_file(self, tool_input: Mapping[str, Any]) -> ToolResult:
        path = _required_str(tool_input, "path")
        target = self._resolve(path)
        size = self._check_regular_file(target, path)
        # A UTF-8 character is at most 4 bytes, so this many bytes always decode to more than
        # the limit when the file is longer: huge files are never read whole.
        max_bytes = _MAX_READ_CHARS * 4 + 4
        with open(target, "rb", opener=_nofollow_opener(os.O_RDONLY)) as file:
            data = file.read(max_bytes)
            at_eof = not file.read(1)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(data, final=at_eof)
        if len(text) <= _MAX_READ_CHARS and at_eof:
            return ToolResult(text if text else "(empty file)", is_error=False)
        note = (
            f"[truncated: showing the first {_MAX_READ_CHARS:,} characters of a file of "
            f"{size:,} bytes; use run_command (e.g. sed -n or grep) to read the rest]"
        )
        return ToolResult(f"{text[:_MAX_READ_CHARS]}\n{note}", is_error=False)

    def _write_file(self, tool_input: Mapping[str, Any]) -> ToolResult:
        path = _required_str(tool_input, "path")
        content = _required_str(tool_input, "content")
        target = self._resolve(path)
        if target.exists() or target.is_symlink():
            self._check_regular_file(target, path)
        data = content.encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_bytes(target, data)
        return ToolResult(f"wrote {len(data)} bytes to {self._display(target)}", is_error=False)

    def _edit_file(self, tool_input: Mapping[str, Any]) -> ToolResult:
        path = _required_str(tool_input, "path")
        old_text = _required_str(tool_input, "old_text")
        new_text = _required_str(tool_input, "new_text")
        if not old_text:
            raise _ToolError("old_text must not be empty; use write_file to create a file")
        target = self._resolve(path)
        self._check_regular_file(target, path)
        with open(target, "rb", opener=_nofollow_opener(os.O_RDONLY)) as file:
            # surrogateescape round-trips bytes that are not UTF-8, so an edit elsewhere in the
            # file does not corrupt them.
            text = file.read().decode("utf-8", errors="surrogateescape")
        count, first = _count_occurrences(text, old_text)
        shown = self._display(target)
        if count == 0:
            raise _ToolError(
                f"old_text was not found in {shown} (0 occurrences); it must match the file "
                "exactly, including whitespace and indentation"
            )
        if count > 1:
            raise _ToolError(
                f"old_text occurs {count} times in {shown}; it must occur exactly once, so "
                "include more surrounding lines to make it unique"
            )
        edited = text[:first] + new_text + text[first + len(old_text) :]
        _write_bytes(target, edited.encode("utf-8", errors="surrogateescape"))
        line = text.count("\n", 0, first) + 1
        return ToolResult(f"replaced 1 occurrence at line {line} of {shown}", is_error=False)

    def _run_command(self, tool_input: Mapping[str, Any]) -> ToolResult:
        command = _required_str(tool_input, "command")
        timeout_s = self._timeout(tool_input)
        result = run_command(command, cwd=self._root, timeout_s=timeout_s)
        if result.timed_out:
            first = (
                f"exit code: timeout after {_format_seconds(timeout_s)} s "
                "(the command and all processes it started were killed)"
            )
        elif result.exit_code is not None and result.exit_code < 0:
            first = f"exit code: {result.exit_code} (killed by {_signal_name(-result.exit_code)})"
        else:
            first = f"exit code: {result.exit_code}"
        return ToolResult(f"{first}\n{result.output or '(no output)'}", is_error=False)

    # ---------------------------------------------------------------- helpers

    def _resolve(self, path: str) -> Path:
        """Resolve a model-given path, refusing anything that is not inside the workspace."""
        if "\0" in path:
            raise _ToolError(f"invalid path {path!r}: it contains a NUL character")
        if os.path.isabs(path):
            raise _ToolError(
                f"absolute paths are not allowed: {path!r}; "
                "use a path relative to the workspace root"
            )
        # realpath follows every symlink, including the final component and dangling ones, so
        # the containment check sees where a read or write would really land.
        resolved = Path(os.path.realpath(os.path.join(self._root, path)))
        if not resolved.is_relative_to(self._root):
            raise _ToolError(
                f"{path!r} is outside the workspace (through '..' or a symlink); "
                "only paths inside the workspace are allowed"
            )
        return resolved

    def _check_regular_file(self, target: Path, path: str) -> int:
        """Return the size of ``target``, refusing directories, FIFOs, devices and the like."""
        try:
            info = target.stat()
        except FileNotFoundError:
            raise _ToolError(f"no such file: {path!r}") from None
        if stat.S_ISDIR(info.st_mode):
            raise _ToolError(f"{path!r} is a directory; use list_files to see its files")
        if not stat.S_ISREG(info.st_mode):
            # Opening a FIFO or a device could block forever or never end.
            raise _ToolError(f"{path!r} is not a regular file")
        return info.st_size

    def _walk(self, top: Path) -> list[str]:
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            base = Path(dirpath)
            kept: list[str] = []
            for dirname in dirnames:
                if dirname in _EXCLUDED_NAMES:
                    continue
                if (base / dirname).is_symlink():
                    # Listed but not entered: avoids loops and paths that leave the workspace.
                    found.append(self._display(base / dirname))
                else:
                    kept.append(dirname)
            dirnames[:] = kept
            for filename in filenames:
                if filename in _EXCLUDED_NAMES or any(
                    fnmatch.fnmatchcase(filename, pattern) for pattern in _EXCLUDED_FILE_PATTERNS
                ):
                    continue
                found.append(self._display(base / filename))
        return found

    def _display(self, path: Path) -> str:
        return path.relative_to(self._root).as_posix()

    def _timeout(self, tool_input: Mapping[str, Any]) -> float:
        value = tool_input.get("timeout_s")
        if value is None:
            return self._default_timeout_s
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _ToolError(f"'timeout_s' must be a number of seconds, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise _ToolError(f"'timeout_s' must be a positive number of seconds, got {value!r}")
        return min(float(value), self._max_timeout_s)

    def _describe_os_error(self, exc: OSError) -> str:
        reason = exc.strerror or str(exc)
        if not isinstance(exc.filename, str | bytes):
            return reason
        filename = os.fsdecode(exc.filename)
        # Keep the workspace's absolute location out of the message.
        if Path(filename).is_relative_to(self._root):
            filename = self._display(Path(filename))
        return f"{reason}: {filename!r}"


def _required_str(tool_input: Mapping[str, Any], key: str) -> str:
    if key not in tool_input:
        raise _ToolError(f"missing required input field {key!r}")
    value = tool_input[key]
    if not isinstance(value, str):
        raise _ToolError(f"{key!r} must be a string, got {type(value).__name__}")
    return value


def _optional_str(tool_input: Mapping[str, Any], key: str) -> str | None:
    value = tool_input.get(key)
    if value is not None and not isinstance(value, str):
        raise _ToolError(f"{key!r} must be a string, got {type(value).__name__}")
    return value


def _count_occurrences(text: str, needle: str) -> tuple[int, int]:
    """Count occurrences of ``needle``, overlapping ones included; return (count, first index).

    Overlaps count because "the one occurrence" is ambiguous when matches overlap.
    """
    count = 0
    first = -1
    index = text.find(needle)
    while index != -1:
        count += 1
        if first == -1:
            first = index
        index = text.find(needle, index + 1)
    return count, first


def _nofollow_opener(flags: int) -> Callable[[str, int], int]:
    # The path was resolved already; O_NOFOLLOW closes the window in which its last component
    # could be swapped for a symlink.
    def opener(path: str, _flags: int) -> int:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)

    return opener


def _write_bytes(target: Path, data: bytes) -> None:
    opener = _nofollow_opener(os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with open(target, "wb", opener=opener) as file:
        file.write(data)


def _format_seconds(seconds: float) -> str:
    # Timeouts computed from a remaining budget are long floats; a model needs no more than this.
    return f"{seconds:.1f}" if seconds >= 1 else f"{seconds:.2g}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
