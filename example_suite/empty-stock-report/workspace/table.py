"""Render rows of values as a fixed-width plain-text table."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    right_align: frozenset[int] = frozenset(),
) -> str:
    """Render ``rows`` under ``headers``; columns in ``right_align`` are right-aligned.

    Every column is as wide as its widest cell or header, columns are separated
    by two spaces and the header is underlined with dashes.
    """
    cells = [[str(value) for value in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"expected {len(headers)} columns, got {len(row)}: {row}")

    columns = list(zip(*cells))
    widths = [max(len(header), *map(len, column)) for header, column in zip(headers, columns)]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if index in right_align else value.ljust(width)
            for index, (value, width) in enumerate(zip(values, widths))
        ]
        return "  ".join(parts).rstrip()

    output = [line(headers), line(["-" * width for width in widths])]
    output.extend(line(row) for row in cells)
    return "\n".join(output)
