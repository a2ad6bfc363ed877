"""OpenAI Responses client over httpx2 (OpenAI, and vLLM / SGLang's ``/v1/responses``).

``POST {base_url}/responses``, streamed, through the same pooled, marking HTTP client and
retry policy as the Chat Completions client (:mod:`~pytest_agentspeed.clients.openai_http`):
each stream is read to its end so the connection is reused, failed attempts (429, 5xx,
connection errors) are retried as the SDKs do and each is recorded. The events are mapped by
:class:`~pytest_agentspeed.clients.responses_stream.ResponsesStream` (shared with the
recording proxy) onto the marks of the other wires: reasoning-summary and reasoning deltas are
the reasoning phase, output text and function-call arguments generation.

The request is stateless, as Codex CLI sends it (``tests/data/codex_request.json``): the whole
conversation goes as ``input`` items every turn, ``store: false``, and
``include: ["reasoning.encrypted_content"]`` so that reasoning items come back with their
encrypted content and can be sent back unchanged (:func:`to_responses_input`).
``prompt_cache_key`` is the session id, so a session's turns share a cache. The reasoning
configuration is not the client's to choose: a named endpoint sets it in its ``extra_body``
(``reasoning = {effort = "low", summary = "auto"}``), which is merged last into every body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_agentspeed.clients import ModelResponse, TurnRequest
from pytest_agentspeed.clients.openai_client import system_text, tool_result_text
from pytest_agentspeed.clients.openai_http import OpenAIWireClient
from pytest_agentspeed.clients.responses_stream import ResponsesStream
from pytest_agentspeed.timing import EventLog


class ResponsesClient(OpenAIWireClient):
    """Sends turns over the OpenAI Responses wire, recording timing events.

    The parameters are :class:`~pytest_agentspeed.clients.openai_http.OpenAIWireClient`'s;
    ``extra_body`` is where ``reasoning: {effort, summary}`` comes from.
    """

    path = "/responses"

    def complete(self, request: TurnRequest, log: EventLog) -> ModelResponse:
        """Stream one turn; see :class:`~pytest_agentspeed.clients.ModelClient`."""
        body = {
            "model": self.model,
            "instructions": system_text(request.system),
            "input": to_responses_input(request.messages),
            "tools": [to_responses_tool(t) for t in request.tools],
            "max_output_tokens": self.max_tokens or request.max_tokens,
            "stream": True,
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": request.session_id,
            **self.extra_body,
        }
        return self.send(body, log, self.events)

    def events(self, log: EventLog) -> ResponsesStream:
        """See :meth:`~pytest_agentspeed.clients.openai_http.OpenAIWireClient.events`."""
        return ResponsesStream(log)


def to_responses_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic-shaped tool as a Responses function tool (flat, not under ``function``)."""
    return {
        "type": "function",
        "name": tool["name"],
        "description": tool.get("description", ""),
        "parameters": tool.get("input_schema", {"type": "object"}),
        "strict": False,
    }


def to_responses_input(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The agent's Anthropic-shaped conversation as Responses ``input`` items.

    * a block that holds the output item it came from (``item``, from
      :class:`~pytest_agentspeed.clients.responses_stream.ResponsesStream`) sends that item
      back unchanged: reasoning items with their encrypted content, messages, function calls;
    * otherwise assistant text is an assistant ``message`` of ``output_text``, a ``tool_use``
      a ``function_call`` (``call_id``, ``name``, ``arguments`` as JSON text), and a thinking
      block without an item is dropped (this wire takes reasoning back only as its own items);
    * a user's ``tool_result`` blocks are ``function_call_output`` items, then the user's text
      blocks one ``message`` of ``input_text`` parts.

    Cache breakpoints (``cache_control``) have no place on this wire and are left out.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message["content"]
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        if message["role"] == "assistant":
            out += [item for b in blocks if (item := _assistant_item(b)) is not None]
            continue
        texts = []
        for b in blocks:
            if b.get("type") == "tool_result":
                out.append(
                    {
                        "type": "function_call_output",
                        "call_id": b["tool_use_id"],
                        "output": tool_result_text(b),
                    }
                )
            elif b.get("type") == "text":
                texts.append({"type": "input_text", "text": b["text"]})
        if texts:
            out.append({"type": "message", "role": "user", "content": texts})
    return out


def _assistant_item(block: Mapping[str, Any]) -> dict[str, Any] | None:
    item = block.get("item")
    if isinstance(item, dict):
        return item
    kind = block.get("type")
    if kind == "text":
        return {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": block["text"]}],
        }
    if kind == "tool_use":
        return {
            "type": "function_call",
            "call_id": block["id"],
            "name": block["name"],
            "arguments": json.dumps(block.get("input", {})),
        }
    return None
