"""Plain-text invoice reports. All amounts are integer cents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LineItem:
    description: str
    quantity: int
    unit_price: int


def line_total(item: LineItem) -> int:
    return item.quantity * item.unit_price


def invoice_line(item: LineItem) -> str:
    """One line of an invoice: description, quantity, unit price and line total."""
    sign = "-" if item.unit_price < 0 else ""
    dollars, cents = divmod(abs(item.unit_price), 100)
    unit = f"{sign}${dollars:,}.{cents:02d}"
    total_cents = line_total(item)
    sign = "-" if total_cents < 0 else ""
    dollars, cents = divmod(abs(total_cents), 100)
    total = f"{sign}${dollars:,}.{cents:02d}"
    return f"{item.description:<24}{item.quantity:>4} x {unit:>10} = {total:>12}"


def invoice_summary(items: Sequence[LineItem], tax_percent: int = 0) -> str:
    """Subtotal, tax (rounded half up to the cent) and total of an invoice."""
    subtotal = sum(line_total(item) for item in items)
    tax = (subtotal * tax_percent + 50) // 100
    lines = []
    for label, amount in (("Subtotal", subtotal), ("Tax", tax), ("Total", subtotal + tax)):
        sign = "-" if amount < 0 else ""
        dollars, cents = divmod(abs(amount), 100)
        lines.append(f"{label:<10}{sign}${dollars:,}.{cents:02d}")
    return "\n".join(lines)


def refund_notice(customer: str, amount: int) -> str:
    """A short message telling ``customer`` that ``amount`` cents were refunded."""
    sign = "-" if amount < 0 else ""
    dollars, cents = divmod(abs(amount), 100)
    return f"Dear {customer}, we have refunded {sign}${dollars:,}.{cents:02d} to your card."
