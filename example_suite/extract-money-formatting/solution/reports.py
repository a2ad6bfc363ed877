"""Plain-text invoice reports. All amounts are integer cents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from money import format_cents


@dataclass(frozen=True)
class LineItem:
    description: str
    quantity: int
    unit_price: int


def line_total(item: LineItem) -> int:
    return item.quantity * item.unit_price


def invoice_line(item: LineItem) -> str:
    """One line of an invoice: description, quantity, unit price and line total."""
    unit = format_cents(item.unit_price)
    total = format_cents(line_total(item))
    return f"{item.description:<24}{item.quantity:>4} x {unit:>10} = {total:>12}"


def invoice_summary(items: Sequence[LineItem], tax_percent: int = 0) -> str:
    """Subtotal, tax (rounded half up to the cent) and total of an invoice."""
    subtotal = sum(line_total(item) for item in items)
    tax = (subtotal * tax_percent + 50) // 100
    lines = []
    for label, amount in (("Subtotal", subtotal), ("Tax", tax), ("Total", subtotal + tax)):
        lines.append(f"{label:<10}{format_cents(amount)}")
    return "\n".join(lines)


def refund_notice(customer: str, amount: int) -> str:
    """A short message telling ``customer`` that ``amount`` cents were refunded."""
    return f"Dear {customer}, we have refunded {format_cents(amount)} to your card."
