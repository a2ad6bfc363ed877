import pytest

from table import render_table


def test_columns_fit_the_widest_cell() -> None:
    assert render_table(["Name", "Qty"], [["apple", 3], ["kiwi", 12]]) == (
        "Name   Qty\n"
        "-----  ---\n"
        "apple  3\n"
        "kiwi   12"
    )


def test_right_aligned_columns() -> None:
    table = render_table(["Name", "Qty"], [["apple", 3], ["kiwi", 12]], right_align=frozenset({1}))
    assert table.splitlines()[2:] == ["apple    3", "kiwi    12"]


def test_wrong_number_of_columns() -> None:
    with pytest.raises(ValueError, match="expected 2 columns"):
        render_table(["Name", "Qty"], [["apple"]])


def test_no_rows_still_renders_the_header() -> None:
    assert render_table(["Name", "Qty"], []) == "Name  Qty\n----  ---"


def test_no_rows_with_right_alignment() -> None:
    assert render_table(["Name", "Qty"], [], right_align=frozenset({1})) == "Name  Qty\n----  ---"
