"""OpenAI-compatible Chat Completions client over httpx2 (vLLM, SGLang, llama.cpp, ...).

Not the ``openai`` SDK: its sync client drops the connection after every stream
(``research/wire-spec.md`` 3.6), so each turn would pay a new handshake inside the measured
time to first token. This client reads each stream to its end, so the pooled connection is
reused across the seconds an agent spends in tools
(:mod:`~pytest_agentspeed.clients.openai_http`, shared with the Responses client).

It takes the same marks as the Anthropic client, and
:class:`~pytest_agentspeed.clients.streams.OpenAIStream` (shared with the recording proxy)
maps the chunks onto the same events:

* the role chunk (``content: ""``) is not a token;
* ``reasoning_content`` and ``reasoning`` deltas (both are read; servers differ) open a
  thinking block: the reasoning phase;
* content and tool-call deltas open text and tool-use blocks: generation;
* the ``include_usage`` chunk gives the usage; ``prompt_tokens`` includes cached tokens, which
  are subtracted so ``input_tokens`` means uncached, as on the Anthropic wire.

Tool calls are assembled from fragments keyed by ``index``. Failed attempts (429, 5xx,
connection errors) are retried like the official SDKs do, each recorded as an attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pytest_agentspeed.clients import ModelResponse, TurnRequest
from pytest_agentspeed.clients.openai_http import OpenAIWireClient
from pytest_agentspeed.clients.streams import OpenAIStream
from pytest_agentspeed.timing import EventLog


class OpenAIClient(OpenAIWireClient):
    """Sends turns over the OpenAI-compatible Chat Completions wire, recording timing events.

    The parameters are :class:`~pytest_agentspeed.clients.openai_http.OpenAIWireClient`'s.
    """

    path = "/chat/completions"

    def complete(self, request: TurnRequest, log: EventLog) -> ModelResponse:
        """Stream one turn; see :class:`~pytest_agentspeed.clients.ModelClient`."""
        body = {
            "model": self.model,
            "messages": to_openai_messages(request.system, request.messages),
            "tools": [to_openai_tool(t) for t in request.tools],
            "max_tokens": self.max_tokens or request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": request.session_id,
            **self.extra_body,
        }
        return self.send(body, log, self.events)

    def events(self, log: EventLog) -> OpenAIStream:
        """See :meth:`~pytest_agentspeed.clients.openai_http.OpenAIWireClient.events`."""
        return OpenAIStream(log)


def to_openai_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool["name"],
            "description": tool.get("description", ""),
            "parameters": tool.get("input_schema", {"type": "object"}),
        },
    }


def to_openai_messages(system: Any, messages: Any) -> list[dict[str, Any]]:
    """The agent's Anthropic-shaped conversation in Chat Completions form.

    Thinking blocks are dropped (OpenAI-compatible servers do not take reasoning back); tool
    results become ``tool`` messages right after the assistant message that asked for them.
    """
    out: list[dict[str, Any]] = []
    instructions = system_text(system)
    if instructions:
        out.append({"role": "system", "content": instructions})
    for message in messages:
        content = message["content"]
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        if message["role"] == "assistant":
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": json.dumps(b.get("input", {}))},
                }
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            entry: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
            continue
        texts = []
        for b in blocks:
            if b.get("type") == "tool_result":
                result = tool_result_text(b)
                out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": result})
            elif b.get("type") == "text":
                texts.append(b["text"])
        if texts:
            out.append({"role": "user", "content": "\n\n".join(texts)})
    return out


def system_text(system: Any) -> str:
    """The text of the agent's system blocks, joined (OpenAI's wires take it as one string)."""
    return "".join(b.get("text", "") for b in system if isinstance(b, dict))


def tool_result_text(block: Mapping[str, Any]) -> str:
    """A ``tool_result`` block's content as one string (OpenAI's wires take no blocks)."""
    result = block.get("content", "")
    if isinstance(result, list):
        return "".join(part.get("text", "") for part in result if isinstance(part, dict))
    return str(result)
