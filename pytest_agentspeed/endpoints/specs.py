"""The ``anthropic:``, ``openai:`` and ``openai-responses:`` specs: real endpoints."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from pytest_agentspeed.endpoints.model import (
    ANTHROPIC_KEY_VARS,
    DEFAULT_ANTHROPIC_URL,
    OPENAI_KEY_VARS,
    Api,
    Endpoint,
    strip_url_secrets,
)
from pytest_agentspeed.errors import ConfigError


def parse_anthropic(spec: str, rest: str) -> Endpoint:
    model, at, base_url = rest.partition("@")
    if at:
        _check_base_url("anthropic", model, base_url, "anthropic:MODEL[@BASE_URL]")
    if not model or not re.fullmatch(r"[\w.:/-]+", model):
        raise ConfigError(
            f"endpoint {_shown('anthropic', model, at, base_url)!r}: "
            f"{'the model is missing' if not model else f'bad model name {model!r}'}; "
            "expected anthropic:MODEL[@BASE_URL] (e.g. anthropic:claude-sonnet-4-5)"
        )
    if not at:
        base_url = os.environ.get("ANTHROPIC_BASE_URL", DEFAULT_ANTHROPIC_URL)
    return Endpoint(
        name=f"anthropic:{model}",
        api="anthropic",
        model=model,
        base_url=base_url,
        key_vars=ANTHROPIC_KEY_VARS,
    )


#: What an ``openai:`` spec looks like, for its error messages.
_OPENAI_FORM = (
    "openai:MODEL@BASE_URL, the base URL with /v1 as the OpenAI SDK takes it "
    "(e.g. openai:qwen3@http://127.0.0.1:8000/v1)"
)


def parse_openai(spec: str, rest: str, api: Api = "openai") -> Endpoint:
    """An ``openai:`` (Chat Completions) or ``openai-responses:`` (Responses API) spec: the same
    form, the same key variable, another path below the base URL."""
    kind = "openai-responses" if api == "responses" else "openai"
    model, at, base_url = rest.partition("@")
    if not at:
        raise ConfigError(
            f"endpoint {spec!r}: the base URL is missing; "
            f"expected {_OPENAI_FORM.replace('openai:', f'{kind}:')}"
        )
    form = _OPENAI_FORM.replace("openai:", f"{kind}:")
    _check_base_url(kind, model, base_url, form)
    if not model:
        raise ConfigError(
            f"endpoint {_shown(kind, model, at, base_url)!r}: the model is missing; expected {form}"
        )
    return Endpoint(
        name=f"{kind}:{model}",
        api=api,
        model=model,
        base_url=base_url,
        key_vars=OPENAI_KEY_VARS,
        key_required=False,
    )


def _check_base_url(kind: str, model: str, base_url: str, form: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint {_shown(kind, model, '@', base_url)!r}: the base URL must be "
            f"http(s)://HOST[:PORT][/PATH]; expected {form}"
        )


def _shown(kind: str, model: str, at: str, base_url: str) -> str:
    """A spec as an error may echo it: a base URL's credentials and query (which may carry
    a key) left out."""
    return f"{kind}:{model}{at}{strip_url_secrets(base_url) if at else ''}"
