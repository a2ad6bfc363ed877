"""The simulated model speaks the agent's own tools, and answers side requests on the side.

Pure tests of the mapping (exact tool inputs for a small plan, per tool shape; the shell edits
and writes run for real in bash), of side-request answers, of finding the instruction anywhere
in a conversation and of reading the check's result back; then the real simulator over HTTP
with Claude-Code-shaped and mini-swe-agent-shaped request bodies through the official SDKs,
streamed and not.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from pytest_agentspeed.simulator import MountConfig, ServerConfig
from pytest_agentspeed.simulator.agent_tools import (
    BUILTIN,
    EXIT_MARKER,
    Toolset,
    offered_tools,
    speak,
    toolset_for,
    workspace_from_text,
)
from pytest_agentspeed.simulator.cache import request_blocks
from pytest_agentspeed.simulator.library import Script, TaskLibrary, choose_turn
from pytest_agentspeed.simulator.process import SimulatorProcess
from pytest_agentspeed.simulator.side_requests import side_reason, side_turn, title_of
from pytest_agentspeed.tasks import load_task
from pytest_agentspeed.trajectory_file import PlannedTurn, ToolUse, closing_turn

SUITE = Path(__file__).resolve().parent.parent / "example_suite"
TASK = "fix-pagination-off-by-one"
CHECK = "python -m pytest -q"
LIST = "find . -type f -not -path '*/.git/*' -not -path '*/__pycache__/*' | sort"
FINISH = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"

#: A small plan in the built-in vocabulary: list, read, change (an edit of a file read, an edit
#: and a write of files not read, a new file), run the check, summarize.
PLAN = (
    PlannedTurn(text="Overview.", tool_uses=(ToolUse(name="list_files", input={"path": "."}),)),
    PlannedTurn(text="Read.", tool_uses=(ToolUse(name="read_file", input={"path": "a.py"}),)),
    PlannedTurn(
        reasoning="Change them.",
        tool_uses=(
            ToolUse(
                name="edit_file",
                input={"path": "a.py", "old_text": "x = 1\n", "new_text": "x = 2\n"},
            ),
            ToolUse(name="edit_file", input={"path": "b.py", "old_text": "y", "new_text": "z"}),
            ToolUse(name="write_file", input={"path": "c.py", "content": "old\n"}),
            ToolUse(name="write_file", input={"path": "pkg/new.py", "content": "N = 1\n"}),
        ),
    ),
    PlannedTurn(text="Check.", tool_uses=(ToolUse(name="run_command", input={"command": CHECK}),)),
    PlannedTurn(text="Done."),
)
EXISTING = frozenset({"a.py", "b.py", "c.py"})

EDIT_B = (
    "python3 - <<'AGENTSPEED_EOF'\n"
    "import pathlib, sys\n"
    'path = pathlib.Path("b.py")\n'
    'old, new = "y", "z"\n'
    "text = path.read_text()\n"
    "if text.count(old) != 1:\n"
    '    sys.exit(f"{path}: the old text occurs {text.count(old)} times, not once")\n'
    "path.write_text(text.replace(old, new, 1))\n"
    "AGENTSPEED_EOF"
)
WRITE_C = "cat > c.py <<'AGENTSPEED_EOF'\nold\nAGENTSPEED_EOF"


def spoken(toolset: Toolset) -> list[list[tuple[str, dict[str, Any]]]]:
    """Every turn of PLAN in ``toolset``, as (tool name, input) per call."""
    return [
        [
            (u.name, dict(u.input))
            for u in speak(t, toolset, before=PLAN[:i], existing=EXISTING).tool_uses
        ]
        for i, t in enumerate(PLAN)
    ]


def test_the_builtin_tools_are_left_as_planned() -> None:
    for i, turn in enumerate(PLAN):
        assert speak(turn, BUILTIN, before=PLAN[:i], existing=EXISTING) is turn


def test_claude_code_reads_before_it_edits_and_falls_back_to_bash_otherwise() -> None:
    toolset = Toolset(kind="claude-code", shell="Bash", field="command", workspace="/ws")
    assert spoken(toolset) == [
        [("Bash", {"command": LIST, "description": "List the project's files"})],
        [("Read", {"file_path": "/ws/a.py"})],
        [
            ("Edit", {"file_path": "/ws/a.py", "old_string": "x = 1\n", "new_string": "x = 2\n"}),
            # b.py and c.py exist and were never read: Claude Code would refuse Edit and Write.
            ("Bash", {"command": EDIT_B, "description": "Edit b.py"}),
            ("Bash", {"command": WRITE_C, "description": "Write c.py"}),
            ("Write", {"file_path": "/ws/pkg/new.py", "content": "N = 1\n"}),
        ],
        [("Bash", {"command": CHECK + EXIT_MARKER, "description": "Run python -m pytest"})],
        [],
    ]
    # Reasoning and text are kept as planned.
    turn = speak(PLAN[2], toolset, before=PLAN[:2], existing=EXISTING)
    assert (turn.reasoning, turn.text) == ("Change them.", "")


def test_claude_code_without_a_known_workspace_works_through_bash() -> None:
    toolset = Toolset(kind="claude-code", shell="Bash", field="command", workspace=None)
    names = [[name for name, _ in turn] for turn in spoken(toolset)]
    assert names == [["Bash"], ["Bash"], ["Bash"] * 4, ["Bash"], []]


def test_a_changed_file_must_be_read_again_before_claude_code_edits_it() -> None:
    toolset = Toolset(kind="claude-code", shell="Bash", field="command", workspace="/ws")
    plan = (
        PlannedTurn(tool_uses=(ToolUse(name="read_file", input={"path": "./a.py"}),)),
        PlannedTurn(
            tool_uses=(ToolUse(name="write_file", input={"path": "a.py", "content": "v"}),)
        ),
        PlannedTurn(
            tool_uses=(
                ToolUse(name="edit_file", input={"path": "a.py", "old_text": "v", "new_text": "w"}),
            )
        ),
    )
    # Read, then Write (known), then Edit: Claude Code's own Write keeps the file known.
    assert [
        speak(t, toolset, before=plan[:i], existing={"a.py"}).tool_uses[0].name
        for i, t in enumerate(plan)
    ] == ["Read", "Write", "Edit"]
    # A read in the same reply as the edit does not count: they may run in either order.
    same = PlannedTurn(
        tool_uses=(
            ToolUse(name="read_file", input={"path": "a.py"}),
            ToolUse(name="edit_file", input={"path": "a.py", "old_text": "v", "new_text": "w"}),
        )
    )
    assert [u.name for u in speak(same, toolset, existing={"a.py"}).tool_uses] == ["Read", "Bash"]


def test_codex_is_spoken_to_through_its_exec_command_tool() -> None:
    # A request body Codex CLI 0.171.0 sent: exec_command {cmd} among eight named tools, a
    # web_search tool without a name, and a namespace of sub-agent tools.
    body = json.loads((Path(__file__).parent / "data" / "codex_request.json").read_text())
    tools = offered_tools(body, "responses")
    assert tools is not None
    assert "exec_command" in tools
    assert len(tools) == 8
    toolset = toolset_for(tools, instructions="", workspace="/w")
    assert (toolset.kind, toolset.shell, toolset.field) == ("shell", "exec_command", "cmd")


def test_codex_gets_its_patches_for_whole_lines_and_new_files() -> None:
    # Codex's own instructions teach apply_patch (read from a shell command, applied by Codex).
    body = json.loads((Path(__file__).parent / "data" / "codex_request.json").read_text())
    instructions = body["input"][0]["content"][0]["text"]
    tools = offered_tools(body, "responses")
    assert tools is not None
    toolset = toolset_for(tools, instructions=instructions, workspace=None)
    assert toolset.patch
    assert not toolset_for(tools, instructions="apply_patch", workspace=None).patch
    changed = spoken(toolset)[2]
    assert changed == [
        (
            "exec_command",
            {
                "cmd": "apply_patch <<'AGENTSPEED_EOF'\n*** Begin Patch\n*** Update File: a.py\n"
                "@@\n-x = 1\n+x = 2\n*** End Patch\nAGENTSPEED_EOF"
            },
        ),
        # Part of a line, and a file that exists: the plain-shell edit and write.
        ("exec_command", {"cmd": EDIT_B}),
        ("exec_command", {"cmd": WRITE_C}),
        (
            "exec_command",
            {
                "cmd": "apply_patch <<'AGENTSPEED_EOF'\n*** Begin Patch\n"
                "*** Add File: pkg/new.py\n+N = 1\n*** End Patch\nAGENTSPEED_EOF"
            },
        ),
    ]


def test_one_replys_changes_of_one_file_are_one_command() -> None:
    """Codex runs a reply's calls at once: two commands changing one file would race, so each
    file's changes go as one command (one patch of several hunks, in the planned order)."""
    edits = [
        ToolUse(name="edit_file", input={"path": "m.py", "old_text": "a\n", "new_text": "A\n"}),
        ToolUse(name="read_file", input={"path": "n.py"}),
        ToolUse(name="edit_file", input={"path": "m.py", "old_text": "c\n", "new_text": ""}),
    ]
    turn = PlannedTurn(tool_uses=tuple(edits))
    patched = speak(turn, Toolset(kind="shell", shell="exec_command", field="cmd", patch=True))
    assert [dict(u.input) for u in patched.tool_uses] == [
        {
            "cmd": "apply_patch <<'AGENTSPEED_EOF'\n*** Begin Patch\n*** Update File: m.py\n"
            "@@\n-a\n+A\n@@\n-c\n*** End Patch\nAGENTSPEED_EOF"
        },
        {"cmd": "cat n.py"},
    ]
    plain = speak(turn, Toolset(kind="shell", shell="sh", field="cmd"))
    first, second = plain.tool_uses
    assert first.input["cmd"].count("python3 - <<'AGENTSPEED_EOF'") == 2
    assert second.input == {"cmd": "cat n.py"}


def test_a_generic_shell_tool_gets_plain_shell() -> None:
    toolset = Toolset(kind="shell", shell="shell", field="cmd")
    assert spoken(toolset) == [
        [("shell", {"cmd": LIST})],
        [("shell", {"cmd": "cat a.py"})],
        [
            (
                "shell",
                {
                    "cmd": EDIT_B.replace("b.py", "a.py").replace(
                        '"y", "z"', '"x = 1\\n", "x = 2\\n"'
                    )
                },
            ),
            ("shell", {"cmd": EDIT_B}),
            ("shell", {"cmd": WRITE_C}),
            (
                "shell",
                {
                    "cmd": "mkdir -p pkg && cat > pkg/new.py"
                    " <<'AGENTSPEED_EOF'\nN = 1\nAGENTSPEED_EOF"
                },
            ),
        ],
        [("shell", {"cmd": CHECK + EXIT_MARKER})],
        [],
    ]


def test_mini_swe_agent_finishes_with_its_submit_command() -> None:
    toolset = Toolset(kind="shell", shell="bash", field="command", finish=FINISH)
    turns = spoken(toolset)
    assert turns[0] == [("bash", {"command": LIST})]
    assert turns[-1] == [("bash", {"command": FINISH})]
    # An unknown task's reply too: a reply without a tool call is a format error to mini.
    library = TaskLibrary()
    assert [u.input for u in choose_turn(None, [], toolset).tool_uses] == [{"command": FINISH}]
    assert len(library) == 0


def test_shell_edits_and_writes_do_what_the_plan_says(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('s = "$HOME `x` \\\\ AGENTSPEED_EOF"\nx = 1\n')
    toolset = Toolset(kind="shell", shell="sh", field="cmd")
    plan = PlannedTurn(
        tool_uses=(
            ToolUse(
                name="edit_file",
                input={
                    "path": "a.py",
                    "old_text": 's = "$HOME `x` \\\\ AGENTSPEED_EOF"\n',
                    "new_text": "s = 'é'\n",
                },
            ),
            ToolUse(name="write_file", input={"path": "d/n.txt", "content": "no newline at end"}),
            ToolUse(name="write_file", input={"path": "e.txt", "content": "AGENTSPEED_EOF\n"}),
            ToolUse(
                name="edit_file", input={"path": "e.txt", "old_text": "missing", "new_text": "z"}
            ),
        )
    )
    codes = []
    for use in speak(plan, toolset).tool_uses:
        done = subprocess.run(
            ["bash", "-c", use.input["cmd"]], cwd=tmp_path, capture_output=True, text=True
        )
        codes.append(done.returncode)
    # e.txt's write and its edit are one command (the edit fails: its status is the last).
    assert codes == [0, 0, 1]
    assert (tmp_path / "a.py").read_text() == "s = 'é'\nx = 1\n"
    assert (tmp_path / "d/n.txt").read_text() == "no newline at end"
    assert (tmp_path / "e.txt").read_text() == "AGENTSPEED_EOF\n"


CLAUDE_TOOLS = [
    {"name": n, "description": "d", "input_schema": {"type": "object", "properties": {}}}
    for n in ("Agent", "Bash", "Edit", "Read", "Write", "WebFetch")
]
BASH_TOOL = {
    "type": "function",
    "function": {
        "name": "bash",
        "description": "Execute a bash command",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The bash command"}},
            "required": ["command"],
        },
    },
}
EXEC_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "write_stdin",
            "parameters": {
                "type": "object",
                "properties": {"session": {"type": "integer"}},
                "required": ["session"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "exec_command",
            "parameters": {
                "type": "object",
                "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
                "required": ["cmd"],
            },
        },
    },
]


def test_the_toolset_is_read_from_the_tools_offered() -> None:
    assert offered_tools({}, "anthropic") is None
    assert toolset_for(None, instructions="", workspace=None) == BUILTIN
    builtin = offered_tools({"tools": [{"name": "read_file", "input_schema": {}}]}, "anthropic")
    assert toolset_for(builtin, instructions="", workspace=None) == BUILTIN
    claude = offered_tools({"tools": CLAUDE_TOOLS}, "anthropic")
    assert toolset_for(claude, instructions="", workspace="/w") == Toolset(
        kind="claude-code", shell="Bash", field="command", workspace="/w"
    )
    mini = offered_tools({"tools": [BASH_TOOL]}, "openai")
    assert toolset_for(mini, instructions=f"finish with `{FINISH}`", workspace=None) == Toolset(
        kind="shell", shell="bash", field="command", finish=FINISH
    )
    assert toolset_for(mini, instructions="", workspace=None).finish is None
    codex = offered_tools({"tools": EXEC_TOOLS}, "openai")
    assert toolset_for(codex, instructions="", workspace=None) == Toolset(
        kind="shell", shell="exec_command", field="cmd"
    )
    # No tool this model can use: the planned calls stay, and the agent reports them unknown.
    odd = offered_tools(
        {"tools": [{"name": "lookup", "input_schema": {"type": "object"}}]}, "anthropic"
    )
    assert toolset_for(odd, instructions="", workspace=None) == BUILTIN


def test_the_workspace_is_read_from_the_agents_prompt() -> None:
    reminder = (
        "<system-reminder>\n - Primary working directory: /tmp/ws 1\n - Is a git repository: false"
    )
    assert workspace_from_text(reminder) == "/tmp/ws 1"
    assert workspace_from_text("<env>\nWorking directory: /srv/w</env>") == "/srv/w"
    assert workspace_from_text("no directory here") is None


TITLE_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}},
    "required": ["title"],
    "additionalProperties": False,
}


def test_side_requests_are_recognised_and_answered_briefly() -> None:
    titled = {
        "tools": [],
        "output_config": {"format": {"type": "json_schema", "schema": TITLE_SCHEMA}},
    }
    assert side_reason(titled, "anthropic") == "structured-output"
    assert side_reason({"tools": []}, "anthropic") == "no-tools"
    assert side_reason({}, "anthropic") is None
    assert (
        side_reason({"tools": CLAUDE_TOOLS, "output_config": {"effort": "high"}}, "anthropic")
        is None
    )
    title = title_of(TASK)
    assert title == "Fix pagination off by one"
    assert side_turn(titled, "anthropic", title) == PlannedTurn(
        text='{"title": "Fix pagination off by one"}'
    )
    assert side_turn({"tools": []}, "anthropic", title) == PlannedTurn(
        text="Fix pagination off by one."
    )
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 3},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1},
            "ok": {"type": ["boolean", "null"]},
        },
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    answer = side_turn({"response_format": response_format}, "openai", title)
    assert json.loads(answer.text) == {"n": 3, "tags": ["a"], "ok": False}
    assert (
        side_turn({"response_format": {"type": "json_object"}}, "openai", "T").text
        == '{"title": "T"}'
    )
    assert side_reason({"response_format": {"type": "text"}}, "openai") is None


@pytest.fixture(scope="module")
def library() -> TaskLibrary:
    lib = TaskLibrary()
    assert lib.add_dirs([SUITE]) == []
    return lib


@pytest.fixture(scope="module")
def instruction() -> str:
    return load_task(SUITE / TASK / "agenttask.toml").instruction


def test_the_instruction_is_found_wherever_the_conversation_has_it(
    library: TaskLibrary, instruction: str
) -> None:
    reminders = "<system-reminder>\nPrimary working directory: /w\n</system-reminder>"
    wrapped = f"Please solve this issue: {instruction}\n\nYou can execute bash commands."
    rewrapped = "\n  ".join(instruction.split(" "))
    for text in (reminders + instruction, wrapped, f"first\n{rewrapped}"):
        script = library.match(text)
        assert script is not None
        assert script.task_id == TASK
    assert library.match(instruction[:-20]) is None


def _script(library: TaskLibrary, instruction: str) -> Script:
    script = library.match(instruction)
    assert script is not None
    return script


def _check_conversation(
    instruction: str, script: Script, name: str, tool_input: dict[str, Any], result: str
) -> list[dict[str, Any]]:
    """A conversation in which every planned turn up to the check was played, the check's
    call as ``name`` with ``tool_input``, answered with ``result``."""
    check_turn = next(
        i for i, t in enumerate(script.turns) if any(u.name == "run_command" for u in t.tool_uses)
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": instruction}]
    for i in range(check_turn):
        messages += [
            {"role": "assistant", "content": f"step {i}"},
            {"role": "user", "content": "ok"},
        ]
    messages += [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "c1", "name": name, "input": tool_input}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "c1", "content": result}],
        },
    ]
    return messages


@pytest.mark.parametrize(
    ("shape", "passed"),
    [
        ("claude-pass", True),
        ("claude-fail", False),
        ("mini-pass", True),
        ("mini-fail", False),
        ("builtin-pass", True),
        ("builtin-fail", False),
    ],
)
def test_the_checks_result_is_read_back_in_each_tool_shape(
    library: TaskLibrary, instruction: str, shape: str, passed: bool
) -> None:
    script = _script(library, instruction)
    marked = script.check_command + EXIT_MARKER
    code = 0 if passed else 1
    name, tool_input, result, toolset = {
        "claude": (
            "Bash",
            {"command": marked, "description": "Run"},
            f"19 passed\nexit code: {code}",
            Toolset(kind="claude-code", shell="Bash", field="command", workspace="/w"),
        ),
        "mini": (
            "bash",
            {"command": marked},
            json.dumps({"returncode": 0, "output": f"1 failed\nexit code: {code}\n"}, indent=2),
            Toolset(kind="shell", shell="bash", field="command", finish=FINISH),
        ),
        "builtin": (
            "run_command",
            {"command": script.check_command},
            f"exit code: {code}\n1 passed",
            BUILTIN,
        ),
    }[shape.split("-")[0]]
    messages = _check_conversation(instruction, script, name, tool_input, result)
    final = choose_turn(script, messages, toolset)
    planned_final = script.turns[-1]
    if passed:
        assert final.text == planned_final.text
    else:
        assert final.text == closing_turn(check_passed=False).text
    expected_calls = [{"command": FINISH}] if toolset.finish else []
    assert [dict(u.input) for u in final.tool_uses] == expected_calls


def test_side_requests_and_retries_keep_the_trajectorys_place(
    library: TaskLibrary, instruction: str
) -> None:
    script = _script(library, instruction)
    toolset = Toolset(kind="shell", shell="bash", field="command", finish=FINISH)
    start = [{"role": "user", "content": f"Please solve this issue: {instruction}"}]
    first = choose_turn(script, start, toolset)
    played = [
        *start,
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "a",
                    "name": "bash",
                    "input": dict(first.tool_uses[0].input),
                }
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "a", "content": "./x.py"}],
        },
    ]
    second = choose_turn(script, played, toolset)
    assert second != first
    # mini-swe-agent drops a reply it could not parse and sends its error as a user message:
    # the same step is asked for again, and given again.
    retry = [*played, {"role": "user", "content": "Tool call error: ..."}]
    assert choose_turn(script, retry, toolset) == second


# ------------------------------------------------------------------------------------------
# Over HTTP, through the official SDKs


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    process = SimulatorProcess(
        ServerConfig(
            mounts=(MountConfig(key="fast", profile="ultraspeed", time_scale=0.01, jitter=False),),
            task_dirs=(str(SUITE),),
        )
    )
    process.start()
    yield process
    process.stop()


def claude_body(instruction: str, turn: int, script: Script) -> dict[str, Any]:
    """A request as Claude Code 2.1 sends it after ``turn`` replies (every planned turn played
    with the tools the simulator gave; results are short)."""
    content = [
        {
            "type": "text",
            "text": "<system-reminder>\nKeep the skills in mind.\n</system-reminder>",
        },
        {"type": "text", "text": instruction, "cache_control": {"type": "ephemeral"}},
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": content},
        {
            "role": "system",
            "content": "# Environment\n - Primary working directory: /work/ws\n - Platform: linux",
        },
    ]
    toolset = Toolset(kind="claude-code", shell="Bash", field="command", workspace="/work/ws")
    for i in range(turn):
        spoken_turn = speak(
            script.turns[i], toolset, before=script.turns[:i], existing=script.files
        )
        uses = [
            {"type": "tool_use", "id": f"t{i}_{k}", "name": u.name, "input": dict(u.input)}
            for k, u in enumerate(spoken_turn.tool_uses)
        ]
        messages.append({"role": "assistant", "content": [{"type": "text", "text": "ok"}, *uses]})
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": u["id"], "content": "done"} for u in uses
                ],
            }
        )
    return {
        "model": "claude-opus-4-7",
        # Claude Code asks for 64000, which the SDK refuses to wait for unstreamed.
        "max_tokens": 16000,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": messages,
        "tools": CLAUDE_TOOLS,
        "metadata": {"user_id": json.dumps({"session_id": "s-claude"})},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }


def _sdk_message(client: anthropic.Anthropic, body: dict[str, Any], stream: bool) -> Any:
    known = {k: v for k, v in body.items() if k not in ("output_config", "context_management")}
    extra = {k: body[k] for k in ("output_config", "context_management") if k in body}
    if stream:
        with client.messages.stream(**known, extra_body=extra) as events:
            return events.get_final_message()
    return client.messages.create(**known, extra_body=extra)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_claude_code_shaped_requests_get_claude_codes_tools(
    sim: SimulatorProcess, library: TaskLibrary, instruction: str, stream: bool
) -> None:
    script = _script(library, instruction)
    plan_edit = script.turns[2].tool_uses[0].input
    expected = [
        [("Bash", {"command": LIST, "description": "List the project's files"})],
        [
            ("Read", {"file_path": "/work/ws/paginate.py"}),
            ("Read", {"file_path": "/work/ws/tests/test_paginate.py"}),
        ],
        [
            (
                "Edit",
                {
                    "file_path": "/work/ws/paginate.py",
                    "old_string": plan_edit["old_text"],
                    "new_string": plan_edit["new_text"],
                },
            )
        ],
        [
            (
                "Bash",
                {
                    "command": script.check_command + EXIT_MARKER,
                    "description": "Run python -m pytest",
                },
            )
        ],
    ]
    with anthropic.Anthropic(
        api_key="placeholder", base_url=sim.base_url("fast"), max_retries=0
    ) as client:
        for turn, calls in enumerate(expected):
            message = _sdk_message(client, claude_body(instruction, turn, script), stream)
            assert message.stop_reason == "tool_use"
            assert [(b.name, b.input) for b in message.content if b.type == "tool_use"] == calls
        # The proxy's header names the workspace when the prompt does not.
        body = claude_body(instruction, 1, script)
        del body["messages"][1]
        with anthropic.Anthropic(
            api_key="p",
            base_url=sim.base_url("fast"),
            max_retries=0,
            default_headers={"x-agentspeed-workspace": "/elsewhere"},
        ) as proxied:
            message = _sdk_message(proxied, body, stream)
        assert next(b.input for b in message.content if b.type == "tool_use") == {
            "file_path": "/elsewhere/paginate.py"
        }


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_claude_codes_title_request_gets_a_json_title(
    sim: SimulatorProcess, instruction: str, stream: bool
) -> None:
    body = {
        "model": "claude-opus-4-7",
        "max_tokens": 16000,
        "system": [{"type": "text", "text": "Generate a short title for the session."}],
        "messages": [{"role": "user", "content": f"<session>{instruction}</session>"}],
        "tools": [],
        "thinking": {"type": "disabled"},
        "output_config": {"format": {"type": "json_schema", "schema": TITLE_SCHEMA}},
        "metadata": {"user_id": json.dumps({"session_id": "s-claude"})},
    }
    with anthropic.Anthropic(
        api_key="placeholder", base_url=sim.base_url("fast"), max_retries=0
    ) as client:
        message = _sdk_message(client, body, stream)
    assert [b.type for b in message.content] == ["text"]
    assert json.loads(message.content[0].text) == {"title": "Fix pagination off by one"}
    assert message.stop_reason == "end_turn"
    entry = next(e for e in reversed(sim.schedule()) if e["session"] == body["metadata"]["user_id"])
    assert (entry["side"], entry["turn"], entry["stream"]) == ("structured-output", 0, stream)


def test_count_tokens_answers_claude_code_shaped_bodies(
    sim: SimulatorProcess, library: TaskLibrary, instruction: str
) -> None:
    body = claude_body(instruction, 2, _script(library, instruction))
    known = {k: v for k, v in body.items() if k in ("model", "system", "messages", "tools")}
    with anthropic.Anthropic(
        api_key="placeholder", base_url=sim.base_url("fast"), max_retries=0
    ) as client:
        counted = client.messages.count_tokens(**known, thinking=body["thinking"])
    assert counted.input_tokens == sum(b.tokens for b in request_blocks(known))


def mini_messages(instruction: str, replies: list[Any]) -> list[dict[str, Any]]:
    """mini-swe-agent's conversation: system, its wrapped instruction, then each reply with
    its observations (its JSON template)."""
    messages: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": "You are a helpful assistant that can interact with a computer.",
        },
        {
            "role": "user",
            "content": f"Please solve this issue: {instruction}\n\nSubmit with `{FINISH}`.\n",
        },
    ]
    for reply in replies:
        messages.append(reply.model_dump(exclude_none=True))
        for call in reply.tool_calls or []:
            output = json.dumps({"returncode": 0, "output": "ok\n"}, indent=2)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
    return messages


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_mini_swe_agent_shaped_requests_get_bash_calls_and_the_finish(
    sim: SimulatorProcess, library: TaskLibrary, instruction: str, stream: bool
) -> None:
    script = _script(library, instruction)
    replies: list[Any] = []
    with openai.OpenAI(
        api_key="placeholder", base_url=sim.base_url("fast") + "/v1", max_retries=0
    ) as client:
        for _ in range(len(script.turns)):
            # As litellm sends it for mini: one bash tool, no max_tokens.
            body = {
                "model": "sim-model",
                "messages": mini_messages(instruction, replies),
                "tools": [BASH_TOOL],
            }
            if stream:
                with client.chat.completions.stream(**body) as events:
                    completion = events.get_final_completion()
            else:
                completion = client.chat.completions.create(**body)
            replies.append(completion.choices[0].message)
    commands = [[json.loads(c.function.arguments) for c in r.tool_calls or []] for r in replies]
    assert commands[0] == [{"command": LIST}]
    assert commands[1] == [
        {"command": "cat paginate.py"},
        {"command": "cat tests/test_paginate.py"},
    ]
    assert commands[2][0]["command"].startswith("python3 - <<'AGENTSPEED_EOF'\n")
    assert commands[3] == [{"command": script.check_command + EXIT_MARKER}]
    assert commands[4] == [{"command": FINISH}]
    assert all(len(c) >= 1 for c in commands)  # never a reply mini would call a format error


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_openai_structured_output_is_a_side_answer(
    sim: SimulatorProcess, instruction: str, stream: bool
) -> None:
    body = {
        "model": "sim-model",
        "messages": [{"role": "user", "content": f"Title this: {instruction}"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "t", "schema": TITLE_SCHEMA},
        },
        "tools": [BASH_TOOL],
    }
    with openai.OpenAI(
        api_key="placeholder", base_url=sim.base_url("fast") + "/v1", max_retries=0
    ) as client:
        if stream:
            chunks = list(client.chat.completions.create(**body, stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            completion = client.chat.completions.create(**body)
            assert completion.choices[0].message.tool_calls is None
            text = completion.choices[0].message.content or ""
    assert json.loads(text) == {"title": "Fix pagination off by one"}
