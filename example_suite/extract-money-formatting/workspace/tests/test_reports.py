from reports import LineItem, invoice_line, invoice_summary, refund_notice

ITEMS = [
    LineItem("Widget", 3, 1999),
    LineItem("Consulting (hours)", 12, 15000),
    LineItem("Loyalty discount", 1, -500),
]


def test_invoice_line() -> None:
    assert invoice_line(ITEMS[0]) == "Widget                     3 x     $19.99 =       $59.97"


def test_invoice_line_with_thousands_and_negative_amounts() -> None:
    assert invoice_line(ITEMS[1]) == "Consulting (hours)        12 x    $150.00 =    $1,800.00"
    assert invoice_line(ITEMS[2]) == "Loyalty discount           1 x     -$5.00 =       -$5.00"


def test_invoice_summary() -> None:
    assert invoice_summary(ITEMS, tax_percent=8) == (
        "Subtotal  $1,854.97\n"
        "Tax       $148.40\n"
        "Total     $2,003.37"
    )


def test_invoice_summary_without_items() -> None:
    assert invoice_summary([]) == "Subtotal  $0.00\nTax       $0.00\nTotal     $0.00"


def test_refund_notice() -> None:
    assert refund_notice("Ada", 5) == "Dear Ada, we have refunded $0.05 to your card."
    assert refund_notice("Ada", 123456789) == (
        "Dear Ada, we have refunded $1,234,567.89 to your card."
    )
