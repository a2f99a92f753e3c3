"""Output formats of a leaderboard: terminal (rich), markdown, csv, latex, json, html.

``render(board, fmt, layout="full")`` returns text; ``layout="paper"`` gives the paper's Table 1
and ablation tables with our numbers beside the reported ones (csv/json always hold everything).
"""

from __future__ import annotations

import io

from ..board import Leaderboard
from ..errors import LeaderboardError
from .flat import board_frame, render_csv, render_json
from .html import render_html, render_html_fragment
from .latex import render_latex
from .markdown import render_markdown
from .paper_layout import paper_tables
from .tables import Table, all_tables, external_table

FORMATS = ("terminal", "markdown", "csv", "latex", "json", "html")
LAYOUTS = ("full", "paper")


def tables_for(board: Leaderboard, layout: str = "full") -> list[Table]:
    if layout not in LAYOUTS:
        raise LeaderboardError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "paper":  # the paper's tables, then its external column (when the run has external cohorts)
        ext = external_table(board)
        return paper_tables(board) + ([ext] if ext is not None else [])
    return all_tables(board)


def terminal_renderable(board: Leaderboard, layout: str = "full", width: int = 200):
    """A rich renderable; ``width`` (the console's) decides whether secondary columns fit."""
    from .terminal import renderable

    return renderable(tables_for(board, layout), board.notes, width)


def render(board: Leaderboard, fmt: str = "markdown", layout: str = "full", width: int = 200) -> str:
    """The leaderboard as text in ``fmt`` (see FORMATS)."""
    if fmt not in FORMATS:
        raise LeaderboardError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return render_csv(board)
    if fmt == "json":
        return render_json(board)
    tables = tables_for(board, layout)
    title = f"{board.name}: leaderboard"
    if fmt == "markdown":
        return render_markdown(tables, board.notes, title)
    if fmt == "latex":
        return render_latex(tables, board.notes, title)
    if fmt == "html":
        return render_html(tables, board.notes, title)
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, force_terminal=False).print(terminal_renderable(board, layout, width))
    return buf.getvalue()


__all__ = [
    "FORMATS",
    "LAYOUTS",
    "render",
    "tables_for",
    "terminal_renderable",
    "board_frame",
    "render_html_fragment",
    "Table",
]
