"""Anthropic Messages client: the SDK sends, the package reads the stream.

The official SDK builds the request, authenticates and retries failed attempts (429, 5xx, 529,
connection errors) as it always does; its streaming response is taken raw
(``with_streaming_response``), and the body is read by the transport's
:class:`~pytest_agentspeed.clients.transport.StampedBody` and parsed by
:class:`~pytest_agentspeed.clients.sse.SSEParser` into plain dicts: no model object per delta
(the SDK's ``messages.stream()`` helper spends ~40 us of CPU on each), and every stream mark is
the arrival time of the bytes that completed its event.

Where each mark comes from (``research/wire-spec.md`` section 5):

* ``attempt``: the httpx2 ``request`` event hook, once per HTTP attempt (the SDK's own retries
  included, so they are visible as attempts instead of hiding inside one call);
* ``request_sent``: the transport's trace callback when the request body has been handed over
  (``http11.send_request_body.complete``); the SDK call only returns after the headers, so
  this cannot be taken around it;
* ``headers``: the trace callback when the response headers were received;
* stream events: the arrival of the bytes that completed each SSE event;
* ``stream_end``: the arrival of the end of the body.

The stream is folded into the final message as the SDK's ``accumulate_event`` does (text,
thinking and signature, tool input JSON, citations; usage counts of ``message_delta``
overwrite those of ``message_start``), and the SDK's rules for what it skips (events without
a name, ``ping``, empty data) and raises (``error`` events) are kept.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import anthropic
import httpx2

from pytest_agentspeed.clients import ModelResponse, ToolCall, TurnRequest
from pytest_agentspeed.clients.sse import SSEEvent, SSEParser
from pytest_agentspeed.clients.transport import (
    MarkedHttp,
    StampedBody,
    broken_stream,
    unreachable,
)
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import EventLog

#: SDK retries (429, 5xx, 529, connection errors) stay on; each attempt is recorded.
DEFAULT_MAX_RETRIES = 2


class AnthropicClient:
    """Sends turns over the Anthropic Messages wire, recording timing events.

    :param model: the model name sent in each request.
    :param base_url: the endpoint's base URL (the SDK appends ``/v1/messages``).
    :param api_key: sent as the SDK sends it; never recorded.
    :param timeout_s: per-request timeout.
    :param max_retries: the SDK's retries of failed attempts.
    :param extra_headers: added to every request.
    :param extra_body: merged into every request body (fields the SDK does not know yet).
    :param max_tokens: overrides the task's per-response limit.
    :param thinking: ``"adaptive"``, ``"enabled"`` (with ``thinking_budget``) or
        ``"disabled"``; ``None`` sends no thinking configuration.
    :param thinking_budget: budget tokens for enabled thinking (implies ``"enabled"``).
    :param x_api_key: also send the key as ``x-api-key``, for servers that predate the SDK's
        ``Authorization: Bearer`` (vLLM accepts only Bearer, which is always sent).
    :param retry_wait_s: see :attr:`ModelClient.retry_wait_s`.
    :param transport: an httpx2 transport to use instead of the network (tests).
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str,
        timeout_s: float = 600.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        thinking: str | None = None,
        thinking_budget: int | None = None,
        x_api_key: bool = False,
        retry_wait_s: float = 1.0,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.retry_wait_s = retry_wait_s
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body) if extra_body else None
        self.thinking = thinking_config(thinking, thinking_budget)
        self.thinking_budget = thinking_budget
        # Compression can hold back SSE bytes; ask for the stream as it is produced.
        headers = {"accept-encoding": "identity", **(extra_headers or {})}
        if x_api_key:
            headers["x-api-key"] = api_key
        self._http = MarkedHttp(timeout_s=timeout_s, transport=transport)
        self._sdk = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            http_client=self._http.client,
            max_retries=max_retries,
            timeout=self._http.timeout,
            default_headers=headers,
        )
        warm_up()

    def close(self) -> None:
        self._http.close()

    def complete(self, request: TurnRequest, log: EventLog) -> ModelResponse:
        """Stream one turn; see :class:`~pytest_agentspeed.clients.ModelClient`."""
        max_tokens = self.max_tokens or request.max_tokens
        params: dict[str, Any] = {
            "model": self.model,
            "system": list(request.system),
            "messages": list(request.messages),
            "tools": list(request.tools),
            "metadata": {"user_id": request.session_id},
        }
        if self.thinking is not None:
            params["thinking"] = self.thinking
            if self.thinking_budget and not self.max_tokens:
                # Thinking counts toward max_tokens; keep the task's budget for the answer.
                max_tokens += self.thinking_budget
        params["max_tokens"] = max_tokens
        with self._http.marking(log):
            return _send(self._sdk, params, self.extra_body, log, self.base_url)


def _send(
    sdk: anthropic.Anthropic,
    params: dict[str, Any],
    extra_body: dict[str, Any] | None,
    log: EventLog,
    base_url: str,
) -> ModelResponse:
    """Send one request through the SDK and fold its stream into the reply."""
    try:
        with sdk.messages.with_streaming_response.create(
            **params, stream=True, extra_body=extra_body
        ) as raw:
            message = _Message()
            try:
                end_ns = _read_stream(StampedBody(raw.http_response, log.clock), message, log)
            except httpx2.TransportError as exc:
                # The SDK retries only until the response starts; these come from reading the
                # stream: the connection dropped or went silent mid-response.
                raise broken_stream(log, exc) from None
        log.add("stream_end", t_ns=end_ns)
        try:
            return message.response()
        except (LookupError, TypeError) as exc:  # e.g. a message_start without usage
            raise _ProtocolError(f"{type(exc).__name__}: {exc}") from None
    except anthropic.APIStatusError as exc:
        log.add("attempt_failed", detail=_error_type(exc))
        raise EndpointError(_error_type(exc), _status_message(exc), exc.status_code) from None
    except anthropic.APITimeoutError:
        log.add("attempt_failed", detail="timeout")
        raise EndpointError("timeout", "the endpoint did not answer in time") from None
    except anthropic.APIConnectionError as exc:
        log.add("attempt_failed", detail="connection_error")
        raise unreachable(base_url, exc.__cause__ or exc) from None
    except _ProtocolError as exc:
        # The stream ended early or did not parse.
        log.add("attempt_failed", detail="protocol_error")
        raise EndpointError("protocol_error", str(exc)) from None


class _ProtocolError(Exception):
    """The stream broke the wire's grammar (what the SDK would have failed on)."""


def _read_stream(body: StampedBody, message: _Message, log: EventLog) -> int:
    """Fold the body's events into ``message`` and ``log``; when its end was read."""
    parser = SSEParser()
    with body:
        for chunk, t_ns in body:
            if not chunk:
                return t_ns
            for event in parser.feed(chunk, t_ns):
                message.feed(event, log)
    raise AssertionError("unreachable: the body ends with an empty chunk")


class _Message:
    """The message being streamed, as plain dicts (the SDK's ``accumulate_event``, without
    building a model object per event)."""

    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self.content: list[dict[str, Any]] = []
        self.json: dict[int, list[str]] = {}  # tool input fragments per block

    def feed(self, sse: SSEEvent, log: EventLog) -> None:
        """One SSE event: record it at its arrival time and fold it in."""
        name = sse.event
        # The SDK skips events without a name, pings and empty data; it raises on errors.
        if not name or name == "ping":
            return
        if name == "error":
            raise _stream_error(sse, log)
        if not sse.raw:
            return
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
            # Unknown event types are passed over, as the SDK does.
        except (ValueError, LookupError, TypeError, AttributeError) as exc:
            raise _ProtocolError(f"{type(exc).__name__}: {exc}") from None

    def _started(self) -> list[dict[str, Any]]:
        if self.message is None:
            raise _ProtocolError("the stream did not open with message_start")
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
            raise _ProtocolError("the stream did not open with message_start")
        return self.message

    def response(self) -> ModelResponse:
        """The reply, once the body has ended."""
        message = self._message()
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
        details = raw.get("output_tokens_details") or {}
        thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
        usage = Usage(
            input_tokens=raw["input_tokens"],
            cache_read_tokens=raw.get("cache_read_input_tokens") or 0,
            cache_write_tokens=raw.get("cache_creation_input_tokens") or 0,
            output_tokens=raw["output_tokens"],
            thinking_tokens=None if thinking is None else int(thinking),
        )
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


def _tool_input(raw: str) -> dict[str, Any]:
    """A tool call's input from its streamed JSON; as the SDK reads it (``jiter``, partial
    mode: a stream cut inside the JSON still gives what arrived)."""
    if not raw:
        return {}
    from jiter import from_json  # the SDK's own dependency

    try:
        value = from_json(raw.encode(), partial_mode=True)
    except ValueError as exc:
        raise _ProtocolError(
            f"ValueError: Unable to parse tool parameter JSON from model: {exc}. JSON: {raw}"
        ) from None
    if not isinstance(value, dict):
        raise _ProtocolError(f"tool input is not a JSON object: {raw[:80]!r}")
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


def thinking_config(mode: str | None, budget: int | None) -> dict[str, Any] | None:
    """The request's ``thinking`` parameter for an endpoint's options."""
    if budget:
        return {"type": "enabled", "budget_tokens": budget}
    if mode in ("adaptive", "disabled"):
        return {"type": mode}
    if mode == "enabled":
        return {"type": "enabled", "budget_tokens": 1024}
    return None


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    kind = error.get("type") if isinstance(error, dict) else None
    return str(kind) if kind and kind != "error" else f"http_{exc.status_code}"


def _status_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    message = error.get("message") if isinstance(error, dict) else None
    where = "mid-stream" if exc.status_code == 200 else f"HTTP {exc.status_code}"
    return f"{where}: {message or exc.message}"


@functools.cache
def warm_up() -> None:
    """Send one canned stream of every event type through the whole path, offline, once.

    The SDK builds its request models and validators lazily; in a fresh process that costs
    milliseconds that would otherwise land in the first measured turn.
    """

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=_canned_stream(),
        )

    client = anthropic.Anthropic(
        api_key="warm-up",
        base_url="http://warm-up.invalid",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    params = {
        "model": "warm-up",
        "max_tokens": 16,
        "system": [{"type": "text", "text": "hi"}],
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [],
        "metadata": {"user_id": "warm-up"},
    }
    _send(client, params, None, EventLog(), "http://warm-up.invalid")
    client.close()


def _canned_stream() -> Iterator[bytes]:
    usage = {"input_tokens": 1, "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_warm",
                "type": "message",
                "role": "assistant",
                "model": "warm-up",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "hm"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "c2ln"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_w", "name": "w", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": 1}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": usage,
        },
        {"type": "message_stop"},
    ]
    for event in events:
        yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
