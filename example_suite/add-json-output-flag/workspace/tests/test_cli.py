import json
from pathlib import Path

import pytest

from cli import build_parser, main

DATA = Path(__file__).parent / "data"
FOX = str(DATA / "fox.txt")
NO_WORDS = str(DATA / "no_words.txt")


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--top", "3", FOX]) == 0
    assert capsys.readouterr().out == "the  4\ndog  2\nfox  2\n"


def test_missing_file_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "missing.txt")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cannot read" in captured.err


def test_json_flag_is_in_help() -> None:
    assert "--json" in build_parser().format_help()


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "--top", "3", FOX]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"word": "the", "count": 4},
        {"word": "dog", "count": 2},
        {"word": "fox", "count": 2},
    ]


def test_json_respects_min_length(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([FOX, "--min-length", "5", "--json"]) == 0
    words = [row["word"] for row in json.loads(capsys.readouterr().out)]
    assert words == ["brown", "doesn't", "jumps", "quick", "sleeps"]


def test_json_with_no_words_is_an_empty_array(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", NO_WORDS]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_json_counts_across_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "-n", "1", FOX, FOX]) == 0
    assert json.loads(capsys.readouterr().out) == [{"word": "the", "count": 8}]
