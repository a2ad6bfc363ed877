"""Tests of pytest_agentspeed.agents.tools and pytest_agentspeed.processes: real files under
tmp_path, real subprocesses."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_agentspeed import processes
from pytest_agentspeed.agents.tools import TOOL_SPECS, ToolBox, ToolResult
from pytest_agentspeed.processes import (
    CommandResult,
    _HeadTail,
    credential_values,
    run_command,
    scrubbed_environment,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON_DIR = os.path.dirname(sys.executable)
HAS_PROC = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="needs /proc (Linux)")


def ok(text: str) -> ToolResult:
    return ToolResult(text, is_error=False)


def err(text: str) -> ToolResult:
    return ToolResult(text, is_error=True)


def outside_msg(path: str) -> str:
    return (
        f"{path!r} is outside the workspace (through '..' or a symlink); "
        "only paths inside the workspace are allowed"
    )


def absolute_msg(path: str) -> str:
    return f"absolute paths are not allowed: {path!r}; use a path relative to the workspace root"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def box(ws: Path) -> ToolBox:
    return ToolBox(ws)


# --------------------------------------------------------------------------- process groups


def group_members(pgid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command) of every process whose process group is ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        state, _ppid, pgrp = raw[raw.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid:
            members.append((int(entry.name), state, comm))
    return members


@pytest.fixture
def group_gone() -> Iterator[Callable[[int], None]]:
    """Assert a process group has no live member and then disappears entirely.

    Processes killed in a group are orphans whose zombies init must reap; some inits (like a
    VM's minimal PID 1) do that only every few seconds. Where possible the test process becomes
    a child subreaper, so the orphans are reparented to it and reaped here at once.
    """
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
    pr_set_child_subreaper = 36
    subreaper = libc is not None and libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0

    def check(pgid: int) -> None:
        deadline = time.monotonic() + 10.0  # deadlines only: a loaded machine may take a while
        while True:
            # SIGKILL is delivered asynchronously; a killed process may need a moment to die.
            live = [m for m in group_members(pgid) if m[1] not in ("Z", "X")]
            if not live:
                break
            assert time.monotonic() < deadline, f"still running in group {pgid}: {live}"
            time.sleep(0.01)
        deadline = time.monotonic() + 30.0
        while True:
            if subreaper:
                reap_group(pgid)
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, f"group {pgid} still exists"
            time.sleep(0.01)
        assert group_members(pgid) == []

    yield check
    if subreaper:
        assert libc is not None
        libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)


def reap_group(pgid: int) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# --------------------------------------------------------------------------- list_files


def make_files(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_list_files_sorted_relative_and_without_caches(ws: Path, box: ToolBox) -> None:
    make_files(
        ws,
        [
            "b.txt",
            "a/z.py",
            "a/y.pyc",
            "a/__pycache__/z.cpython-311.pyc",
            "A.txt",
            ".hidden",
            ".git/config",
            ".pytest_cache/v/cache",
            ".mypy_cache/3.11/x.json",
            ".ruff_cache/0.1/x",
            "node_modules/left-pad/index.js",
            ".venv/bin/python",
            "pkg/sub/deep.py",
        ],
    )
    (ws / "empty_dir").mkdir()

    assert box.call("list_files", {}) == ok(".hidden\nA.txt\na/z.py\nb.txt\npkg/sub/deep.py")
    assert box.call("list_files", {"path": "."}) == box.call("list_files", {})
    assert box.call("list_files", {"path": "pkg"}) == ok("pkg/sub/deep.py")
    assert box.call("list_files", {"path": "pkg/sub/"}) == ok("pkg/sub/deep.py")
    assert box.call("list_files", {"path": "empty_dir"}) == ok("(no files under empty_dir)")


def test_list_files_errors(ws: Path, box: ToolBox) -> None:
    make_files(ws, ["f.txt"])
    assert box.call("list_files", {"path": "nope"}) == err("no such directory: 'nope'")
    assert box.call("list_files", {"path": "f.txt"}) == err(
        "'f.txt' is a file, not a directory; use read_file to read it"
    )
    assert box.call("list_files", {"path": ".."}) == err(outside_msg(".."))


def test_list_files_caps_at_2000_entries(ws: Path, box: ToolBox) -> None:
    names = [f"f{i:04d}.txt" for i in range(2005)]
    for name in names:
        (ws / name).touch()
    result = box.call("list_files", {})
    assert not result.is_error
    lines = result.text.split("\n")
    assert lines[:-1] == names[:2000]
    assert lines[-1] == (
        "[... 5 more files not shown (2,005 in total); list a subdirectory to see them]"
    )


# --------------------------------------------------------------------------- read_file


def test_read_file(ws: Path, box: ToolBox) -> None:
    (ws / "src").mkdir()
    (ws / "src" / "m.py").write_bytes(b"x = 1\r\nprint('h\xc3\xa9')\n")
    (ws / "bin.dat").write_bytes(b"a\xffb\xc3")
    (ws / "empty").write_bytes(b"")

    assert box.call("read_file", {"path": "src/m.py"}) == ok("x = 1\r\nprint('hé')\n")
    assert box.call("read_file", {"path": "./src/../src/m.py"}) == ok("x = 1\r\nprint('hé')\n")
    assert box.call("read_file", {"path": "bin.dat"}) == ok("a\ufffdb\ufffd")
    assert box.call("read_file", {"path": "empty"}) == ok("(empty file)")


def test_read_file_errors(ws: Path, box: ToolBox) -> None:
    (ws / "d").mkdir()
    os.mkfifo(ws / "fifo")
    assert box.call("read_file", {"path": "missing.txt"}) == err("no such file: 'missing.txt'")
    assert box.call("read_file", {"path": "d"}) == err(
        "'d' is a directory; use list_files to see its files"
    )
    # Opening a FIFO would block forever.
    assert box.call("read_file", {"path": "fifo"}) == err("'fifo' is not a regular file")


def test_read_file_truncates_long_files(ws: Path, box: ToolBox) -> None:
    (ws / "exact.txt").write_text("a" * 100_000)
    (ws / "long.txt").write_text("a" * 99_999 + "bc" + "d" * 50_000)
    (ws / "wide.txt").write_text("é" * 100_001)  # 200,002 bytes

    assert box.call("read_file", {"path": "exact.txt"}) == ok("a" * 100_000)
    assert box.call("read_file", {"path": "long.txt"}) == ok(
        "a"
        * 99_999
        + "b\n[truncated: showing the first 100,000 characters of a file of 150,001 bytes; "
        "use run_command (e.g. sed -n or grep) to read the rest]"
    )
    assert box.call("read_file", {"path": "wide.txt"}) == ok(
        "é"
        * 100_000
        + "\n[truncated: showing the first 100,000 characters of a file of 200,002 bytes; "
        "use run_command (e.g. sed -n or grep) to read the rest]"
    )


# --------------------------------------------------------------------------- write_file


def test_write_file_creates_parents_and_replaces(ws: Path, box: ToolBox) -> None:
    assert box.call("write_file", {"path": "new/dir/f.txt", "content": "héllo\n"}) == ok(
        "wrote 7 bytes to new/dir/f.txt"
    )
    assert (ws / "new" / "dir" / "f.txt").read_bytes() == "héllo\n".encode()

    assert box.call("write_file", {"path": "new/dir/f.txt", "content": "x"}) == ok(
        "wrote 1 bytes to new/dir/f.txt"
    )
    assert (ws / "new" / "dir" / "f.txt").read_bytes() == b"x"

    # No newline translation: the bytes are exactly the content's UTF-8.
    assert box.call("write_file", {"path": "crlf.txt", "content": "a\r\nb\n"}) == ok(
        "wrote 5 bytes to crlf.txt"
    )
    assert (ws / "crlf.txt").read_bytes() == b"a\r\nb\n"
    assert box.call("write_file", {"path": "empty.txt", "content": ""}) == ok(
        "wrote 0 bytes to empty.txt"
    )
    assert (ws / "empty.txt").read_bytes() == b""


def test_write_file_refuses_directories(ws: Path, box: ToolBox) -> None:
    (ws / "d").mkdir()
    assert box.call("write_file", {"path": "d", "content": "x"}) == err(
        "'d' is a directory; use list_files to see its files"
    )
    assert (ws / "d").is_dir()


# --------------------------------------------------------------------------- edit_file


def test_edit_file_replaces_the_one_occurrence(ws: Path, box: ToolBox) -> None:
    (ws / "m.py").write_text("def f():\n    return 1\n\n\ndef g():\n    return 2\n")
    result = box.call(
        "edit_file", {"path": "m.py", "old_text": "    return 2\n", "new_text": "    return 3\n"}
    )
    assert result == ok("replaced 1 occurrence at line 6 of m.py")
    assert (ws / "m.py").read_text() == "def f():\n    return 1\n\n\ndef g():\n    return 3\n"


def test_edit_file_keeps_undecodable_bytes(ws: Path, box: ToolBox) -> None:
    (ws / "b.dat").write_bytes(b"\xff\xfe head X tail \xc3")
    result = box.call("edit_file", {"path": "b.dat", "old_text": "X", "new_text": "Yé"})
    assert result == ok("replaced 1 occurrence at line 1 of b.dat")
    assert (ws / "b.dat").read_bytes() == b"\xff\xfe head Y\xc3\xa9 tail \xc3"


@pytest.mark.parametrize(
    ("content", "old_text", "message"),
    [
        (
            "alpha\nbeta\n",
            "gamma",
            "old_text was not found in f.txt (0 occurrences); it must match the file exactly, "
            "including whitespace and indentation",
        ),
        (
            "alpha\nbeta\n",
            "Alpha",
            "old_text was not found in f.txt (0 occurrences); it must match the file exactly, "
            "including whitespace and indentation",
        ),
        (
            "x = 1\nx = 1\n",
            "x = 1",
            "old_text occurs 2 times in f.txt; it must occur exactly once, so include more "
            "surrounding lines to make it unique",
        ),
        (
            "aaa",
            "aa",  # overlapping matches make "the occurrence" ambiguous too
            "old_text occurs 2 times in f.txt; it must occur exactly once, so include more "
            "surrounding lines to make it unique",
        ),
        ("abc", "", "old_text must not be empty; use write_file to create a file"),
    ],
)
def test_edit_file_needs_exactly_one_occurrence(
    ws: Path, box: ToolBox, content: str, old_text: str, message: str
) -> None:
    (ws / "f.txt").write_text(content)
    os.utime(ws / "f.txt", ns=(1_000_000_000, 1_000_000_000))
    result = box.call("edit_file", {"path": "f.txt", "old_text": old_text, "new_text": "NEW"})
    assert result == err(message)
    assert (ws / "f.txt").read_text() == content
    assert (ws / "f.txt").stat().st_mtime_ns == 1_000_000_000


def test_edit_file_missing_file(box: ToolBox) -> None:
    assert box.call("edit_file", {"path": "no.py", "old_text": "a", "new_text": "b"}) == err(
        "no such file: 'no.py'"
    )


# --------------------------------------------------------------------------- confinement


@pytest.fixture
def outside(tmp_path: Path, ws: Path) -> Path:
    """An outside directory with a secret, reachable from ws through symlinks."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_text("top secret\n")
    os.utime(out / "secret.txt", ns=(1_000_000_000, 1_000_000_000))
    (ws / "sub").mkdir()
    (ws / "linkdir").symlink_to(out, target_is_directory=True)
    (ws / "link.txt").symlink_to(out / "secret.txt")
    (ws / "dangling.txt").symlink_to(out / "new.txt")
    (ws / "sub" / "up").symlink_to("../..", target_is_directory=True)  # relative, escapes
    return out


def assert_outside_untouched(tmp_path: Path, out: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "ws"]
    assert sorted(p.name for p in out.iterdir()) == ["secret.txt"]
    assert (out / "secret.txt").read_text() == "top secret\n"
    assert (out / "secret.txt").stat().st_mtime_ns == 1_000_000_000


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        "/etc/passwd",
        "linkdir/secret.txt",
        "link.txt",
        "sub/up/outside/secret.txt",
        "<abs>",
    ],
)
def test_read_outside_is_refused(tmp_path: Path, outside: Path, box: ToolBox, path: str) -> None:
    if path == "<abs>":
        path = str(outside / "secret.txt")
    expected = absolute_msg(path) if path.startswith("/") else outside_msg(path)
    assert box.call("read_file", {"path": path}) == err(expected)
    assert_outside_untouched(tmp_path, outside)


@pytest.mark.parametrize(
    "path",
    [
        "../x.txt",
        "../outside/secret.txt",
        "linkdir/secret.txt",
        "linkdir/new.txt",
        "linkdir/deep/new.txt",
        "link.txt",
        "dangling.txt",
        "sub/up/outside/new.txt",
        "<abs>",
    ],
)
def test_write_outside_is_refused(tmp_path: Path, outside: Path, box: ToolBox, path: str) -> None:
    if path == "<abs>":
        path = str(outside / "secret.txt")
    expected = absolute_msg(path) if path.startswith("/") else outside_msg(path)
    assert box.call("write_file", {"path": path, "content": "pwned\n"}) == err(expected)
    assert box.call("edit_file", {"path": path, "old_text": "top", "new_text": "pwned"}) == err(
        expected
    )
    assert_outside_untouched(tmp_path, outside)
    # The links themselves are left as they were.
    assert os.readlink(box.root / "link.txt") == str(outside / "secret.txt")
    assert os.readlink(box.root / "dangling.txt") == str(outside / "new.txt")


def test_list_outside_is_refused(tmp_path: Path, outside: Path, box: ToolBox) -> None:
    assert box.call("list_files", {"path": "linkdir"}) == err(outside_msg("linkdir"))
    assert box.call("list_files", {"path": "/"}) == err(absolute_msg("/"))
    # Symlinks are listed but never entered, so nothing outside shows up.
    assert box.call("list_files", {}) == ok("dangling.txt\nlink.txt\nlinkdir\nsub/up")


def test_symlinks_inside_the_workspace_are_allowed(ws: Path, box: ToolBox) -> None:
    (ws / "pkg").mkdir()
    (ws / "pkg" / "real.txt").write_text("real\n")
    (ws / "alias.txt").symlink_to("pkg/real.txt")
    (ws / "pkglink").symlink_to(ws / "pkg", target_is_directory=True)

    assert box.call("read_file", {"path": "alias.txt"}) == ok("real\n")
    assert box.call("read_file", {"path": "pkglink/real.txt"}) == ok("real\n")
    assert box.call("write_file", {"path": "alias.txt", "content": "new\n"}) == ok(
        "wrote 4 bytes to pkg/real.txt"
    )
    assert (ws / "pkg" / "real.txt").read_text() == "new\n"
    assert (ws / "alias.txt").is_symlink()
    assert box.call(
        "edit_file", {"path": "pkglink/real.txt", "old_text": "new", "new_text": "newer"}
    ) == ok("replaced 1 occurrence at line 1 of pkg/real.txt")
    assert (ws / "pkg" / "real.txt").read_text() == "newer\n"
    assert box.call("list_files", {"path": "pkglink"}) == ok("pkg/real.txt")
    assert box.call("list_files", {}) == ok("alias.txt\npkg/real.txt\npkglink")


def test_root_is_resolved(tmp_path: Path, ws: Path) -> None:
    (tmp_path / "ws-link").symlink_to(ws, target_is_directory=True)
    box = ToolBox(tmp_path / "ws-link")
    assert box.root == ws.resolve()
    (ws / "f.txt").write_text("hi")
    assert box.call("read_file", {"path": "f.txt"}) == ok("hi")


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="workspace root is not a directory"):
        ToolBox(tmp_path / "missing")
    with pytest.raises(ValueError, match="default_timeout_s <= max_timeout_s"):
        ToolBox(tmp_path, default_timeout_s=700, max_timeout_s=600)


# --------------------------------------------------------------------------- bad calls


@pytest.mark.parametrize(
    ("name", "tool_input", "message"),
    [
        (
            "delete_everything",
            {},
            "unknown tool 'delete_everything'; the available tools are: "
            "list_files, read_file, write_file, edit_file, run_command",
        ),
        ("read_file", {}, "missing required input field 'path'"),
        ("read_file", {"path": 123}, "'path' must be a string, got int"),
        ("list_files", {"path": ["a"]}, "'path' must be a string, got list"),
        ("write_file", {"path": "f.txt"}, "missing required input field 'content'"),
        (
            "write_file",
            {"path": "f.txt", "content": None},
            "'content' must be a string, got NoneType",
        ),
        (
            "edit_file",
            {"path": "f.txt", "old_text": "a", "new_text": 1.5},
            "'new_text' must be a string, got float",
        ),
        ("run_command", {"command": ["ls"]}, "'command' must be a string, got list"),
        (
            "run_command",
            {"command": "true", "timeout_s": "10"},
            "'timeout_s' must be a number of seconds, got '10'",
        ),
        (
            "run_command",
            {"command": "true", "timeout_s": True},
            "'timeout_s' must be a number of seconds, got True",
        ),
        (
            "run_command",
            {"command": "true", "timeout_s": -1},
            "'timeout_s' must be a positive number of seconds, got -1",
        ),
        (
            "read_file",
            {"path": "f.txt", "encoding": "latin-1"},
            "unexpected input field(s) for read_file: encoding; accepted: path",
        ),
        ("read_file", {"path": "a\0b"}, "invalid path 'a\\x00b': it contains a NUL character"),
        ("run_command", {"command": "echo a\0b"}, "run_command failed: embedded null byte"),
        (
            "write_file",
            {"path": "f.txt", "content": "lone \ud800"},
            "write_file failed: the input contains characters that cannot be encoded as "
            "UTF-8 (surrogates not allowed)",
        ),
    ],
)
def test_model_mistakes_are_error_results(
    box: ToolBox, name: str, tool_input: dict[str, object], message: str
) -> None:
    assert box.call(name, tool_input) == err(message)
    assert list(box.root.iterdir()) == []


def test_input_that_is_not_an_object(box: ToolBox) -> None:
    bad: object = ["path", "f.txt"]
    assert box.call("read_file", bad) == err(  # type: ignore[arg-type]
        "the input of read_file must be a JSON object, got list"
    )


def test_os_errors_become_error_results(ws: Path, box: ToolBox) -> None:
    (ws / "file").write_text("x")
    result = box.call("write_file", {"path": "file/child.txt", "content": "y"})
    assert result == err("write_file failed: File exists: 'file'")
    assert (ws / "file").read_text() == "x"


def test_tool_specs() -> None:
    assert [spec["name"] for spec in TOOL_SPECS] == [
        "list_files",
        "read_file",
        "write_file",
        "edit_file",
        "run_command",
    ]
    required = {spec["name"]: spec["input_schema"]["required"] for spec in TOOL_SPECS}
    assert required == {
        "list_files": [],
        "read_file": ["path"],
        "write_file": ["path", "content"],
        "edit_file": ["path", "old_text", "new_text"],
        "run_command": ["command"],
    }
    for spec in TOOL_SPECS:
        assert set(spec) == {"name", "description", "input_schema"}
        schema = spec["input_schema"]
        assert schema["type"] == "object"
        assert set(schema["required"]) <= set(schema["properties"])
        assert all(prop["description"] for prop in schema["properties"].values())
        assert 40 < len(spec["description"]) < 600
    assert json.loads(json.dumps(TOOL_SPECS)) == list(TOOL_SPECS)


# --------------------------------------------------------------------------- environment


def test_a_named_endpoints_key_variable_is_scrubbed_whatever_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``api_key_env = "GATEWAY_KEY"`` matches no credential pattern: the run names it, and
    from then on neither a command's environment nor its kept output holds it."""
    monkeypatch.setattr(processes, "_ALSO_SCRUBBED", set())
    base = {"GATEWAY_KEY": "sk-gateway-0123456789", "HOME": "/home/me", "PATH": "/bin"}
    assert "GATEWAY_KEY" in scrubbed_environment(base)
    assert credential_values(base) == ()
    processes.scrub_also(["gateway_key"])
    assert scrubbed_environment(base) == {"HOME": "/home/me", "PATH": f"{PYTHON_DIR}:/bin"}
    assert credential_values(base) == ("sk-gateway-0123456789",)


def test_scrubbed_environment_rules() -> None:
    base = {
        "FOO_API_KEY": "1",
        "gh_token": "2",
        "MY_SECRET_X": "3",
        "client_secret": "3b",
        "ANTHROPIC_BASE_URL": "4",
        "openai_org": "5",
        "PYTEST_ADDOPTS": "6",
        "PYTEST_CURRENT_TEST": "7",
        "PYTEST_XDIST_WORKER": "8",
        "HOME": "/home/me",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTEST_PLUGINS": "keep",
        "PATH": "/usr/bin:/bin",
    }
    assert scrubbed_environment(base) == {
        "HOME": "/home/me",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTEST_PLUGINS": "keep",
        "PATH": f"{PYTHON_DIR}:/usr/bin:/bin",
    }
    assert base["FOO_API_KEY"] == "1"  # a copy: the input is left alone
    assert scrubbed_environment({}) == {"PATH": f"{PYTHON_DIR}:{os.defpath}"}
    already = {"PATH": f"{PYTHON_DIR}:/bin"}
    assert scrubbed_environment(already) == already


def test_scrubbed_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZZ_API_KEY", "k")
    monkeypatch.setenv("ZZ_HARMLESS", "h")
    env = scrubbed_environment()
    assert "ZZ_API_KEY" not in env
    assert env["ZZ_HARMLESS"] == "h"


def test_run_command_environment_has_no_credentials(
    monkeypatch: pytest.MonkeyPatch, box: ToolBox
) -> None:
    secrets = {
        "FOO_API_KEY": "value-apikey-1111",
        "GH_TOKEN": "value-token-2222",
        "MY_SECRET_X": "value-secret-3333",
        "ANTHROPIC_BASE_URL": "value-anthropic-4444",
        "OPENAI_ORG": "value-openai-5555",
        "PYTEST_ADDOPTS": "value-addopts-6666",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HARMLESS_VAR", "keep-me-7777")

    result = box.call("run_command", {"command": "env"})
    assert not result.is_error
    assert result.text.startswith("exit code: 0\n")
    lines = result.text.splitlines()
    assert "HARMLESS_VAR=keep-me-7777" in lines
    for name, value in secrets.items():
        assert value not in result.text
        assert not any(line.startswith(f"{name}=") for line in lines)


def test_python_in_a_command_is_the_running_interpreter(
    monkeypatch: pytest.MonkeyPatch, box: ToolBox
) -> None:
    # Without the PATH fix, `python` would be a system one or missing.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = box.call("run_command", {"command": "python -c 'import sys; print(sys.executable)'"})
    assert result.text.startswith("exit code: 0\n"), result.text
    printed = result.text.splitlines()[1]
    assert os.path.dirname(printed) == PYTHON_DIR


# --------------------------------------------------------------------------- run_command


def test_run_command_basics(ws: Path, box: ToolBox) -> None:
    assert box.call("run_command", {"command": "echo out; echo err >&2; echo out2"}) == ok(
        "exit code: 0\nout\nerr\nout2\n"
    )
    assert box.call("run_command", {"command": "exit 3"}) == ok("exit code: 3\n(no output)")
    assert box.call("run_command", {"command": "pwd"}) == ok(f"exit code: 0\n{ws.resolve()}\n")
    assert box.call("run_command", {"command": "kill -9 $$"}) == ok(
        "exit code: -9 (killed by SIGKILL)\n(no output)"
    )
    assert box.call("run_command", {"command": "printf 'a\\377b'"}) == ok("exit code: 0\na\ufffdb")
    assert box.call("run_command", {"command": "echo hi > made.txt"}) == ok(
        "exit code: 0\n(no output)"
    )
    assert (ws / "made.txt").read_text() == "hi\n"


def test_stdin_is_dev_null(box: ToolBox) -> None:
    # Give this process a stdin with data on it: a command that inherited it would read it.
    read_end, write_end = os.pipe()
    os.write(write_end, b"leaked stdin\n")
    os.close(write_end)
    saved = os.dup(0)
    try:
        os.dup2(read_end, 0)
        result = box.call("run_command", {"command": "cat; echo after"})
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read_end)
    assert result == ok("exit code: 0\nafter\n")


@pytest.fixture(params=["pidfd", "portable"])
def exit_detection(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with pidfd exit notification, and with the fallback that polls (no pidfd,
    no waitid, as on macOS)."""
    mode: str = request.param
    if mode == "portable":
        monkeypatch.setattr(processes, "_open_pidfd", lambda pid: None)
        monkeypatch.delattr(os, "waitid", raising=False)
    elif processes._open_pidfd(os.getpid()) is None:
        pytest.skip("no pidfd support")
    return mode


def test_run_command_waits_for_a_shell_that_closed_its_output(
    tmp_path: Path, exit_detection: str
) -> None:
    # EOF on the pipe comes long before the shell exits; it must not be cut short.
    result = run_command(
        "echo early; exec >/dev/null 2>&1; sleep 0.3; exit 4", cwd=tmp_path, timeout_s=5
    )
    assert (result.exit_code, result.output, result.timed_out) == (4, "early\n", False)
    assert result.wall_s >= 0.3


@pytest.fixture
def slow_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reading a pipe that never closes cost a minute instead of a second.

    The group must be killed *before* its output is drained; a command that waited for the
    drain deadline instead would then take 60 s, so a bound far below that tells the two apart
    on any machine, however loaded (no tight wall-clock window).
    """
    monkeypatch.setattr(processes, "_DRAIN_S", SLOW_DRAIN_S)


SLOW_DRAIN_S = 60.0


@needs_proc
def test_timeout_kills_the_whole_group(
    tmp_path: Path, group_gone: Callable[[int], None], slow_drain: None
) -> None:
    result = run_command("echo $$; sleep 1000 & sleep 1000", cwd=tmp_path, timeout_s=1)
    assert result.timed_out
    assert result.exit_code is None
    # Not before the timeout; and killed at it, not after the drain deadline or the sleeps.
    assert 1.0 <= result.wall_s < SLOW_DRAIN_S / 2
    pgid = int(result.output)
    assert result.output == f"{pgid}\n"
    group_gone(pgid)


def test_timeout_in_the_tool_result(box: ToolBox, exit_detection: str) -> None:
    result = box.call("run_command", {"command": "echo started; sleep 30", "timeout_s": 0.3})
    assert result == ok(
        "exit code: timeout after 0.3 s (the command and all processes it started were killed)"
        "\nstarted\n"
    )


def test_timeout_is_capped_by_max_timeout(ws: Path, slow_drain: None) -> None:
    box = ToolBox(ws, default_timeout_s=0.2, max_timeout_s=0.4)
    start = time.monotonic()
    assert box.call("run_command", {"command": "sleep 30", "timeout_s": 100}) == ok(
        "exit code: timeout after 0.4 s (the command and all processes it started were killed)"
        "\n(no output)"
    )
    assert box.call("run_command", {"command": "sleep 30"}) == ok(
        "exit code: timeout after 0.2 s (the command and all processes it started were killed)"
        "\n(no output)"
    )
    box = ToolBox(ws, default_timeout_s=0.2345678)
    assert box.call("run_command", {"command": "sleep 30"}) == ok(
        "exit code: timeout after 0.23 s (the command and all processes it started were killed)"
        "\n(no output)"
    )
    # Each command was killed at its capped timeout: one run to its end would take 30 s, one
    # waiting for the drain deadline 60 s.
    assert time.monotonic() - start < 30


@needs_proc
@pytest.mark.parametrize(
    "command",
    [
        "echo $$; sleep 1000 & echo done",  # the child holds the output pipe open
        "echo $$; sleep 1000 >/dev/null 2>&1 & echo done",  # the pipe reaches EOF at once
    ],
)
def test_background_children_are_killed_after_a_normal_exit(
    tmp_path: Path,
    group_gone: Callable[[int], None],
    command: str,
    exit_detection: str,
    slow_drain: None,
) -> None:
    result = run_command(command, cwd=tmp_path, timeout_s=SLOW_DRAIN_S)
    assert (result.exit_code, result.timed_out) == (0, False)
    pgid = int(result.output.split()[0])
    assert result.output == f"{pgid}\ndone\n"
    # Killed when the shell exited: waiting for the child's pipe would last the 60 s drain.
    assert result.wall_s < SLOW_DRAIN_S / 2
    group_gone(pgid)


def test_output_is_truncated_to_head_and_tail(tmp_path: Path) -> None:
    result = run_command(
        "printf '0123456789'; printf 'abcdefghij'; printf 'ABCDEFGHIJ'",
        cwd=tmp_path,
        timeout_s=5,
        head_bytes=8,
        tail_bytes=5,
    )
    assert result.output == "01234567\n[... 17 bytes omitted ...]\nFGHIJ"
    assert result.omitted_bytes == 17

    whole = run_command(
        "printf 'abcdefghij'", cwd=tmp_path, timeout_s=5, head_bytes=5, tail_bytes=5
    )
    assert (whole.output, whole.omitted_bytes) == ("abcdefghij", 0)


@needs_proc
def test_50_mb_of_output_keeps_memory_bounded(tmp_path: Path) -> None:
    # Measured in a fresh interpreter: ru_maxrss is a lifetime peak, which the pytest process
    # may already have raised above anything this test would add.
    script = textwrap.dedent(
        """
        import json, resource, sys
        from pathlib import Path
        from pytest_agentspeed.processes import run_command

        command = "python -c \\"import sys; sys.stdout.buffer.write(b'x' * 50_000_000)\\""
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = run_command(command, cwd=Path(sys.argv[1]), timeout_s=60)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({
            "grown_kib": after - before,
            "exit_code": result.exit_code,
            "omitted": result.omitted_bytes,
            "output": result.output,
        }))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["exit_code"] == 0
    assert report["omitted"] == 50_000_000 - 2 * 8192
    assert report["output"] == "x" * 8192 + "\n[... 49,983,616 bytes omitted ...]\n" + "x" * 8192
    assert report["grown_kib"] < 40 * 1024


def test_run_command_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeout_s must be a positive number"):
        run_command("true", cwd=tmp_path, timeout_s=0)
    with pytest.raises(ValueError, match="must not be negative"):
        run_command("true", cwd=tmp_path, timeout_s=1, head_bytes=-1)
    with pytest.raises(FileNotFoundError):
        run_command("true", cwd=tmp_path / "missing", timeout_s=1)


def test_run_command_explicit_env(tmp_path: Path) -> None:
    result = run_command(
        "echo $ONLY; echo ${HOME:-unset}",
        cwd=tmp_path,
        timeout_s=5,
        env={"ONLY": "this", "PATH": "/usr/bin:/bin"},
    )
    assert result == CommandResult(
        exit_code=0,
        output="this\nunset\n",
        timed_out=False,
        omitted_bytes=0,
        wall_s=result.wall_s,
    )


@given(
    chunks=st.lists(st.binary(max_size=40), max_size=12),
    head=st.integers(min_value=0, max_value=50),
    tail=st.integers(min_value=0, max_value=50),
)
def test_head_tail_buffer_matches_slicing(chunks: list[bytes], head: int, tail: int) -> None:
    buffer = _HeadTail(head, tail)
    for chunk in chunks:
        buffer.add(chunk)
    data = b"".join(chunks)
    assert buffer.total == len(data)
    if len(data) <= head + tail:
        assert buffer.omitted == 0
        assert buffer.render() == data.decode("utf-8", errors="replace")
    else:
        omitted = len(data) - head - tail
        assert buffer.omitted == omitted
        head_text = data[:head].decode("utf-8", errors="replace")
        if head_text and not head_text.endswith("\n"):
            head_text += "\n"
        tail_text = data[len(data) - tail :].decode("utf-8", errors="replace")
        assert buffer.render() == f"{head_text}[... {omitted:,} bytes omitted ...]\n{tail_text}"
