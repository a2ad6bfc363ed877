"""Reduce Unicode text to ASCII for use in slugs."""

from __future__ import annotations

import unicodedata

# Characters that NFKD decomposition cannot reduce to ASCII on its own.
REPLACEMENTS = {
    "&": " and ",
    "@": " at ",
    "ß": "ss",
    "æ": "ae",
    "Æ": "AE",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
}


def transliterate(text: str) -> str:
    """Return an ASCII approximation of ``text``; unknown characters are dropped."""
    replaced = "".join(REPLACEMENTS.get(char, char) for char in text)
    decomposed = unicodedata.normalize("NFKD", replaced)
    return decomposed.encode("ascii", "ignore").decode("ascii")
