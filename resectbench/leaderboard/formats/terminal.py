"""Rich tables for the terminal: best cells bold green, chance rows dim, oracle/ceiling rows italic.

Terminals are narrow: notes become numbered footnotes under the table, model names never wrap,
and on narrow consoles the secondary columns (balanced accuracy, pooled intervals) are left
out (``--format markdown`` or ``csv`` always has everything).
"""
from __future__ import annotations

from rich.console import Group
from rich.table import Table as RichTable
from rich.text import Text

from .tables import Table

STYLE = {"chance": "dim", "oracle": "italic yellow", "ceiling": "italic cyan", "model": ""}
# (minimum console width, header prefixes shown only from that width on)
OPTIONAL = ((170, ("bal. acc.", "pooled macro-F1")), (125, ("pooled AUC",)))


def rich_table(t: Table, width: int = 200):
    hidden = tuple(p for min_width, prefixes in OPTIONAL if width < min_width for p in prefixes)
    keep = [j for j, h in enumerate(t.headers) if h != "notes" and not h.startswith(hidden or ("\0",))]
    notes_col = t.headers.index("notes") if "notes" in t.headers else None
    table = RichTable(title=t.title, title_justify="left", header_style="bold", pad_edge=False)
    align = t.align or ["l"] * len(t.headers)
    for j in keep:
        table.add_column(t.headers[j], justify="right" if align[j] == "r" else "left",
                         no_wrap=t.headers[j] in ("model", "method"))
    footnotes = []
    for row, bold, kind in zip(t.rows, t.bold, t.kinds or ["model"] * len(t.rows)):
        cells = [Text(row[j], style="bold green" if bold[j] and row[j] not in ("", "-") else "") for j in keep]
        if notes_col is not None and row[notes_col]:
            footnotes.append(row[notes_col])
            cells[keep.index(t.headers.index("model"))].append(f" [{len(footnotes)}]", style="yellow")
        table.add_row(*cells, style=STYLE.get(kind, ""))
    parts = [table]
    parts += [Text(f"[{i}] {n}", style="yellow") for i, n in enumerate(footnotes, start=1)]
    if t.caption:
        parts.append(Text(t.caption, style="dim"))
    parts.append(Text(""))
    return Group(*parts)


def renderable(tables: list[Table], notes: list[str], width: int = 200):
    parts = [rich_table(t, width) for t in tables]
    parts += [Text("note: " + n, style="yellow") for n in notes]
    return Group(*parts)
