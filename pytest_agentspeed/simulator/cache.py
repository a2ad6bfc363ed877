"""Prompt-cache accounting of the simulated endpoint.

Mirrors the Anthropic rules closely enough for honest counters: the request is a sequence of
blocks (tools, then system, then message content); a block marked ``cache_control`` is a
breakpoint; a prefix that ended at a breakpoint of an earlier request, and has not expired, is
read from the cache when a breakpoint of this request lies at most 20 blocks after it; the
prefix up to this request's last breakpoint is written. Prefixes shorter than the profile's
minimum are never cached, silently, as on the real API. Hits refresh the TTL. OpenAI-compatible
wires have no breakpoints (``automatic``: every message ends a cached prefix), and the
Responses API's ``prompt_cache_key`` partitions the cache (``key``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pytest_agentspeed.simulator.tokens import count_tokens

#: How far before a breakpoint the real API looks for an earlier cached prefix.
LOOKBACK_BLOCKS = 20


@dataclass(frozen=True, slots=True)
class Block:
    """One cacheable unit of a request."""

    #: Hash of the whole prefix up to and including this block.
    prefix_hash: str
    tokens: int
    breakpoint: bool


@dataclass(frozen=True, slots=True)
class CacheUse:
    """Input tokens of one request, split as the usage fields report them."""

    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int


def request_blocks(body: dict[str, Any], *, automatic: bool = False, key: str = "") -> list[Block]:
    """The request's blocks in cache order: tools, system, then each message's content.

    A Responses API body (``input`` in place of ``messages``) gives its tools, its
    ``instructions``, then each input item (the ``input`` string as one).

    :param automatic: cache every prefix, as OpenAI-compatible servers do (no breakpoints).
    :param key: what the cache is partitioned by besides the prefix (the Responses API's
        ``prompt_cache_key``): requests with different keys share no prefix.
    """
    raw: list[tuple[Any, bool]] = []
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        raw.append((tool, isinstance(tool, dict) and "cache_control" in tool))
    system = body.get("system", body.get("instructions"))
    if isinstance(system, str):
        raw.append((system, False))
    elif isinstance(system, list):
        raw.extend((b, isinstance(b, dict) and "cache_control" in b) for b in system)
    messages = body.get("messages")
    if messages is None:
        items = body.get("input")
        messages = [{"role": "user", "content": items}] if isinstance(items, str) else items
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list) and not automatic:
            for b in content:
                raw.append(({"role": message.get("role"), "block": b}, _marked(b)))
        else:
            raw.append((message, automatic))
    blocks = []
    h = hashlib.sha256(key.encode())
    for item, marked in raw:
        text = json.dumps(_unmarked(item), sort_keys=True, separators=(",", ":"))
        h.update(text.encode())
        blocks.append(Block(h.copy().hexdigest(), _block_tokens(text), marked))
    return blocks


# Each request repeats the whole conversation: counting it afresh every turn costs tens of
# milliseconds at 100k+ tokens, on the server's one event loop, where it would delay the
# streams of every other session in flight.
@lru_cache(maxsize=8192)
def _block_tokens(text: str) -> int:
    return count_tokens(text)


class PromptCache:
    """The cache of one simulated endpoint; ``now`` is the server's (scaled) clock."""

    def __init__(self, *, ttl_s: float, min_tokens: int) -> None:
        self.ttl_s = ttl_s
        self.min_tokens = min_tokens
        self._expiry: dict[str, float] = {}

    def account(self, blocks: Sequence[Block], now: float, *, miss: bool = False) -> CacheUse:
        """Split the request's input into read / written / uncached, and update the cache.

        :param miss: the cache lost this request's prefix (a simulated eviction).
        """
        cumulative = []
        total = 0
        for b in blocks:
            total += b.tokens
            cumulative.append(total)
        breakpoints = [i for i, b in enumerate(blocks) if b.breakpoint]

        hit = -1
        if not miss:
            for bp in breakpoints:
                for i in range(bp, max(-1, bp - LOOKBACK_BLOCKS - 1), -1):
                    if self._expiry.get(blocks[i].prefix_hash, -1.0) > now:
                        hit = max(hit, i)
                        break
        read = cumulative[hit] if hit >= 0 else 0
        if hit >= 0:
            self._expiry[blocks[hit].prefix_hash] = now + self.ttl_s

        written_to = read
        for bp in breakpoints:
            if cumulative[bp] >= self.min_tokens:
                self._expiry[blocks[bp].prefix_hash] = now + self.ttl_s
                written_to = max(written_to, cumulative[bp])
        write = written_to - read
        return CacheUse(
            input_tokens=total - read - write, cache_read_tokens=read, cache_write_tokens=write
        )


def _marked(block: Any) -> bool:
    return isinstance(block, dict) and "cache_control" in block


def _unmarked(item: Any) -> Any:
    """The block without its cache marker: moving a breakpoint must not change the prefix."""
    if isinstance(item, dict):
        return {k: _unmarked(v) for k, v in item.items() if k != "cache_control"}
    return item
