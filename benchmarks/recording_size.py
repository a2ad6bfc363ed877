"""How big a recording is: bytes per session and per turn, whole bodies against deltas against
deltas compressed (the file).

Two sessions:

* **synthetic**: 60 turns shaped like the built-in agent's on the Anthropic wire (its system
  prompt and tools, a cache breakpoint on the newest block), each reply about 400 output
  tokens (1,600 characters of text and a tool call), each tool result of realistic size and
  content: this package's own source files read (up to 8 KB), command output, file lists and
  edits, in turn. Built as a SentLog and a SessionRecord directly, so nothing is timed.
* **simulated**: a real session of the built-in agent on the simulator (``sim:standard``,
  time scale 0.02) on one task of the example suite, its requests captured as sent.

    python benchmarks/recording_size.py [--turns N]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from pytest_agentspeed import simulator
from pytest_agentspeed.agents.builtin import SYSTEM_PROMPT, BuiltinAgent
from pytest_agentspeed.agents.seam import AgentContext, AgentRun
from pytest_agentspeed.agents.tools import TOOL_SPECS
from pytest_agentspeed.clients.anthropic_client import AnthropicClient
from pytest_agentspeed.records import SessionRecord, TurnRecord, Usage
from pytest_agentspeed.replay.recording import Recording, recording_from, recording_json
from pytest_agentspeed.run.runner import run_session
from pytest_agentspeed.sent import SentLog, SentRequest
from pytest_agentspeed.tasks import load_task

ROOT = Path(__file__).resolve().parent.parent
TASK = "fix-pagination-off-by-one"
#: About 400 output tokens at 4 characters a token, less the tool call's input.
REPLY_CHARS = 1400
EPHEMERAL = {"type": "ephemeral"}


def sizes(recording: Recording) -> dict[str, int]:
    """Bytes of the requests as whole JSON bodies, of the file's JSON (bodies as deltas), and
    of the file (that JSON compressed)."""
    data = recording_json(recording)
    whole = dict(
        data,
        requests=[
            dict(r, body=q.body) for r, q in zip(data["requests"], recording.requests, strict=True)
        ],
    )
    delta = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return {
        "raw JSON": len(json.dumps(whole, ensure_ascii=False, separators=(",", ":")).encode()),
        "delta": len(delta),
        "delta+gzip": len(gzip.compress(delta, mtime=0)),
    }


# ----------------------------------------------------------------------------- synthetic


def _texts() -> tuple[list[str], list[str]]:
    """Prose (the package's docstrings) and code (its source files), for replies and tool
    results that compress like real ones."""
    sources = sorted((ROOT / "pytest_agentspeed").rglob("*.py"))
    code = [p.read_text(encoding="utf-8")[:8000] for p in sources]
    prose = [block for text in code for block in text.split('"""')[1::2] if len(block) > 200]
    return prose, code


def _tool_result(turn: int, code: list[str]) -> tuple[str, dict[str, Any], str]:
    """The tool call of turn ``turn`` and its result, in a cycle of what agents do."""
    source = code[turn % len(code)]
    kind = turn % 4
    if kind == 0:
        return "read_file", {"path": f"src/module_{turn}.py"}, source
    if kind == 1:
        lines = source.splitlines()[:40]
        output = "\n".join(f"tests/test_{turn}.py::{line.strip()[:60]} PASSED" for line in lines)
        return "run_command", {"command": "python -m pytest -q"}, output + "\n40 passed in 1.2s"
    if kind == 2:
        listing = "\n".join(f"src/pkg/module_{turn}_{i}.py" for i in range(60))
        return "list_files", {"path": "."}, listing
    old = source[200:400]
    return (
        "edit_file",
        {"path": f"src/module_{turn}.py", "old_text": old, "new_text": old + "\n"},
        "ok",
    )


def synthetic(turns: int) -> Recording:
    """A built-in-agent-shaped session of ``turns`` turns (see the module's docstring)."""
    prose, code = _texts()
    prose_cycle = itertools.cycle(prose)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": prose[0]}]}
    ]
    sent: list[SentRequest] = []
    records: list[TurnRecord] = []
    ms = 1_000_000
    for i in range(turns):
        marked = [dict(m) for m in messages]
        last = dict(marked[-1])
        last["content"] = [
            *last["content"][:-1],
            {**last["content"][-1], "cache_control": EPHEMERAL},
        ]
        marked[-1] = last
        tools = [dict(t) for t in TOOL_SPECS]
        tools[-1]["cache_control"] = EPHEMERAL
        body = {
            "model": "claude-sonnet-4-5",
            "system": [{"type": "text", "text": SYSTEM_PROMPT, "cache_control": EPHEMERAL}],
            "messages": marked,
            "tools": tools,
            "metadata": {"user_id": f"{TASK}[e-r0]"},
            "max_tokens": 8192,
            "stream": True,
        }
        start = i * 10_000 * ms
        sent.append(
            SentRequest(
                kind="turn",
                index=i,
                method="POST",
                path="/v1/messages",
                header_names=("accept", "content-type", "anthropic-version", "authorization"),
                body=json.dumps(body).encode(),
                started_ns=start + ms,
                ended_ns=start + 8000 * ms,
            )
        )
        text = ""
        while len(text) < REPLY_CHARS:
            text += next(prose_cycle)
        name, tool_input, result = _tool_result(i, code)
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": text[:REPLY_CHARS]},
                    {"type": "tool_use", "id": f"toolu_{i:04d}", "name": name, "input": tool_input},
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"toolu_{i:04d}",
                        "content": result,
                        "is_error": False,
                    },
                    {
                        "type": "text",
                        "text": f"[budget] {turns - i - 1} turns and {600 - 10 * i} s left.",
                    },
                ],
            }
        )
        cached = len(json.dumps(body)) // 4
        records.append(
            TurnRecord(
                index=i,
                wall_s=10.0,
                marks_s={"request_sent": 0.001, "stream_end": 7.999},
                phases_s={"tool": 1.5},
                usage=Usage(input_tokens=200, cache_read_tokens=cached, output_tokens=400),
                usage_raw={
                    "input_tokens": 200,
                    "cache_read_input_tokens": cached,
                    "output_tokens": 400,
                },
                stop_reason="tool_use",
                streamed=True,
                attempts=(),
                tool_calls=(),
            )
        )
    record = SessionRecord(
        id=f"{TASK}[e-r0]",
        task=TASK,
        endpoint="e",
        repeat=0,
        slot=f"{TASK}/r0",
        outcome="passed",
        error=None,
        wall_s=turns * 10.0,
        setup_s=0.0,
        check_s=0.0,
        check_exit_code=0,
        usage=Usage(),
        phases_s={},
        turns=tuple(records),
    )
    log = SentLog(started_ns=0, ended_ns=turns * 10_000 * ms, requests=tuple(sent))
    return recording_from(record, log, wire="anthropic", model="claude-sonnet-4-5")


# ----------------------------------------------------------------------------- simulated


class _Keeping(BuiltinAgent):
    """The built-in agent, keeping what it sent (the run core keeps only the record)."""

    kept: AgentRun | None = None

    def run(self, context: AgentContext) -> AgentRun:
        self.kept = super().run(context)
        return self.kept


def simulated() -> tuple[Recording, SessionRecord]:
    """A session of the built-in agent on the simulator, recorded."""
    suite = ROOT / "example_suite"
    handle = simulator.start(
        simulator.ServerConfig(
            mounts=(simulator.MountConfig(key="m", profile="standard", time_scale=0.02),),
            task_dirs=(str(suite),),
        )
    )
    agent = _Keeping()
    client = AnthropicClient(model="sim-model", base_url=handle.base_url("m"), api_key="sk-sim")
    try:
        result = run_session(
            load_task(suite / TASK / "agenttask.toml"),
            agent,
            client,
            endpoint="sim:standard",
            repeat=0,
        )
    finally:
        client.close()
        handle.stop()
    assert agent.kept is not None
    assert agent.kept.sent is not None
    return recording_from(
        result.record, agent.kept.sent, wire="anthropic", model="sim-model"
    ), result.record


def _line(name: str, turns: int, measured: dict[str, int]) -> str:
    cells = [
        f"{kind} {size:>9,} B ({size / turns:>7,.0f} B/turn)" for kind, size in measured.items()
    ]
    return f"{name:<10} {turns:>3} turns   " + "   ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=60)
    args = parser.parse_args(argv)
    made = synthetic(args.turns)
    print(_line("synthetic", len(made.requests), sizes(made)))
    recording, record = simulated()
    print(_line("simulated", len(recording.requests), sizes(recording)) + f"   ({record.outcome})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
