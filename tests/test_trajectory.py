"""Tests of the simulator's trajectory planning and trajectory.toml loading."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_agentspeed.errors import TaskError
from pytest_agentspeed.simulator import trajectory
from pytest_agentspeed.simulator.trajectory import (
    TOOL_NAMES,
    PlannedTurn,
    ToolUse,
    closing_turn,
    load_trajectory,
    plan_trajectory,
)

CHECK = "python -m pytest -q"
EXAMPLE_SUITE = Path(__file__).resolve().parent.parent / "example_suite"


# --------------------------------------------------------------------------------------------
# A tiny interpreter of the agent's tools


def occurrences(text: str, needle: str) -> int:
    """Occurrences of needle in text, overlapping ones included."""
    return sum(1 for i in range(len(text)) if text.startswith(needle, i)) if needle else 0


def apply_plan(
    plan: tuple[PlannedTurn, ...], workspace: Mapping[str, str], check_command: str
) -> dict[str, str]:
    """Run the plan's tool uses on a copy of the workspace, with the tools' semantics."""
    files = dict(workspace)
    for turn in plan:
        for use in turn.tool_uses:
            assert use.name in TOOL_NAMES
            args = use.input
            if use.name == "list_files":
                assert args == {"path": "."}
            elif use.name == "read_file":
                assert args["path"] in files, f"reads a missing file {args['path']}"
            elif use.name == "write_file":
                assert set(args) == {"path", "content"}
                files[args["path"]] = args["content"]
            elif use.name == "edit_file":
                assert set(args) == {"path", "old_text", "new_text"}
                text = files[args["path"]]
                assert occurrences(text, args["old_text"]) == 1, args
                files[args["path"]] = text.replace(args["old_text"], args["new_text"], 1)
            else:
                assert args == {"command": check_command}
    return files


def check_shape(
    plan: tuple[PlannedTurn, ...], check_command: str, workspace: Mapping[str, str]
) -> None:
    assert len(plan) >= 3
    assert plan[0].tool_uses == (ToolUse(name="list_files", input={"path": "."}),)
    assert plan[0].text
    assert plan[-2].tool_uses == (ToolUse(name="run_command", input={"command": check_command}),)
    assert plan[-1].tool_uses == ()
    assert plan[-1].text
    assert all(turn.tool_uses for turn in plan[:-1])
    for turn in plan:
        names = {use.name for use in turn.tool_uses}
        if "read_file" in names:
            assert names == {"read_file"}
            assert len(turn.tool_uses) <= 4
        if names & {"write_file", "edit_file"}:
            # one file per change turn, with reasoning and a one-sentence text
            assert len({use.input["path"] for use in turn.tool_uses}) == 1
            assert 2 <= sentences(turn.reasoning) <= 6, turn.reasoning
            assert sentences(turn.text) == 1, turn.text
    assert 2 <= sentences(plan[-1].text) <= 4, plan[-1].text


def sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


def run(
    workspace: Mapping[str, str],
    solution: Mapping[str, str],
    instruction: str = "Fix the bug. The tests say what is expected.",
    check_command: str = CHECK,
) -> tuple[PlannedTurn, ...]:
    plan = plan_trajectory(
        instruction=instruction,
        check_command=check_command,
        workspace=workspace,
        solution=solution,
    )
    check_shape(plan, check_command, workspace)
    assert apply_plan(plan, workspace, check_command) == {**workspace, **solution}
    again = plan_trajectory(
        instruction=instruction,
        check_command=check_command,
        workspace=dict(workspace),
        solution=dict(solution),
    )
    assert again == plan
    assert repr(again) == repr(plan)
    return plan


def change_turns(plan: tuple[PlannedTurn, ...]) -> list[PlannedTurn]:
    return [t for t in plan if any(u.name in ("write_file", "edit_file") for u in t.tool_uses)]


# --------------------------------------------------------------------------------------------
# Fixtures

CALC = """\
def add(a, b):
    return a + b


def divide(a, b):
    return a * b


def negate(a):
    return -a
"""

CALC_FIXED = CALC.replace("    return a * b\n", "    return a / b\n")

TEST_CALC = """\
from calc import add, divide


def test_add():
    assert add(1, 2) == 3


def test_divide():
    assert divide(6, 3) == 2
"""

STACK = """\
class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def size(self):
        return len(self.items)

    def peek(self):
        return self.items[-1]

    def clear(self):
        self.items.clear()

    def is_empty(self):
        return len(self.items) == 0

    def pop(self):
        return self.items[0]
"""

STACK_FIXED = STACK.replace(
    "    def push(self, item):\n        self.items.append(item)\n",
    "    def push(self, item):\n        if item is None:\n"
    "            raise ValueError('None is not allowed')\n        self.items.append(item)\n",
).replace("        return self.items[0]\n", "        return self.items.pop()\n")

REPEATED = """\
def total(items):
    result = 0
    for item in items:
        result += item
    return result


def total_squares(items):
    result = 0
    for item in items:
        result += item
    return result


def count(items):
    return len(items)
"""

REPEATED_FIXED = REPEATED.replace(
    "def total_squares(items):\n    result = 0\n    for item in items:\n        result += item\n",
    "def total_squares(items):\n    result = 0\n    for item in items:\n"
    "        result += item * item\n",
)


def test_one_hunk_bug_fix() -> None:
    workspace = {"calc.py": CALC, "tests/test_calc.py": TEST_CALC, "README.md": "Calc.\n"}
    plan = run(workspace, {"calc.py": CALC_FIXED})
    assert plan[1].tool_uses == (
        ToolUse(name="read_file", input={"path": "calc.py"}),
        ToolUse(name="read_file", input={"path": "tests/test_calc.py"}),
    )
    (turn,) = change_turns(plan)
    assert turn.tool_uses == (
        ToolUse(
            name="edit_file",
            input={
                "path": "calc.py",
                "old_text": "    return a * b\n",
                "new_text": "    return a / b\n",
            },
        ),
    )
    assert "`calc.py`" in turn.reasoning
    assert "`divide`" in turn.reasoning
    assert "add" not in re.findall(r"`(\w+)`", turn.reasoning)
    assert "`divide`" in turn.text
    assert "`calc.py`" in plan[-1].text
    assert "`divide`" in plan[-1].text
    assert len(plan) == 5


def test_two_hunks_in_one_file_are_two_edits_in_one_turn() -> None:
    workspace = {"stack.py": STACK, "tests/test_stack.py": "from stack import Stack\n"}
    plan = run(workspace, {"stack.py": STACK_FIXED})
    (turn,) = change_turns(plan)
    assert [use.name for use in turn.tool_uses] == ["edit_file", "edit_file"]
    first, second = (use.input for use in turn.tool_uses)
    assert "raise ValueError" in first["new_text"]
    assert second["old_text"] == "        return self.items[0]\n"
    assert "`Stack.push`" in turn.reasoning
    assert "`Stack.pop`" in turn.reasoning


def test_change_in_two_files_is_one_turn_per_file() -> None:
    workspace = {
        "calc.py": CALC,
        "stack.py": STACK,
        "tests/test_calc.py": TEST_CALC,
        "tests/test_stack.py": "from stack import Stack\n",
        "tests/test_other.py": "def test_other():\n    pass\n",
    }
    plan = run(workspace, {"calc.py": CALC_FIXED, "stack.py": STACK_FIXED})
    turns = change_turns(plan)
    assert [{use.input["path"] for use in t.tool_uses} for t in turns] == [
        {"calc.py"},
        {"stack.py"},
    ]
    reads = [u.input["path"] for u in plan[1].tool_uses]
    assert reads == ["calc.py", "stack.py", "tests/test_calc.py", "tests/test_stack.py"]
    assert "`tests/test_calc.py`" in turns[0].reasoning
    assert "`tests/test_stack.py`" not in turns[0].reasoning
    assert "`tests/test_stack.py`" in turns[1].reasoning
    assert "`calc.py`" in plan[-1].text
    assert "`stack.py`" in plan[-1].text


def test_new_file_is_written_whole() -> None:
    helper = "def clamp(value, low, high):\n    return max(low, min(value, high))\n"
    workspace = {"calc.py": CALC, "tests/test_helpers.py": "from helpers import clamp\n"}
    plan = run(workspace, {"helpers.py": helper}, instruction="Add a clamp helper.")
    # nothing to read among the solution files, so the related test is read
    assert plan[1].tool_uses == (
        ToolUse(name="read_file", input={"path": "tests/test_helpers.py"}),
    )
    (turn,) = change_turns(plan)
    assert turn.tool_uses == (
        ToolUse(name="write_file", input={"path": "helpers.py", "content": helper}),
    )
    assert "`clamp`" in turn.reasoning
    assert "create" in turn.text


def test_heavy_rewrite_is_a_write_file() -> None:
    rewritten = "def add(a, b):\n    return sum((a, b))\n\n\nclass Calculator:\n    pass\n"
    plan = run({"calc.py": CALC}, {"calc.py": rewritten})
    (turn,) = change_turns(plan)
    assert turn.tool_uses == (
        ToolUse(name="write_file", input={"path": "calc.py", "content": rewritten}),
    )
    assert "rewrit" in turn.reasoning


def test_repeated_lines_get_context_until_unique() -> None:
    minimal = "        result += item\n"
    assert REPEATED.count(minimal) == 2  # the minimal hunk alone is ambiguous
    plan = run({"sums.py": REPEATED}, {"sums.py": REPEATED_FIXED})
    (turn,) = change_turns(plan)
    (use,) = turn.tool_uses
    assert use.name == "edit_file"
    old_text = use.input["old_text"]
    assert minimal in old_text
    assert "def total_squares(items):\n" in old_text
    assert occurrences(REPEATED, old_text) == 1
    assert old_text.endswith("\n")
    assert use.input["new_text"].replace("item * item", "item") == old_text
    assert "`total_squares`" in turn.reasoning


def test_edit_sees_earlier_edits_of_the_same_file() -> None:
    # After the first edit makes line 1 equal to line 5, the second hunk's text is no longer
    # unique at the moment it is applied, although it was unique in the original file.
    original = "x = 1\nmiddle_a\nmiddle_b\nmiddle_c\nx = 2\ny = 0\nfiller_1\nfiller_2\n"
    original += "".join(f"line_{i}\n" for i in range(12))
    solution = original.replace("x = 1\n", "x = 2\ny = 0\n", 1).replace(
        "x = 2\ny = 0\nfiller_1\n", "x = 2\ny = 1\nfiller_1\n"
    )
    assert original.count("y = 0\n") == 1
    plan = run({"mod.py": original}, {"mod.py": solution})
    first, second = (use.input for use in change_turns(plan)[0].tool_uses)
    assert first["old_text"] == "x = 1\n"
    assert second["old_text"] != "y = 0\n"  # unique before the first edit, not after it
    assert "y = 0\n" in second["old_text"]


def test_insertion_at_start_and_end_and_missing_final_newline() -> None:
    original = "".join(f"value_{i} = {i}\n" for i in range(10)) + "last = 10"
    solution = "import os\n" + original + "\nextra = 11\n"
    plan = run({"values.py": original}, {"values.py": solution})
    uses = change_turns(plan)[0].tool_uses
    assert [use.name for use in uses] == ["edit_file", "edit_file"]


def test_only_newlines_end_lines() -> None:
    # str.splitlines would also split at \f, \x1c or \u2028; edits must keep real lines whole.
    original = "a = 1\r\n\x0cb = 2\u2028c\r\n" + "".join(f"v{i} = {i}\r\n" for i in range(10))
    solution = original.replace("b = 2", "b = 3")
    plan = run({"m.py": original}, {"m.py": solution})
    (use,) = change_turns(plan)[0].tool_uses
    assert use.input["old_text"] == "\x0cb = 2\u2028c\r\n"


def test_unchanged_solution_files_are_skipped() -> None:
    plan = run({"calc.py": CALC, "b.py": "b = 1\n"}, {"calc.py": CALC_FIXED, "b.py": "b = 1\n"})
    assert [{u.input["path"] for u in t.tool_uses} for t in change_turns(plan)] == [{"calc.py"}]


def test_more_than_four_reads_split_into_two_turns() -> None:
    workspace = {f"pkg/mod{i}.py": f"def f{i}():\n    return {i}\n" for i in range(6)}
    workspace.update({f"tests/test_mod{i}.py": f"from pkg.mod{i} import f{i}\n" for i in range(6)})
    solution = {f"pkg/mod{i}.py": f"def f{i}():\n    return {i + 1}\n" for i in range(6)}
    plan = run(workspace, solution)
    assert [len(t.tool_uses) for t in plan[1:3]] == [4, 4]
    assert all(u.name == "read_file" for t in plan[1:3] for u in t.tool_uses)
    assert plan[3].tool_uses[0].name != "read_file"
    assert len(change_turns(plan)) == 6


def test_wording_varies_with_the_instruction_only() -> None:
    workspace, solution = {"calc.py": CALC}, {"calc.py": CALC_FIXED}
    texts = {
        run(workspace, solution, instruction=f"Fix task number {i}.")[0].text for i in range(30)
    }
    assert len(texts) > 1


_HASH_PLAN = """
import hashlib, json, sys
from dataclasses import asdict
from pytest_agentspeed.simulator.trajectory import plan_trajectory
workspace = {"b.py": "b = 1\\n", "a.py": "a = 1\\nb = 2\\n", "tests/test_a.py": "import a\\n"}
solution = {"a.py": "a = 2\\nb = 2\\n", "b.py": "b = 2\\n", "c.py": "def c():\\n    pass\\n"}
plan = plan_trajectory(instruction="x", check_command="t", workspace=workspace, solution=solution)
print(hashlib.sha256(json.dumps([asdict(t) for t in plan]).encode()).hexdigest())
"""


def test_plan_is_json_and_identical_across_processes() -> None:
    root = Path(__file__).resolve().parent.parent
    digests = {
        subprocess.run(
            [sys.executable, "-c", _HASH_PLAN],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1


def test_verification_falls_back_to_write_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trajectory, "_plan_edits", lambda old, new: [("not in file", "x")])
    plan = run({"calc.py": CALC}, {"calc.py": CALC_FIXED})
    (turn,) = change_turns(plan)
    assert turn.tool_uses == (
        ToolUse(name="write_file", input={"path": "calc.py", "content": CALC_FIXED}),
    )


def test_bad_paths_are_rejected() -> None:
    with pytest.raises(ValueError, match="relative POSIX"):
        plan_trajectory(
            instruction="x", check_command=CHECK, workspace={}, solution={"../x.py": "x\n"}
        )


LINES = st.sampled_from(
    ["a\n", "b\n", "a\n", "\n", "def f():\n", "    return 1\n", "    pass\n", "class C:\n", "x"]
)


@settings(max_examples=300, database=None, deadline=None, derandomize=True)
@given(
    original=st.lists(LINES, max_size=25),
    solution=st.lists(LINES, max_size=25),
    new_file=st.booleans(),
)
def test_any_change_is_reproduced_exactly(
    original: list[str], solution: list[str], new_file: bool
) -> None:
    workspace = {} if new_file else {"f.py": "".join(original)}
    run(workspace, {"f.py": "".join(solution)})


@settings(max_examples=200, database=None, deadline=None, derandomize=True)
@given(
    original=st.lists(LINES, min_size=20, max_size=40),
    changes=st.lists(
        st.tuples(st.integers(0, 39), st.lists(LINES, max_size=1), st.integers(0, 1)),
        max_size=2,
    ),
)
def test_small_changes_are_edits_that_reproduce_the_solution(
    original: list[str], changes: list[tuple[int, list[str], int]]
) -> None:
    lines = [line if line.endswith("\n") else line + "\n" for line in original]
    new = list(lines)
    for at, inserted, deleted in changes:
        at = min(at, len(new))
        new[at : at + deleted] = [line if line.endswith("\n") else line + "\n" for line in inserted]
    plan = run({"f.py": "".join(lines)}, {"f.py": "".join(new)})
    names = [use.name for turn in change_turns(plan) for use in turn.tool_uses]
    if any(line.strip() for line in lines):
        assert "write_file" not in names  # a few changed lines never need a rewrite


# --------------------------------------------------------------------------------------------
# The example suite


def _read_tree(root: Path) -> dict[str, str]:
    skipped = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file() and not skipped & set(path.relative_to(root).parts)
    }


def _task_settings(task: Path) -> tuple[str, str]:
    """The task's instruction and check command (defaults when agenttask.toml lacks them)."""
    try:
        document = tomllib.loads((task / "agenttask.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        document = {}
    instruction = document.get("instruction")
    check = document.get("check")
    command = check.get("command") if isinstance(check, dict) else None
    return (
        instruction if isinstance(instruction, str) else task.name,
        command if isinstance(command, str) else CHECK,
    )


def _example_tasks() -> list[object]:
    tasks = sorted(
        task
        for task in EXAMPLE_SUITE.glob("*/")
        if (task / "workspace").is_dir() and (task / "solution").is_dir()
    )
    if not tasks:
        return [
            pytest.param(None, marks=pytest.mark.skip(reason="no example tasks with solutions"))
        ]
    return [pytest.param(task, id=task.name) for task in tasks]


@pytest.mark.parametrize("task", _example_tasks())
def test_example_suite_task(task: Path) -> None:
    workspace = _read_tree(task / "workspace")
    solution = _read_tree(task / "solution")
    assert solution, f"{task} has an empty solution/"
    instruction, check_command = _task_settings(task)
    run(workspace, solution, instruction=instruction, check_command=check_command)


# --------------------------------------------------------------------------------------------
# closing_turn


def test_closing_turns() -> None:
    done = closing_turn(check_passed=True)
    failed = closing_turn(check_passed=False)
    unknown = closing_turn(check_passed=None)
    for turn in (done, failed, unknown):
        assert turn.tool_uses == ()
        assert turn.text
    assert "pass" in done.text
    assert "still fails" in failed.text
    assert "fail" not in unknown.text
    assert "pass" not in unknown.text
    assert len({done.text, failed.text, unknown.text}) == 3


# --------------------------------------------------------------------------------------------
# trajectory.toml

VALID = """\
[[turn]]
text = "Let me look around."
[[turn.tool]]
name = "list_files"
input = { path = "." }

[[turn]]
reasoning = "The bug is in app.py."
[[turn.tool]]
name = "read_file"
input = { path = "app.py" }
[[turn.tool]]
name = "read_file"
input = { path = "tests/test_app.py" }

[[turn]]
text = "Fixing it."
[[turn.tool]]
name = "edit_file"
input = { path = "app.py", old_text = "a * b\\n", new_text = "a / b\\n" }
[[turn.tool]]
name = "write_file"
input = { path = "notes.txt", content = "" }

[[turn]]
[[turn.tool]]
name = "run_command"
input = { command = "pytest -q", timeout_s = 30 }
"""


def test_load_valid_trajectory(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.toml"
    path.write_text(VALID, encoding="utf-8")
    assert load_trajectory(path) == (
        PlannedTurn(
            text="Let me look around.",
            tool_uses=(ToolUse(name="list_files", input={"path": "."}),),
        ),
        PlannedTurn(
            reasoning="The bug is in app.py.",
            tool_uses=(
                ToolUse(name="read_file", input={"path": "app.py"}),
                ToolUse(name="read_file", input={"path": "tests/test_app.py"}),
            ),
        ),
        PlannedTurn(
            text="Fixing it.",
            tool_uses=(
                ToolUse(
                    name="edit_file",
                    input={"path": "app.py", "old_text": "a * b\n", "new_text": "a / b\n"},
                ),
                ToolUse(name="write_file", input={"path": "notes.txt", "content": ""}),
            ),
        ),
        PlannedTurn(
            tool_uses=(
                ToolUse(name="run_command", input={"command": "pytest -q", "timeout_s": 30}),
            )
        ),
        closing_turn(check_passed=None),
    )


def test_final_turn_without_tools_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.toml"
    path.write_text(
        '[[turn]]\ntext = "Hi"\n[[turn.tool]]\nname = "list_files"\n\n'
        '[[turn]]\nreasoning = "done"\ntext = "All done."\n',
        encoding="utf-8",
    )
    assert load_trajectory(path) == (
        PlannedTurn(text="Hi", tool_uses=(ToolUse(name="list_files", input={}),)),
        PlannedTurn(reasoning="done", text="All done."),
    )


READ = '[[turn.tool]]\nname = "read_file"\ninput = { path = "a.py" }\n'

BAD = [
    pytest.param("turn = [", None, "not valid TOML", id="bad-toml"),
    pytest.param("", "turn", "at least one", id="no-turns"),
    pytest.param("turn = []", "turn", "at least one", id="empty-turns"),
    pytest.param("turn = 3", "turn", "array of tables", id="turn-not-array"),
    pytest.param('title = "x"\n[[turn]]\ntext = "a"\n', "title", "unknown key", id="top-key"),
    pytest.param(
        '[[turn]]\ntext = "a"\nmood = "x"\n', "turn[0].mood", "unknown key", id="turn-key"
    ),
    pytest.param("[[turn]]\ntext = 3\n", "turn[0].text", "must be a string", id="text-type"),
    pytest.param(
        "[[turn]]\nreasoning = true\n", "turn[0].reasoning", "must be a string", id="reasoning-type"
    ),
    pytest.param('[[turn]]\ntext = "a"\n[[turn]]\n', "turn[1]", "needs text", id="empty-turn"),
    pytest.param(
        '[[turn]]\ntool = { name = "read_file" }\n',
        "turn[0].tool",
        "array of tables",
        id="tool-type",
    ),
    pytest.param(
        '[[turn]]\n[[turn.tool]]\nname = "rm_rf"\n',
        "turn[0].tool[0].name",
        "unknown tool",
        id="tool",
    ),
    pytest.param(
        "[[turn]]\n[[turn.tool]]\nname = 1\n", "turn[0].tool[0].name", "string", id="name"
    ),
    pytest.param("[[turn]]\n[[turn.tool]]\n", "turn[0].tool[0].name", "required", id="no-name"),
    pytest.param(
        '[[turn]]\n[[turn.tool]]\nname = "list_files"\nargs = {}\n',
        "turn[0].tool[0].args",
        "unknown key",
        id="tool-key",
    ),
    pytest.param(
        '[[turn]]\n[[turn.tool]]\nname = "list_files"\ninput = "."\n',
        "turn[0].tool[0].input",
        "must be a table",
        id="input-type",
    ),
    pytest.param(
        f'[[turn]]\ntext = "a"\n[[turn]]\ntext = "b"\n[[turn]]\n{READ}'
        '[[turn.tool]]\nname = "read_file"\ninput = { file = "a.py" }\n',
        "turn[2].tool[1].input.file",
        "unknown key",
        id="input-key",
    ),
    pytest.param(
        f'[[turn]]\ntext = "a"\n[[turn]]\ntext = "b"\n[[turn]]\n{READ}'
        '[[turn.tool]]\nname = "read_file"\ninput = {}\n',
        "turn[2].tool[1].input.path",
        "is required for read_file",
        id="missing-path",
    ),
    pytest.param(
        '[[turn]]\n[[turn.tool]]\nname = "edit_file"\ninput = { path = "a", old_text = "x" }\n',
        "turn[0].tool[0].input.new_text",
        "is required for edit_file",
        id="missing-new-text",
    ),
    pytest.param(
        '[[turn]]\n[[turn.tool]]\nname = "write_file"\ninput = { path = "a", content = 1 }\n',
        "turn[0].tool[0].input.content",
        "must be a string",
        id="content-type",
    ),
    pytest.param(
        '[[turn]]\n[[turn.tool]]\nname = "run_command"\ninput = { command = "" }\n',
        "turn[0].tool[0].input.command",
        "must not be empty",
        id="empty-command",
    ),
    pytest.param(
        '[[turn]]\n[[turn.tool]]\nname = "run_command"\n'
        'input = { command = "pytest", timeout_s = true }\n',
        "turn[0].tool[0].input.timeout_s",
        "positive number",
        id="timeout-type",
    ),
    pytest.param(
        '[[turn]]\n[[turn.tool]]\nname = "run_command"\n'
        'input = { command = "pytest", timeout_s = -1 }\n',
        "turn[0].tool[0].input.timeout_s",
        "positive number",
        id="timeout-negative",
    ),
]


@pytest.mark.parametrize(("content", "key", "message"), BAD)
def test_invalid_trajectory(tmp_path: Path, content: str, key: str | None, message: str) -> None:
    path = tmp_path / "trajectory.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskError) as caught:
        load_trajectory(path)
    assert caught.value.path == path
    assert caught.value.key == key
    assert message in caught.value.message
    assert str(path) in str(caught.value)
    if key is not None:
        assert f"'{key}'" in str(caught.value)


def test_invalid_toml_message(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.toml"
    path.write_text("[[turn]\n", encoding="utf-8")
    with pytest.raises(TaskError, match=r"trajectory\.toml: not valid TOML: .+") as caught:
        load_trajectory(path)
    assert caught.value.key is None


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.toml"
    path.write_bytes(b'[[turn]]\ntext = "\xff"\n')
    with pytest.raises(TaskError, match="not valid TOML") as caught:
        load_trajectory(path)
    assert (caught.value.path, caught.value.key) == (path, None)
    missing = tmp_path / "missing.toml"
    with pytest.raises(TaskError, match="cannot be read") as caught:
        load_trajectory(missing)
    assert (caught.value.path, caught.value.key) == (missing, None)
