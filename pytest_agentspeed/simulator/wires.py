"""The wires the simulated endpoint speaks, each as one entry of a table.

:meth:`~pytest_agentspeed.simulator.replies.Simulator.decide` is the same for every wire: match
the task, plan the turn, account the cache, plan the latency. What differs is read and written
here: how a request is validated, turned into the Anthropic-shaped conversation the task
library reads, and who it says it is; how usage is counted; how the reply and an error are
written, whole, streamed, or broken off mid-stream. :data:`WIRES` maps a :data:`Wire` to its
:class:`WireFormat`; each delegates to its pure wire module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from pytest_agentspeed.simulator import anthropic_wire, openai_wire, responses_wire
from pytest_agentspeed.simulator.anthropic_wire import OutBlock, content_text
from pytest_agentspeed.simulator.cache import Block, CacheUse, request_blocks
from pytest_agentspeed.simulator.latency import ResponsePlan
from pytest_agentspeed.simulator.profiles import Profile

__all__ = ["WIRES", "Outcome", "Wire", "WireFormat"]

#: The wire a request came in on (and its reply goes out in).
Wire = Literal["anthropic", "openai", "responses"]
Writes = list[tuple[float, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A decided reply, before it is written in a wire."""

    #: The request it answers.
    body: Mapping[str, Any]
    #: A digest naming the reply (its id is derived from it, per wire).
    digest: str
    request_id: str
    created: int
    blocks: list[OutBlock]
    stop_reason: str
    usage: dict[str, Any]


class WireFormat(Protocol):
    """What one wire reads from a request and writes back."""

    #: Prefix of the ids of the tool calls the model makes.
    tool_prefix: str

    def invalid(self, body: Any) -> str | None:
        """Why ``body`` is not a request of this wire, or ``None``."""
        ...

    def error_body(self, error_type: str, message: str, request_id: str) -> dict[str, Any]:
        """The JSON body of an error status."""
        ...

    def conversation(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The request's conversation as Anthropic-shaped messages."""
        ...

    def budget(self, body: Mapping[str, Any]) -> int:
        """The reply's output token limit."""
        ...

    def session(self, body: Mapping[str, Any]) -> str | None:
        """The session identity the request states, if any."""
        ...

    def system_text(self, body: Mapping[str, Any]) -> str:
        """The agent's system prompt and system messages (where agents state their working
        directory)."""
        ...

    def thinking(self, body: Mapping[str, Any], profile: Profile) -> str:
        """How the model's reasoning is sent: "on", "omitted" (spent, not shown) or "off"."""
        ...

    def cache_blocks(self, body: dict[str, Any]) -> list[Block]:
        """The request's prompt-cache blocks."""
        ...

    def usage(self, use: CacheUse, *, output_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
        """The usage object."""
        ...

    def whole(self, outcome: Outcome) -> dict[str, Any]:
        """The body of a non-streamed reply."""
        ...

    def stream(self, outcome: Outcome, plan: ResponsePlan) -> Writes:
        """The streamed reply as (offset, bytes) writes."""
        ...

    def stream_error(self, outcome: Outcome, sent: Writes, message: str) -> bytes:
        """The event that ends a stream on an ``overloaded`` failure, after ``sent``."""
        ...


def _system_messages(messages: Any) -> list[str]:
    return [
        content_text(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    ]


def _user(body: Mapping[str, Any]) -> str | None:
    """Anthropic's ``metadata.user_id``, else OpenAI's ``user`` (either wire may carry both)."""
    metadata = body.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    user = metadata.get("user_id") or body.get("user")
    return str(user) if user else None


class _Anthropic:
    tool_prefix = "toolu_sim_"

    def invalid(self, body: Any) -> str | None:
        return anthropic_wire.invalid(body)

    def error_body(self, error_type: str, message: str, request_id: str) -> dict[str, Any]:
        return anthropic_wire.error_json(error_type, message, request_id)

    def conversation(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list(body["messages"])

    def budget(self, body: Mapping[str, Any]) -> int:
        return int(body["max_tokens"])

    def session(self, body: Mapping[str, Any]) -> str | None:
        return _user(body)

    def system_text(self, body: Mapping[str, Any]) -> str:
        # Claude Code states its working directory in a ``role: "system"`` message
        # mid-conversation with some models, in the first user message with others.
        parts = [content_text(body.get("system")), *_system_messages(body["messages"])]
        return "\n".join(parts)

    def thinking(self, body: Mapping[str, Any], profile: Profile) -> str:
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            return "omitted" if thinking.get("display") == "omitted" else "on"
        return "off"

    def cache_blocks(self, body: dict[str, Any]) -> list[Block]:
        return request_blocks(body)

    def usage(self, use: CacheUse, *, output_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
        return anthropic_wire.usage_json(
            input_tokens=use.input_tokens,
            cache_read=use.cache_read_tokens,
            cache_write=use.cache_write_tokens,
            output_tokens=output_tokens,
        )

    def _message(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "message_id": f"msg_sim_{outcome.digest[:24]}",
            "model": str(outcome.body["model"]),
            "blocks": outcome.blocks,
            "stop_reason": outcome.stop_reason,
            "usage": outcome.usage,
        }

    def whole(self, outcome: Outcome) -> dict[str, Any]:
        return anthropic_wire.message_json(**self._message(outcome))

    def stream(self, outcome: Outcome, plan: ResponsePlan) -> Writes:
        return anthropic_wire.render_stream(**self._message(outcome), plan=plan)

    def stream_error(self, outcome: Outcome, sent: Writes, message: str) -> bytes:
        data = json.dumps(
            anthropic_wire.error_json("overloaded_error", message, outcome.request_id)
        )
        return f"event: error\ndata: {data}\n\n".encode()


class _OpenAI:
    tool_prefix = "call_sim_"

    def invalid(self, body: Any) -> str | None:
        return openai_wire.invalid(body)

    def error_body(self, error_type: str, message: str, request_id: str) -> dict[str, Any]:
        return openai_wire.error_json(error_type, message)

    def conversation(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        return openai_wire.to_anthropic_messages(body["messages"])

    def budget(self, body: Mapping[str, Any]) -> int:
        return int(openai_wire.max_tokens(body))

    def session(self, body: Mapping[str, Any]) -> str | None:
        return _user(body)

    def system_text(self, body: Mapping[str, Any]) -> str:
        return "\n".join(_system_messages(body["messages"]))

    def thinking(self, body: Mapping[str, Any], profile: Profile) -> str:
        # Chat completions has no switch for it: a reasoning model streams its reasoning.
        return "on" if profile.reasons else "off"

    def cache_blocks(self, body: dict[str, Any]) -> list[Block]:
        return request_blocks(body, automatic=True)

    def usage(self, use: CacheUse, *, output_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
        return openai_wire.usage_json(
            prompt_tokens=use.input_tokens + use.cache_read_tokens + use.cache_write_tokens,
            cached=use.cache_read_tokens,
            completion_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
        )

    def _completion(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "completion_id": f"chatcmpl-{outcome.digest[:24]}",
            "model": str(outcome.body["model"]),
            "created": outcome.created,
            "blocks": outcome.blocks,
            "stop_reason": outcome.stop_reason,
            "usage": outcome.usage,
        }

    def whole(self, outcome: Outcome) -> dict[str, Any]:
        return openai_wire.completion_json(**self._completion(outcome))

    def stream(self, outcome: Outcome, plan: ResponsePlan) -> Writes:
        options = outcome.body.get("stream_options")
        return openai_wire.render_stream(
            **self._completion(outcome),
            plan=plan,
            include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
        )

    def stream_error(self, outcome: Outcome, sent: Writes, message: str) -> bytes:
        data = json.dumps(openai_wire.error_json("overloaded_error", message))
        return f"data: {data}\n\n".encode()


class _Responses:
    tool_prefix = "call_sim_"

    def invalid(self, body: Any) -> str | None:
        return responses_wire.invalid(body)

    def error_body(self, error_type: str, message: str, request_id: str) -> dict[str, Any]:
        return openai_wire.error_json(error_type, message)

    def conversation(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        return responses_wire.to_anthropic_messages(body)

    def budget(self, body: Mapping[str, Any]) -> int:
        return responses_wire.max_output_tokens(body)

    def session(self, body: Mapping[str, Any]) -> str | None:
        return responses_wire.session_key(body)

    def system_text(self, body: Mapping[str, Any]) -> str:
        return responses_wire.instructions_text(body)

    def thinking(self, body: Mapping[str, Any], profile: Profile) -> str:
        return responses_wire.reasoning_mode(body, reasons=profile.reasons)

    def cache_blocks(self, body: dict[str, Any]) -> list[Block]:
        # OpenAI caches automatically, and routes by prompt_cache_key with the prefix: requests
        # with different keys do not share cached prefixes.
        key = body.get("prompt_cache_key")
        return request_blocks(body, automatic=True, key=key if isinstance(key, str) else "")

    def usage(self, use: CacheUse, *, output_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
        return responses_wire.usage_json(
            input_tokens=use.input_tokens + use.cache_read_tokens + use.cache_write_tokens,
            cached=use.cache_read_tokens,
            cache_write=use.cache_write_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
        )

    def _head(self, outcome: Outcome) -> responses_wire.ResponseHead:
        response_id = f"resp_sim{outcome.digest[:24]}"
        return responses_wire.ResponseHead.of(outcome.body, response_id, outcome.created)

    def whole(self, outcome: Outcome) -> dict[str, Any]:
        return responses_wire.response_json(
            head=self._head(outcome),
            blocks=outcome.blocks,
            stop_reason=outcome.stop_reason,
            usage=outcome.usage,
        )

    def stream(self, outcome: Outcome, plan: ResponsePlan) -> Writes:
        return responses_wire.render_stream(
            head=self._head(outcome),
            blocks=outcome.blocks,
            stop_reason=outcome.stop_reason,
            usage=outcome.usage,
            plan=plan,
        )

    def stream_error(self, outcome: Outcome, sent: Writes, message: str) -> bytes:
        return responses_wire.error_events(
            self._head(outcome), responses_wire.events_in(sent), "server_error", message
        )


#: Each wire's format.
WIRES: Final[Mapping[Wire, WireFormat]] = {
    "anthropic": _Anthropic(),
    "openai": _OpenAI(),
    "responses": _Responses(),
}
