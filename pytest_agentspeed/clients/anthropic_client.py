"""Anthropic Messages client on the official SDK, instrumented at the transport.

Where each mark comes from (``research/wire-spec.md`` section 5):

* ``attempt``: the httpx2 ``request`` event hook, once per HTTP attempt (the SDK's own retries
  included, so they are visible as attempts instead of hiding inside one call);
* ``request_sent``: the transport's trace callback when the request body has been handed over
  (``http11.send_request_body.complete``); ``messages.stream()`` only returns after the
  headers, so this cannot be taken around the SDK call;
* ``headers``: the trace callback when the response headers were received;
* stream events: each raw event as the SDK yields it, after parsing;
* ``stream_end``: the SDK finished reading the body.

The SDK builds its pydantic models lazily: the first stream parsed in a process pays tens of
milliseconds per event type. :func:`warm_up` parses a canned stream once, offline, before any
measured call.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2

from pytest_agentspeed.clients import ModelResponse, ToolCall, TurnRequest
from pytest_agentspeed.clients.transport import MarkedHttp, broken_stream, unreachable
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import EventLog

if TYPE_CHECKING:
    from anthropic.types import Message

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
        with self._http.marking(log):
            return _response(self._stream(request, log))

    def _stream(self, request: TurnRequest, log: EventLog) -> Message:
        max_tokens = self.max_tokens or request.max_tokens
        extra: dict[str, Any] = {}
        if self.thinking is not None:
            extra["thinking"] = self.thinking
            if self.thinking_budget and not self.max_tokens:
                # Thinking counts toward max_tokens; keep the task's budget for the answer.
                max_tokens += self.thinking_budget
        try:
            with self._sdk.messages.stream(
                model=self.model,
                max_tokens=max_tokens,
                system=list(request.system),  # type: ignore[arg-type]
                messages=list(request.messages),  # type: ignore[arg-type]
                tools=list(request.tools),  # type: ignore[arg-type]
                metadata={"user_id": request.session_id},
                extra_body=self.extra_body,
                **extra,
            ) as stream:
                for event in stream:
                    _record(log, event)
                message = stream.get_final_message()
            log.add("stream_end")
            return message
        except anthropic.APIStatusError as exc:
            log.add("attempt_failed", detail=_error_type(exc))
            raise EndpointError(
                _error_type(exc),
                _status_message(exc),
                exc.status_code,
                # An error event inside a 200 stream (research/wire-spec.md 1.7).
                mid_stream=exc.status_code == 200,
            ) from None
        except anthropic.APITimeoutError:
            log.add("attempt_failed", detail="timeout")
            raise EndpointError("timeout", "the endpoint did not answer in time") from None
        except anthropic.APIConnectionError as exc:
            log.add("attempt_failed", detail="connection_error")
            raise unreachable(self.base_url, exc.__cause__ or exc) from None
        except httpx2.TransportError as exc:
            # The SDK wraps transport errors only until the response starts; these come from
            # reading the stream: the connection dropped or went silent mid-response.
            raise broken_stream(log, exc) from None
        except (anthropic.AnthropicError, ValueError, AssertionError) as exc:
            # The stream ended early or did not parse (the SDK raises these for broken SSE).
            log.add("attempt_failed", detail="protocol_error")
            raise EndpointError("protocol_error", f"{type(exc).__name__}: {exc}") from None


def thinking_config(mode: str | None, budget: int | None) -> dict[str, Any] | None:
    """The request's ``thinking`` parameter for an endpoint's options."""
    if budget:
        return {"type": "enabled", "budget_tokens": budget}
    if mode in ("adaptive", "disabled"):
        return {"type": mode}
    if mode == "enabled":
        return {"type": "enabled", "budget_tokens": 1024}
    return None


def _record(log: EventLog, event: Any) -> None:
    """Append the raw stream events; the SDK's helper events repeat them and are skipped."""
    kind = event.type
    if kind == "content_block_delta":
        delta = event.delta
        content = getattr(delta, "text", None) or getattr(delta, "thinking", None)
        content = content or getattr(delta, "partial_json", None)
        log.add("delta", index=event.index, detail=delta.type, nonempty=bool(content))
    elif kind == "content_block_start":
        log.add("block_start", index=event.index, detail=event.content_block.type)
    elif kind == "content_block_stop":
        log.add("block_stop", index=event.index)
    elif kind in ("message_start", "message_delta", "message_stop"):
        log.add(kind)


def _response(message: Message) -> ModelResponse:
    # Passed back verbatim in the next request (thinking blocks must keep their signature).
    content = [block.to_dict(mode="json", exclude_none=True) for block in message.content]
    calls = tuple(
        ToolCall(id=b.id, name=b.name, input=dict(b.input))
        for b in message.content
        if b.type == "tool_use"
    )
    raw = message.usage.to_dict()
    details = raw.get("output_tokens_details") or {}
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
    usage = Usage(
        input_tokens=message.usage.input_tokens,
        cache_read_tokens=message.usage.cache_read_input_tokens or 0,
        cache_write_tokens=message.usage.cache_creation_input_tokens or 0,
        output_tokens=message.usage.output_tokens,
        thinking_tokens=None if thinking is None else int(thinking),
    )
    return ModelResponse(
        content=content,
        tool_calls=calls,
        stop_reason=message.stop_reason,
        usage=usage,
        usage_raw=raw,
    )


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
    """Parse one canned stream of every event type through the SDK, offline, once."""

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
    with client.messages.stream(
        model="warm-up", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for _ in stream:
            pass
        stream.get_final_message()
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
