import pytest

from paginate import Page, PageOutOfRange, page_count, paginate


@pytest.mark.parametrize(
    ("total_items", "per_page", "expected"),
    [
        (0, 20, 1),
        (1, 20, 1),
        (20, 20, 1),
        (21, 20, 2),
        (40, 20, 2),
        (45, 20, 3),
        (7, 1, 7),
    ],
)
def test_page_count(total_items: int, per_page: int, expected: int) -> None:
    assert page_count(total_items, per_page) == expected


def test_page_count_rejects_non_positive_page_size() -> None:
    with pytest.raises(ValueError):
        page_count(10, 0)


def test_first_page() -> None:
    page = paginate(list(range(45)), 1, per_page=20)
    assert page.items == list(range(20))
    assert page.has_next
    assert not page.has_previous


def test_last_page_holds_the_remainder() -> None:
    page = paginate(list(range(45)), 3, per_page=20)
    assert page.items == [40, 41, 42, 43, 44]
    assert page.total_pages == 3
    assert not page.has_next
    assert page.has_previous


def test_every_item_is_on_exactly_one_page() -> None:
    items = list(range(45))
    total = page_count(len(items), 20)
    seen = [x for n in range(1, total + 1) for x in paginate(items, n, 20).items]
    assert seen == items


def test_exact_multiple_has_no_empty_trailing_page() -> None:
    items = list(range(40))
    assert paginate(items, 2, per_page=20).items == list(range(20, 40))
    with pytest.raises(PageOutOfRange):
        paginate(items, 3, per_page=20)


def test_empty_results_have_one_empty_page() -> None:
    page: Page[int] = paginate([], 1)
    assert page.items == []
    assert page.total_pages == 1
    assert not page.has_next


@pytest.mark.parametrize("number", [0, -1, 4])
def test_out_of_range_pages_are_rejected(number: int) -> None:
    with pytest.raises(PageOutOfRange):
        paginate(list(range(45)), number, per_page=20)
