"""A response's token pieces laid onto its decode steps: the write loop every wire shares.

A :class:`~pytest_agentspeed.simulator.latency.ResponsePlan` says when tokens go out and how
many at a time; a reply is a list of blocks of token pieces. :func:`step_writes` walks the two
together and asks the wire for the bytes: a block's opening events when its first token goes
out, one delta event per block a step touches (a speculative burst of several tokens is one
event), and its closing events with its last token. Each wire (Anthropic, Chat Completions,
Responses) says only what those events are, through :class:`BlockEvents`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["BlockEvents", "Pieces", "end_writes", "step_writes"]


class Pieces(Protocol):
    """A block of a reply: its tokens, which concatenate to its text."""

    @property
    def pieces(self) -> list[str]: ...


B = TypeVar("B", bound=Pieces)
B_contra = TypeVar("B_contra", bound=Pieces, contravariant=True)


class BlockEvents(Protocol[B_contra]):
    """The bytes a wire sends around and inside a block (``b""``: nothing)."""

    def open(self, index: int, block: B_contra) -> bytes:
        """Sent with the block's first token, before its first delta."""
        ...

    def delta(self, index: int, block: B_contra, text: str, first: bool) -> bytes:
        """The event carrying ``text``, the block's next tokens (``first``: its first ones)."""
        ...

    def close(self, index: int, block: B_contra) -> bytes:
        """Sent with the block's last token, after its last delta."""
        ...


def step_writes(
    blocks: Sequence[B], steps: Sequence[tuple[float, int]], events: BlockEvents[B]
) -> list[tuple[float, bytes]]:
    """One (offset, bytes) write per decode step, carrying that step's tokens.

    ``blocks`` must hold no empty block, and ``steps`` exactly as many tokens as the blocks
    hold pieces.
    """
    writes: list[tuple[float, bytes]] = []
    # The block the next token comes from, and how many of its pieces are sent.
    index, done = 0, 0
    count = len(blocks)
    for offset, n in steps:
        out: list[bytes] = []
        while n > 0 and index < count:
            block = blocks[index]
            block_pieces = block.pieces
            if done == 0:
                out.append(events.open(index, block))
            take = min(n, len(block_pieces) - done)
            text = block_pieces[done] if take == 1 else "".join(block_pieces[done : done + take])
            out.append(events.delta(index, block, text, done == 0))
            done += take
            n -= take
            if done == len(block_pieces):
                out.append(events.close(index, block))
                index, done = index + 1, 0
        writes.append((offset, b"".join(out)))
    return writes


def end_writes(writes: list[tuple[float, bytes]], end_s: float, tail: bytes, *, steps: int) -> None:
    """Append the stream's tail at ``end_s``: in the last step's write when that goes out at
    the same moment (``steps``: how many step writes there are), else as a write of its own."""
    if steps and writes[-1][0] == end_s:
        writes[-1] = (end_s, writes[-1][1] + tail)
    else:
        writes.append((end_s, tail))
