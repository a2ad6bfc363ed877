"""Turn titles into URL- and file-name-safe slugs."""

from __future__ import annotations

import re

from translit import transliterate

_WORD = re.compile(r"[A-Za-z0-9]+")


def slugify(text: str, *, max_length: int | None = None, lowercase: bool = True) -> str:
    """Return a slug made of the ASCII words of ``text`` joined by hyphens.

    See the Options section of README.md for what each option does.
    """
    ascii_text = transliterate(text)
    if lowercase:
        ascii_text = ascii_text.lower()
    slug = "-".join(_WORD.findall(ascii_text))
    if max_length is not None and len(slug) > max_length:
        slug = slug[:max_length].rstrip("-")
    return slug
