"""From a response's events to timing events and the reply: one mapping per wire.

:class:`AnthropicStream` (Messages) and :class:`OpenAIStream` (Chat Completions) each take the
:class:`~pytest_agentspeed.clients.sse.SSEEvent` values of one response body, in order, append
the timing events they stand for to an :class:`~pytest_agentspeed.timing.EventLog` (each at
the arrival time of the bytes that completed it), and fold the body into a
:class:`~pytest_agentspeed.clients.ModelResponse`. No HTTP in here: the clients feed them from
their reader, and the recording proxy (:mod:`pytest_agentspeed.proxy`) from the bytes it
forwards to an agent, so both take the same marks from the same code.

Both have ``feed(event) -> bool`` (``True`` once the stream said it is over) and
``response()``; :attr:`~OpenAIStream.lenient_end` says whether an event left without its
closing blank line at the end of the body still counts (OpenAI-compatible servers that end
right after their last ``data:`` line). They raise
:class:`~pytest_agentspeed.errors.EndpointError` for an error the stream reported (after
recording ``attempt_failed``), and the Anthropic one :class:`StreamProtocolError` for a stream
that breaks the wire's grammar (the client records and raises that as ``protocol_error``).

The standard library and ``jiter`` only (no SDK, no HTTP client): cheap to import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jiter import from_json

from pytest_agentspeed.clients import ModelResponse, ToolCall
from pytest_agentspeed.clients.sse import SSEEvent
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import EventLog

#: OpenAI ``finish_reason`` -> the Anthropic stop reason it means.
STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


class StreamProtocolError(Exception):
    """The stream broke the wire's grammar (what the SDK would have failed on)."""


# --------------------------------------------------------------------------------------------
# Anthropic Messages


class AnthropicStream:
    """The message being streamed, as plain dicts (the SDK's ``accumulate_event``, without
    building a model object per event), and its events on ``log``.

    The SDK's rules for what it skips (events without a name, ``ping``, empty data) and raises
    (``error`` events) are kept. Usage counts of ``message_delta`` overwrite those of
    ``message_start``.
    """

    #: An event the body left without its closing blank line is dropped, as the SDK does.
    lenient_end = False

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.message: dict[str, Any] | None = None
        self.content: list[dict[str, Any]] = []
        self.json: dict[int, list[str]] = {}  # tool input fragments per block

    def feed(self, sse: SSEEvent) -> bool:
        """One SSE event: record it at its arrival time and fold it in; ``True`` at
        ``message_stop``.

        :raises EndpointError: for an ``error`` event.
        :raises StreamProtocolError: for an event that does not parse or fit.
        """
        name = sse.event
        # The SDK skips events without a name, pings and empty data; it raises on errors.
        if not name or name == "ping":
            return False
        if name == "error":
            raise _stream_error(sse, self.log)
        if not sse.raw:
            return False
        log = self.log
        try:
            event = sse.json()
            kind = event["type"]
            if kind == "content_block_delta":
                delta = event["delta"]
                index = event["index"]
                content = self._delta(self.content[index], index, delta)
                log.add(
                    "delta",
                    index=index,
                    detail=delta["type"],
                    nonempty=bool(content),
                    t_ns=sse.t_ns,
                )
            elif kind == "content_block_start":
                block = dict(event["content_block"])
                self._started().append(block)
                log.add("block_start", index=event["index"], detail=block["type"], t_ns=sse.t_ns)
            elif kind == "content_block_stop":
                log.add("block_stop", index=event["index"], t_ns=sse.t_ns)
            elif kind == "message_start":
                self.message = dict(event["message"])
                self.message["usage"] = dict(self.message["usage"])
                log.add(kind, t_ns=sse.t_ns)
            elif kind == "message_delta":
                self._message_delta(event)
                log.add(kind, t_ns=sse.t_ns)
            elif kind == "message_stop":
                log.add(kind, t_ns=sse.t_ns)
                return True
            # Unknown event types are passed over, as the SDK does.
        except (ValueError, LookupError, TypeError, AttributeError) as exc:
            raise StreamProtocolError(f"{type(exc).__name__}: {exc}") from None
        return False

    def _started(self) -> list[dict[str, Any]]:
        if self.message is None:
            raise StreamProtocolError("the stream did not open with message_start")
        return self.content

    def _delta(self, block: dict[str, Any], index: int, delta: dict[str, Any]) -> Any:
        """Fold a content delta into its block; the content it carried."""
        kind = delta["type"]
        if kind == "text_delta":
            text = delta["text"]
            if block["type"] == "text":
                block["text"] += text
            return text
        if kind == "thinking_delta":
            thinking = delta["thinking"]
            if block["type"] == "thinking":
                block["thinking"] += thinking
            return thinking
        if kind == "input_json_delta":
            fragment = delta["partial_json"]
            if "input" in block:
                self.json.setdefault(index, []).append(fragment)
            return fragment
        if kind == "signature_delta":
            if block["type"] == "thinking":
                block["signature"] = delta["signature"]  # overwritten, not appended
        elif kind == "citations_delta" and block["type"] == "text":
            block["citations"] = [*(block.get("citations") or []), delta["citation"]]
        return None

    def _message_delta(self, event: dict[str, Any]) -> None:
        message = self._message()
        delta, usage = event["delta"], event["usage"]
        message["stop_reason"] = delta.get("stop_reason")
        message["stop_sequence"] = delta.get("stop_sequence")
        if delta.get("container") is not None:
            message["container"] = delta["container"]
        # Usage counts on a message_delta are cumulative totals: they overwrite, and optional
        # ones left out keep their message_start values.
        totals = message["usage"]
        totals["output_tokens"] = usage.get("output_tokens")
        for key in _OPTIONAL_USAGE:
            if usage.get(key) is not None:
                totals[key] = usage[key]

    def _message(self) -> dict[str, Any]:
        if self.message is None:
            raise StreamProtocolError("the stream did not open with message_start")
        return self.message

    def response(self) -> ModelResponse:
        """The reply, once the body has ended.

        :raises StreamProtocolError: the stream did not make a whole message.
        """
        message = self._message()
        try:
            for index, fragments in self.json.items():
                self.content[index]["input"] = _tool_input("".join(fragments))
            # Passed back verbatim in the next request (thinking blocks must keep their
            # signature); without the nulls, as the SDK's to_dict(exclude_none=True) gives them.
            content = [_without_nulls(block) for block in self.content]
            calls = tuple(
                ToolCall(id=b["id"], name=b["name"], input=dict(b["input"]))
                for b in content
                if b["type"] == "tool_use"
            )
            raw = message["usage"]
            usage = anthropic_usage(raw)
        except (LookupError, TypeError) as exc:  # e.g. a message_start without usage
            raise StreamProtocolError(f"{type(exc).__name__}: {exc}") from None
        return ModelResponse(
            content=content,
            tool_calls=calls,
            stop_reason=message.get("stop_reason"),
            usage=usage,
            usage_raw=raw,
        )


_OPTIONAL_USAGE = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",
    "output_tokens_details",
)


def anthropic_usage(raw: Mapping[str, Any]) -> Usage:
    """A Messages ``usage`` object in the package's terms (streamed or not).

    :raises LookupError: a required count is missing.
    """
    details = raw.get("output_tokens_details") or {}
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=raw["input_tokens"],
        cache_read_tokens=raw.get("cache_read_input_tokens") or 0,
        cache_write_tokens=raw.get("cache_creation_input_tokens") or 0,
        output_tokens=raw["output_tokens"],
        thinking_tokens=None if thinking is None else int(thinking),
    )


def _tool_input(raw: str) -> dict[str, Any]:
    """A tool call's input from its streamed JSON; as the SDK reads it (``jiter``, partial
    mode: a stream cut inside the JSON still gives what arrived)."""
    if not raw:
        return {}
    try:
        value = from_json(raw.encode(), partial_mode=True)
    except ValueError as exc:
        raise StreamProtocolError(
            f"ValueError: Unable to parse tool parameter JSON from model: {exc}. JSON: {raw}"
        ) from None
    if not isinstance(value, dict):
        raise StreamProtocolError(f"tool input is not a JSON object: {raw[:80]!r}")
    return value


def _without_nulls(block: dict[str, Any]) -> dict[str, Any]:
    """The block without null fields, nested ones included, but not inside a tool's input
    (the SDK's ``exclude_none`` reaches typed fields only)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return {k: v if k == "input" else strip(v) for k, v in block.items() if v is not None}


def _stream_error(sse: SSEEvent, log: EventLog) -> EndpointError:
    """An ``error`` event inside a 200 stream (``research/wire-spec.md`` 1.7), as the SDK
    reports it: the error's type and message from the body, else the body itself."""
    try:
        body: Any = json.loads(sse.data)
        text = f"{body}"
    except ValueError:
        body, text = sse.data, sse.data or "Error code: 200"
    errors = body.get("error") if isinstance(body, dict) else None
    inner = errors if isinstance(errors, dict) else {}
    typed = errors if isinstance(errors, dict) else body if isinstance(body, dict) else {}
    kind = typed.get("type")
    error_type = str(kind) if kind and kind != "error" else "http_200"
    log.add("attempt_failed", detail=error_type, t_ns=sse.t_ns)
    return EndpointError(
        error_type, f"mid-stream: {inner.get('message') or text}", 200, mid_stream=True
    )


# --------------------------------------------------------------------------------------------
# OpenAI Chat Completions


class OpenAIStream:
    """Folds a Chat Completions stream into the same timing events as the Anthropic wire, and
    into the reply (content, tool calls, usage).

    * the role chunk (``content: ""``) is not a token;
    * ``reasoning_content`` and ``reasoning`` deltas (both are read; servers differ) open a
      thinking block: the reasoning phase;
    * content and tool-call deltas open text and tool-use blocks: generation;
    * the ``include_usage`` chunk gives the usage.

    Each timing event carries the arrival time of the bytes that completed its SSE event.
    """

    #: A body that ends right after its last ``data:`` line, without the blank line, still
    #: counts (some OpenAI-compatible servers end so).
    lenient_end = True

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.started = False
        self.open: str | None = None  # kind of the open pseudo-block
        self.index = -1
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.call_block: dict[int, int] = {}
        self.finish: str | None = None
        self.usage: dict[str, Any] = {}
        self.t_ns = 0  # arrival of the event being folded

    def feed(self, event: SSEEvent) -> bool:
        """One event of the body; returns True at ``[DONE]``.

        :raises EndpointError: for a chunk that is no JSON object (``protocol_error``) or an
            error the stream reported.
        """
        self.t_ns = t = event.t_ns
        raw = event.raw.strip()
        if raw.startswith(b"[DONE]"):
            self._close()
            self.log.add("message_stop", t_ns=t)
            return True
        chunk = json_object(raw, "a chunk")
        if "error" in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            self.log.add("attempt_failed", detail=str(error.get("type") or "stream_error"), t_ns=t)
            raise EndpointError(
                str(error.get("type") or "stream_error"),
                f"mid-stream: {error.get('message') or 'error'}",
                200,
                mid_stream=True,
            )
        if not self.started:
            self.started = True
            self.log.add("message_start", t_ns=t)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                self._block("thinking")
                self.log.add(
                    "delta", index=self.index, detail="thinking_delta", nonempty=True, t_ns=t
                )
            content = delta.get("content")
            if content:
                self._block("text")
                self.text.append(content)
                self.log.add("delta", index=self.index, detail="text_delta", nonempty=True, t_ns=t)
            for call in delta.get("tool_calls") or []:
                self._tool_fragment(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self._close()
                self.log.add("message_delta", t_ns=t)
        return False

    def _block(self, kind: str) -> None:
        if self.open == kind and kind != "tool_use":
            return
        self._close()
        self.index += 1
        self.open = kind
        self.log.add("block_start", index=self.index, detail=kind, t_ns=self.t_ns)

    def _close(self) -> None:
        if self.open is not None:
            self.log.add("block_stop", index=self.index, t_ns=self.t_ns)
            self.open = None

    def _tool_fragment(self, call: Mapping[str, Any]) -> None:
        k = int(call.get("index", 0))
        function = call.get("function") or {}
        if k not in self.calls:
            self.calls[k] = {"id": call.get("id") or f"call_{k}", "name": "", "arguments": ""}
            self._block("tool_use")
            self.call_block[k] = self.index
        entry = self.calls[k]
        if call.get("id"):
            entry["id"] = call["id"]
        if function.get("name"):
            entry["name"] = function["name"]
        fragment = function.get("arguments") or ""
        entry["arguments"] += fragment
        self.log.add(
            "delta",
            index=self.call_block[k],
            detail="input_json_delta",
            nonempty=bool(fragment),
            t_ns=self.t_ns,
        )

    def response(self) -> ModelResponse:
        """The reply, once the body has ended."""
        content: list[dict[str, Any]] = []
        text = "".join(self.text)
        if text:
            content.append({"type": "text", "text": text})
        calls = []
        for k in sorted(self.calls):
            entry = self.calls[k]
            arguments = tool_arguments(entry["arguments"])
            calls.append(ToolCall(id=entry["id"], name=entry["name"], input=arguments))
            content.append(
                {"type": "tool_use", "id": entry["id"], "name": entry["name"], "input": arguments}
            )
        return ModelResponse(
            content=content,
            tool_calls=tuple(calls),
            stop_reason=STOP_REASONS.get(self.finish or "", self.finish),
            usage=normalised_usage(self.usage),
            usage_raw=self.usage,
        )


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """The JSON object an event's data holds (OpenAI's wires: every event is one).

    :raises EndpointError: ``protocol_error``, naming ``what`` was not one.
    """
    try:
        value = from_json(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace")
        raise EndpointError("protocol_error", f"{what} is not JSON: {text[:80]!r}") from None
    if not isinstance(value, dict):
        text = raw.decode("utf-8", "replace")
        raise EndpointError("protocol_error", f"{what} is not a JSON object: {text[:80]!r}")
    return value


def tool_arguments(text: str) -> dict[str, Any]:
    """A tool call's arguments from their JSON text (OpenAI's wires); ``{}`` for text that is
    no JSON object: the tool then reports the missing fields to the model."""
    try:
        arguments = json.loads(text or "{}")
    except ValueError:
        return {}
    return arguments if isinstance(arguments, dict) else {}


def normalised_usage(raw: Mapping[str, Any]) -> Usage:
    """OpenAI usage in the package's terms: ``input_tokens`` excludes cached tokens."""
    prompt = int(raw.get("prompt_tokens") or 0)
    details = raw.get("prompt_tokens_details") or {}
    # DeepSeek reports hits at the top level as well.
    cached = int(details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    completion = raw.get("completion_tokens_details") or {}
    reasoning = completion.get("reasoning_tokens")
    return Usage(
        input_tokens=max(0, prompt - cached - written),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        output_tokens=int(raw.get("completion_tokens") or 0),
        thinking_tokens=None if reasoning is None else int(reasoning),
    )
