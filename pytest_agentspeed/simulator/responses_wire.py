"""The OpenAI Responses API wire (``POST /v1/responses``), as the simulated endpoint writes it.

Shapes from the official ``openai`` SDK's types (``openai/types/responses/``) and
``research/wire-spec.md`` section 3: named events whose data carries its ``type`` and a
``sequence_number`` that grows by one per event; ``response.created`` and
``response.in_progress`` (the response so far, no output, no usage) when the headers go out;
then per output item ``response.output_item.added``, its part and delta events, and
``response.output_item.done``; and ``response.completed`` (or ``response.incomplete`` when
``max_output_tokens`` cut it) carrying the whole response with its usage. There is no
``[DONE]``.

Output items: a ``reasoning`` item (``rs_...``) when the model reasons, its summary streamed
as ``response.reasoning_summary_text.delta`` events when the request asked for a summary and
otherwise spent in silence (its tokens still counted as ``reasoning_tokens``), with an opaque
``encrypted_content`` when ``include`` asks for it; a ``message`` item (``msg_...``) with one
``output_text`` part; a ``function_call`` item per tool call (``fc_...``, its ``call_id``
``call_...``), arguments streamed as ``response.function_call_arguments.delta`` fragments.

A mid-stream failure is an ``error`` event, with its fields both at the top level (as the API
reference documents them) and nested under ``error`` (as the live API sends them, and the
only shape on which the SDK raises), then ``response.failed``.

Requests are turned into the Anthropic-shaped conversation the task library reads, so the same
trajectories play on every wire.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pytest_agentspeed.simulator.anthropic_wire import OutBlock, content_text, sse
from pytest_agentspeed.simulator.latency import ResponsePlan
from pytest_agentspeed.simulator.pacing import end_writes, step_writes
from pytest_agentspeed.simulator.splice import NumberedEventTemplate

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "ResponseHead",
    "error_events",
    "instructions_text",
    "invalid",
    "max_output_tokens",
    "reasoning_mode",
    "render_stream",
    "response_json",
    "session_key",
    "to_anthropic_messages",
    "usage_json",
]

#: The output limit of a request that sets none. Codex sends none, and a turn must not be cut:
#: the largest output OpenAI's current models allow.
DEFAULT_MAX_OUTPUT_TOKENS: Final = 128_000
#: ``reasoning.summary`` values that make the reasoning's summary stream.
SUMMARY_MODES: Final = ("auto", "concise", "detailed")
#: Message roles of input items.
ROLES: Final = ("user", "assistant", "system", "developer")
_CALLS: Final = ("function_call", "custom_tool_call")
_OUTPUTS: Final = ("function_call_output", "custom_tool_call_output")
_ID_PREFIX: Final = {"thinking": "rs", "text": "msg", "tool_use": "fc"}
#: The field that numbers the part a delta belongs to (a function call has no parts).
_PART_INDEX: Final = {"thinking": "summary_index", "text": "content_index"}
_DELTA: Final = {
    "thinking": "response.reasoning_summary_text.delta",
    "text": "response.output_text.delta",
    "tool_use": "response.function_call_arguments.delta",
}


def invalid(body: Any) -> str | None:
    """Why the body is not a Responses API request this endpoint serves, or ``None``."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: field required (a string)"
    if body.get("previous_response_id") is not None:
        return (
            "previous_response_id: not supported by the simulated endpoint, which stores "
            "nothing; send the whole conversation in input"
        )
    items = body.get("input")
    if not isinstance(items, str | list):
        return "input: field required (a string or a list of input items)"
    for i, item in enumerate(items if isinstance(items, list) else []):
        problem = _invalid_item(item)
        if problem is not None:
            return f"input[{i}]{problem}"
    if not isinstance(body.get("instructions") or "", str):
        return "instructions: must be a string"
    if not isinstance(body.get("tools", []), list):
        return "tools: must be a list of tool definitions"
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        return "max_output_tokens: must be a positive integer"
    for key in ("reasoning", "text", "metadata"):
        if not isinstance(body.get(key) or {}, dict):
            return f"{key}: must be an object"
    if not isinstance(body.get("include") or [], list):
        return "include: must be a list"
    return None


def _invalid_item(item: Any) -> str | None:
    if not isinstance(item, dict):
        return ": must be an object"
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        if item.get("role") not in ROLES:
            return f".role: must be one of {', '.join(ROLES)}"
        content = item.get("content")
        if not isinstance(content, str | list) or (
            isinstance(content, list) and not all(isinstance(p, dict) for p in content)
        ):
            return ".content: must be a string or a list of content parts"
    elif kind in _CALLS + _OUTPUTS:
        if not isinstance(item.get("call_id"), str):
            return ".call_id: field required (a string)"
    elif not isinstance(kind, str):
        return ".type: field required (a string)"
    return None


def max_output_tokens(body: Mapping[str, Any]) -> int:
    """The output limit the request asks for, or :data:`DEFAULT_MAX_OUTPUT_TOKENS`."""
    limit = body.get("max_output_tokens")
    return DEFAULT_MAX_OUTPUT_TOKENS if limit is None else int(limit)


def _items(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = body.get("input")
    if isinstance(items, str):
        return [{"type": "message", "role": "user", "content": items}]
    return [i for i in items or [] if isinstance(i, dict)]


def _kind(item: Mapping[str, Any]) -> Any:
    return item.get("type", "message" if "role" in item else None)


def to_anthropic_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation of ``input`` as Anthropic-shaped messages (system and developer
    messages dropped: :func:`instructions_text` reads them).

    Consecutive assistant items (Codex sends a turn's reasoning, message and function calls as
    separate items) make one assistant message, so each model turn counts once; a function
    call is a ``tool_use`` block whose id is its ``call_id``, its output a ``tool_result``;
    a custom tool's free-form input is ``{"input": ...}``. Reasoning items hold nothing the
    task library reads, but they open the assistant turn they belong to.
    """
    out: list[dict[str, Any]] = []

    def blocks(role: str) -> list[dict[str, Any]]:
        if not out or out[-1]["role"] != role:
            out.append({"role": role, "content": []})
        content: list[dict[str, Any]] = out[-1]["content"]
        return content

    for item in _items(body):
        kind = _kind(item)
        if kind == "message":
            role = item.get("role")
            text = content_text(item.get("content"))
            if role == "user":
                blocks("user").append({"type": "text", "text": text})
            elif role == "assistant":
                assistant = blocks("assistant")
                if text:
                    assistant.append({"type": "text", "text": text})
        elif kind == "reasoning":
            blocks("assistant")
        elif kind in _CALLS:
            blocks("assistant").append(
                {
                    "type": "tool_use",
                    "id": str(item.get("call_id")),
                    "name": str(item.get("name")),
                    "input": _call_input(item),
                }
            )
        elif kind in _OUTPUTS:
            output = item.get("output")
            blocks("user").append(
                {
                    "type": "tool_result",
                    "tool_use_id": str(item.get("call_id")),
                    "content": output if isinstance(output, str) else content_text(output),
                }
            )
    return out


def _call_input(item: Mapping[str, Any]) -> dict[str, Any]:
    if item.get("type") == "custom_tool_call":
        return {"input": item.get("input")}
    try:
        arguments = json.loads(item.get("arguments") or "{}")
    except (TypeError, ValueError):
        return {}
    return arguments if isinstance(arguments, dict) else {}


def instructions_text(body: Mapping[str, Any]) -> str:
    """The agent's instructions: ``instructions`` and the system and developer messages."""
    parts = [str(body.get("instructions") or "")]
    parts += [
        content_text(item.get("content"))
        for item in _items(body)
        if _kind(item) == "message" and item.get("role") in ("system", "developer")
    ]
    return "\n".join(parts)


def reasoning_mode(body: Mapping[str, Any], *, reasons: bool) -> str:
    """How a model's reasoning is sent: "on" (its summary streams), "omitted" (spent, an item
    without summary) or "off" (the model does not reason)."""
    reasoning = body.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, dict) else {}
    if not reasons or reasoning.get("effort") == "none":
        return "off"
    summary = reasoning.get("summary") or reasoning.get("generate_summary")
    return "on" if summary in SUMMARY_MODES else "omitted"


def session_key(body: Mapping[str, Any]) -> str | None:
    """The session's identity the request states: ``prompt_cache_key`` (Codex: its thread id),
    else ``safety_identifier`` or ``user``."""
    for key in ("prompt_cache_key", "safety_identifier", "user"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def usage_json(
    *, input_tokens: int, cached: int, cache_write: int, output_tokens: int, reasoning_tokens: int
) -> dict[str, Any]:
    """The usage object; ``input_tokens`` includes the cached ones, ``output_tokens`` the
    reasoning ones."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": cache_write},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """What every rendering of one response shares: its id, time and the request's settings
    the response object repeats."""

    response_id: str
    created_at: int
    #: The request's settings, as the response object echoes them.
    echo: dict[str, Any]
    #: ``include`` asked for ``reasoning.encrypted_content``.
    encrypted: bool

    @classmethod
    def of(cls, body: Mapping[str, Any], response_id: str, created_at: int) -> ResponseHead:
        """The head of the response to request ``body``."""
        reasoning = body.get("reasoning") or {}
        include = body.get("include") or []
        echo = {
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") or {},
            "model": body["model"],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {
                "effort": reasoning.get("effort"),
                "summary": reasoning.get("summary"),
            },
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "user": body.get("user"),
        }
        return cls(response_id, created_at, echo, "reasoning.encrypted_content" in include)

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        *,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The response object in state ``status``."""
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": self.created_at if status == "completed" else None,
            "error": error,
            "incomplete_details": incomplete,
            **self.echo,
            "output": output,
            "usage": usage,
        }

    def item_id(self, index: int, block: OutBlock) -> str:
        return f"{_ID_PREFIX[block.type]}_{self.response_id[5:]}{index:02d}"

    def item(self, index: int, block: OutBlock, status: str) -> dict[str, Any]:
        """Output item ``index`` as :func:`response_json` and ``output_item.done`` give it."""
        item_id = self.item_id(index, block)
        if block.type == "thinking":
            item: dict[str, Any] = {
                "id": item_id,
                "type": "reasoning",
                "summary": [] if block.omitted else [{"type": "summary_text", "text": block.text}],
            }
            if self.encrypted:
                item["encrypted_content"] = block.signature
            return item
        if block.type == "text":
            return {
                "id": item_id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [_text_part(block.text)],
            }
        return {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "arguments": block.text,
            "call_id": block.tool_id,
            "name": block.tool_name,
        }

    def output(self, blocks: Sequence[OutBlock], stop_reason: str) -> list[dict[str, Any]]:
        """The output items; the last is incomplete when the token budget cut the reply."""
        last = len(blocks) - 1 if stop_reason == "max_tokens" else -1
        return [
            self.item(i, b, "incomplete" if i == last else "completed")
            for i, b in enumerate(blocks)
        ]


def response_json(
    *, head: ResponseHead, blocks: Sequence[OutBlock], stop_reason: str, usage: dict[str, Any]
) -> dict[str, Any]:
    """The whole response, the body of a non-streamed reply."""
    live = [b for b in blocks if b.pieces]
    status = "incomplete" if stop_reason == "max_tokens" else "completed"
    return head.response(status, head.output(live, stop_reason), usage)


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _event(name: str, data: dict[str, Any], sequence_number: int) -> bytes:
    return sse(name, {"type": name, **data, "sequence_number": sequence_number})


def render_stream(
    *,
    head: ResponseHead,
    blocks: Sequence[OutBlock],
    stop_reason: str,
    usage: dict[str, Any],
    plan: ResponsePlan,
) -> list[tuple[float, bytes]]:
    """The streamed response as (offset from arrival, bytes) writes."""
    live = [b for b in blocks if b.pieces]
    events = _ItemEvents(head, live, stop_reason)
    start = head.response("in_progress", [], None)
    writes = [
        (
            plan.headers_s,
            events.emit("response.created", {"response": start})
            + events.emit("response.in_progress", {"response": start}),
        )
    ]
    writes += step_writes(live, plan.steps, events)
    done = response_json(head=head, blocks=live, stop_reason=stop_reason, usage=usage)
    final = "response.incomplete" if stop_reason == "max_tokens" else "response.completed"
    end_writes(writes, plan.end_s, events.emit(final, {"response": done}), steps=len(plan.steps))
    return writes


class _ItemEvents:
    """The output item events (:class:`~pytest_agentspeed.simulator.pacing.BlockEvents`),
    numbered as they are made (the write loop asks for them in stream order)."""

    def __init__(self, head: ResponseHead, live: Sequence[OutBlock], stop_reason: str) -> None:
        self.head = head
        self.output = head.output(live, stop_reason)
        self.sequence_number = 0
        self._deltas = [self._template(i, b) for i, b in enumerate(live)]

    def emit(self, name: str, data: dict[str, Any]) -> bytes:
        out = _event(name, data, self.sequence_number)
        self.sequence_number += 1
        return out

    def _where(self, index: int, block: OutBlock) -> dict[str, Any]:
        """The fields that place an event: its item, and the part within it."""
        where: dict[str, Any] = {"item_id": self.head.item_id(index, block), "output_index": index}
        if block.type != "tool_use":
            where[_PART_INDEX[block.type]] = 0
        return where

    def _template(self, index: int, block: OutBlock) -> NumberedEventTemplate | None:
        if block.type == "thinking" and block.omitted:
            return None
        name = _DELTA[block.type]
        fields = self._where(index, block)
        if block.type == "text":
            fields["logprobs"] = []
        return NumberedEventTemplate(lambda text, n: _event(name, fields | {"delta": text}, n))

    def open(self, index: int, block: OutBlock) -> bytes:
        item = dict(self.output[index])
        if block.type == "thinking":
            item["summary"] = []
            item.pop("encrypted_content", None)
        elif block.type == "text":
            item |= {"status": "in_progress", "content": []}
        else:
            item |= {"status": "in_progress", "arguments": ""}
        out = self.emit("response.output_item.added", {"output_index": index, "item": item})
        where = self._where(index, block)
        if block.type == "thinking" and not block.omitted:
            part = {"type": "summary_text", "text": ""}
            out += self.emit("response.reasoning_summary_part.added", where | {"part": part})
        elif block.type == "text":
            out += self.emit("response.content_part.added", where | {"part": _text_part("")})
        return out

    def delta(self, index: int, block: OutBlock, text: str, first: bool) -> bytes:
        template = self._deltas[index]
        if template is None:
            return b""
        self.sequence_number += 1
        return template(text, self.sequence_number - 1)

    def close(self, index: int, block: OutBlock) -> bytes:
        where, text = self._where(index, block), block.text
        out = b""
        if block.type == "thinking" and not block.omitted:
            out += self.emit("response.reasoning_summary_text.done", where | {"text": text})
            part = {"type": "summary_text", "text": text}
            out += self.emit("response.reasoning_summary_part.done", where | {"part": part})
        elif block.type == "text":
            done = {"text": text, "logprobs": []}
            out += self.emit("response.output_text.done", where | done)
            out += self.emit("response.content_part.done", where | {"part": _text_part(text)})
        elif block.type == "tool_use":
            out += self.emit("response.function_call_arguments.done", where | {"arguments": text})
        item = {"output_index": index, "item": self.output[index]}
        return out + self.emit("response.output_item.done", item)


def events_in(writes: Sequence[tuple[float, bytes]]) -> int:
    """How many events the writes hold (each ends in a blank line; JSON data has none)."""
    return sum(data.count(b"\n\n") for _, data in writes)


def error_events(head: ResponseHead, sequence_number: int, error_type: str, message: str) -> bytes:
    """A stream's end on a server failure: an ``error`` event numbered ``sequence_number``
    (the SDK raises :class:`openai.APIError` on its nested ``error``), then
    ``response.failed``."""
    fields = {"code": "server_error", "message": message, "param": None}
    error = _event("error", fields | {"error": {"type": error_type, **fields}}, sequence_number)
    failed = head.response("failed", [], None, error={"code": "server_error", "message": message})
    return error + _event("response.failed", {"response": failed}, sequence_number + 1)
