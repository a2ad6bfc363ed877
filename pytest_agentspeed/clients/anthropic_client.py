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

The stream is folded into the final message by
:class:`~pytest_agentspeed.clients.streams.AnthropicStream`, as the SDK's ``accumulate_event``
does (text, thinking and signature, tool input JSON, citations; usage counts of
``message_delta`` overwrite those of ``message_start``), with the SDK's rules for what it skips
(events without a name, ``ping``, empty data) and raises (``error`` events). The recording
proxy maps the streams it forwards with the same class.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

import anthropic
import httpx2

from pytest_agentspeed.clients import ModelResponse, RawRequest, TurnRequest
from pytest_agentspeed.clients.sse import SSEParser
from pytest_agentspeed.clients.streams import AnthropicStream, StreamProtocolError
from pytest_agentspeed.clients.transport import (
    MarkedHttp,
    StampedBody,
    broken_stream,
    unreachable,
)
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.timing import EventLog

#: SDK retries (429, 5xx, 529, connection errors) stay on; each attempt is recorded.
DEFAULT_MAX_RETRIES = 2
#: The keys the SDK's ``messages.create`` takes as parameters of their own (required).
_REQUIRED = ("model", "max_tokens", "messages")


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
        return self._stream(params, self.extra_body, log)

    def send_raw(self, request: RawRequest, log: EventLog) -> ModelResponse:
        """Stream ``request``'s body as it is; see :class:`~pytest_agentspeed.clients.RawSender`.

        The SDK still sends it, with its headers and retries: ``model``, ``max_tokens`` and
        ``messages`` go as its parameters and every other key through ``extra_body``, so the
        JSON sent equals the body; the path's query (``?beta=true``) goes as ``extra_query``.
        The client's own request options (``extra_body``, thinking, ``max_tokens``) are not
        applied: the body is the whole request.

        :raises ValueError: when the path is not ``/v1/messages`` (with or without a query),
            or the body does not ask for a streamed answer or lacks a required key.
        """
        path, _, query = request.path.partition("?")
        if path != "/v1/messages":
            raise ValueError(f"{request.path} is not a path of the Anthropic Messages wire")
        body = dict(request.body)
        if body.pop("stream", None) is not True:
            raise ValueError("the body does not ask for a streamed answer (stream: true)")
        missing = [key for key in _REQUIRED if key not in body]
        if missing:
            raise ValueError(f"the body has no {', '.join(missing)}")
        params = {key: body.pop(key) for key in _REQUIRED}
        extra_query = dict(parse_qsl(query, keep_blank_values=True)) or None
        return self._stream(params, body, log, extra_query)

    def _stream(
        self,
        params: dict[str, Any],
        extra_body: dict[str, Any] | None,
        log: EventLog,
        extra_query: dict[str, str] | None = None,
    ) -> ModelResponse:
        with self._http.marking(log):
            return _send(self._sdk, params, extra_body, log, self.base_url, extra_query)


def _send(
    sdk: anthropic.Anthropic,
    params: dict[str, Any],
    extra_body: dict[str, Any] | None,
    log: EventLog,
    base_url: str,
    extra_query: dict[str, str] | None = None,
) -> ModelResponse:
    """Send one request through the SDK and fold its stream into the reply."""
    try:
        with sdk.messages.with_streaming_response.create(
            **params, stream=True, extra_body=extra_body, extra_query=extra_query
        ) as raw:
            message = AnthropicStream(log)
            try:
                end_ns = _read_stream(StampedBody(raw.http_response, log.clock), message)
            except httpx2.TransportError as exc:
                # The SDK retries only until the response starts; these come from reading the
                # stream: the connection dropped or went silent mid-response.
                raise broken_stream(log, exc) from None
        log.add("stream_end", t_ns=end_ns)
        return message.response()
    except anthropic.APIStatusError as exc:
        log.add("attempt_failed", detail=_error_type(exc))
        raise EndpointError(_error_type(exc), _status_message(exc), exc.status_code) from None
    except anthropic.APITimeoutError:
        log.add("attempt_failed", detail="timeout")
        raise EndpointError("timeout", "the endpoint did not answer in time") from None
    except anthropic.APIConnectionError as exc:
        log.add("attempt_failed", detail="connection_error")
        raise unreachable(base_url, exc.__cause__ or exc) from None
    except StreamProtocolError as exc:
        # The stream ended early or did not parse.
        log.add("attempt_failed", detail="protocol_error")
        raise EndpointError("protocol_error", str(exc)) from None


def _read_stream(body: StampedBody, message: AnthropicStream) -> int:
    """Fold the body's events into ``message`` (and its log); when its end was read."""
    parser = SSEParser()
    feed = message.feed
    with body:
        for chunk, t_ns in body:
            if not chunk:
                return t_ns
            for event in parser.feed(chunk, t_ns):
                feed(event)
    raise AssertionError("unreachable: the body ends with an empty chunk")


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
