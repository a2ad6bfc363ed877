"""A small agent of the tests' own, measured like any external agent: a loop on an official SDK
(``anthropic``, ``openai`` for Chat Completions or ``responses`` for the Responses API, the
first argument) with one shell tool, run as a command from ``[tool.agentspeed.agents.NAME]``.

    python shell_agent.py anthropic|openai|responses MODEL INSTRUCTION_FILE

It reads the base URL and key from the SDK's usual variables (what the proxy session gives
it). With ``SHELL_AGENT_DUMP`` set, it first writes its environment and argv there as JSON, so
a test can look for a key that must not be in them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TOOL_DESCRIPTION = "Run a shell command in the project directory; returns its output."
MAX_TURNS = 30


def shell(command: str) -> str:
    done = subprocess.run(
        command, shell=True, capture_output=True, text=True, timeout=60, check=False
    )
    return f"{done.stdout}{done.stderr}\nexit code: {done.returncode}"


def anthropic_loop(model: str, instruction: str) -> None:
    import anthropic

    client = anthropic.Anthropic()
    tools = [
        {
            "name": "shell",
            "description": TOOL_DESCRIPTION,
            "input_schema": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
            },
        }
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": instruction}]
    for _ in range(MAX_TURNS):
        with client.messages.stream(
            model=model, max_tokens=4096, messages=messages, tools=tools
        ) as stream:
            reply = stream.get_final_message()
        messages.append({"role": "assistant", "content": [b.to_dict() for b in reply.content]})
        calls = [b for b in reply.content if b.type == "tool_use"]
        if not calls:
            return
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": c.id,
                        "content": shell(c.input["command"]),
                    }
                    for c in calls
                ],
            }
        )


def openai_loop(model: str, instruction: str) -> None:
    import openai

    client = openai.OpenAI()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "shell",
                "description": TOOL_DESCRIPTION,
                "parameters": {
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                },
            },
        }
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": instruction}]
    for _ in range(MAX_TURNS):
        reply = client.chat.completions.create(model=model, messages=messages, tools=tools)
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            return
        for call in message.tool_calls:
            command = json.loads(call.function.arguments)["command"]
            messages.append({"role": "tool", "tool_call_id": call.id, "content": shell(command)})


def responses_loop(model: str, instruction: str) -> None:
    """The Responses API, streamed with the SDK's helper, nothing stored: each request carries
    the whole conversation, the reply's output items passed back as they came."""
    import openai

    client = openai.OpenAI()
    tools: list[Any] = [
        {
            "type": "function",
            "name": "shell",
            "description": TOOL_DESCRIPTION,
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
            },
            "strict": False,
        }
    ]
    items: list[Any] = [{"role": "user", "content": instruction}]
    for _ in range(MAX_TURNS):
        with client.responses.stream(
            model=model, input=items, tools=tools, store=False, max_output_tokens=4096
        ) as stream:
            reply = stream.get_final_response()
        items += [item.model_dump(exclude_none=True) for item in reply.output]
        calls = [item for item in reply.output if item.type == "function_call"]
        if not calls:
            return
        for call in calls:
            command = json.loads(call.arguments)["command"]
            items.append(
                {"type": "function_call_output", "call_id": call.call_id, "output": shell(command)}
            )


def main() -> None:
    wire, model, instruction_file = sys.argv[1:4]
    dump = os.environ.get("SHELL_AGENT_DUMP")
    if dump:
        Path(dump).write_text(json.dumps({"env": dict(os.environ), "argv": sys.argv}))
    instruction = Path(instruction_file).read_text(encoding="utf-8")
    loops = {"anthropic": anthropic_loop, "openai": openai_loop, "responses": responses_loop}
    loops[wire](model, instruction)


if __name__ == "__main__":
    main()
