"""A plain side-by-side table for the scenarios: what was measured, one column per run, so a
trainee reads the lesson across a row."""

from __future__ import annotations


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """The table as text: left-aligned columns, a rule under the headers, no trailing spaces."""
    widths = [len(header) for header in headers]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells for {len(headers)} headers: {row!r}")
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [_line(headers, widths), _line(["-" * width for width in widths], widths)]
    lines.extend(_line(row, widths) for row in rows)
    return "\n".join(lines)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    print(format_table(headers, rows))


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
