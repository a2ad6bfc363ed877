"""Plans of simulated model trajectories.

The simulated endpoint plays a realistic model when an agent works on a task: it explores the
project, reads the files that matter, thinks, changes the files, runs the check and summarizes.
This module produces that plan as a tuple of :class:`PlannedTurn` (the server serves element
``i`` as the ``i``-th assistant reply of a conversation); it does no HTTP and no timing.

Plans are derived from the task's ``workspace/`` and ``solution/`` files
(:func:`plan_trajectory`) or scripted explicitly in a ``trajectory.toml``
(:func:`~pytest_agentspeed.trajectory_file.load_trajectory`, re-exported here with the turn
types; the file belongs to the task's definition, so it is read with the task files, below the
simulator). Output sizes follow the real file contents: a ``write_file`` carries the whole file
and an ``edit_file`` carries the real old and new text, because the token count of this output
drives the simulated generation time.

Plans are deterministic: the same inputs give the same plan, byte for byte. Wording varies
between tasks through a hash of the instruction, never through random state.

Why one module of this size: it is one cohesive algorithm, a pipeline of private steps (find
the changed files and their hunks, decide edit or rewrite, choose what to read, word each turn)
whose only output is :func:`plan_trajectory`. The steps share the wording and the hunk types
and mean nothing on their own; split, they would be modules of private helpers importing each
other's internals.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from pytest_agentspeed.trajectory_file import TOOL_NAMES as TOOL_NAMES
from pytest_agentspeed.trajectory_file import PlannedTurn as PlannedTurn
from pytest_agentspeed.trajectory_file import ToolUse as ToolUse
from pytest_agentspeed.trajectory_file import closing_turn as closing_turn
from pytest_agentspeed.trajectory_file import load_trajectory as load_trajectory

__all__ = [
    "TOOL_NAMES",
    "PlannedTurn",
    "ToolUse",
    "closing_turn",
    "load_trajectory",
    "plan_trajectory",
]


#: At most this many ``read_file`` calls go into one turn (parallel tool calls).
_READS_PER_TURN: Final = 4
#: The exploration reads at most this many files, in at most two turns.
_MAX_READS: Final = 2 * _READS_PER_TURN
#: A file whose changed lines exceed this fraction is rewritten with ``write_file``.
_REWRITE_FRACTION: Final = 0.6
#: Hunks separated by at most this many unchanged lines become one edit.
_MERGE_GAP: Final = 2


# --------------------------------------------------------------------------------------------
# Deterministic wording


class _Wording:
    """Picks phrasings deterministically from a hash of the instruction."""

    def __init__(self, instruction: str) -> None:
        self._seed = hashlib.sha256(instruction.encode("utf-8")).digest()

    def pick(self, salt: str, options: Sequence[str]) -> str:
        digest = hashlib.sha256(self._seed + salt.encode("utf-8")).digest()
        return options[int.from_bytes(digest[:8], "big") % len(options)]


def _code(name: str) -> str:
    return f"`{name}`"


def _join(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _snippet(instruction: str, limit: int = 140) -> str:
    """The instruction's first sentence, on one line, cut at ``limit`` characters."""
    flat = " ".join(instruction.split())
    match = re.search(r"[.!?](\s|$)", flat)
    if match is not None:
        flat = flat[: match.start()]
    flat = flat.rstrip(" .!?:;,")
    if len(flat) > limit:
        cut = flat[:limit].rsplit(" ", 1)[0].rstrip(" .!?:;,")
        flat = cut + "..."
    return flat


# --------------------------------------------------------------------------------------------
# Names of definitions near a change

_DEF_PATTERNS: Final = (
    re.compile(r"^(?P<indent>\s*)(?:async\s+)?def\s+(?P<name>[A-Za-z_]\w*)"),
    re.compile(r"^(?P<indent>\s*)class\s+(?P<name>[A-Za-z_]\w*)"),
    re.compile(
        r"^(?P<indent>\s*)(?:export\s+)?(?:default\s+)?(?:async\s+)?function\*?\s+"
        r"(?P<name>[A-Za-z_$][\w$]*)"
    ),
    re.compile(
        r"^(?P<indent>\s*)(?:export\s+)?(?:const|let|var)\s+(?P<name>[A-Za-z_$][\w$]*)\s*=\s*"
        r"(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)"
    ),
    re.compile(r"^(?P<indent>\s*)(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+(?P<name>\w+)"),
    re.compile(r"^(?P<indent>\s*)func\s+(?:\([^)]*\)\s*)?(?P<name>\w+)"),
)


def _definition(line: str) -> tuple[int, str] | None:
    """``(indent, name)`` when ``line`` defines a function or class."""
    for pattern in _DEF_PATTERNS:
        match = pattern.match(line)
        if match is not None:
            indent = len(match.group("indent").expandtabs(4))
            return indent, match.group("name")
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _enclosing(lines: Sequence[str], index: int) -> str | None:
    """The qualified name (``Class.method``) of the definition that holds ``lines[index]``.

    ``lines[index]`` itself counts when it is a definition.
    """
    limit = _indent(lines[index].expandtabs(4)) + 1
    chain: list[str] = []
    for pos in range(index, -1, -1):
        line = lines[pos].expandtabs(4)
        if not line.strip() or _indent(line) >= limit or line.lstrip()[0] in ")]}":
            continue  # closing brackets end multi-line signatures, not scopes
        limit = _indent(line)
        found = _definition(line)
        if found is not None:
            chain.append(found[1])
        if limit == 0:
            break
    return ".".join(reversed(chain)) if chain else None


def _scope(lines: Sequence[str], start: int, stop: int) -> str | None:
    """The definition that holds the first non-blank line of ``lines[start:stop]``."""
    for index in range(start, min(stop, len(lines))):
        if lines[index].strip():
            return _enclosing(lines, index)
    return None


def _defined_in(lines: Sequence[str]) -> list[str]:
    """Names defined on ``lines``, in order, without duplicates."""
    names: list[str] = []
    for line in lines:
        found = _definition(line)
        if found is not None and found[1] not in names:
            names.append(found[1])
    return names


# --------------------------------------------------------------------------------------------
# Diffing and edits


@dataclass(frozen=True, slots=True)
class _Hunk:
    """Original lines ``[a1, a2)`` become solution lines ``[b1, b2)``."""

    a1: int
    a2: int
    b1: int
    b2: int


@dataclass(frozen=True, slots=True)
class _FileChange:
    path: str
    new: bool
    rewrite: bool
    edits: tuple[tuple[str, str], ...]  # (old_text, new_text), in order; empty if rewrite
    touched: tuple[str, ...]  # existing functions/classes the change is in
    created: tuple[str, ...]  # functions/classes the change adds
    summary: tuple[str, ...]  # what the change does, in general terms
    added: int
    removed: int

    @property
    def names(self) -> tuple[str, ...]:
        return self.touched + self.created


def _lines(text: str) -> list[str]:
    """``text`` split after each ``\\n`` (only there, unlike ``str.splitlines``)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _hunks(old: Sequence[str], new: Sequence[str]) -> list[_Hunk]:
    """The changed line ranges, top to bottom, close ones merged."""
    # Strip the common head and tail first: SequenceMatcher alone may match a run of repeated
    # lines in the wrong place and report a one-line insertion as a big insert plus a delete.
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    matcher = difflib.SequenceMatcher(
        None, old[head : len(old) - tail], new[head : len(new) - tail], autojunk=False
    )
    hunks: list[_Hunk] = []
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        a1, a2, b1, b2 = a1 + head, a2 + head, b1 + head, b2 + head
        if hunks and a1 - hunks[-1].a2 <= _MERGE_GAP:
            last = hunks.pop()
            hunks.append(_Hunk(last.a1, a2, last.b1, b2))
        else:
            hunks.append(_Hunk(a1, a2, b1, b2))
    return hunks


def _count(text: str, needle: str) -> int:
    """Occurrences of ``needle`` in ``text``, overlapping ones included."""
    count = 0
    start = text.find(needle)
    while start != -1:
        count += 1
        if count > 1:
            break
        start = text.find(needle, start + 1)
    return count


def _plan_edits(old: Sequence[str], new: Sequence[str]) -> list[tuple[str, str]] | None:
    """One ``(old_text, new_text)`` per hunk, each unique where it applies; ``None`` if not."""
    current = list(old)
    edits: list[tuple[str, str]] = []
    delta = 0
    for hunk in _hunks(old, new):
        start, end = hunk.a1 + delta, hunk.a2 + delta
        replacement = list(new[hunk.b1 : hunk.b2])
        lo, hi = start, end
        if lo == hi:  # a pure insertion needs an anchor line
            if lo > 0:
                lo -= 1
            elif hi < len(current):
                hi += 1
        text = "".join(current)
        upward = True
        while True:
            old_text = "".join(current[lo:hi])
            if old_text.strip() and _count(text, old_text) == 1:
                break
            can_up, can_down = lo > 0, hi < len(current)
            if not can_up and not can_down:
                return None
            if (upward and can_up) or not can_down:
                lo -= 1
            else:
                hi += 1
            upward = not upward
        new_lines = current[lo:start] + replacement + current[end:hi]
        edits.append((old_text, "".join(new_lines)))
        current[lo:hi] = new_lines
        delta += (hunk.b2 - hunk.b1) - (hunk.a2 - hunk.a1)
    return edits


def _apply_edits(text: str, edits: Sequence[tuple[str, str]]) -> str | None:
    """``text`` after the edits, with ``edit_file`` semantics; ``None`` if one would fail."""
    for old_text, new_text in edits:
        if not old_text or _count(text, old_text) != 1:
            return None
        text = text.replace(old_text, new_text, 1)
    return text


def _describe(
    old: Sequence[str], new: Sequence[str], fresh: Collection[str]
) -> tuple[list[str], list[str]]:
    """What a hunk does, in general terms, and the new names it uses.

    :param fresh: the names the whole change defines anew (in any file).
    :returns: verb phrases (empty when nothing specific can be said) and the names of ``fresh``
        that the hunk's new lines use without defining them.
    """
    old_code = {line.strip() for line in old if line.strip()}
    added = [line.strip() for line in new if line.strip() and line.strip() not in old_code]
    defined = set(_defined_in(added))
    used = [
        name
        for name in sorted(fresh)
        if name not in defined
        and any(re.search(rf"(?<![\w.]){re.escape(name)}\b", line) for line in added)
    ]
    phrases: list[str] = []
    if not used and any(re.match(r"(import\s|from\s+\S+\s+import\s)", line) for line in added):
        phrases.append("add the missing import")
    raises = any(re.match(r"(raise|throw)\b", line) for line in added)
    branches = any(re.match(r"(if|elif|else if)\b", line) for line in added)
    if raises and branches:
        phrases.append("reject invalid input with an explicit check and error")
    elif raises:
        phrases.append("raise an error for the invalid case")
    elif branches:
        phrases.append("handle the missing case with an extra condition")
    if not phrases and not used and any(re.match(r"return\b", line) for line in added):
        phrases.append("correct what it returns")
    return phrases, used


def _top_level(lines: Sequence[str]) -> list[str]:
    """Names of the definitions that are not nested in another one, in order."""
    names: list[str] = []
    for line in lines:
        found = _definition(line.expandtabs(4))
        if found is not None and found[0] == 0 and found[1] not in names:
            names.append(found[1])
    return names


def _fresh_names(original: str | None, solution: str) -> set[str]:
    """Names a file's solution defines that its original does not."""
    before = set(_defined_in(_lines(original or "")))
    return set(_defined_in(_lines(solution))) - before


def _analyse(path: str, original: str | None, solution: str, fresh: Collection[str]) -> _FileChange:
    new_lines = _lines(solution)
    if original is None:
        return _FileChange(
            path=path,
            new=True,
            rewrite=True,
            edits=(),
            touched=(),
            created=tuple(_top_level(new_lines)[:4]),
            summary=(),
            added=len(new_lines),
            removed=0,
        )
    old_lines = _lines(original)
    existing = set(_defined_in(old_lines))
    hunks = _hunks(old_lines, new_lines)
    changed = sum(max(h.a2 - h.a1, h.b2 - h.b1) for h in hunks)
    total = max(len(old_lines), len(new_lines), 1)
    touched: list[str] = []
    created: list[str] = []
    summary: list[str] = []
    plain_added = plain_removed = 0  # lines of hunks with nothing specific to say
    used: list[str] = []  # new names (of this change) the hunks use
    used_added = used_removed = 0
    for hunk in hunks:
        if hunk.b2 > hunk.b1:
            scope = _scope(new_lines, hunk.b1, hunk.b2)
        else:
            scope = _scope(old_lines, hunk.a1, hunk.a2)
        is_new = scope is not None and scope.rsplit(".", 1)[-1] not in existing
        if scope is not None:
            target = created if is_new else touched
            if scope not in target:
                target.append(scope)
        else:
            for name in _defined_in(new_lines[hunk.b1 : hunk.b2]):
                if name not in existing and name not in created:
                    created.append(name)
                    is_new = True
        if is_new:
            continue  # adding a definition says enough (the names are listed)
        phrases, names = _describe(
            old_lines[hunk.a1 : hunk.a2], new_lines[hunk.b1 : hunk.b2], fresh
        )
        for phrase in phrases:
            if phrase not in summary:
                summary.append(phrase)
        if names:
            used.extend(name for name in names if name not in used)
            used_added += hunk.b2 - hunk.b1
            used_removed += hunk.a2 - hunk.a1
        elif not phrases:
            plain_added += hunk.b2 - hunk.b1
            plain_removed += hunk.a2 - hunk.a1
    if used:
        uses = _join([_code(name) for name in used[:2]])
        if used_removed > used_added:
            summary.insert(0, f"use the new {uses} instead of the inline code")
        else:
            summary.insert(0, f"call the new {uses}")
    if _kind(path) == _DOCS:
        summary = ["describe the new behaviour"]
    elif plain_added or plain_removed or not (summary or created):
        if not plain_removed:
            summary.append("fill in the missing code")
        elif not plain_added:
            summary.append("drop the code that is no longer needed")
        else:
            summary.append("adjust the surrounding logic")
    edits: list[tuple[str, str]] | None = None
    if changed / total <= _REWRITE_FRACTION:
        edits = _plan_edits(old_lines, new_lines)
        if edits is not None and _apply_edits(original, edits) != solution:
            edits = None  # verification failed: fall back to a write_file
    return _FileChange(
        path=path,
        new=False,
        rewrite=edits is None,
        edits=tuple(edits or ()),
        touched=tuple(touched[:4]),
        created=tuple(created[:3]),
        summary=tuple(summary[:3]),
        added=sum(h.b2 - h.b1 for h in hunks),
        removed=sum(h.a2 - h.a1 for h in hunks),
    )


# --------------------------------------------------------------------------------------------
# Which files to read


def _is_test(path: str) -> bool:
    pure = PurePosixPath(path)
    if any(part in ("tests", "test", "__tests__", "spec") for part in pure.parts[:-1]):
        return True
    name = pure.name
    return (
        name.startswith("test_")
        or pure.stem.endswith("_test")
        or ".test." in name
        or ".spec." in name
    )


_CODE: Final = 0
_DOCS: Final = 1
_TESTS: Final = 2
_DOC_SUFFIXES: Final = frozenset({".md", ".rst", ".txt", ".adoc"})


def _kind(path: str) -> int:
    """Sort key: code first, then documentation, then tests."""
    if _is_test(path):
        return _TESTS
    return _DOCS if PurePosixPath(path).suffix.lower() in _DOC_SUFFIXES else _CODE


def _files_to_read(workspace: Mapping[str, str], changed: Sequence[str]) -> list[str]:
    existing = [path for path in changed if path in workspace]
    tests = sorted(p for p in workspace if _is_test(p) and p not in existing)
    stems = {
        PurePosixPath(path).stem
        for path in changed
        if not _is_test(path) and len(PurePosixPath(path).stem) > 1
    }
    stems.discard("__init__")
    related = [
        test
        for test in tests
        if any(
            stem in PurePosixPath(test).name
            or re.search(rf"\b{re.escape(stem)}\b", workspace[test]) is not None
            for stem in stems
        )
    ]
    return (existing + (related or tests))[:_MAX_READS]


# --------------------------------------------------------------------------------------------
# The plan


def _check_path(path: str, what: str) -> None:
    pure = PurePosixPath(path)
    if not path or "\\" in path or pure.is_absolute() or ".." in pure.parts or str(pure) != path:
        raise ValueError(f"{what} path {path!r} is not a normalised relative POSIX path")


def _change_turn(
    change: _FileChange,
    *,
    content: str,
    first: bool,
    instruction: str,
    tests: Sequence[str],
    words: _Wording,
) -> PlannedTurn:
    """The turn that makes ``change``; ``content`` is the file's solution text."""
    path = _code(change.path)
    names = [_code(name) for name in change.names]
    sentences: list[str] = []
    if first:
        snippet = _snippet(instruction)
        if snippet:
            lead = words.pick("lead", ("The task asks: ", "The task is: ", "The request: "))
            sentences.append(f'{lead}"{snippet}".')
    if change.new:
        defines = f", defining {_join(names)}" if names else ""
        sentences.append(f"{path} does not exist yet, so I need to create it{defines}.")
        sentences.append(
            words.pick(
                "new",
                (
                    "Writing the whole file in one go is simplest.",
                    "I'll write the complete file at once.",
                    "A single write with the full content is the cleanest way to add it.",
                ),
            )
        )
    else:
        touched = [_code(name) for name in change.touched]
        created = _join([_code(name) for name in change.created])
        if touched and created:
            sentences.append(
                f"The code that needs to change is {_join(touched)} in {path}, "
                f"and {created} has to be added there."
            )
        elif touched:
            sentences.append(f"The code that needs to change is {_join(touched)} in {path}.")
        elif created:
            sentences.append(f"In {path} I need to add {created}.")
        elif _kind(change.path) == _DOCS:
            sentences.append(f"{path} should document the change as well.")
        else:
            sentences.append(f"The code that needs to change is in {path}.")
        if change.summary and _kind(change.path) != _DOCS:
            sentences.append(f"The fix is to {_join(list(change.summary))}.")
        if change.rewrite:
            sentences.append(
                f"That touches most of the file ({change.added} new lines replacing "
                f"{change.removed}), so rewriting it completely is cleaner than patching it."
            )
        else:
            count = (
                "a single targeted edit"
                if len(change.edits) == 1
                else f"{len(change.edits)} targeted edits"
            )
            sentences.append(
                words.pick(
                    "edits",
                    (
                        f"That needs {count}; the rest of the file stays as it is.",
                        f"I can do this with {count} and leave everything else alone.",
                        f"{count[0].upper()}{count[1:]} will do; nothing else has to move.",
                    ),
                )
            )
    if tests and not _is_test(change.path):
        sentences.append(
            f"{_join([_code(t) for t in tests[:2]])} should confirm the behaviour afterwards."
        )
    what = f" {_join(names)} in" if names and not change.new else ""
    if change.new:
        text = f"I'll create {path}."
    elif change.rewrite:
        text = f"I'll rewrite {path}."
    else:
        verb = words.pick("verb:" + change.path, ("fix", "update", "change"))
        if change.created and not change.touched:
            text = f"I'll add {_join(names)} to {path}."
        elif what:
            text = f"I'll {verb}{what} {path}."
        else:
            text = f"I'll {verb} {path}."
    uses: tuple[ToolUse, ...]
    if change.rewrite:
        uses = (ToolUse(name="write_file", input={"path": change.path, "content": content}),)
    else:
        uses = tuple(
            ToolUse(
                name="edit_file",
                input={"path": change.path, "old_text": old_text, "new_text": new_text},
            )
            for old_text, new_text in change.edits
        )
    return PlannedTurn(reasoning=" ".join(sentences[:6]), text=text, tool_uses=uses)


def _summary_turn(
    changes: Sequence[_FileChange], check_command: str, words: _Wording
) -> PlannedTurn:
    if not changes:
        return PlannedTurn(
            text="The project already does what the task asks, so no changes were needed. "
            + (f"`{check_command}` passes." if check_command.strip() else "")
        )
    groups: dict[str, list[str]] = {"created": [], "updated": [], "rewrote": []}
    for change in changes[:4]:
        names = f" ({_join([_code(n) for n in change.names[:3]])})" if change.names else ""
        verb = "created" if change.new else ("rewrote" if change.rewrite else "updated")
        groups[verb].append(f"{_code(change.path)}{names}")
    if len(changes) > 4:
        groups["updated"].append(_plural(len(changes) - 4, "other file"))
    parts = [f"{verb} {_join(files)}" for verb, files in groups.items() if files]
    sentences = [f"I {'; '.join(parts[:-1])}{' and ' if len(parts) > 1 else ''}{parts[-1]}."]
    fixes = [phrase for change in changes for phrase in change.summary]
    if fixes:
        sentences.append(f"The changes {_join(list(dict.fromkeys(fixes))[:3])}.")
    if check_command.strip():
        sentences.append(
            words.pick(
                "done",
                (
                    f"`{check_command}` passes now.",
                    f"The check (`{check_command}`) passes.",
                    f"Running `{check_command}` confirms the fix.",
                ),
            )
        )
    return PlannedTurn(text=" ".join(sentences))


def plan_trajectory(
    *,
    instruction: str,
    check_command: str,
    workspace: Mapping[str, str],
    solution: Mapping[str, str],
) -> tuple[PlannedTurn, ...]:
    """Plan a realistic model trajectory that solves a task.

    The plan explores (``list_files``), reads the files that matter (``read_file``, up to four
    in parallel per turn), changes one file per turn (``edit_file`` per hunk, or ``write_file``
    for new and heavily changed files), runs ``check_command`` and ends with a summary.

    :param instruction: the task's instruction (its hash varies the wording).
    :param check_command: the command that checks the solution; no ``run_command`` turn is
        planned when it is blank.
    :param workspace: the starting files, relative POSIX path to text.
    :param solution: the files that, laid over ``workspace``, solve the task.
    :returns: the turns; the last one is the final summary turn (no tool uses).
    :raises ValueError: if a path is not a normalised relative POSIX path.
    """
    for path in workspace:
        _check_path(path, "workspace")
    for path in solution:
        _check_path(path, "solution")
    words = _Wording(instruction)
    changed = sorted(
        (path for path, text in solution.items() if workspace.get(path) != text),
        key=lambda p: (_kind(p), p),
    )
    fresh: set[str] = set()
    for path in changed:
        fresh |= _fresh_names(workspace.get(path), solution[path])
    changes = [_analyse(path, workspace.get(path), solution[path], fresh) for path in changed]

    turns: list[PlannedTurn] = [
        PlannedTurn(
            text=words.pick(
                "explore",
                (
                    "I'll start by looking at the project layout.",
                    "Let me get an overview of the project first.",
                    "First, let me see which files the project has.",
                ),
            ),
            tool_uses=(ToolUse(name="list_files", input={"path": "."}),),
        )
    ]

    reads = _files_to_read(workspace, changed)
    for start in range(0, len(reads), _READS_PER_TURN):
        batch = reads[start : start + _READS_PER_TURN]
        if start == 0:
            text = words.pick(
                "read",
                (
                    f"Let me read {_join([_code(p) for p in batch])}.",
                    "Let me look at the relevant files.",
                    "I'll read the code involved and its tests.",
                ),
            )
        else:
            text = "And the remaining files."
        turns.append(
            PlannedTurn(
                text=text,
                tool_uses=tuple(ToolUse(name="read_file", input={"path": p}) for p in batch),
            )
        )

    tests = [path for path in reads if _is_test(path)]
    for index, change in enumerate(changes):
        stem = PurePosixPath(change.path).stem
        related = [
            test
            for test in tests
            if stem in PurePosixPath(test).name
            or re.search(rf"\b{re.escape(stem)}\b", workspace[test])
        ]
        turns.append(
            _change_turn(
                change,
                content=solution[change.path],
                first=index == 0,
                instruction=instruction,
                tests=related or tests,
                words=words,
            )
        )

    if check_command.strip():
        turns.append(
            PlannedTurn(
                text=words.pick(
                    "check",
                    (
                        "Let me run the tests.",
                        "Now let me run the check to verify the change.",
                        f"Let me verify with `{check_command}`.",
                    ),
                ),
                tool_uses=(ToolUse(name="run_command", input={"command": check_command}),),
            )
        )
    turns.append(_summary_turn(changes, check_command, words))
    return tuple(turns)
