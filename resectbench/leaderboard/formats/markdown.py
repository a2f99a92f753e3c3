"""Markdown (GitHub pipe tables); best cells in bold."""

from __future__ import annotations

from .tables import Table


def _cell(text: str, bold: bool) -> str:
    text = text.replace("|", "\\|")
    return f"**{text}**" if bold and text not in ("", "-") else text


def table_markdown(t: Table) -> str:
    align = {"l": ":--", "r": "--:"}
    lines = [
        f"### {t.title}",
        "",
        "| " + " | ".join(t.headers) + " |",
        "|" + "|".join(align.get(a, "---") for a in (t.align or ["l"] * len(t.headers))) + "|",
    ]
    for row, bold in zip(t.rows, t.bold):
        lines.append("| " + " | ".join(_cell(c, b) for c, b in zip(row, bold)) + " |")
    if t.caption:
        lines += ["", f"*{t.caption}*"]
    return "\n".join(lines)


def render_markdown(tables: list[Table], notes: list[str], title: str = "") -> str:
    parts = [f"## {title}"] if title else []
    parts += [table_markdown(t) for t in tables]
    if notes:
        parts.append("\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts) + "\n"
