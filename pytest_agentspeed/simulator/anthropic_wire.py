"""The Anthropic Messages wire, as the simulated endpoint writes it.

Pure functions from a reply (blocks of token pieces) and a :class:`ResponsePlan` to the exact
bytes and the moments they go out. The shapes follow ``research/wire-spec.md`` section 1 and
its simulator checklist (section 6), which were checked against the official SDK: every event
has an ``event:`` line and single-line JSON data, ``usage`` is always present in
``message_start`` and ``message_delta``, block indexes are contiguous, a thinking block's
``signature_delta`` comes just before its stop, tool input fragments concatenate to valid JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_agentspeed.simulator.latency import ContentClass, ResponsePlan
from pytest_agentspeed.simulator.pacing import end_writes, step_writes
from pytest_agentspeed.simulator.splice import EventTemplate

BlockType = Literal["thinking", "text", "tool_use"]
#: During a long wait for the first token, keep the connection visibly alive.
PING_EVERY_S = 2.0


@dataclass(slots=True, kw_only=True)
class OutBlock:
    """One content block of a simulated response."""

    type: BlockType
    #: Token pieces; concatenated they are the block's text (or the tool input's JSON).
    pieces: list[str]
    content_class: ContentClass
    tool_id: str = ""
    tool_name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    #: Thinking with ``display: "omitted"``: tokens are spent, no ``thinking_delta`` is sent.
    omitted: bool = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def signature(self) -> str:
        digest = hashlib.sha256(self.text.encode()).digest()
        return base64.b64encode(b"agentspeed-sim" + digest).decode()

    def to_content(self) -> dict[str, Any]:
        """The block as it appears in a complete (non-streamed) message."""
        if self.type == "thinking":
            return {
                "type": "thinking",
                "thinking": "" if self.omitted else self.text,
                "signature": self.signature,
            }
        if self.type == "text":
            return {"type": "text", "text": self.text}
        return {
            "type": "tool_use",
            "id": self.tool_id,
            "name": self.tool_name,
            "input": self.tool_input,
        }


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text of its blocks (both wires)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def invalid(body: Any) -> str | None:
    """Why the request body is not a Messages request, or ``None``."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: field required (a string)"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: field required (a positive integer)"
    if not isinstance(body.get("tools", []), list):
        return "tools: must be a list of tool definitions"
    if not isinstance(body.get("system", ""), str | list):
        return "system: must be a string or a list of text blocks"
    for key in ("metadata", "thinking"):
        if not isinstance(body.get(key, {}), dict):
            return f"{key}: must be an object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: field required (a non-empty list)"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant", "system"):
            return f"messages.{i}.role: must be 'user' or 'assistant'"
        content = m.get("content")
        if not isinstance(content, str | list) or (
            isinstance(content, list) and not all(isinstance(b, dict) for b in content)
        ):
            return f"messages.{i}.content: must be a string or a list of content blocks"
    return None


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def usage_json(
    *, input_tokens: int, cache_read: int, cache_write: int, output_tokens: int
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output_tokens,
    }


def message_json(
    *,
    message_id: str,
    model: str,
    blocks: Sequence[OutBlock],
    stop_reason: str,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """A complete message, the body of a non-streamed response."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [b.to_content() for b in blocks],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def error_json(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """The error body of the Anthropic API (also the data of a mid-stream ``error`` event)."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def render_stream(
    *,
    message_id: str,
    model: str,
    blocks: Sequence[OutBlock],
    stop_reason: str,
    usage: dict[str, Any],
    plan: ResponsePlan,
) -> list[tuple[float, bytes]]:
    """The response body as (offset from arrival, bytes) writes.

    ``plan.steps`` must emit exactly as many tokens as the blocks hold pieces.
    """
    start_usage = dict(usage, output_tokens=1)
    head = {
        "type": "message_start",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        },
    }
    writes: list[tuple[float, bytes]] = [
        (plan.headers_s, sse("message_start", head) + sse("ping", {"type": "ping"}))
    ]
    t = plan.headers_s + PING_EVERY_S
    while t < plan.first_token_s:
        writes.append((t, sse("ping", {"type": "ping"})))
        t += PING_EVERY_S

    # Blocks without a single token are not sent at all.
    live = [b for b in blocks if b.pieces]
    writes += step_writes(live, plan.steps, _BlockEvents(live))
    tail = sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": usage,
        },
    ) + sse("message_stop", {"type": "message_stop"})
    end_writes(writes, plan.end_s, tail, steps=len(plan.steps))
    return writes


class _BlockEvents:
    """The content block events of the Messages wire (:class:`~pytest_agentspeed.simulator.
    pacing.BlockEvents`); each block's delta encoded once, text left open."""

    def __init__(self, live: Sequence[OutBlock]) -> None:
        self._deltas = [_delta_template(index, block) for index, block in enumerate(live)]

    def open(self, index: int, block: OutBlock) -> bytes:
        return _block_start(index, block)

    def delta(self, index: int, block: OutBlock, text: str, first: bool) -> bytes:
        template = self._deltas[index]
        return b"" if template is None else template(text)

    def close(self, index: int, block: OutBlock) -> bytes:
        return _block_stop(index, block)


def _block_start(index: int, block: OutBlock) -> bytes:
    content: dict[str, Any]
    if block.type == "thinking":
        content = {"type": "thinking", "thinking": "", "signature": ""}
    elif block.type == "text":
        content = {"type": "text", "text": ""}
    else:
        content = {"type": "tool_use", "id": block.tool_id, "name": block.tool_name, "input": {}}
    out = sse(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": content},
    )
    if block.type == "tool_use":
        # Real streams open a tool call's input with an empty fragment.
        out += _delta(index, block, "")
    return out


def _delta(index: int, block: OutBlock, text: str) -> bytes:
    """The block's delta event carrying ``text``, encoded whole (what the templates reproduce)."""
    if block.type == "thinking":
        if block.omitted:
            return b""
        delta = {"type": "thinking_delta", "thinking": text}
    elif block.type == "text":
        delta = {"type": "text_delta", "text": text}
    else:
        delta = {"type": "input_json_delta", "partial_json": text}
    return sse(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _delta_template(index: int, block: OutBlock) -> EventTemplate | None:
    """:func:`_delta` encoded once for the block, text left open; ``None`` when the block
    sends no deltas (omitted thinking)."""
    if block.type == "thinking" and block.omitted:
        return None
    return EventTemplate(lambda text: _delta(index, block, text))


def _block_stop(index: int, block: OutBlock) -> bytes:
    out = b""
    if block.type == "thinking":
        out += sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "signature_delta", "signature": block.signature},
            },
        )
    return out + sse("content_block_stop", {"type": "content_block_stop", "index": index})
