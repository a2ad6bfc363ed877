"""Warehouse stock report."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from table import render_table

HEADERS = ("SKU", "Product", "On hand", "Reorder at")


@dataclass(frozen=True)
class StockItem:
    sku: str
    name: str
    on_hand: int
    reorder_at: int

    @property
    def is_low(self) -> bool:
        return self.on_hand <= self.reorder_at


def stock_report(items: Iterable[StockItem], only_low: bool = False) -> str:
    """A table of stock levels sorted by SKU, plus a line counting low items."""
    selected = sorted(
        (item for item in items if item.is_low or not only_low), key=lambda item: item.sku
    )
    rows = [(item.sku, item.name, item.on_hand, item.reorder_at) for item in selected]
    low = sum(item.is_low for item in selected)
    table = render_table(HEADERS, rows, right_align=frozenset({2, 3}))
    return f"{table}\n{len(rows)} products, {low} need reordering"
