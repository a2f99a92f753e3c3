"""Rich tables for the terminal: best cells bold green, chance rows dim, oracle/ceiling rows italic.

Terminals are narrow: notes become numbered footnotes under the table, model names never wrap,
and on narrow consoles the secondary columns (balanced accuracy, pooled intervals) are left
out (``--format markdown`` or ``csv`` always has everything). A cell may wrap between words
(``0.471 ±`` / ``0.032``) but a number is never cut or elided: a table wider than the console is
stacked as several tables of the columns that fit, each repeating the row names.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table as RichTable
from rich.text import Text

from .tables import Table

STYLE = {"chance": "dim", "oracle": "italic yellow", "ceiling": "italic cyan", "model": ""}
# (minimum console width, header prefixes shown only from that width on)
OPTIONAL = ((170, ("bal. acc.", "pooled AUC [", "pooled macro-F1")), (125, ("pooled AUC",)))
#: leading columns that name a row; repeated in every stacked part
KEYS = ("#", "model", "method")


def _longest_word(text: str) -> int:
    # "0.222 ±" counts as one word: a cell wraps as "0.222 ±" / "0.385", not with the ± on a line of its own
    return max((len(w) for w in text.replace(" ±", "\0±").split()), default=0)


def _widths(t: Table, keep: list[int], marks: list[str]) -> tuple[dict[int, int], dict[int, int]]:
    """(narrowest width that cuts no word, width that wraps nothing) of each column; row names never wrap."""
    low, high = {}, {}
    for j in keep:
        texts = [row[j] + (m if t.headers[j] in ("model", "method") else "") for row, m in zip(t.rows, marks)]
        high[j] = max(len(x) for x in [t.headers[j], *texts])
        low[j] = high[j] if t.headers[j] in ("model", "method") else max(map(_longest_word, [t.headers[j], *texts]))
    return low, high


def _table_width(widths: list[int]) -> int:
    # one space of padding each side except at the outer edges (pad_edge=False), a rule between and around
    return sum(widths) + 2 * len(widths) - 2 + len(widths) + 1


def _column_groups(keep: list[int], low: dict[int, int], keys: list[int], width: int) -> list[list[int]]:
    """The columns as consecutive groups, each fitting ``width`` together with the key columns."""
    groups: list[list[int]] = []
    for j in (j for j in keep if j not in keys):
        if groups and _table_width([low[k] for k in keys + groups[-1] + [j]]) <= width:
            groups[-1].append(j)
        else:
            groups.append([j])
    return [keys + g for g in groups] or [keys]


def _fit(cols: list[int], low: dict[int, int], high: dict[int, int], width: int) -> dict[int, int]:
    """Fixed column widths: every column at least ``low``, grown towards ``high`` while the table fits (rich's
    own shrinking would cut below ``low`` and then overflow the console)."""
    out = {j: low[j] for j in cols}
    spare = width - _table_width(list(out.values()))
    for j in cols:
        grow = max(0, min(spare, high[j] - out[j]))
        out[j] += grow
        spare -= grow
    return out


def rich_table(t: Table, width: int = 200):
    hidden = tuple(p for min_width, prefixes in OPTIONAL if width < min_width for p in prefixes)
    keep = [j for j, h in enumerate(t.headers) if h != "notes" and not h.startswith(hidden or ("\0",))]
    notes_col = t.headers.index("notes") if "notes" in t.headers else None
    align = t.align or ["l"] * len(t.headers)
    kinds = t.kinds or ["model"] * len(t.rows)
    footnotes, marks = [], []
    for row in t.rows:
        if notes_col is not None and row[notes_col]:
            footnotes.append(row[notes_col])
            marks.append(f" [{len(footnotes)}]")
        else:
            marks.append("")
    low, high = _widths(t, keep, marks)
    keys = [j for j in keep if t.headers[j] in KEYS]
    groups = _column_groups(keep, low, keys, width)
    parts = []
    for part, cols in enumerate(groups, start=1):
        title = t.title if len(groups) == 1 else f"{t.title} ({part}/{len(groups)})"
        table = RichTable(title=title, title_justify="left", header_style="bold", pad_edge=False)
        widths = _fit(cols, low, high, width)
        for j in cols:
            table.add_column(
                t.headers[j], justify="right" if align[j] == "r" else "left", width=widths[j], overflow="fold"
            )
        for row, bold, kind, mark in zip(t.rows, t.bold, kinds, marks):
            cells = [Text(row[j], style="bold green" if bold[j] and row[j] not in ("", "-") else "") for j in cols]
            if mark and t.headers.index("model") in cols:
                cells[cols.index(t.headers.index("model"))].append(mark, style="yellow")
            table.add_row(*cells, style=STYLE.get(kind, ""))
        parts.append(table)
    parts += [Text(f"[{i}] {n}", style="yellow") for i, n in enumerate(footnotes, start=1)]
    if t.caption:
        parts.append(Text(t.caption, style="dim"))
    parts.append(Text(""))
    return Group(*parts)


def renderable(tables: list[Table], notes: list[str], width: int = 200):
    parts = [rich_table(t, width) for t in tables]
    parts += [Text("note: " + n, style="yellow") for n in notes]
    return Group(*parts)
