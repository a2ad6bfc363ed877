"""More of the simulated model's words, when a reply must be longer than its plan.

Two things lengthen a planned reply: a session of ``paths=varied`` whose model is wordier than
the plan (:func:`scaled_text`, which also shortens for a terser one), and a request that pins
the output length with vLLM's ``min_tokens`` or ``ignore_eos`` (:func:`output_target`,
:func:`pad_blocks`). The words added are prose of an engineer thinking aloud, picked by a seed,
so the same request gets the same reply; they are counted, timed and streamed like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pytest_agentspeed.simulator.anthropic_wire import OutBlock
from pytest_agentspeed.simulator.latency import seeded_rng
from pytest_agentspeed.simulator.tokens import pieces

__all__ = ["output_target", "pad_blocks", "prose_pieces", "scaled_text"]

#: What the model says when it says more. Each starts with a space, so they join cleanly.
_SENTENCES: Final = (
    " Let me make sure I have the whole picture before going further.",
    " The surrounding code shows how these pieces fit together.",
    " I want the change to stay small and keep the existing behaviour everywhere else.",
    " The tests describe what is expected, so they are the best guide here.",
    " The edge cases matter: empty input, a single item, and the boundaries.",
    " Nothing else in the project seems to depend on this part.",
    " I'll keep the naming consistent with the rest of the module.",
    " Once this is in place, the check will tell whether anything is missing.",
    " It is worth reading the error handling around it as well.",
    " The simplest correct version is the one to aim for.",
    " I should not change the public interface unless the task needs it.",
    " A quick look at how the callers use it confirms the plan.",
)


def prose_pieces(count: int, seed: str) -> list[str]:
    """``count`` token pieces of prose, the same for the same seed."""
    rng = seeded_rng("prose", seed)
    out: list[str] = []
    while len(out) < count:
        out.extend(pieces(rng.choice(_SENTENCES)))
    return out[:count]


def scaled_text(text: str, factor: float, seed: str) -> str:
    """``text`` at ``factor`` times its length in tokens (at least one token): cut at a token
    boundary when shorter, continued with prose when longer."""
    if not text or factor == 1.0:
        return text
    have = pieces(text)
    target = max(1, round(len(have) * factor))
    if target <= len(have):
        return "".join(have[:target])
    return text + "".join(prose_pieces(target - len(have), seed))


def output_target(body: Mapping[str, Any], budget: int) -> int:
    """The fewest output tokens the request asks for: ``budget`` with ``ignore_eos: true``,
    else ``min_tokens`` (0 when absent), as vLLM and SGLang read them.

    :param budget: the request's output limit (``max_tokens``, ``max_completion_tokens``,
        ``max_output_tokens``).
    :raises ValueError: saying which field is invalid and why.
    """
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise ValueError("ignore_eos: must be a boolean")
    least = body.get("min_tokens")
    if least is None:
        least = 0
    if not isinstance(least, int) or isinstance(least, bool) or least < 0:
        raise ValueError("min_tokens: must be a non-negative integer")
    if least > budget:
        # vLLM refuses it too (SamplingParams: min_tokens must be <= max_tokens).
        raise ValueError(f"min_tokens: must be at most the output limit ({budget}), got {least}")
    return budget if ignore_eos else least


def pad_blocks(blocks: list[OutBlock], target: int, seed: str) -> None:
    """Lengthen a reply to ``target`` output tokens with more text before its tool calls.

    The text goes at the end of the reply's last text block before its first tool call, or in
    a new text block there. Tool calls the budget left out stay out: ``target`` is at most the
    budget, and the calls kept already fit in it.
    """
    missing = target - sum(len(b.pieces) for b in blocks)
    if missing <= 0:
        return
    more = prose_pieces(missing, seed)
    first_tool = next((i for i, b in enumerate(blocks) if b.type == "tool_use"), len(blocks))
    text = next((b for b in reversed(blocks[:first_tool]) if b.type == "text"), None)
    if text is not None:
        text.pieces.extend(more)
        return
    # A reply of thinking and tool calls: the added words are its visible text. Leading space
    # dropped, as a block's text does not start with one.
    more[0] = more[0].lstrip()
    blocks.insert(first_tool, OutBlock(type="text", pieces=more, content_class="prose"))
