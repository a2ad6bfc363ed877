import pytest

from money import parse_amount


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12.5", 1250), ("$1,200.00", 120000), ("-3", -300), (" 0.07 ", 7)],
)
def test_parse_amount(text: str, cents: int) -> None:
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["", "twelve", "1.005"])
def test_parse_amount_rejects_bad_input(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)
