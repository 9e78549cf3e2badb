"""Column widths for the tables under the results (what each model found, Compare's summary, the scores).

Gradio shares a table's width out evenly, or by given percentages, so on a phone a column narrower
than its longest word clips it ("precisio") or breaks it a letter a line. Widths in pixels, worked
out from the text, keep every word whole: a table wider than its box scrolls sideways inside it,
and the page does not.
"""

from __future__ import annotations

CHAR_PX = 9
"""A character of the table's monospace font (8.4 px at 14 px, bold or not), rounded up."""
CELL_PADDING_PX = 24
WRAPPED_CHARS = {"model": 18, "published": 24, "found": 36}
"""The columns whose text wraps, at about this many characters a line."""


def column_widths(headers: list[str], rows: list[list[object]]) -> list[str]:
    """Pixel widths from the text: no header word clipped and no word broken, a value on one line
    (the model names, published words and what Compare found wrap at `WRAPPED_CHARS`). The scores
    of three detectors fit a 1400 px page; on a phone the table scrolls sideways, and the page does not."""
    widths = []
    for i, name in enumerate(headers):
        cells = ["" if row[i] is None else str(row[i]) for row in rows]
        word = max(len(word) for text in [name, *cells] for word in text.split())
        longest = max(map(len, cells), default=0)
        line = min(longest, WRAPPED_CHARS.get(name, longest))
        widths.append(f"{CHAR_PX * max(word, line) + CELL_PADDING_PX}px")
    return widths
