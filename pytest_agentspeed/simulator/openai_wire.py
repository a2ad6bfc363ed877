"""The OpenAI-compatible Chat Completions wire, as the simulated endpoint writes it.

Shapes from ``research/wire-spec.md`` section 3, checked with the official ``openai`` SDK: a
role chunk first (``content: ""``, which is not a token), reasoning as both
``reasoning_content`` (DeepSeek, SGLang, older vLLM) and ``reasoning`` (current vLLM), content,
tool calls whose id and name come once per index followed by argument fragments, a finish chunk
with an empty delta, the usage chunk (``choices: []``) only when ``stream_options.include_usage``
asked for it (other chunks then carry ``"usage": null``), and ``data: [DONE]``.

Requests are turned into the Anthropic-shaped conversation the task library reads, so the same
trajectories play on both wires.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_agentspeed.simulator.anthropic_wire import OutBlock, content_text
from pytest_agentspeed.simulator.latency import ResponsePlan
from pytest_agentspeed.simulator.pacing import end_writes, step_writes
from pytest_agentspeed.simulator.splice import EventTemplate

FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
ROLES = ("system", "developer", "user", "assistant", "tool")


def to_anthropic_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as Anthropic-shaped messages (system prompts dropped).

    Tool results become ``tool_result`` blocks of a user message, tool calls ``tool_use``
    blocks of the assistant message, so checks and turn counting work as on the other wire.
    """
    out: list[dict[str, Any]] = []

    def user_blocks() -> list[dict[str, Any]]:
        if not out or out[-1]["role"] != "user":
            out.append({"role": "user", "content": []})
        blocks: list[dict[str, Any]] = out[-1]["content"]
        return blocks

    for m in messages:
        role = m.get("role")
        if role == "user":
            user_blocks().append({"type": "text", "text": content_text(m.get("content"))})
        elif role == "tool":
            user_blocks().append(
                {
                    "type": "tool_result",
                    "tool_use_id": str(m.get("tool_call_id")),
                    "content": content_text(m.get("content")),
                }
            )
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = content_text(m.get("content"))
            if text:
                blocks.append({"type": "text", "text": text})
            for call in m.get("tool_calls") or []:
                if not isinstance(call, dict):
                    continue
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": str(call.get("id")),
                        "name": str(function.get("name")),
                        "input": arguments if isinstance(arguments, dict) else {},
                    }
                )
            out.append({"role": "assistant", "content": blocks})
    return out


def invalid(body: Any) -> str | None:
    """Why the body is not a chat completions request, or ``None``."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: field required (a string)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: field required (a non-empty list)"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return f"messages[{i}].role: must be one of {', '.join(ROLES)}"
    limit = max_tokens(body)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return "max_tokens: must be a positive integer"
    if not isinstance(body.get("tools", []), list):
        return "tools: must be a list"
    return None


def max_tokens(body: Mapping[str, Any]) -> Any:
    """The output limit the request asks for (``max_completion_tokens`` wins)."""
    return body.get("max_completion_tokens", body.get("max_tokens", 4096))


def usage_json(
    *, prompt_tokens: int, cached: int, completion_tokens: int, reasoning_tokens: int
) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


def error_json(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def completion_json(
    *,
    completion_id: str,
    model: str,
    created: int,
    blocks: Sequence[OutBlock],
    stop_reason: str,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """A whole (non-streamed) chat completion."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    text = "".join(b.text for b in blocks if b.type == "text")
    reasoning = "".join(b.text for b in blocks if b.type == "thinking")
    if text:
        message["content"] = text
    if reasoning:
        message["reasoning_content"] = reasoning
        message["reasoning"] = reasoning
    calls = [_call(b) for b in blocks if b.type == "tool_use"]
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": FINISH[stop_reason]}
        ],
        "usage": usage,
    }


def _call(block: OutBlock) -> dict[str, Any]:
    return {
        "id": block.tool_id,
        "type": "function",
        "function": {"name": block.tool_name, "arguments": block.text},
    }


def render_stream(
    *,
    completion_id: str,
    model: str,
    created: int,
    blocks: Sequence[OutBlock],
    stop_reason: str,
    usage: dict[str, Any],
    plan: ResponsePlan,
    include_usage: bool,
) -> list[tuple[float, bytes]]:
    """The streamed response as (offset from arrival, bytes) writes."""
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = dict(
            base,
            choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        )
        if include_usage:
            data["usage"] = None
        return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()

    writes = [(plan.headers_s, chunk({"role": "assistant", "content": ""}))]
    live = [b for b in blocks if b.pieces]
    writes += step_writes(live, plan.steps, _ChunkEvents(chunk, live))
    tail = chunk({}, FINISH[stop_reason])
    if include_usage:
        final = dict(base, choices=[], usage=usage)
        tail += f"data: {json.dumps(final, separators=(',', ':'))}\n\n".encode()
    tail += b"data: [DONE]\n\n"
    end_writes(writes, plan.end_s, tail, steps=len(plan.steps))
    return writes


class _ChunkEvents:
    """Delta chunks only (:class:`~pytest_agentspeed.simulator.pacing.BlockEvents`): chat
    completions has no events around a block."""

    def __init__(self, chunk: Callable[[dict[str, Any]], bytes], live: Sequence[OutBlock]) -> None:
        calls = [b for b in live if b.type == "tool_use"]
        # Per block, the chunk of its first tokens and of the later ones (they differ only for
        # a tool call, whose id and name come once); None for reasoning that is not sent.
        self._templates = [_templates(chunk, block, calls) for block in live]

    def open(self, index: int, block: OutBlock) -> bytes:
        return b""

    def delta(self, index: int, block: OutBlock, text: str, first: bool) -> bytes:
        pair = self._templates[index]
        return b"" if pair is None else pair[not first](text)

    def close(self, index: int, block: OutBlock) -> bytes:
        return b""


def _templates(
    chunk: Callable[[dict[str, Any]], bytes], block: OutBlock, calls: Sequence[OutBlock]
) -> tuple[EventTemplate, EventTemplate] | None:
    """The block's chunks, text left open: for its first tokens and for the later ones."""
    if block.type == "thinking":
        if block.omitted:
            return None
        reasoning = EventTemplate(
            lambda text: chunk({"reasoning_content": text, "reasoning": text})
        )
        return reasoning, reasoning
    if block.type == "text":
        content = EventTemplate(lambda text: chunk({"content": text}))
        return content, content
    k = next(i for i, call in enumerate(calls) if call is block)
    first = EventTemplate(
        lambda text: chunk(
            {
                "tool_calls": [
                    {
                        "index": k,
                        "id": block.tool_id,
                        "type": "function",
                        "function": {"name": block.tool_name, "arguments": text},
                    }
                ]
            }
        )
    )
    later = EventTemplate(
        lambda text: chunk({"tool_calls": [{"index": k, "function": {"arguments": text}}]})
    )
    return first, later
