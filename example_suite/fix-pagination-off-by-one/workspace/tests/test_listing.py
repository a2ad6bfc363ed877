from listing import render_page

TITLES = [f"Result {n}" for n in range(1, 46)]


def test_middle_page_numbering_and_footer() -> None:
    lines = render_page(TITLES, 2, per_page=20).splitlines()
    assert lines[0] == "21. Result 21"
    assert lines[19] == "40. Result 40"
    assert lines[-1] == "Page 2 of 3 (more results on the next page)"


def test_last_page() -> None:
    lines = render_page(TITLES, 3, per_page=20).splitlines()
    assert lines == [
        "41. Result 41",
        "42. Result 42",
        "43. Result 43",
        "44. Result 44",
        "45. Result 45",
        "Page 3 of 3",
    ]


def test_single_page() -> None:
    assert render_page(["only"], 1) == "1. only\nPage 1 of 1"
