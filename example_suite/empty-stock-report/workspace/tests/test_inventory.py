from inventory import StockItem, stock_report

ITEMS = [
    StockItem("B-200", "Bolt M6", 1500, 200),
    StockItem("A-100", "Anchor plate", 12, 20),
    StockItem("C-310", "Cable tie (bag)", 40, 40),
]

EMPTY_REPORT = (
    "SKU  Product  On hand  Reorder at\n"
    "---  -------  -------  ----------\n"
    "0 products, 0 need reordering"
)


def test_full_report() -> None:
    assert stock_report(ITEMS) == (
        "SKU    Product          On hand  Reorder at\n"
        "-----  ---------------  -------  ----------\n"
        "A-100  Anchor plate          12          20\n"
        "B-200  Bolt M6             1500         200\n"
        "C-310  Cable tie (bag)       40          40\n"
        "3 products, 2 need reordering"
    )


def test_only_low_items() -> None:
    lines = stock_report(ITEMS, only_low=True).splitlines()
    assert [line.split()[0] for line in lines[2:-1]] == ["A-100", "C-310"]
    assert lines[-1] == "2 products, 2 need reordering"


def test_empty_warehouse() -> None:
    assert stock_report([]) == EMPTY_REPORT


def test_nothing_is_low() -> None:
    assert stock_report([StockItem("B-200", "Bolt M6", 1500, 200)], only_low=True) == EMPTY_REPORT
