"""``--layout paper``: the paper's Table 1 and ablation tables, ours beside the reported numbers.

Values are mean ± SD over outer folds with two decimals, as in the paper. A paper row whose model
was not run shows "not run"; the chance row is added to Table 1 (the paper has none); models of
the board that fill no paper row are listed in a final "other models" table.
"""

from __future__ import annotations

from .. import metrics as M
from ..board import Leaderboard
from ..paper import TABLES, paper_labels
from . import cells
from .tables import Table, model_name


def _reported(value) -> str:
    mean, sd = value
    return f"{mean:.2f} ± {sd:.2f}" if sd is not None else f"{mean:.2f}"


def paper_tables(board: Leaderboard) -> list[Table]:
    present = {r.label: r for r in board.rows}
    out = []
    for spec in TABLES:
        headers = [
            "method",
            "model",
            *[f"{M.label(m)} (ours)" for m in spec.metrics],
            *[f"{M.label(m)} (paper)" for m in spec.metrics],
        ]
        rows, kinds = [], []
        for prow in spec.rows:
            label = next((lab for lab in prow.labels if lab in present), None)
            r = present.get(label)
            ours = (
                [cells.mean_sd(r.mean.get(m), r.sd.get(m), 2) for m in spec.metrics]
                if r
                else ["not run"] * len(spec.metrics)
            )
            rows.append(
                [
                    prow.method,
                    label or prow.labels[0],
                    *ours,
                    *[_reported(prow.reported[m]) if m in prow.reported else "-" for m in spec.metrics],
                ]
            )
            kinds.append(r.kind if r else "model")
        if spec.key == "table1":
            for r in board.rows:
                if r.kind in ("chance", "ceiling"):
                    rows.append(
                        [
                            model_name(r),
                            r.label if r.kind != "ceiling" else "-",
                            *[cells.mean_sd(r.mean.get(m), r.sd.get(m), 2) for m in spec.metrics],
                            *["-"] * len(spec.metrics),
                        ]
                    )
                    kinds.append(r.kind)
        # bold: the best of ours among the fair (non-chance, non-oracle) rows of the paper
        bold = [[False] * len(headers) for _ in rows]
        for j, m in enumerate(spec.metrics):
            scored = [
                (present[row[1]].value(m), i)
                for i, row in enumerate(rows[: len(spec.rows)])
                if row[1] in present and present[row[1]].kind == "model" and cells.finite(present[row[1]].value(m))
            ]
            if len(scored) > 1:  # a "best" needs something to beat
                best = max(scored)[0] if M.higher_is_better(m) else min(scored)[0]
                for v, i in scored:
                    bold[i][2 + j] = v == best
        out.append(
            Table(
                spec.title,
                headers,
                rows,
                bold,
                kinds,
                "Ours: synthetic cohort of this run, mean ± SD over outer folds. Paper: Ochs et al. "
                "(MIDL 2026), private cohort of 159 patients; not the same data, so compare "
                "orderings and gaps, not absolute values.",
                ["l", "l"] + ["r"] * (len(headers) - 2),
            )
        )
    others = [r for r in board.rows if r.label not in paper_labels() and r.kind not in ("chance", "ceiling")]
    if others:
        metrics = list(M.HEADLINE)
        out.append(
            Table(
                "Other models",
                ["model", *[M.label(m) for m in metrics]],
                [[model_name(r), *[cells.mean_sd(r.mean.get(m), r.sd.get(m), 2) for m in metrics]] for r in others],
                [[False] * (1 + len(metrics)) for _ in others],
                [r.kind for r in others],
                "Models of this run that fill no row of the paper's tables.",
                ["l"] + ["r"] * len(metrics),
            )
        )
    return out
