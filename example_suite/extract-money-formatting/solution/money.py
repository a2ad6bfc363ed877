"""Money amounts are stored as integer cents to avoid float rounding errors."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def format_cents(cents: int) -> str:
    """Format an amount in cents as dollars, e.g. -123456 -> "-$1,234.56"."""
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}${dollars:,}.{rest:02d}"


def parse_amount(text: str) -> int:
    """Parse a user-entered amount such as "12.5", "$1,200.00" or "-3" into cents."""
    cleaned = text.strip().replace(",", "").replace("$", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not a money amount: {text!r}") from None
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"more than two decimal places: {text!r}")
    return int(cents)
