import pytest

from slug import slugify


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello-world"),
        ("Crème Brûlée & Friends: A Guide", "creme-brulee-and-friends-a-guide"),
        ("Straße 42 -- Łódź", "strasse-42-lodz"),
        ("  --  ", ""),
    ],
)
def test_slugify(text: str, expected: str) -> None:
    assert slugify(text) == expected


def test_max_length_does_not_leave_a_trailing_separator() -> None:
    assert slugify("Hello big world", max_length=10) == "hello-big"


def test_keep_case() -> None:
    assert slugify("Hello World", lowercase=False) == "Hello-World"


def test_custom_separator() -> None:
    assert slugify("Hello, big World!", separator="_") == "hello_big_world"


def test_empty_separator() -> None:
    assert slugify("Hello World", separator="") == "helloworld"


def test_custom_separator_with_max_length() -> None:
    assert slugify("Hello big world", max_length=10, separator="_") == "hello_big"
    assert slugify("Hello big world", max_length=10, separator=".") == "hello.big"
