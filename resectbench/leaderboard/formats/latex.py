"""LaTeX (booktabs): mean $\\pm$ SD, best in bold; one ``table`` environment per view."""

from __future__ import annotations

import re

from .tables import Table

_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def escape(text: str) -> str:
    out = "".join(_SPECIAL.get(ch, ch) for ch in text)
    out = out.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("−", "-").replace("†", r"\dag{}")
    out = out.replace("<", r"\textless{}").replace(">", r"\textgreater{}")
    return out


def table_latex(t: Table, label: str = "") -> str:
    cols = "".join(t.align or ["l"] * len(t.headers))
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(rf"\textbf{{{escape(h)}}}" for h in t.headers) + r" \\",
        r"\midrule",
    ]
    for row, bold, kind in zip(t.rows, t.bold, t.kinds or ["model"] * len(t.rows)):
        cells = [rf"\textbf{{{escape(c)}}}" if b and c not in ("", "-") else escape(c) for c, b in zip(row, bold)]
        if kind in ("chance", "oracle", "ceiling"):
            cells = [rf"\textit{{{c}}}" if c and not c.startswith(r"\textbf") else c for c in cells]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.caption:
        lines.append(rf"\caption{{{escape(t.caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines)


def render_latex(tables: list[Table], notes: list[str], title: str = "") -> str:
    header = [
        "% resectbench leaderboard" + (f": {title}" if title else ""),
        "% needs \\usepackage{booktabs}; italic rows: chance / oracle-mask / ceiling",
    ]
    header += [f"% note: {n}" for n in notes]
    body = [table_latex(t, "tab:" + re.sub(r"[^a-z0-9]+", "-", t.title.lower()).strip("-")) for t in tables]
    return "\n".join(header) + "\n" + "\n\n".join(body) + "\n"
