"""OpenAI-compatible Chat Completions client over httpx2 (vLLM, SGLang, llama.cpp, ...).

Not the ``openai`` SDK: its sync client drops the connection after every stream
(``research/wire-spec.md`` 3.6), so each turn would pay a new handshake inside the measured
time to first token. This client reads each stream to its end, so the pooled connection is
reused across the seconds an agent spends in tools.

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
import random
import time
from collections.abc import Mapping
from typing import Any

import httpx2

from pytest_agentspeed.clients import ModelResponse, TurnRequest
from pytest_agentspeed.clients.sse import SSEParser
from pytest_agentspeed.clients.streams import OpenAIStream
from pytest_agentspeed.clients.transport import (
    MarkedHttp,
    StampedBody,
    broken_stream,
    unreachable,
)
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.timing import EventLog

DEFAULT_MAX_RETRIES = 2
#: The SDKs' policy: retry these statuses; wait retry-after(-ms), capped, else 0.5 * 2^n s.
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_RETRY_AFTER_S = 60.0


class OpenAIClient:
    """Sends turns over the OpenAI-compatible Chat Completions wire, recording timing events.

    :param model: the model name sent in each request.
    :param base_url: the API base, including ``/v1`` (as the OpenAI SDK takes it).
    :param api_key: sent as ``Authorization: Bearer``; ``None`` for servers without keys.
    :param extra_headers: added to every request.
    :param extra_body: merged into every request body (e.g. ``reasoning_effort``).
    :param max_tokens: overrides the task's per-response limit.
    :param retry_wait_s: see :attr:`ModelClient.retry_wait_s`.
    :param transport: an httpx2 transport to use instead of the network (tests).
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str | None,
        timeout_s: float = 600.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        retry_wait_s: float = 1.0,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.retry_wait_s = retry_wait_s
        self.base_url = base_url
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.max_retries = max_retries
        self.extra_body = dict(extra_body or {})
        self.max_tokens = max_tokens
        # Compression can hold back SSE bytes; ask for the stream as it is produced.
        headers = {"accept-encoding": "identity", **(extra_headers or {})}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = MarkedHttp(timeout_s=timeout_s, headers=headers, transport=transport)

    def close(self) -> None:
        self._http.close()

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
        with self._http.marking(log):
            for attempt in range(self.max_retries + 1):
                try:
                    return self._attempt(body, log)
                except _Retryable as exc:
                    if attempt == self.max_retries:
                        raise exc.error from None
                    time.sleep(exc.wait_s(attempt))
        raise AssertionError("unreachable")

    def _attempt(self, body: dict[str, Any], log: EventLog) -> ModelResponse:
        try:
            with self._http.client.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    error = _status_error(response)
                    log.add("attempt_failed", detail=error.error_type)
                    if response.status_code in RETRY_STATUS:
                        raise _Retryable(error, _retry_after(response.headers))
                    raise error
                stream = OpenAIStream(log)
                try:
                    end_ns = _read_stream(StampedBody(response, log.clock), stream)
                except httpx2.TransportError as exc:
                    # Like the SDKs, retry only what failed before the response started.
                    raise broken_stream(log, exc) from None
            log.add("stream_end", t_ns=end_ns)
        except httpx2.TimeoutException:
            log.add("attempt_failed", detail="timeout")
            raise _Retryable(
                EndpointError("timeout", "the endpoint did not answer in time")
            ) from None
        except httpx2.TransportError as exc:
            log.add("attempt_failed", detail="connection_error")
            raise _Retryable(unreachable(self.base_url, exc)) from None
        return stream.response()


def _retry_after(headers: httpx2.Headers) -> str | None:
    """The server's wait in seconds: ``retry-after-ms`` first, as the SDKs read it."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return str(float(ms) / 1000)
        except ValueError:
            pass
    return headers.get("retry-after")


class _Retryable(Exception):
    def __init__(self, error: EndpointError, retry_after: str | None = None) -> None:
        self.error = error
        self.retry_after = retry_after

    def wait_s(self, attempt: int) -> float:
        if self.retry_after:
            try:
                return min(max(float(self.retry_after), 0.0), MAX_RETRY_AFTER_S)
            except ValueError:
                pass
        backoff: float = min(0.5 * 2.0**attempt, 8.0)
        return backoff * (1 - 0.25 * random.random())


def _read_stream(body: StampedBody, stream: OpenAIStream) -> int:
    """Feed the body's events to ``stream``; returns when the end of the body was read.

    Reads past ``[DONE]`` to the end of the body, so the connection goes back to the pool for
    the next turn instead of being dropped.
    """
    parser = SSEParser()
    done = False
    end_ns = 0
    with body:
        for chunk, t_ns in body:
            if not chunk:
                end_ns = t_ns
                break
            for event in parser.feed(chunk, t_ns):
                if not done:
                    done = stream.feed(event)
    # A body that ends right after its last data line, without the blank line, still counts.
    last = parser.close(end_ns)
    if last is not None and not done:
        stream.feed(last)
    return end_ns


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
    system_text = "".join(b.get("text", "") for b in system if isinstance(b, dict))
    if system_text:
        out.append({"role": "system", "content": system_text})
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
                result = b.get("content", "")
                if isinstance(result, list):
                    result = "".join(
                        part.get("text", "") for part in result if isinstance(part, dict)
                    )
                out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": result})
            elif b.get("type") == "text":
                texts.append(b["text"])
        if texts:
            out.append({"role": "user", "content": "\n\n".join(texts)})
    return out


def _status_error(response: httpx2.Response) -> EndpointError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    kind = (
        str(error.get("type") or f"http_{response.status_code}")
        if isinstance(error, dict)
        else f"http_{response.status_code}"
    )
    message = error.get("message") if isinstance(error, dict) else None
    return EndpointError(
        kind,
        f"HTTP {response.status_code}: {message or response.reason_phrase}",
        response.status_code,
    )
