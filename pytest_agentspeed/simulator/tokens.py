"""A deterministic stand-in for a tokenizer.

The simulator needs token counts (usage, prompt-cache accounting, generation time) and token
boundaries (how a response is cut into stream deltas). A real BPE vocabulary is not available
offline, so text is cut into pieces of at most four word characters or one punctuation mark,
each carrying its leading whitespace: about 3-4 characters per token on prose and code, close
to what production tokenizers give. Pieces concatenate back to the exact input.
"""

from __future__ import annotations

import re

_PIECE = re.compile(r"\s*(?:\w{1,4}|[^\w\s])|\s+")
# In JSON text an escape sequence is one piece, so no stream delta ends inside one (the SDK
# parses every prefix of a tool call's JSON and must never see half an escape).
_JSON_PIECE = re.compile(r"\s*(?:\\u[0-9a-fA-F]{4}|\\.|\w{1,4}|[^\w\s])|\s+")


def pieces(text: str) -> list[str]:
    """Cut prose or code into token-sized pieces."""
    return _PIECE.findall(text)


def json_pieces(text: str) -> list[str]:
    """Cut serialised JSON into token-sized pieces that never split an escape sequence."""
    return _JSON_PIECE.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens the simulator charges for ``text``."""
    return len(_PIECE.findall(text))
