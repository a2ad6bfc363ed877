"""Render a plain-text listing of search results, one page at a time."""

from __future__ import annotations

from collections.abc import Sequence

from paginate import paginate


def render_page(titles: Sequence[str], page: int, per_page: int = 20) -> str:
    """Render page ``page`` of ``titles`` as numbered lines plus a footer."""
    current = paginate(titles, page, per_page)
    first = (current.number - 1) * per_page + 1
    lines = [f"{first + i}. {title}" for i, title in enumerate(current.items)]
    footer = f"Page {current.number} of {current.total_pages}"
    if current.has_next:
        footer += " (more results on the next page)"
    lines.append(footer)
    return "\n".join(lines)
