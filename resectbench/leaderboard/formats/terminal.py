"""Rich tables for the terminal: best cells bold green, chance rows dim, oracle/ceiling rows italic."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table as RichTable
from rich.text import Text

from .tables import Table

STYLE = {"chance": "dim", "oracle": "italic yellow", "ceiling": "italic cyan", "model": ""}


def rich_table(t: Table) -> RichTable:
    table = RichTable(title=t.title, caption=t.caption, caption_justify="left", title_justify="left",
                      header_style="bold", pad_edge=False)
    for h, a in zip(t.headers, t.align or ["l"] * len(t.headers)):
        table.add_column(h, justify="right" if a == "r" else "left", overflow="fold",
                         max_width=40 if h == "notes" else None)
    for row, bold, kind in zip(t.rows, t.bold, t.kinds or ["model"] * len(t.rows)):
        table.add_row(*[Text(c, style="bold green" if b and c not in ("", "-") else "") for c, b in zip(row, bold)],
                      style=STYLE.get(kind, ""))
    return table


def renderable(tables: list[Table], notes: list[str]):
    parts = [rich_table(t) for t in tables]
    parts += [Text("note: " + n, style="yellow") for n in notes]
    return Group(*parts)
