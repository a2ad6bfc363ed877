"""Split a sequence of results into numbered, 1-based pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class PageOutOfRange(ValueError):
    """Raised when a page number outside ``1..total_pages`` is requested."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    number: int
    total_pages: int
    total_items: int

    @property
    def has_next(self) -> bool:
        return self.number < self.total_pages

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_count(total_items: int, per_page: int) -> int:
    """Return how many pages are needed to show ``total_items`` items.

    An empty result set still has one (empty) page.
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    return max(1, -(-total_items // per_page))  # ceiling division


def paginate(items: Sequence[T], page: int, per_page: int = 20) -> Page[T]:
    """Return page number ``page`` of ``items``."""
    total_pages = page_count(len(items), per_page)
    if not 1 <= page <= total_pages:
        raise PageOutOfRange(f"page {page} is not in 1..{total_pages}")
    start = (page - 1) * per_page
    return Page(
        items=list(items[start : start + per_page]),
        number=page,
        total_pages=total_pages,
        total_items=len(items),
    )
