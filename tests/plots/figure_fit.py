"""The check that a figure fits its page, for the figure tests (tests/plots/ is on the path when they run).

A figure fails when a text lies outside the figure, two texts overlap, or a text lies on
a panel other than its own (where that panel hides it: the clipped "+0.71 mont" of a
forest plot). Texts are measured with matplotlib's renderer after a draw.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.text import Text

TOLERANCE = 0.5  # pixels: boxes that touch are not overlapping
TEMPORARY = re.compile(r"[.](.+)[.][^.]+[.]tmp")  # the name atomic_path writes first: ".<name>.<random>.tmp"


def drawn_texts(fig: Figure) -> list[Text]:
    """The non-empty texts a draw of ``fig`` renders (invisible artists and ticks out of view are not drawn)."""
    drawn: dict[int, Text] = {}
    draw = Text.draw

    def record(text: Text, renderer) -> None:
        if text.get_visible() and text.get_text().strip():
            drawn[id(text)] = text
        draw(text, renderer)

    Text.draw = record
    try:
        fig.canvas.draw()
    finally:
        Text.draw = draw
    return list(drawn.values())


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE and min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE


def fit_problems(fig: Figure) -> list[str]:
    """Texts outside the figure, on each other, or on a panel other than their own: one line each."""
    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    boxes = [(t, Text.get_window_extent(t, renderer)) for t in texts]  # an annotation's text, not its arrow
    panels = [(ax, ax.patch.get_window_extent(renderer)) for ax in fig.axes if ax.get_visible() and ax.axison]
    frame = fig.bbox.padded(TOLERANCE)
    problems = [f"outside the figure: {t.get_text()!r}" for t, b in boxes
                if not (frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1)]
    problems += [f"overlap: {t.get_text()!r} and {u.get_text()!r}"
                 for i, (t, b) in enumerate(boxes) for u, c in boxes[i + 1:] if _overlap(b, c)]
    problems += [f"on another panel: {t.get_text()!r}" for t, b in boxes
                 for ax, p in panels if ax is not t.axes and _overlap(b, p)]
    return problems


def keep_saved(monkeypatch) -> Iterator[dict[str, Figure]]:
    """Every figure saved while a test runs, by folder and file name, kept open to be measured (a fixture's body)."""
    figures: dict[str, Figure] = {}
    close, savefig = plt.close, Figure.savefig

    def keep(fig: Figure, fname, *args, **kwargs):
        path = Path(fname)
        figures[f"{path.parent.name}/{TEMPORARY.fullmatch(path.name)[1]}"] = fig
        return savefig(fig, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    monkeypatch.setattr(plt, "close", lambda *args, **kwargs: None)
    yield figures
    for fig in figures.values():
        close(fig)


def assert_fit(figures: dict[str, Figure], expected: int) -> None:
    assert len(figures) == expected, sorted(figures)
    problems = [f"{name}: {p}" for name, fig in figures.items() for p in fit_problems(fig)]
    assert not problems, "\n".join(problems)
