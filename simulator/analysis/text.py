"""Plain text that fits a terminal: every screen the commands print is at most :data:`WIDTH` columns.

Prose is wrapped by :func:`paragraph`; tables are laid out by :func:`table`, each column as wide as
its widest cell, a label too long for the room left wrapped onto lines of its own. What does not fit
(every metric of a sweep, say) goes to ``--format csv|json`` or the results file, and the screen says so.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

WIDTH = 100  # columns: the text fits a terminal
GAP = "  "  # between the columns of a table
NARROWEST_LABEL = 16  # columns a wrapped label keeps, however wide the other cells are
LABEL_BREAKS = re.compile(r"(\s+)|(?<=_)(?=[^_\s])")  # a label wraps at blanks, or after an underscore (an id)


def paragraph(text: str, width: int = WIDTH, indent: str = "") -> str:
    """``text`` in lines of at most ``width`` columns, each starting with ``indent`` (a path or
    other word longer than a line stays whole)."""
    return "\n".join(textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False))


def table(rows: Sequence[Sequence[str]], align: str, indent: str = "", width: int = WIDTH) -> list[str]:
    """Rows of cells as lines: column ``j`` as wide as its widest cell, aligned by ``align[j]``
    (``<`` or ``>``), columns apart by :data:`GAP`, trailing blanks stripped.

    The first column is the label. When the table would be wider than ``width``, the label
    column narrows to the room left (at least :data:`NARROWEST_LABEL`) and a longer label
    wraps (:data:`LABEL_BREAKS`): its cells stand on its first line, the rest of it on lines
    of its own, indented.
    """
    widths = [max(len(row[j]) for row in rows) for j in range(len(align))]
    others = len(indent) + sum(widths[1:]) + len(GAP) * (len(align) - 1)
    label = min(widths[0], max(width - others, NARROWEST_LABEL))
    wrapper = textwrap.TextWrapper(label, subsequent_indent="  ", break_on_hyphens=False)
    wrapper.wordsep_simple_re = LABEL_BREAKS
    lines = []
    for row in rows:
        parts = wrapper.wrap(row[0]) or [""]
        cells = [f"{parts[0]:{align[0]}{label}}", *(f"{c:{a}{w}}" for c, a, w in zip(row[1:], align[1:], widths[1:]))]
        lines.append((indent + GAP.join(cells)).rstrip())
        lines += [indent + part for part in parts[1:]]
    return lines
