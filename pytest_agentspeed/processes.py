"""Running a command or program safely: its own process group, a scrubbed environment,
bounded output, and nothing left behind.

Used wherever the package starts a command it does not control: the built-in agent's
``run_command`` tool (:mod:`pytest_agentspeed.agents.tools`), a task's check
(:mod:`pytest_agentspeed.run.runner`), the simulator's server process (which gets the scrubbed
environment) and external agent CLIs (:mod:`pytest_agentspeed.agents.external`, through
:func:`run_program`: an argv, no shell, and the process's start and exit on the timing clock).
It imports nothing else of the package, so every layer may use it.

What :func:`run_command` guarantees:

* The command runs through ``/bin/sh -c`` (:func:`run_program`: the argv as given) in the
  given directory, stdin from ``/dev/null``, in a new session (so in its own process group).
  The whole group is killed with SIGKILL on timeout, and also after the shell exits, so
  background children never outlive the call.
* Output (stdout and stderr combined) is read in chunks, keeping only the first and last few
  KB, so memory stays bounded however much a command prints.
* By default the command gets a scrubbed environment (:func:`scrubbed_environment`):
  credentials and the variables that would steer a nested pytest run are removed, and the
  directory of the running interpreter is put first on ``PATH`` so ``python`` means the
  benchmark's Python.

None of this is a sandbox: a command can still reach anything the user running the benchmark
can, and can leave the process group with ``setsid``.

POSIX only (process groups, ``/bin/sh``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CommandResult",
    "ProgramResult",
    "credential_values",
    "run_command",
    "run_program",
    "scrubbed_environment",
]

# Matched against the upper-cased variable name, so the match is case-insensitive.
_CREDENTIAL_PATTERNS = ("*_API_KEY", "*_TOKEN", "*SECRET*", "ANTHROPIC_*", "OPENAI_*")
_SCRUBBED_ENV_PATTERNS = (
    *_CREDENTIAL_PATTERNS,
    # A check that runs pytest must not be steered by the outer pytest run.
    "PYTEST_ADDOPTS",
    "PYTEST_CURRENT_TEST",
    "PYTEST_XDIST_*",
)

# Shorter values are not redacted: replacing every "1" or "true" in an output would destroy it,
# and no real credential is that short.
_MIN_SECRET_CHARS = 8

# Where pidfds are missing, the longest the read loop sleeps before checking whether the process
# exited while a background child still holds the output pipe open.
_POLL_S = 0.05
# After killing the group, how long to wait for the pipe to reach EOF. Only a process that
# left the group (setsid) and kept the pipe can make us wait this long.
_DRAIN_S = 1.0
_READ_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The outcome of :func:`run_command`.

    :param exit_code: the shell's (or program's) exit status (negative: killed by that
        signal); ``None`` when the command timed out.
    :param output: stdout and stderr combined, already truncated (with an omission marker
        line), decoded as UTF-8 with undecodable bytes replaced.
    :param timed_out: the command was killed because it ran past its timeout.
    :param omitted_bytes: how many bytes of output truncation dropped.
    :param wall_s: wall-clock seconds from start until the process group was cleaned up.
    """

    exit_code: int | None
    output: str
    timed_out: bool
    omitted_bytes: int
    wall_s: float


@dataclass(frozen=True, slots=True)
class ProgramResult:
    """The outcome of :func:`run_program`: the command's, and when its process ran.

    :param started_ns: just before the process was started (``time.perf_counter_ns``).
    :param exited_ns: when its exit was seen, or when it was killed at the timeout.
    """

    result: CommandResult
    started_ns: int
    exited_ns: int


# --------------------------------------------------------------------------- environment


# Names of variables that hold a key under a name the patterns do not catch (a named
# endpoint's ``api_key_env = "GATEWAY_KEY"``), set by the run before its first session.
_ALSO_SCRUBBED: set[str] = set()


def scrub_also(names: Iterable[str]) -> None:
    """Keep these variables, too, out of every environment :func:`scrubbed_environment`
    makes, and their values out of every output :func:`credential_values` cleans.

    The run calls it with the key variables of its endpoints, whatever their names, before any
    command runs: a key must reach neither a tool command, nor a check, nor an external agent.
    """
    _ALSO_SCRUBBED.update(name.upper() for name in names)


def scrubbed_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``base`` (default ``os.environ``) that is safe to give a command.

    Dropped (names matched case-insensitively): ``*_API_KEY``, ``*_TOKEN``, ``*SECRET*``,
    ``ANTHROPIC_*``, ``OPENAI_*``, ``PYTEST_ADDOPTS``, ``PYTEST_CURRENT_TEST`` and
    ``PYTEST_XDIST_*``, and the variables named to :func:`scrub_also`. The directory of
    ``sys.executable`` is put first on ``PATH`` so that
    ``python`` in a command is the interpreter running the benchmark even when its virtual
    environment is not activated.
    """
    source = os.environ if base is None else base
    env = {name: value for name, value in source.items() if not _is_scrubbed(name)}
    # Not resolved: a venv's bin/python is a symlink to the base interpreter, and resolving it
    # would lose the venv.
    python_dir = os.path.dirname(sys.executable)
    if python_dir:
        path = env.get("PATH", os.defpath)
        parts = path.split(os.pathsep) if path else []
        if not parts or parts[0] != python_dir:
            env["PATH"] = os.pathsep.join([python_dir, *parts])
    return env


def credential_values(base: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values of the credential-looking variables of ``base`` (default ``os.environ``),
    longest first: what to replace in a command's output before it is kept.

    The names are those :func:`scrubbed_environment` drops as credentials (``*_API_KEY``,
    ``*_TOKEN``, ``*SECRET*``, ``ANTHROPIC_*``, ``OPENAI_*``); values under 8 characters are
    left out, as no real key is that short and replacing them would garble the output.
    """
    source = os.environ if base is None else base
    values = {
        value
        for name, value in source.items()
        if len(value) >= _MIN_SECRET_CHARS
        and (_matches(name, _CREDENTIAL_PATTERNS) or name.upper() in _ALSO_SCRUBBED)
    }
    # Longest first, so that a key containing another is replaced whole.
    return tuple(sorted(values, key=lambda v: (-len(v), v)))


def _is_scrubbed(name: str) -> bool:
    return name.upper() in _ALSO_SCRUBBED or _matches(name, _SCRUBBED_ENV_PATTERNS)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in patterns)


# --------------------------------------------------------------------------- commands


class _HeadTail:
    """Keeps the first ``head`` and the last ``tail`` bytes of a stream, and counts the rest."""

    __slots__ = ("_head", "_head_limit", "_tail", "_tail_limit", "total")

    def __init__(self, head_bytes: int, tail_bytes: int) -> None:
        self._head = bytearray()
        self._tail = bytearray()
        self._head_limit = head_bytes
        self._tail_limit = tail_bytes
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data and self._tail_limit > 0:
            self._tail += data
            excess = len(self._tail) - self._tail_limit
            if excess > 0:
                del self._tail[:excess]

    @property
    def omitted(self) -> int:
        return self.total - len(self._head) - len(self._tail)

    def render(self) -> str:
        if self.omitted == 0:
            return bytes(self._head + self._tail).decode("utf-8", errors="replace")
        head = self._head.decode("utf-8", errors="replace")
        if head and not head.endswith("\n"):
            head += "\n"
        tail = self._tail.decode("utf-8", errors="replace")
        return f"{head}[... {self.omitted:,} bytes omitted ...]\n{tail}"


def run_command(
    command: str,
    *,
    cwd: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    head_bytes: int = 8192,
    tail_bytes: int = 8192,
) -> CommandResult:
    """Run ``command`` with ``/bin/sh -c`` in ``cwd`` and return its outcome.

    The command runs in its own session and process group with stdin from ``/dev/null``; stdout
    and stderr go to one pipe. When it runs past ``timeout_s`` the whole group is killed with
    SIGKILL; when the shell exits, the group is killed too, so background children do not
    linger. Only the first ``head_bytes`` and last ``tail_bytes`` of output are kept.

    :param env: the environment of the command; defaults to :func:`scrubbed_environment`.
    :raises ValueError: ``timeout_s`` is not a positive number, or a byte limit is negative.
    :raises OSError: the shell could not be started (e.g. ``cwd`` does not exist).
    """
    return run_program(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        timeout_s=timeout_s,
        env=env,
        head_bytes=head_bytes,
        tail_bytes=tail_bytes,
    ).result


def run_program(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    head_bytes: int = 8192,
    tail_bytes: int = 8192,
) -> ProgramResult:
    """Run the program ``argv`` (no shell) in ``cwd``, as :func:`run_command` runs a command.

    The same guarantees: its own session and process group, stdin from ``/dev/null``, the
    group killed at ``timeout_s`` and when the program exits, head and tail of the output kept.
    Also returns when the process started and exited, on ``time.perf_counter_ns`` (the clock
    of every timing event), so its life can be laid beside the requests it made.

    :param argv: the program (looked up on the ``PATH`` of ``env``) and its arguments.
    :param env: the environment of the program; defaults to :func:`scrubbed_environment`.
    :raises ValueError: ``argv`` is empty, ``timeout_s`` is not a positive number, or a byte
        limit is negative.
    :raises OSError: the program could not be started (not found, ``cwd`` missing).
    """
    if not argv:
        raise ValueError("argv must name a program")
    if not timeout_s > 0 or not math.isfinite(timeout_s):
        raise ValueError(f"timeout_s must be a positive number, got {timeout_s!r}")
    if head_bytes < 0 or tail_bytes < 0:
        raise ValueError("head_bytes and tail_bytes must not be negative")
    child_env = dict(scrubbed_environment() if env is None else env)
    buffer = _HeadTail(head_bytes, tail_bytes)
    start = time.monotonic()
    started_ns = time.perf_counter_ns()
    proc = subprocess.Popen(
        # On POSIX, Popen looks the program up on the PATH of ``env``.
        list(argv),
        cwd=cwd,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # start_new_session makes the program a session and group leader: its pid is the pgid.
    pgid = proc.pid
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pidfd = _open_pidfd(proc.pid)
    timed_out = False
    exited_ns = started_ns
    try:
        os.set_blocking(fd, False)
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            if pidfd is not None:
                selector.register(pidfd, selectors.EVENT_READ)
            exited, eof = _pump(proc, selector, fd, pidfd, buffer, start + timeout_s)
            exited_ns = time.perf_counter_ns()
            timed_out = not exited
            _kill_group(pgid)
            if pidfd is not None:
                selector.unregister(pidfd)
            if not eof:
                # What the group wrote before it died is still in the pipe.
                _drain(selector, fd, buffer, time.monotonic() + _DRAIN_S)
    finally:
        _kill_group(pgid)
        if pidfd is not None:
            os.close(pidfd)
        proc.stdout.close()
        returncode = proc.wait()
    result = CommandResult(
        exit_code=None if timed_out else returncode,
        output=buffer.render(),
        timed_out=timed_out,
        omitted_bytes=buffer.omitted,
        wall_s=time.monotonic() - start,
    )
    return ProgramResult(result, started_ns, exited_ns)


def _pump(
    proc: subprocess.Popen[bytes],
    selector: selectors.BaseSelector,
    fd: int,
    pidfd: int | None,
    buffer: _HeadTail,
    deadline: float,
) -> tuple[bool, bool]:
    """Read output until the process exits or the deadline passes; return (exited, output EOF).

    EOF does not end the wait: the process may have closed or redirected its stdout and still
    run. Nor does the wait need EOF: a background child that inherited the pipe keeps it open
    after the process exits.
    """
    eof = False
    # Without a pidfd the process's exit is only noticed by polling; start fast so that short
    # commands do not pay for the poll interval.
    poll_s = 0.001
    while True:
        if _has_exited(proc):
            return True, eof
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, eof
        wait_s = remaining if pidfd is not None else min(remaining, poll_s)
        poll_s = min(poll_s * 2, _POLL_S)
        for key, _events in selector.select(wait_s):
            if key.fd == fd and _read_into(fd, buffer):
                selector.unregister(fd)
                eof = True


def _drain(selector: selectors.BaseSelector, fd: int, buffer: _HeadTail, deadline: float) -> None:
    while (remaining := deadline - time.monotonic()) > 0:
        if selector.select(remaining) and _read_into(fd, buffer):
            return


def _read_into(fd: int, buffer: _HeadTail) -> bool:
    """Read what is available into ``buffer``; return ``True`` at EOF."""
    try:
        data = os.read(fd, _READ_CHUNK)
    except BlockingIOError:
        return False
    if not data:
        return True
    buffer.add(data)
    return False


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the process exited, without reaping it where the platform allows.

    Leaving it a zombie until the group is killed keeps its pid, which is the pgid we signal,
    from being reused by an unrelated process in the meantime.
    """
    if hasattr(os, "waitid"):
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None
    return proc.poll() is not None


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), else ``None``."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _kill_group(pgid: int) -> None:
    # ProcessLookupError: nothing left. PermissionError: macOS reports a group that holds only
    # zombies that way.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
