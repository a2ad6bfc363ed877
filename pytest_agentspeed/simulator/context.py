"""The digest of a request's conversation, as the schedule log records it.

A replay sends a recorded session's requests again, with another model name, another output
limit and its own session id; what it must not change is the conversation. The schedule log
therefore records, for every request, a digest of the conversation alone
(:func:`context_digest`), which a test computes from a recorded body and looks up in the log:
the proof that the endpoint received exactly the recorded context. Standard library only: the
simulator's interface re-exports it, and importing that starts nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CONTEXT_KEYS", "context_digest"]

#: The keys of a request body that make up its conversation, on every wire: Anthropic's
#: ``system`` and ``messages``, Chat Completions' ``messages``, the Responses API's
#: ``instructions`` and ``input``, and everyone's ``tools``.
CONTEXT_KEYS: Final = ("system", "instructions", "messages", "input", "tools")


def context_digest(body: Mapping[str, Any]) -> str:
    """The sha256 (hex) of the canonical JSON of ``body``'s conversation.

    The conversation is a dict of those of :data:`CONTEXT_KEYS` that ``body`` has, with their
    values; canonical JSON is ``json.dumps(..., sort_keys=True, separators=(",", ":"))``.
    Everything else (model, output limit, ``min_tokens``, ``ignore_eos``, session ids, stream
    flags) is left out: a replay changes those.
    """
    context = {key: body[key] for key in CONTEXT_KEYS if key in body}
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
