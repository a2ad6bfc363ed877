"""The exceptions pytest-agentspeed raises.

Every error the package raises on purpose derives from one base class, so callers can catch
them all without catching programming errors::

    AgentSpeedError
    ├── ConfigError       an option, endpoint spec or setting is wrong; shown as a usage error
    ├── TaskError         a task definition (agenttask.toml, trajectory.toml, Task) is wrong
    ├── EndpointError     the endpoint could not serve a turn (after the SDK's own retries)
    ├── RunFileError      a run file is missing, corrupt or of an unknown schema
    └── RecordingError    a recording is missing, corrupt, of a future schema or on another wire

Messages are written for the user: they say what was wrong, where, and what is accepted, and
they never contain secrets.
"""

from __future__ import annotations

from pathlib import Path


class AgentSpeedError(Exception):
    """Base class of every error pytest-agentspeed raises on purpose."""


class ConfigError(AgentSpeedError):
    """An option, an endpoint spec or a ``[tool.agentspeed]`` setting is invalid.

    The pytest edge turns it into ``pytest.UsageError``: one line, no traceback.
    """


class TaskError(AgentSpeedError):
    """A task definition is invalid.

    :param path: the file that holds the mistake (``None`` for tasks defined in Python).
    :param key: the dotted key that is wrong, e.g. ``"check.timeout_s"`` (``None`` when the
        whole file is at fault, e.g. it is not valid TOML).
    :param message: what is wrong and what is accepted.
    """

    def __init__(self, path: Path | None, key: str | None, message: str) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = str(path) if path is not None else "<task>"
        if key is not None:
            where += f": key '{key}'"
        super().__init__(f"{where}: {message}")


class EndpointError(AgentSpeedError):
    """The endpoint could not serve a turn.

    :param error_type: a short classification, e.g. ``"overloaded_error"``,
        ``"connection_error"``, ``"authentication_error"``.
    :param message: a human-readable explanation (secrets already removed).
    :param status: the HTTP status of the last attempt, when there was one.
    :param mid_stream: the response had started when it failed (an error event, a dropped
        connection, a read timeout). The SDKs do not retry these; the agent loop sends the
        turn again a bounded number of times.
    """

    def __init__(
        self, error_type: str, message: str, status: int | None = None, *, mid_stream: bool = False
    ) -> None:
        self.error_type = error_type
        self.status = status
        self.mid_stream = mid_stream
        super().__init__(f"{error_type}: {message}")


class RunFileError(AgentSpeedError):
    """A run file cannot be read: missing, not JSON, or of an unknown schema."""


class RecordingError(AgentSpeedError):
    """A recording cannot be read or replayed: missing, corrupt, truncated, of a future
    schema, or made on a wire the endpoint does not speak. One line that names the file."""
