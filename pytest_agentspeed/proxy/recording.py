"""What the proxy learns from the bytes it forwards: the facts of an :class:`Exchange`.

The forwarding loop (:mod:`~pytest_agentspeed.proxy.server`) hands each chunk of the response
body here, stamped with the moment it was read, *after* sending it on to the agent, so
recording never delays the agent. A streamed body goes through the clients' own
:class:`~pytest_agentspeed.clients.sse.SSEParser` and event-to-mark mapping
(:mod:`pytest_agentspeed.clients.streams`, :mod:`pytest_agentspeed.clients.responses_stream`);
a whole body is parsed once it has ended. The request body is read for its facts (model,
tools, ...) only after the response, for the same reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pytest_agentspeed.clients.responses_stream import ResponsesStream, responses_usage
from pytest_agentspeed.clients.responses_stream import stop_reason as responses_stop_reason
from pytest_agentspeed.clients.sse import SSEParser
from pytest_agentspeed.clients.streams import (
    STOP_REASONS,
    AnthropicStream,
    OpenAIStream,
    StreamProtocolError,
    anthropic_usage,
    normalised_usage,
)
from pytest_agentspeed.endpoints import redact
from pytest_agentspeed.errors import EndpointError
from pytest_agentspeed.exchanges import ExchangeWire, Operation
from pytest_agentspeed.records import Usage
from pytest_agentspeed.timing import EventLog

#: A whole (not streamed) body is kept for parsing up to this size; a larger one is forwarded
#: all the same and recorded without usage.
MAX_PARSED_BODY = 64 * 1024 * 1024


def operation_of(path: str) -> tuple[ExchangeWire, Operation]:
    """The wire and operation of a request, from its path below the session's prefix."""
    bare = path.partition("?")[0].rstrip("/")
    if bare == "/v1/messages":
        return "anthropic", "messages"
    if bare == "/v1/messages/count_tokens":
        return "anthropic", "count_tokens"
    if bare == "/v1/chat/completions":
        return "openai", "chat"
    if bare == "/v1/responses":
        return "responses", "responses"
    return "other", "other"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a request body asked for (all empty for a body that is no JSON object)."""

    model: str | None = None
    stream_requested: bool = False
    tools: tuple[str, ...] = ()
    structured_output: bool = False


def request_facts(body: bytes) -> RequestFacts:
    """Read the facts of a request body, on any wire."""
    if not body:
        return RequestFacts()
    try:
        data = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return RequestFacts()
    if not isinstance(data, dict):
        return RequestFacts()
    model = data.get("model")
    return RequestFacts(
        model=model if isinstance(model, str) else None,
        stream_requested=data.get("stream") is True,
        tools=_tool_names(data.get("tools")),
        structured_output=_asks_structured_output(data),
    )


def _tool_names(tools: Any) -> tuple[str, ...]:
    """Tool names: ``{name}`` (Anthropic, OpenAI Responses) or ``{function: {name}}`` (Chat);
    tools without a name (a Responses ``web_search``) are passed over."""
    names: list[str] = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        name = tool.get("name") or (function.get("name") if isinstance(function, dict) else None)
        if isinstance(name, str):
            names.append(name)
    return tuple(names)


def _asks_structured_output(data: dict[str, Any]) -> bool:
    """Whether the request asks for output of a schema: Anthropic's ``output_config.format``
    (or the older ``output_format``), Chat's ``response_format``, Responses'
    ``text.format``."""
    config = data.get("output_config")
    if isinstance(config, dict) and config.get("format"):
        return True
    if data.get("output_format"):
        return True
    text = data.get("text")
    text_format = text.get("format") if isinstance(text, dict) else None
    if isinstance(text_format, dict) and text_format.get("type") in ("json_schema", "json_object"):
        return True
    response_format = data.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in (
        "json_schema",
        "json_object",
    )


class ResponseRecorder:
    """Folds one response body, chunk by chunk, into the exchange's events and facts.

    :param wire: the request's wire (from its path); decides the stream mapping.
    :param operation: the request's operation.
    :param log: the exchange's event log; stream events are added with their bytes' times.
    :param status: the upstream's HTTP status.
    :param streamed: the body is an event stream (``text/event-stream``).
    :param secrets: texts to keep out of recorded error messages (the real key).
    """

    def __init__(
        self,
        *,
        wire: ExchangeWire,
        operation: Operation,
        log: EventLog,
        status: int,
        streamed: bool,
        secrets: list[str],
    ) -> None:
        self.wire = wire
        self.operation = operation
        self.log = log
        self.status = status
        self.streamed = streamed
        self.secrets = secrets
        self.usage: Usage | None = None
        self.usage_raw: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.error: str | None = None
        self._parser = SSEParser() if streamed else None
        self._stream: AnthropicStream | OpenAIStream | ResponsesStream | None = None
        if streamed and status < 400:
            if operation == "messages":
                self._stream = AnthropicStream(log)
            elif operation == "chat":
                self._stream = OpenAIStream(log)
            elif operation == "responses":
                self._stream = ResponsesStream(log)
        self._done = False
        self._body: list[bytes] = []
        self._size = 0

    def chunk(self, data: bytes, t_ns: int) -> None:
        """A chunk of the body, as forwarded, read at ``t_ns``."""
        if self._parser is None:
            self._size += len(data)
            if self._size <= MAX_PARSED_BODY:
                self._body.append(data)
            return
        events = self._parser.feed(data, t_ns)
        if self._stream is None or self._done:
            return
        try:
            for event in events:
                if self._stream.feed(event):
                    self._done = True
                    break
        except (EndpointError, StreamProtocolError) as exc:
            self._mapping_failed(exc, t_ns)

    def end(self, t_ns: int) -> None:
        """The body was read to its end at ``t_ns``."""
        if self._parser is None:
            self.log.add("response", t_ns=t_ns)
            self._whole_body()
            return
        last = self._parser.close(t_ns)
        stream = self._stream
        if stream is not None and not self._done:
            try:
                if last is not None and stream.lenient_end:
                    stream.feed(last)
            except (EndpointError, StreamProtocolError) as exc:
                self._mapping_failed(exc, t_ns)
        self.log.add("stream_end", t_ns=t_ns)
        if self._stream is not None:  # still mapping: no error on the way
            try:
                reply = self._stream.response()
            except (EndpointError, StreamProtocolError) as exc:
                self._mapping_failed(exc, t_ns, mark=False)
            else:
                self.usage, self.usage_raw = reply.usage, dict(reply.usage_raw)
                self.stop_reason = reply.stop_reason
        if self.status >= 400 and self.error is None:
            self.error = f"HTTP {self.status}"

    def broke(self, t_ns: int, what: str) -> None:
        """The body ended early at ``t_ns``: ``what`` happened (never holds a key)."""
        self.log.add("attempt_failed", detail="connection_error", t_ns=t_ns)
        self.error = redact(what, self.secrets)
        self._stream = None

    def _mapping_failed(self, exc: Exception, t_ns: int, *, mark: bool = True) -> None:
        """The stream could not be mapped: recorded as the exchange's error; its bytes still
        went to the agent unchanged."""
        if isinstance(exc, StreamProtocolError):
            if mark:
                self.log.add("attempt_failed", detail="protocol_error", t_ns=t_ns)
            text = f"protocol_error: {exc}"
        else:  # EndpointError: the mapping has already recorded attempt_failed
            text = str(exc)
        self.error = redact(text, self.secrets)
        self._stream = None

    def _whole_body(self) -> None:
        """Usage, stop reason and error of a body that was not streamed."""
        if self._size > MAX_PARSED_BODY:
            return
        body = b"".join(self._body)
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        if self.status >= 400:
            self.error = redact(_status_error(self.status, data), self.secrets)
            return
        if not isinstance(data, dict) or self.operation not in ("messages", "chat", "responses"):
            return
        raw = data.get("usage")
        try:
            if isinstance(raw, dict):
                self.usage_raw = raw
                self.usage = _WIRE_USAGE[self.operation](raw)
            if self.operation == "messages":
                reason = data.get("stop_reason")
            elif self.operation == "responses":
                output = data.get("output")
                items = (
                    [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []
                )
                reason = responses_stop_reason(data, items)
            else:
                choices = data.get("choices") or [{}]
                finish = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
                reason = STOP_REASONS.get(finish or "", finish)
            self.stop_reason = reason if isinstance(reason, str) else None
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            self.error = f"protocol_error: the response does not parse ({type(exc).__name__})"


#: Operation -> how its whole body's usage object reads.
_WIRE_USAGE = {
    "messages": anthropic_usage,
    "chat": normalised_usage,
    "responses": responses_usage,
}


def _status_error(status: int, body: Any) -> str:
    """``HTTP 429: rate_limit_error: ...`` from an error body of any wire."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"HTTP {status}"
    kind, message = error.get("type"), error.get("message")
    parts = [f"HTTP {status}"]
    parts += [str(x) for x in (kind, message) if x]
    return ": ".join(parts)
