"""Loading and validating tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_agentspeed import Check, Limits, SpeedLimits, Task, TaskError
from pytest_agentspeed.tasks import load_task

VALID = """
id = "greet"
instruction = "Fix greeting.txt."
tags = ["bugfix"]

[check]
command = "true"
timeout_s = 5

[limits]
max_turns = 7
timeout_s = 60.5
max_tokens = 1000

[speed]
max_session_s = 30
min_throughput_tok_s = 2.5
"""


def write_task(tmp_path: Path, text: str, *, workspace: bool = True) -> Path:
    if workspace:
        (tmp_path / "workspace").mkdir(exist_ok=True)
        (tmp_path / "workspace" / "a.txt").write_text("a\n")
    path = tmp_path / "agenttask.toml"
    path.write_text(text)
    return path


def test_valid_task_loads_every_field(tmp_path: Path) -> None:
    (tmp_path / "solution").mkdir()
    (tmp_path / "solution" / "a.txt").write_text("b\n")
    task = load_task(write_task(tmp_path, VALID))
    assert task.id == "greet"
    assert task.instruction == "Fix greeting.txt."
    assert task.tags == ("bugfix",)
    assert task.check == Check("true", 5.0)
    assert task.limits == Limits(max_turns=7, timeout_s=60.5, max_tokens=1000)
    assert task.speed == SpeedLimits(max_session_s=30.0, min_throughput_tok_s=2.5)
    assert task.workspace_files() == {"a.txt": "a\n"}
    assert task.solution_files() == {"a.txt": "b\n"}
    assert task.trajectory is None
    assert task.source == tmp_path / "agenttask.toml"


def test_defaults_and_id_from_directory(tmp_path: Path) -> None:
    task_dir = tmp_path / "my-task"
    task_dir.mkdir()
    task = load_task(write_task(task_dir, 'instruction = "x"\n[check]\ncommand = "true"\n'))
    assert task.id == "my-task"
    assert task.limits == Limits(max_turns=40, timeout_s=900.0, max_tokens=8192)
    assert task.check.timeout_s == 120.0
    assert task.solution is None


def test_instruction_file(tmp_path: Path) -> None:
    (tmp_path / "instruction.md").write_text("Do it.\n")
    task = load_task(
        write_task(tmp_path, 'instruction_file = "instruction.md"\n[check]\ncommand = "true"\n')
    )
    assert task.instruction == "Do it.\n"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('instruction = "x"\n[check]\ncommand = "true"\nextra = 1\n', "check.extra", "unknown key"),
        ('instruction = 3\n[check]\ncommand = "true"\n', "instruction", "expected a string"),
        ('instruction = "x"\n[check]\ncommand = ["a"]\n', "check.command", "got an array"),
        ('instruction = "x"\ncheck = "true"\n', "check", "expected a table, got a string"),
        ('instruction = "x"\n[check]\ntimeout_s = 3\n', "check.command", "missing (required)"),
        (
            'instruction = "x"\n[check]\ncommand = "t"\n[limits]\nmax_turns = 0\n',
            "limits.max_turns",
            "must be positive",
        ),
        (
            'instruction = "x"\n[check]\ncommand = "t"\n[limits]\nmax_tokens = true\n',
            "limits.max_tokens",
            "got a boolean",
        ),
        (
            'instruction = "x"\n[check]\ncommand = "t"\n[speed]\nmax_session = 3\n',
            "speed.max_session",
            "unknown key",
        ),
        (
            'instruction = "x"\ntags = ["a", 1]\n[check]\ncommand = "t"\n',
            "tags[1]",
            "expected a string",
        ),
        ('id = "a b"\ninstruction = "x"\n[check]\ncommand = "t"\n', "id", "not a valid task id"),
        ('instruction = ""\n[check]\ncommand = "t"\n', "instruction", "non-empty"),
        (
            'instruction = "x"\ninstruction_file = "i.md"\n[check]\ncommand = "t"\n',
            "instruction_file",
            "either",
        ),
        (
            'instruction_file = "nope.md"\n[check]\ncommand = "t"\n',
            "instruction_file",
            "cannot read",
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    path = write_task(tmp_path, text)
    with pytest.raises(TaskError) as info:
        load_task(path)
    assert info.value.path == path
    assert info.value.key == key
    assert message in info.value.message
    assert str(info.value).startswith(f"{path}: key '{key}': ")


def test_whole_file_errors(tmp_path: Path) -> None:
    path = write_task(tmp_path, 'instruction = "x"\n[check]\ncommand = "t"\n', workspace=False)
    with pytest.raises(TaskError, match="no workspace/ directory") as info:
        load_task(path)
    assert info.value.key is None

    path.write_bytes(b'instruction = "caf\xe9"\n')
    with pytest.raises(TaskError, match=r"not UTF-8 text \(invalid continuation byte at byte 18\)"):
        load_task(path)

    path.write_bytes(b"x" * 1_000_001)
    with pytest.raises(TaskError, match="1,000,001 bytes; task files are at most 1 MB"):
        load_task(path)

    with pytest.raises(TaskError, match="cannot read"):
        load_task(tmp_path / "missing" / "agenttask.toml")


def test_python_task_validation_and_materialize(tmp_path: Path) -> None:
    task = Task(id="t1", instruction="x", workspace={"src/a.py": "A\n"}, check="true")
    assert task.check == Check("true")
    task.materialize(tmp_path)
    assert (tmp_path / "src" / "a.py").read_text() == "A\n"
    assert not task.apply_solution(tmp_path)

    with pytest.raises(TaskError, match=r"workspace\['../a'\]"):
        Task(id="t2", instruction="x", workspace={"../a": ""}, check="true")
    with pytest.raises(TaskError, match=r"key 'id'"):
        Task(id="", instruction="x", check="true")
    with pytest.raises(TaskError, match=r"key 'instruction'"):
        Task(id="t3", instruction=7, check="true")  # type: ignore[arg-type]
