"""The agent's own tools: a planned turn, spoken in the tools the request offers.

Trajectories are planned in the built-in agent's vocabulary (``list_files``, ``read_file``,
``write_file``, ``edit_file``, ``run_command``: :data:`~pytest_agentspeed.trajectory_file.
TOOL_NAMES`). An agent the plugin does not control offers its own tools, and a model that calls
tools the agent does not have does no work. This module reads which kind of agent sent a
request from the tools it offers (:func:`toolset_for`) and rewrites each planned turn into calls
of those tools (:func:`speak`), so the agent really reads and edits the workspace:

* the built-in five (or no ``tools`` field at all): unchanged;
* Claude Code (``Bash``, ``Read``, ``Edit`` and ``Write`` offered): ``Read``/``Write``/``Edit``
  with absolute paths in the session's workspace, ``Bash`` for listing and running. Claude Code
  refuses ``Edit`` or ``Write`` on an existing file it has not ``Read`` in this conversation, so
  such a change goes through ``Bash`` instead (and a file changed behind its back is no longer
  one it has read);
* any other agent: its one shell-like tool (one required string property such as ``command``
  or ``cmd``; mini-swe-agent's ``bash``), with plain shell for reads and writes. When the
  agent's instructions name mini-swe-agent's finish marker, the final turn runs its finish
  command (a reply without a tool call would be a format error to it). When they teach Codex's
  patch format (``apply_patch`` and ``*** Begin Patch``), edits of whole lines and new files go
  as an ``apply_patch`` here-document through the shell tool, which Codex applies itself (a
  ``file_change``), as the models it is built for edit files.

Every command a planned ``run_command`` becomes in a shell ends with :data:`EXIT_MARKER`, which
prints the command's exit status on its last line: each agent formats a tool's result its own
way (Claude Code marks a failure with ``is_error``, mini-swe-agent wraps output in JSON), and the
marker is what :func:`check_passed` reads back to let the plan close honestly.

Pure functions of the request and the plan: nothing here does I/O.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from pytest_agentspeed.trajectory_file import TOOL_NAMES, PlannedTurn, ToolUse

__all__ = [
    "BUILTIN",
    "CLAUDE_CODE_TOOLS",
    "EXIT_MARKER",
    "FINISH_MARKER",
    "WORKSPACE_HEADER",
    "Toolset",
    "check_passed",
    "is_check_call",
    "offered_tools",
    "speak",
    "toolset_for",
    "workspace_from_text",
]

#: The request header through which the recording proxy tells the simulator the session's
#: workspace (Claude Code's tools take absolute paths).
WORKSPACE_HEADER: Final = "x-agentspeed-workspace"
#: Appended to every command a planned ``run_command`` becomes in a shell tool.
EXIT_MARKER: Final = '; echo "exit code: $?"'
#: mini-swe-agent ends when a command's output starts with this line (``minisweagent/
#: environments/local.py``, ``_check_finished``).
FINISH_MARKER: Final = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
#: The tools by which a request is recognised as Claude Code's.
CLAUDE_CODE_TOOLS: Final = frozenset({"Bash", "Read", "Edit", "Write"})
#: Names of a shell tool's command property, most likely first.
_COMMAND_FIELDS: Final = ("command", "cmd", "script", "code", "input")
#: Words in a tool's name that make it the likelier shell, when several qualify.
_SHELL_WORDS: Final = ("bash", "shell", "exec", "command", "run", "terminal", "sh")
#: Files a listing leaves out: version control and bytecode, as an engineer's ``find`` would.
_LIST: Final = "find {path} -type f -not -path '*/.git/*' -not -path '*/__pycache__/*' | sort"
#: Here-document delimiter of shell writes and edits.
_EOF: Final = "AGENTSPEED_EOF"
#: The planned calls that change a file.
_CHANGES: Final = frozenset({"edit_file", "write_file"})
#: What Codex's instructions say of its patch tool, which it reads from a shell command.
_PATCH_WORDS: Final = ("apply_patch", "*** Begin Patch")
_RESULT: Final = re.compile(r"exit code: (-?\d+)")
_WORKSPACE: Final = re.compile(r"(?:Primary working directory|Working directory):[ \t]*(/[^\n<]*)")

ToolKind = Literal["builtin", "claude-code", "shell"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Toolset:
    """How the simulated model calls the tools of the agent that sent a request.

    :param kind: ``builtin`` (the planned calls as they are), ``claude-code`` or ``shell``.
    :param shell: the name of the tool that runs shell commands (``Bash`` for Claude Code).
    :param field: that tool's command property.
    :param workspace: the session's workspace as an absolute path, for tools that want absolute
        paths (``None``: unknown, so Claude Code's file tools are not used).
    :param finish: a command the final turn runs (mini-swe-agent's), or ``None``.
    :param patch: the shell takes Codex's ``apply_patch`` here-documents for edits.
    """

    kind: ToolKind
    shell: str = ""
    field: str = ""
    workspace: str | None = None
    finish: str | None = None
    patch: bool = False


#: The built-in agent's tools.
BUILTIN: Final = Toolset(kind="builtin")


def offered_tools(body: Mapping[str, Any], wire: str) -> dict[str, Mapping[str, Any]] | None:
    """The tools a request offers, by name, with their JSON schema; ``None`` when the request
    has no ``tools`` field (which is not the same as an empty list: see
    :mod:`~pytest_agentspeed.simulator.side_requests`)."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return None
    offered: dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        if wire != "anthropic":  # Chat Completions nests the function; Responses does not
            function = tool.get("function")
            spec: Mapping[str, Any] = function if isinstance(function, dict) else tool
            name, schema = spec.get("name"), spec.get("parameters")
        else:
            name, schema = tool.get("name"), tool.get("input_schema")
        if isinstance(name, str):
            offered[name] = schema if isinstance(schema, dict) else {}
    return offered


def toolset_for(
    tools: Mapping[str, Mapping[str, Any]] | None, *, instructions: str, workspace: str | None
) -> Toolset:
    """The toolset to speak, from the tools offered.

    :param tools: from :func:`offered_tools`.
    :param instructions: the agent's own text in the conversation (system prompt and user
        messages), where mini-swe-agent names its finish command.
    :param workspace: the session's workspace, if known (header or the agent's own prompt).
    """
    if tools is None or any(name in TOOL_NAMES for name in tools):
        return BUILTIN
    if tools.keys() >= CLAUDE_CODE_TOOLS:
        return Toolset(kind="claude-code", shell="Bash", field="command", workspace=workspace)
    shell = _shell_tool(tools)
    if shell is None:
        # Nothing this model can work with: the planned calls stay as they are (the agent
        # reports unknown tools back, and the plan closes).
        return BUILTIN
    finish = f"echo {FINISH_MARKER}" if FINISH_MARKER in instructions else None
    patch = all(word in instructions for word in _PATCH_WORDS)
    return Toolset(kind="shell", shell=shell[0], field=shell[1], finish=finish, patch=patch)


def workspace_from_text(text: str) -> str | None:
    """The working directory an agent states in its prompt (Claude Code: ``Primary working
    directory: /path`` in the first user message), or ``None``."""
    found = _WORKSPACE.search(text)
    return found.group(1).strip() if found else None


def speak(
    turn: PlannedTurn,
    toolset: Toolset,
    *,
    before: Sequence[PlannedTurn] = (),
    existing: Collection[str] = (),
) -> PlannedTurn:
    """``turn`` with its tool calls in the agent's tools.

    :param before: the planned turns already played in this conversation, in order: which files
        Claude Code has read (and may therefore edit) follows from them.
    :param existing: the workspace's files at the start (relative POSIX paths): Claude Code may
        ``Write`` a new file without reading it first, not an existing one.
    """
    if toolset.kind == "builtin":
        return turn
    speaker = _Speaker(toolset, existing)
    for earlier in before:
        speaker.turn(earlier)
    return speaker.turn(turn)


def is_check_call(name: str, tool_input: Mapping[str, Any], check_command: str) -> bool:
    """Whether a tool call in the conversation is the simulated model running the check."""
    if name == "run_command":
        return tool_input.get("command") == check_command
    marked = check_command + EXIT_MARKER
    return any(value == marked for value in tool_input.values())


def check_passed(name: str, result_text: str) -> bool:
    """Whether the check, called as tool ``name``, exited 0, from the text of its result.

    The built-in ``run_command`` starts its result with ``exit code: N``; a shell command ran
    with :data:`EXIT_MARKER`, whose line is the last such line of the result however the agent
    wrapped it.
    """
    if name == "run_command":
        return result_text.startswith("exit code: 0\n") or result_text.strip() == "exit code: 0"
    codes = _RESULT.findall(result_text)
    return bool(codes) and codes[-1] == "0"


def _shell_tool(tools: Mapping[str, Mapping[str, Any]]) -> tuple[str, str] | None:
    """The likeliest shell tool (name, command property): one required string property."""
    best: tuple[int, str, str] | None = None
    for name, schema in tools.items():
        required = schema.get("required")
        properties = schema.get("properties")
        if not (isinstance(required, list) and len(required) == 1):
            continue
        field = required[0]
        if not (isinstance(properties, dict) and isinstance(properties.get(field), dict)):
            continue
        if properties[field].get("type") != "string":
            continue
        lowered = name.lower()
        score = (2 if field in _COMMAND_FIELDS else 0) + (
            1 if any(word in lowered for word in _SHELL_WORDS) else 0
        )
        if best is None or score > best[0]:
            best = (score, name, field)
    return None if best is None else (best[1], best[2])


class _Speaker:
    """Rewrites turns in order, keeping what the agent knows about the workspace's files."""

    def __init__(self, toolset: Toolset, existing: Iterable[str]) -> None:
        self.toolset = toolset
        self.existing = {_norm(p) for p in existing}
        #: Files Claude Code has read (or written) through its own tools, unchanged since.
        self.known: set[str] = set()

    def turn(self, turn: PlannedTurn) -> PlannedTurn:
        read: list[str] = []
        if self.toolset.kind == "shell":
            uses = self._shell_turn(turn.tool_uses)
        else:
            uses = [self._use(use, read) for use in turn.tool_uses]
        # Parallel reads of one reply count from the next reply on: a read and an edit of the
        # same file in one reply may run in either order.
        self.known.update(read)
        if not uses and self.toolset.finish is not None:
            uses.append(self._shell(self.toolset.finish, "Submit the work"))
        return PlannedTurn(reasoning=turn.reasoning, text=turn.text, tool_uses=tuple(uses))

    def _use(self, use: ToolUse, read: list[str]) -> ToolUse:
        args = use.input
        path = _norm(str(args.get("path", ".")))
        absolute = self._absolute(path)
        if use.name == "list_files":
            return self._shell(_LIST.format(path=_quote(path)), "List the project's files")
        if use.name == "read_file":
            if absolute is not None:
                read.append(path)
                return ToolUse(name="Read", input={"file_path": absolute})
            return self._shell(f"cat {_quote(path)}", f"Show {path}")
        if use.name == "write_file":
            content = str(args.get("content", ""))
            new_file = path not in self.existing
            self.existing.add(path)
            if absolute is not None and (path in self.known or new_file):
                self.known.add(path)
                return ToolUse(name="Write", input={"file_path": absolute, "content": content})
            self.known.discard(path)
            return self._shell(_write_command(path, content), f"Write {path}")
        if use.name == "edit_file":
            old, new = str(args.get("old_text", "")), str(args.get("new_text", ""))
            if absolute is not None and path in self.known:
                return ToolUse(
                    name="Edit", input={"file_path": absolute, "old_string": old, "new_string": new}
                )
            self.known.discard(path)
            return self._shell(_edit_command(path, old, new), f"Edit {path}")
        if use.name == "run_command":
            command = str(args.get("command", ""))
            extra: dict[str, Any] = {}
            timeout = args.get("timeout_s")
            if self.toolset.kind == "claude-code" and isinstance(timeout, int | float):
                extra["timeout"] = int(timeout * 1000)
            return self._shell(command + EXIT_MARKER, f"Run {_head(command)}", **extra)
        return use

    def _shell_turn(self, planned: Sequence[ToolUse]) -> list[ToolUse]:
        """A reply's calls in a shell tool, every change of one file in one command, at the
        place of the file's first change: an agent may run a reply's calls at once (Codex
        does), and two commands changing one file at once would lose one of the changes."""
        changes: dict[str, list[ToolUse]] = {}
        for use in planned:
            if use.name in _CHANGES:
                changes.setdefault(_norm(str(use.input.get("path", "."))), []).append(use)
        out = []
        for use in planned:
            if use.name not in _CHANGES:
                out.append(self._use(use, []))
            elif (group := changes.pop(_norm(str(use.input.get("path", "."))), None)) is not None:
                out.append(self._file_changes(_norm(str(use.input.get("path", "."))), group))
        return out

    def _file_changes(self, path: str, group: Sequence[ToolUse]) -> ToolUse:
        """One file's changes in one reply as one shell command: Codex's patch when they can
        be one, else the plain-shell writes and edits one after the other."""
        new_file = path not in self.existing
        self.existing.add(path)
        if self.toolset.patch and (patch := _patch(path, group, new_file=new_file)):
            return self._shell(patch, f"Change {path}")
        commands = [
            _write_command(path, str(use.input.get("content", "")))
            if use.name == "write_file"
            else _edit_command(
                path, str(use.input.get("old_text", "")), str(use.input.get("new_text", ""))
            )
            for use in group
        ]
        return self._shell("\n".join(commands), f"Change {path}")

    def _absolute(self, path: str) -> str | None:
        workspace = self.toolset.workspace
        if self.toolset.kind != "claude-code" or workspace is None:
            return None
        return _norm(posixpath.join(workspace, path))

    def _shell(self, command: str, description: str, **extra: Any) -> ToolUse:
        tool_input: dict[str, Any] = {self.toolset.field: command}
        if self.toolset.kind == "claude-code":
            # Claude Code shows the description to its user in place of the command.
            tool_input["description"] = description
            tool_input.update(extra)
        return ToolUse(name=self.toolset.shell, input=tool_input)


def _write_command(path: str, content: str) -> str:
    """A shell write of ``content`` to ``path``: a here-document when it can hold the text
    exactly (it always ends the text with a newline), else Python with the text as a literal."""
    parent = posixpath.dirname(path)
    mkdir = f"mkdir -p {_quote(parent)} && " if parent else ""
    lines = content.split("\n")
    if content.endswith("\n") and _EOF not in lines:
        return f"{mkdir}cat > {_quote(path)} <<'{_EOF}'\n{content}{_EOF}"
    return (
        f"{mkdir}python3 - <<'{_EOF}'\n"
        f"import pathlib\n"
        f"pathlib.Path({_literal(path)}).write_text({_literal(content)})\n"
        f"{_EOF}"
    )


def _edit_command(path: str, old: str, new: str) -> str:
    """A shell edit replacing the one occurrence of ``old`` in ``path`` with ``new``.

    A Python script in a here-document, the texts as JSON string literals (valid Python, and
    one line each, so no line of them can end the here-document): ``sed`` would need every
    regex and delimiter character escaped. Like the built-in ``edit_file``, it refuses (exit 1,
    file untouched) when the old text is not found exactly once.
    """
    return (
        f"python3 - <<'{_EOF}'\n"
        "import pathlib, sys\n"
        f"path = pathlib.Path({_literal(path)})\n"
        f"old, new = {_literal(old)}, {_literal(new)}\n"
        "text = path.read_text()\n"
        "if text.count(old) != 1:\n"
        '    sys.exit(f"{path}: the old text occurs {text.count(old)} times, not once")\n'
        "path.write_text(text.replace(old, new, 1))\n"
        f"{_EOF}"
    )


def _patch(path: str, group: Sequence[ToolUse], *, new_file: bool) -> str | None:
    """Codex's patch for one file's changes in a reply, or ``None`` when they cannot be one:
    a new file written whole (``Add``), or edits of whole lines (``Update``, one hunk each, in
    the order planned, which is the file's order for planned edits: Codex looks for each hunk
    after the one before)."""
    if len(group) == 1 and group[0].name == "write_file":
        content = str(group[0].input.get("content", ""))
        return (
            _patch_command("Add", path, [("", content)])
            if new_file and _patchable("", content)
            else None
        )
    hunks = [
        (str(use.input.get("old_text", "")), str(use.input.get("new_text", "")))
        for use in group
        if use.name == "edit_file"
    ]
    if len(hunks) < len(group) or not all(old and _patchable(old, new) for old, new in hunks):
        return None
    return _patch_command("Update", path, hunks)


def _patchable(old: str, new: str) -> bool:
    """Whether a change can be a patch: whole lines (Codex's patches replace lines; a part of
    a line, or a last line without its newline, goes by the plain-shell edit) and no line that
    would end the here-document."""
    texts = [t for t in (old, new) if t]
    return bool(texts) and all(t.endswith("\n") and _EOF not in t.split("\n") for t in texts)


def _patch_command(kind: str, path: str, hunks: Sequence[tuple[str, str]]) -> str:
    """Codex's ``apply_patch`` here-document: ``Update`` replaces, hunk by hunk, the lines of
    each old text (unique in the file, as every planned edit's old text is) with those of its
    new text; ``Add`` creates the file with the one hunk's new text."""
    lines = []
    for old, new in hunks:
        if kind == "Update":
            lines.append("@@")
        lines += [f"-{line}" for line in old.splitlines()]
        lines += [f"+{line}" for line in new.splitlines()]
    body = "\n".join(["*** Begin Patch", f"*** {kind} File: {path}", *lines, "*** End Patch"])
    return f"apply_patch <<'{_EOF}'\n{body}\n{_EOF}"


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _quote(path: str) -> str:
    return shlex.quote(path)


def _head(command: str) -> str:
    """The first words of a command, for a description that does not repeat it whole."""
    words = command.split()
    return " ".join(words[:3]) if words else "the command"


def _norm(path: str) -> str:
    return posixpath.normpath(path) if path else "."
