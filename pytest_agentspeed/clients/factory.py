"""The client of an endpoint's wire: what the built-in agent and replays talk through.

A plugin's endpoint kind (:class:`~pytest_agentspeed.endpoints.kinds.EndpointKind`) may make
its own client; one that only changes where and how to reach a wire calls :func:`wire_client`
with its endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_agentspeed.endpoints import Endpoint, api_key
from pytest_agentspeed.errors import ConfigError

if TYPE_CHECKING:
    from pytest_agentspeed.clients import ModelClient


def wire_client(endpoint: Endpoint, *, base_url: str | None = None) -> ModelClient:
    """A new client of ``endpoint``'s wire (Anthropic Messages, Chat Completions or Responses)
    with the endpoint's model, key and request options; the caller closes it.

    :param base_url: where to send, if not the endpoint's own ``base_url`` (a simulated
        endpoint's mount); for the OpenAI wires it ends with ``/v1``.
    :raises ConfigError: when the endpoint's key is missing, or it has no base URL.
    """
    # A simulated endpoint takes any key; a named one sends its own, like a real one would.
    key = api_key(endpoint)
    base_url = base_url or endpoint.base_url
    if base_url is None:
        raise ConfigError(f"endpoint {endpoint.name!r}: no base URL to send to")
    options = endpoint.options
    common: dict[str, Any] = {
        "model": endpoint.model,
        "base_url": base_url,
        "timeout_s": float(options.get("timeout_s", 600.0)),
        "extra_headers": options.get("headers"),
        "extra_body": options.get("extra_body"),
        "max_tokens": options.get("max_tokens"),
        # A broken stream's retry waits like every other simulated delay.
        "retry_wait_s": 1.0 * (endpoint.sim.time_scale or 1.0) if endpoint.sim is not None else 1.0,
    }
    if endpoint.api == "openai":
        from pytest_agentspeed.clients.openai_client import OpenAIClient

        return OpenAIClient(api_key=key, **common)
    if endpoint.api == "responses":
        from pytest_agentspeed.clients.responses_client import ResponsesClient

        return ResponsesClient(api_key=key, **common)
    from pytest_agentspeed.clients.anthropic_client import AnthropicClient

    assert key is not None  # required for this wire; api_key() said so otherwise
    return AnthropicClient(
        api_key=key,
        thinking=options.get("thinking"),
        thinking_budget=options.get("thinking_budget"),
        x_api_key=options.get("auth") == "x-api-key",
        **common,
    )
