"""From an OpenAI Responses stream to timing events and the reply.

:class:`ResponsesStream` is the Responses wire's counterpart of
:class:`~pytest_agentspeed.clients.streams.OpenAIStream` (same ``feed`` / ``response`` /
``lenient_end``), used by :class:`~pytest_agentspeed.clients.responses_client.ResponsesClient`
and by the recording proxy, so both take the same marks. Its events map onto the timing
events the other wires produce (``docs/timing.md``, "The wires' events"):

* ``response.created`` is ``message_start`` (the first event);
* ``response.output_item.added`` opens a block: a ``reasoning`` item a ``thinking`` block
  (reasoning phase), a ``message`` a ``text`` block, a ``function_call`` (or
  ``custom_tool_call``) a ``tool_use`` block; ``response.output_item.done`` closes it;
* ``response.reasoning_summary_text.delta`` and ``response.reasoning_text.delta`` are thinking
  deltas, ``response.output_text.delta`` (and ``refusal.delta``) text deltas,
  ``response.function_call_arguments.delta`` (and ``custom_tool_call_input.delta``) tool input
  deltas: a delta is a token when its text is not empty;
* lifecycle events (``response.queued``, ``response.in_progress``, ``content_part.added``,
  ``reasoning_summary_part.added``, every ``*.done`` but the item's) are no tokens and no
  events; an item that arrives whole (content in ``output_item.added``, or only in
  ``output_item.done``) counts its content as one delta there;
* ``response.completed`` is ``message_delta`` then ``message_stop`` (the end);
  ``response.incomplete`` the same, with stop reason ``max_tokens`` when the output limit cut
  it off; ``response.failed`` and ``error`` events are ``attempt_failed`` and raise
  :class:`~pytest_agentspeed.errors.EndpointError` (``mid_stream``).

The reply's content is Anthropic-shaped, as the agent loop keeps it (``text``, ``tool_use``
with the item's ``call_id`` as ``id``, ``thinking``), and each block also holds the output item
it came from, as received, under ``item``: :func:`~pytest_agentspeed.clients.
responses_client.to_responses_input` sends that back unchanged in the next request (a
reasoning item's ``encrypted_content`` must go back as it came when ``store`` is false).

The standard library and ``jiter`` only: cheap to import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_agentspeed.clients import ModelResponse, ToolCall
from pytest_agentspeed.clients.sse import SSEEvent
from pytest_agentspeed.clients.streams import json_object, tool_arguments
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import EventLog

#: Output item type -> the block it opens.
BLOCKS = {
    "reasoning": "thinking",
    "message": "text",
    "function_call": "tool_use",
    "custom_tool_call": "tool_use",
}
#: Delta event type -> (timing delta type, where its text goes in the item).
DELTAS = {
    "response.reasoning_summary_text.delta": ("thinking_delta", "summary"),
    "response.reasoning_text.delta": ("thinking_delta", "reasoning"),
    "response.output_text.delta": ("text_delta", "text"),
    "response.refusal.delta": ("text_delta", "refusal"),
    "response.function_call_arguments.delta": ("input_json_delta", "arguments"),
    "response.custom_tool_call_input.delta": ("input_json_delta", "input"),
}
#: ``incomplete_details.reason`` -> stop reason (the output limit is Anthropic's max_tokens).
INCOMPLETE_REASONS = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}


class ResponsesStream:
    """Folds a Responses stream into the same timing events as the other wires, and into the
    reply (content, tool calls, usage, stop reason).

    Each timing event carries the arrival time of the bytes that completed its SSE event.
    """

    #: A body that ends right after its last ``data:`` line, without the blank line, still
    #: counts (as on the Chat Completions wire: OpenAI-compatible servers that end so).
    lenient_end = True

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.started = False
        #: output_index -> the item as ``output_item.added`` gave it, then as ``done`` did.
        self.items: dict[int, dict[str, Any]] = {}
        #: output_index -> block index; blocks still open.
        self.blocks: dict[int, int] = {}
        self.open: set[int] = set()
        #: (output_index, part) -> text deltas, ``part`` as in :data:`DELTAS`.
        self.texts: dict[tuple[int, str], list[str]] = {}
        self.streamed: set[int] = set()  # items that had a nonempty delta
        self.final: dict[str, Any] | None = None  # the completed / incomplete response
        self.t_ns = 0

    def feed(self, sse: SSEEvent) -> bool:
        """One event of the body; ``True`` at ``response.completed`` / ``response.incomplete``.

        :raises EndpointError: for a ``response.failed`` or ``error`` event, or data that is
            no JSON object (``protocol_error``).
        """
        self.t_ns = t = sse.t_ns
        raw = sse.raw.strip()
        if not raw:
            return False
        event = json_object(raw, "an event")
        kind = event.get("type") or sse.event
        if kind == "error" or sse.event == "error":
            raise self._failed(_error_fields(event), "stream_error")
        if kind == "response.failed":
            response = event.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            raise self._failed(error if isinstance(error, dict) else {}, "response_failed")
        if kind == "response.queued":
            return False  # waiting in line, before the response was created
        if not self.started:
            self.started = True
            self.log.add("message_start", t_ns=t)
        if kind in DELTAS:
            self._delta(event, *DELTAS[kind])
        elif kind == "response.output_item.added":
            self._added(event)
        elif kind == "response.output_item.done":
            self._done(event)
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response")
            self.final = response if isinstance(response, dict) else {}
            for index in sorted(self.open):
                self._stop(index)
            self.log.add("message_delta", t_ns=t)
            self.log.add("message_stop", t_ns=t)
            return True
        # Everything else is lifecycle (in_progress, part added / done, text done, ...).
        return False

    def _failed(self, error: Mapping[str, Any], default: str) -> EndpointError:
        # An error event's own type is "error": no classification.
        typed = error.get("type") if error.get("type") != "error" else None
        kind = str(error.get("code") or typed or default)
        self.log.add("attempt_failed", detail=kind, t_ns=self.t_ns)
        message = error.get("message") or "error"
        return EndpointError(kind, f"mid-stream: {message}", 200, mid_stream=True)

    def _added(self, event: Mapping[str, Any]) -> None:
        index = int(event.get("output_index", len(self.items)))
        item = event.get("item")
        item = dict(item) if isinstance(item, dict) else {}
        self.items[index] = item
        block = len(self.blocks)
        self.blocks[index] = block
        self.open.add(index)
        kind = str(item.get("type") or "")
        self.log.add("block_start", index=block, detail=BLOCKS.get(kind, kind), t_ns=self.t_ns)
        self._whole_content(index, item)

    def _delta(self, event: Mapping[str, Any], detail: str, part: str) -> None:
        index = int(event.get("output_index", 0))
        if index not in self.blocks:  # a delta without its item: open one for it
            kind = {"thinking_delta": "reasoning", "text_delta": "message"}.get(detail)
            self._added({"output_index": index, "item": {"type": kind or "function_call"}})
        text = event.get("delta")
        text = text if isinstance(text, str) else ""
        self.texts.setdefault((index, part), []).append(text)
        if text:
            self.streamed.add(index)
        self.log.add(
            "delta", index=self.blocks[index], detail=detail, nonempty=bool(text), t_ns=self.t_ns
        )

    def _done(self, event: Mapping[str, Any]) -> None:
        index = int(event.get("output_index", 0))
        item = event.get("item")
        if index not in self.blocks:
            self._added(event)
        if isinstance(item, dict):
            self.items[index] = dict(item)
            self._whole_content(index, item)
        self._stop(index)

    def _whole_content(self, index: int, item: Mapping[str, Any]) -> None:
        """An item that carries its content already (no deltas came or will come for it):
        its content arrived now, as one delta."""
        if index in self.streamed:
            return
        detail, text = _item_content(item)
        if text:
            self.streamed.add(index)
            self.log.add(
                "delta", index=self.blocks[index], detail=detail, nonempty=True, t_ns=self.t_ns
            )

    def _stop(self, index: int) -> None:
        if index in self.open:
            self.open.discard(index)
            self.log.add("block_stop", index=self.blocks[index], t_ns=self.t_ns)

    def response(self) -> ModelResponse:
        """The reply, once the body has ended.

        :raises EndpointError: the stream ended before ``response.completed``
            (``protocol_error``, recorded as ``attempt_failed`` at its last event).
        """
        if self.final is None:
            self.log.add("attempt_failed", detail="protocol_error", t_ns=self.t_ns)
            raise EndpointError("protocol_error", "the stream ended before response.completed", 200)
        final = self.final
        output = final.get("output")
        by_index = dict(enumerate(output)) if isinstance(output, list) else {}
        items = []
        for index in sorted(set(self.items) | set(by_index)):
            item = self.items.get(index) or by_index.get(index)
            if isinstance(item, dict):
                items.append(self._filled(index, item))
        content = [reply_block(item) for item in items]
        raw = final.get("usage")
        usage_raw = dict(raw) if isinstance(raw, dict) else {}
        return ModelResponse(
            content=content,
            tool_calls=tuple(
                ToolCall(id=b["id"], name=b["name"], input=b["input"])
                for b in content
                if b["type"] == "tool_use"
            ),
            stop_reason=stop_reason(final, items),
            usage=responses_usage(usage_raw),
            usage_raw=usage_raw,
        )

    def _filled(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        """The item with what its deltas streamed, where it came without (a stream cut short
        of ``output_item.done`` is not kept as a reply anyway; this covers servers that leave
        the added item's fields empty in ``done``)."""
        kind = item.get("type")
        if kind in ("function_call", "custom_tool_call"):
            field = "arguments" if kind == "function_call" else "input"
            if not item.get(field) and (index, field) in self.texts:
                return {**item, field: "".join(self.texts[index, field])}
        if kind == "message" and not item.get("content") and (index, "text") in self.texts:
            text = "".join(self.texts[index, "text"])
            part = {"type": "output_text", "text": text, "annotations": []}
            return {**item, "content": [part]}
        if kind == "reasoning" and not item.get("summary") and (index, "summary") in self.texts:
            summary = [{"type": "summary_text", "text": "".join(self.texts[index, "summary"])}]
            return {**item, "summary": summary}
        return item


def reply_block(item: Mapping[str, Any]) -> dict[str, Any]:
    """The Anthropic-shaped block the agent loop keeps for an output item, holding the item
    itself (``item``) to send back unchanged."""
    kind = item.get("type")
    kept = dict(item)
    if kind == "reasoning":
        summary = _texts(item.get("summary")) or _texts(item.get("content"))
        signature = item.get("encrypted_content")
        return {
            "type": "thinking",
            "thinking": summary,
            "signature": signature if isinstance(signature, str) else "",
            "item": kept,
        }
    if kind == "message":
        return {"type": "text", "text": _texts(item.get("content")), "item": kept}
    if kind in ("function_call", "custom_tool_call"):
        call_id = item.get("call_id") or item.get("id") or ""
        arguments = item.get("arguments") if kind == "function_call" else None
        tool_input = (
            tool_arguments(arguments if isinstance(arguments, str) else "")
            if kind == "function_call"
            else {"input": item.get("input") or ""}
        )
        return {
            "type": "tool_use",
            "id": str(call_id),
            "name": str(item.get("name") or ""),
            "input": tool_input,
            "item": kept,
        }
    # A server-side tool's item (web search, ...): kept only to be sent back.
    return {"type": "output_item", "item": kept}


def stop_reason(response: Mapping[str, Any], items: list[dict[str, Any]]) -> str:
    """The Anthropic stop reason a Responses response means: ``max_tokens`` (or ``refusal``)
    when it is ``incomplete``, ``tool_use`` when it calls functions, else ``end_turn``."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return INCOMPLETE_REASONS.get(str(reason), "max_tokens")
    if any(item.get("type") in ("function_call", "custom_tool_call") for item in items):
        return "tool_use"
    return "end_turn"


def responses_usage(raw: Mapping[str, Any]) -> Usage:
    """A Responses ``usage`` object in the package's terms: its ``input_tokens`` includes the
    cached (and cache-written) tokens, which are taken out, as for Chat Completions;
    ``output_tokens_details.reasoning_tokens`` are the thinking tokens."""
    details = raw.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    output = raw.get("output_tokens_details")
    reasoning = output.get("reasoning_tokens") if isinstance(output, dict) else None
    return Usage(
        input_tokens=max(0, int(raw.get("input_tokens") or 0) - cached - written),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        output_tokens=int(raw.get("output_tokens") or 0),
        thinking_tokens=None if reasoning is None else int(reasoning),
    )


def _error_fields(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """An ``error`` event's fields: at its top level (``code``, ``message``: the Responses
    API's own shape) or under ``error`` (as some compatible servers send it)."""
    nested = event.get("error")
    return nested if isinstance(nested, dict) else event


def _texts(parts: Any) -> str:
    """The text of a list of content or summary parts."""
    if not isinstance(parts, list):
        return ""
    return "".join(
        str(p.get("text") or p.get("refusal") or "") for p in parts if isinstance(p, dict)
    )


def _item_content(item: Mapping[str, Any]) -> tuple[str, str]:
    """(timing delta type, content) an item carries in itself."""
    kind = item.get("type")
    if kind == "reasoning":
        return "thinking_delta", _texts(item.get("summary")) or _texts(item.get("content"))
    if kind == "message":
        return "text_delta", _texts(item.get("content"))
    if kind == "function_call":
        arguments = item.get("arguments")
        return "input_json_delta", arguments if isinstance(arguments, str) else ""
    if kind == "custom_tool_call":
        text = item.get("input")
        return "input_json_delta", text if isinstance(text, str) else ""
    return "", ""
