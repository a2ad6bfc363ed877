from collections import Counter

from wordfreq import count_words, top_words


def test_count_words_is_case_insensitive_and_keeps_apostrophes() -> None:
    assert count_words("It's the THE the end") == Counter({"the": 3, "it's": 1, "end": 1})


def test_count_words_ignores_digits_and_punctuation() -> None:
    assert count_words("route 66 -- route_66!") == Counter({"route": 2})


def test_min_length() -> None:
    assert count_words("a bb ccc", min_length=2) == Counter({"bb": 1, "ccc": 1})


def test_top_words_breaks_ties_alphabetically() -> None:
    counts = Counter({"pear": 2, "apple": 2, "fig": 5})
    assert top_words(counts, 2) == [("fig", 5), ("apple", 2)]
