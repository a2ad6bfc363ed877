"""Word counting, independent of the command-line interface."""

from __future__ import annotations

import re
from collections import Counter

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def count_words(text: str, min_length: int = 1) -> Counter[str]:
    """Count case-folded words of at least ``min_length`` letters in ``text``."""
    words = (match.group().casefold() for match in WORD.finditer(text))
    return Counter(word for word in words if len(word) >= min_length)


def top_words(counts: Counter[str], n: int) -> list[tuple[str, int]]:
    """The ``n`` most common words, ties broken alphabetically."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:n]
