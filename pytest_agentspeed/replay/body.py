"""The body a replay sends for one recorded request: the recorded body made the endpoint's.

A replay keeps what the agent sent (the context, the tools, the recorded replies in the
conversation) and changes only what belongs to the endpoint and to the replayed session: the
model name, the endpoint's request options as its client applies them to a live turn, the
session's id, a streamed answer, and the output length, pinned to the recorded one so that
both arms of an A/B generate the same number of tokens (:data:`Pin`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from pytest_agentspeed.clients.anthropic_client import thinking_config
from pytest_agentspeed.endpoints import Api, Endpoint
from pytest_agentspeed.replay.recording import RecordedRequest

#: How the output length is held to the recorded one: ``max_tokens`` caps it (every wire);
#: ``exact`` also asks for at least as many (``min_tokens`` and ``ignore_eos``, which vLLM,
#: SGLang and the simulated endpoint honour).
Pin = Literal["max_tokens", "exact"]


def pin_for(endpoint: Endpoint) -> Pin:
    """How a replay on ``endpoint`` pins the output: ``exact`` on a simulated endpoint, and on
    a named one whose ``extra_body`` sets ``ignore_eos`` (a vLLM or SGLang server, which then
    also honours ``min_tokens``); ``max_tokens`` elsewhere (a real API would reject the
    unknown fields)."""
    if endpoint.simulated:
        return "exact"
    extra = endpoint.options.get("extra_body") or {}
    return "exact" if isinstance(extra, Mapping) and extra.get("ignore_eos") else "max_tokens"


def replay_body(
    request: RecordedRequest,
    *,
    endpoint: Endpoint,
    session_id: str,
    pin: Pin,
) -> dict[str, Any]:
    """The body to send for ``request`` to ``endpoint``: the recorded body with the
    endpoint's model and request options, the session's own id where the wire carries one
    (``metadata.user_id``, ``user``, ``prompt_cache_key``), a streamed answer, and the
    output length pinned to the recorded one.

    In this order, on a copy of the recorded body (which is left as it is):

    1. ``model`` is the endpoint's.
    2. The endpoint's request options, as its client applies them to a live turn: on the
       Anthropic wire its ``thinking`` / ``thinking_budget`` replace the recorded
       ``thinking``; its ``max_tokens`` replaces the recorded limit (of a request that is not
       pinned: see 4); its ``extra_body`` is merged last, key by key over the body.
    3. The replayed session's id goes into ``metadata.user_id`` (Anthropic, other metadata
       kept), ``user`` (Chat Completions) or ``prompt_cache_key`` (Responses), so the
       endpoint tells replayed sessions apart (and does not share a cache between them);
       ``stream`` is true, and on Chat Completions ``stream_options.include_usage`` too.
    4. A request answered with N > 0 output tokens is pinned to N: ``max_tokens``
       (Anthropic), ``max_completion_tokens`` or ``max_tokens`` (Chat Completions: whichever
       the body used, ``max_tokens`` if neither), ``max_output_tokens`` (Responses); with
       ``pin="exact"`` also ``min_tokens = N`` and ``ignore_eos = true``. A request recorded
       without an answer, or with 0 output tokens, keeps its limit.
    5. On the Anthropic wire thinking tokens count toward ``max_tokens``, which must exceed
       the thinking budget: a body whose budget is at least its ``max_tokens`` gets
       ``max_tokens = budget + max_tokens`` (the recorded output then fits after a full
       budget of thinking; ``min_tokens`` stays N).

    What the recorded endpoint's own options put into the body (its ``extra_body`` fields)
    stays unless this endpoint's options set the same keys: a recording does not say which
    fields were the agent's.
    """
    wire = endpoint.api
    body = copy.deepcopy(request.body)
    body["model"] = endpoint.model
    options = endpoint.options
    limit_key = _limit_key(wire, body)
    if wire == "anthropic":
        thinking = thinking_config(options.get("thinking"), options.get("thinking_budget"))
        if thinking is not None:
            body["thinking"] = thinking
    if options.get("max_tokens"):
        body[limit_key] = int(options["max_tokens"])
    body.update(options.get("extra_body") or {})

    _identify(wire, body, session_id)
    body["stream"] = True
    if wire == "openai":
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}

    pinned = _recorded_output(request)
    if pinned:
        body[limit_key] = pinned
        if pin == "exact":
            body["min_tokens"] = pinned
            body["ignore_eos"] = True
    if wire == "anthropic":
        budget = _thinking_budget(body)
        limit = body.get("max_tokens")
        if budget and isinstance(limit, int) and budget >= limit:
            body["max_tokens"] = budget + limit
    return body


def _limit_key(wire: Api, body: Mapping[str, Any]) -> str:
    """The body's key for the output limit."""
    if wire == "responses":
        return "max_output_tokens"
    if wire == "openai" and "max_completion_tokens" in body:
        return "max_completion_tokens"
    return "max_tokens"


def _identify(wire: Api, body: dict[str, Any], session_id: str) -> None:
    """Put the session's id where ``wire`` carries one (the simulator seeds its draws and
    keys its cache by it, as real servers route and cache by it)."""
    if wire == "anthropic":
        metadata = body.get("metadata")
        kept = metadata if isinstance(metadata, dict) else {}
        body["metadata"] = {**kept, "user_id": session_id}
    elif wire == "openai":
        body["user"] = session_id
    else:
        body["prompt_cache_key"] = session_id


def _recorded_output(request: RecordedRequest) -> int:
    """The output tokens to pin to: the recorded answer's, 0 for a request not answered."""
    answered = request.status == 200 and request.error is None
    return request.usage.output_tokens if answered else 0


def _thinking_budget(body: Mapping[str, Any]) -> int:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return 0
    budget = thinking.get("budget_tokens")
    return budget if isinstance(budget, int) and not isinstance(budget, bool) else 0
