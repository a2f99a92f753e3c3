"""HTML tables (a fragment for the report, or a standalone page)."""

from __future__ import annotations

from html import escape

from .tables import Table

CSS = """
table.board { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 12.5px; font-variant-numeric: tabular-nums; }
table.board th, table.board td { padding: 4px 7px; border-bottom: 1px solid #e3e6ea; white-space: nowrap; }
table.board th { background: #f2f4f7; text-align: left; font-weight: 600; border-bottom: 2px solid #aab2bd; }
table.board td.r { text-align: right; }
table.board sup.fn { color: #b45309; font-weight: 600; margin-left: 2px; }
ol.footnotes { color: #8a4b08; font-size: 12px; margin: 2px 0 4px; padding-left: 22px; }
table.board tr.chance td { color: #6b7280; background: #fafafa; }
table.board tr.oracle td { font-style: italic; background: #fffbea; }
table.board tr.ceiling td { color: #1d4e89; background: #eef5ff; font-style: italic; }
table.board strong { color: #0b5d1e; }
p.caption { color: #4b5563; font-size: 12px; max-width: 70em; margin: 0.2em 0 1.2em; }
"""


def table_html(t: Table) -> str:
    """The table; a "notes" column becomes numbered footnotes under it (keeps the table narrow)."""
    notes_col = t.headers.index("notes") if "notes" in t.headers else None
    model_col = t.headers.index("model") if "model" in t.headers else 0
    cols = [j for j in range(len(t.headers)) if j != notes_col]
    out = [f'<table class="board" data-title="{escape(t.title)}">', "<thead><tr>"]
    out += [f"<th>{escape(t.headers[j])}</th>" for j in cols]
    out.append("</tr></thead><tbody>")
    align = t.align or ["l"] * len(t.headers)
    footnotes = []
    for row, bold, kind in zip(t.rows, t.bold, t.kinds or ["model"] * len(t.rows)):
        out.append(f'<tr class="{kind}">')
        for j in cols:
            c, b = row[j], bold[j]
            text = escape(c)
            if b and c not in ("", "-"):
                text = f"<strong>{text}</strong>"
            if j == model_col and notes_col is not None and row[notes_col]:
                footnotes.append(row[notes_col])
                text += f'<sup class="fn">{len(footnotes)}</sup>'
            out.append(f'<td class="{align[j]}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    if footnotes:
        out.append('<ol class="footnotes">' + "".join(f"<li>{escape(n)}</li>" for n in footnotes) + "</ol>")
    if t.caption:
        out.append(f'<p class="caption">{escape(t.caption)}</p>')
    return "".join(out)


def render_html_fragment(tables: list[Table], notes: list[str], heading: str = "h3") -> str:
    parts = []
    for t in tables:
        parts.append(f"<{heading}>{escape(t.title)}</{heading}>{table_html(t)}")
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    return "\n".join(parts)


def render_html(tables: list[Table], notes: list[str], title: str = "") -> str:
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title or "leaderboard")}</title>'
        f"<style>body {{ font-family: system-ui, sans-serif; margin: 2em; }} {CSS}</style></head><body>"
        f"<h2>{escape(title)}</h2>{render_html_fragment(tables, notes)}</body></html>\n"
    )
