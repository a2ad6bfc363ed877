"""Command-line interface: ``python cli.py [--top N] [--min-length N] FILE...``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from wordfreq import count_words, top_words


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wordfreq", description="Show the most frequent words in text files."
    )
    parser.add_argument("files", nargs="+", type=Path, help="UTF-8 text files to read")
    parser.add_argument(
        "-n", "--top", type=int, default=10, help="how many words to show (default: 10)"
    )
    parser.add_argument("--min-length", type=int, default=1, help="ignore words shorter than this")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    counts: Counter[str] = Counter()
    for path in args.files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"wordfreq: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 1
        counts.update(count_words(text, min_length=args.min_length))

    rows = top_words(counts, args.top)
    width = max((len(word) for word, _ in rows), default=0)
    for word, count in rows:
        print(f"{word:<{width}}  {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
