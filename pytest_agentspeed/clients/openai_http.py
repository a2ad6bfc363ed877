"""The HTTP side of the clients of OpenAI's wires, on ``httpx2`` directly: Chat Completions
(:mod:`~pytest_agentspeed.clients.openai_client`) and Responses
(:mod:`~pytest_agentspeed.clients.responses_client`) send through :class:`OpenAIWireClient`.

Not the ``openai`` SDK: its sync client drops the connection after every stream
(``research/wire-spec.md`` 3.6), so each turn would pay a new handshake inside the measured
time to first token. Each body here is read to its end, past the stream's last event, so the
pooled connection is reused across the seconds an agent spends in tools.

:meth:`OpenAIWireClient.send` posts a request body and feeds the response's events to a wire's
stream mapping (:class:`~pytest_agentspeed.clients.streams.OpenAIStream`,
:class:`~pytest_agentspeed.clients.responses_stream.ResponsesStream`: anything shaped like
:class:`EventStream`), recording each attempt on the turn's log, with the SDKs' retry policy:

* statuses in :data:`RETRY_STATUS` are retried after the server's ``retry-after-ms`` /
  ``retry-after`` (capped at :data:`MAX_RETRY_AFTER_S`), else after 0.5 * 2^n s less up to a
  quarter of jitter; other statuses raise at once;
* a timeout or a connection that could not be made is retried the same way;
* a stream that broke off after the response started is not retried here (the SDKs do not
  either): it raises an :class:`~pytest_agentspeed.errors.EndpointError` marked
  ``mid_stream``, and the agent loop decides.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

import httpx2

from pytest_agentspeed.clients import ModelResponse, RawRequest
from pytest_agentspeed.clients.sse import SSEEvent, SSEParser
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


class EventStream(Protocol):
    """A wire's mapping of one response's events (see :mod:`~pytest_agentspeed.clients.streams`)."""

    #: Whether an event left without its closing blank line at the end of the body counts.
    lenient_end: bool

    def feed(self, event: SSEEvent) -> bool:
        """Fold one event in; ``True`` once the stream said it is over."""
        ...

    def response(self) -> ModelResponse:
        """The reply, once the body has ended."""
        ...


class OpenAIWireClient:
    """Base of the clients of OpenAI's wires: the pooled HTTP client, the request options,
    :meth:`send` and :meth:`send_raw`. A subclass names its :attr:`path`, maps a response's
    events (:meth:`events`) and builds the body in ``complete``.

    :param model: the model name sent in each request.
    :param base_url: the API base, including ``/v1`` (as the OpenAI SDK takes it).
    :param api_key: sent as ``Authorization: Bearer``; ``None`` for servers without keys.
    :param timeout_s: per-request timeout.
    :param max_retries: further attempts after a failed one.
    :param extra_headers: added to every request.
    :param extra_body: merged last into every request body (e.g. ``reasoning_effort``).
    :param max_tokens: overrides the task's per-response limit.
    :param retry_wait_s: see :attr:`~pytest_agentspeed.clients.ModelClient.retry_wait_s`.
    :param transport: an httpx2 transport to use instead of the network (tests).
    """

    #: Where the requests go, below ``base_url``.
    path: ClassVar[str]

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
        self.url = base_url.rstrip("/") + self.path
        self.max_retries = max_retries
        self.extra_body = dict(extra_body or {})
        self.max_tokens = max_tokens
        # Compression can hold back SSE bytes; ask for the stream as it is produced.
        headers = {"accept-encoding": "identity", **(extra_headers or {})}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = MarkedHttp(timeout_s=timeout_s, headers=headers, transport=transport)

    def close(self) -> None:
        """Release the pooled connections."""
        self._http.close()

    def send_raw(self, request: RawRequest, log: EventLog) -> ModelResponse:
        """Stream ``request``'s body as it is; see :class:`~pytest_agentspeed.clients.RawSender`.

        The client's own request options (``extra_body``, ``max_tokens``) are not applied: the
        body is the whole request.

        :raises ValueError: when the path is not this wire's (``/v1`` + :attr:`path`), or the
            body does not ask for a streamed answer.
        """
        if request.path != "/v1" + self.path:
            raise ValueError(f"{request.path} is not the path of this wire (/v1{self.path})")
        if request.body.get("stream") is not True:
            raise ValueError("the body does not ask for a streamed answer (stream: true)")
        return self.send(dict(request.body), log, self.events)

    def events(self, log: EventLog) -> EventStream:
        """A new mapping of one response's events on this wire, marking ``log``."""
        raise NotImplementedError

    def send(
        self, body: dict[str, Any], log: EventLog, stream: Callable[[EventLog], EventStream]
    ) -> ModelResponse:
        """Send ``body`` until an attempt is served or the retries are spent; each attempt's
        response is mapped by a new ``stream(log)``.

        :raises EndpointError: the last attempt's error, or a stream that broke off.
        """
        with self._http.marking(log):
            for attempt in range(self.max_retries + 1):
                try:
                    return self._attempt(body, log, stream)
                except Retryable as exc:
                    if attempt == self.max_retries:
                        raise exc.error from None
                    time.sleep(exc.wait_s(attempt))
        raise AssertionError("unreachable")

    def _attempt(
        self, body: dict[str, Any], log: EventLog, make: Callable[[EventLog], EventStream]
    ) -> ModelResponse:
        try:
            with self._http.client.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    error = status_error(response)
                    log.add("attempt_failed", detail=error.error_type)
                    if response.status_code in RETRY_STATUS:
                        raise Retryable(error, retry_after(response.headers))
                    raise error
                stream = make(log)
                try:
                    end_ns = read_stream(StampedBody(response, log.clock), stream)
                except httpx2.TransportError as exc:
                    # Like the SDKs, retry only what failed before the response started.
                    raise broken_stream(log, exc) from None
            log.add("stream_end", t_ns=end_ns)
        except httpx2.TimeoutException:
            log.add("attempt_failed", detail="timeout")
            raise Retryable(
                EndpointError("timeout", "the endpoint did not answer in time")
            ) from None
        except httpx2.TransportError as exc:
            log.add("attempt_failed", detail="connection_error")
            raise Retryable(unreachable(self.base_url, exc)) from None
        return stream.response()


def retry_after(headers: httpx2.Headers) -> str | None:
    """The server's wait in seconds: ``retry-after-ms`` first, as the SDKs read it."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return str(float(ms) / 1000)
        except ValueError:
            pass
    return headers.get("retry-after")


class Retryable(Exception):
    """A failed attempt worth another: the error to raise if it was the last, and the
    server's wait."""

    def __init__(self, error: EndpointError, retry_after: str | None = None) -> None:
        self.error = error
        self.retry_after = retry_after

    def wait_s(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if self.retry_after:
            try:
                return min(max(float(self.retry_after), 0.0), MAX_RETRY_AFTER_S)
            except ValueError:
                pass
        backoff: float = min(0.5 * 2.0**attempt, 8.0)
        return backoff * (1 - 0.25 * random.random())


def read_stream(body: StampedBody, stream: EventStream) -> int:
    """Feed the body's events to ``stream``; returns when the end of the body was read.

    Reads past the stream's last event to the end of the body, so the connection goes back to
    the pool for the next turn instead of being dropped.
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
    # A body that ends right after its last data line, without the blank line, still counts
    # where the wire's mapping says so.
    last = parser.close(end_ns)
    if last is not None and not done and stream.lenient_end:
        stream.feed(last)
    return end_ns


def status_error(response: httpx2.Response) -> EndpointError:
    """The error an HTTP error response stands for: ``error.type`` (else ``http_STATUS``) and
    its message."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
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
