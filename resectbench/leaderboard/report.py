"""``write_report``: one self-contained HTML file (figures embedded as base64 PNG) plus the PNGs.

The page opens offline in any browser: no scripts, fonts or images are fetched. Sections: the
cohort and protocol at a glance, the leaderboard with its comparisons, per-fold spread, ROC
curves per class, confusion matrices, reliability diagrams, the arterial-vs-venous contact
scatter with misclassified cases, learning curves and loss-weight schedules, Optuna history and
parameter importances, and the manifest (data, splits, versions).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from .._version import __version__
from ..vocabulary import CLASS_NAMES
from . import metrics as M
from .board import Leaderboard, build_leaderboard
from .formats import cells
from .formats.html import CSS, table_html
from .formats.paper_layout import paper_tables
from .formats.tables import (
    comparisons_table,
    details_table,
    external_pairs_table,
    external_table,
    main_table,
    segmentation_table,
)
from .paper import paper_labels
from .runs import RunResults

PAGE_CSS = """
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2937;
       margin: 0; background: #f6f7f9; }
header { background: #1d3557; color: #fff; padding: 22px 40px 18px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header p { margin: 0; color: #cfd8e3; font-size: 13px; }
main { max-width: 1360px; margin: 0 auto; padding: 10px 28px 60px; }
section { background: #fff; border: 1px solid #e3e6ea; border-radius: 6px; padding: 14px 22px 10px;
          margin: 18px 0; overflow-x: auto; }
section h2 { font-size: 17px; margin: 2px 0 8px; color: #1d3557; }
section h3 { font-size: 14px; margin: 14px 0 4px; }
p.lead { font-size: 14px; margin: 4px 0 10px; max-width: 75em; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 8px 18px;
         margin: 6px 0 10px; }
.fact { border-left: 3px solid #457b9d; padding: 2px 10px; }
.fact .k { font-size: 11px; color: #6b7280; text-transform: uppercase; letter-spacing: .04em; }
.fact .v { font-size: 14px; font-weight: 600; overflow-wrap: anywhere; }
nav { font-size: 13px; margin: 14px 0 0; }
nav a { color: #1d3557; margin-right: 14px; text-decoration: none; border-bottom: 1px dotted #1d3557; }
figure { margin: 8px 0 12px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eef0f3; }
figcaption { font-size: 12px; color: #4b5563; max-width: 75em; margin-top: 4px; }
ul.notes { color: #8a4b08; font-size: 13px; }
.warn { color: #8a4b08; }
pre { background: #f3f4f6; padding: 10px; font-size: 11px; overflow-x: auto; max-height: 480px; }
details summary { cursor: pointer; font-size: 13px; color: #1d3557; margin: 6px 0; }
footer { color: #6b7280; font-size: 12px; text-align: center; margin: 20px 0; }
"""


@dataclass
class ReportResult:
    html: Path
    figure_dir: Path
    figures: dict[str, Path] = field(default_factory=dict)
    board: Leaderboard | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # figure -> why it is absent


def _when(stamp) -> str:
    """ISO timestamp -> 'YYYY-MM-DD HH:MM' (as written, without seconds and offset)."""
    return str(stamp)[:16].replace("T", " ") if stamp else "?"


def _facts(runs: RunResults) -> list[tuple[str, str]]:
    man = runs.manifest
    cohort = man.get("cohort") or {}
    counts = cohort.get("class_counts") or {}
    proto = (man.get("config") or {}).get("protocol") or {}
    profile = man.get("profile") or {}
    n_outer = len(runs.splits.get("outer", [])) or None
    facts = [
        (
            "cohort",
            " ".join(
                x
                for x in (
                    cohort.get("name") or cohort.get("source"),
                    f"({cohort.get('n_cases', len(runs.cases))} cases)",
                )
                if x
            ),
        ),
        ("classes R / BR / LA", " / ".join(str(counts.get(c, "?")) for c in CLASS_NAMES)),
        (
            "outer folds",
            f"{runs.splits.get('outer_folds') or proto.get('outer_folds', '?')} × {proto.get('repeats', 1)} repeat(s)"
            + (f" = {n_outer} units per model" if n_outer else "")
            + (
                f", imported from {Path(i['path']).name} ({i['format']}, sha256 {i['sha256'][:12]})"
                if (i := runs.splits.get("imported_folds"))
                else ""
            ),
        ),
        (
            "inner split",
            f"{proto['inner']}, {proto.get('trials', '?')} trial(s) per fold, selected by "
            f"{proto.get('selection_metric', '?')}"
            if "inner" in proto
            else "not recorded",
        ),
        ("profile", str(profile.get("name", man.get("profile", "?")) if isinstance(profile, dict) else profile)),
        (
            "Bayes-optimal accuracy",
            cells.number(runs.bayes_optimal_accuracy, 3)
            if runs.bayes_optimal_accuracy is not None
            else "unknown (real data)",
        ),
        ("data fingerprint", str(runs.data_fingerprint)),
        ("split fingerprint", str(runs.split_fingerprint)),
        (
            "run (UTC)",
            f"{_when(man.get('created'))} → {_when(man.get('finished')) if man.get('finished') else 'not finished'}",
        ),
    ]
    return facts


def _headline(board: Leaderboard) -> str:
    fair = [r for r in board.rows if r.kind == "model" and r.rank is not None]
    chance = next((r for r in board.rows if r.kind == "chance"), None)
    parts = []
    metric = M.label(board.rank_by)
    if fair:
        best = fair[0]
        parts.append(
            f"Best entry by {metric}: <b>{escape(best.label)}</b> "
            f"({metric} {cells.mean_sd(best.mean.get(board.rank_by), best.sd.get(board.rank_by))} over "
            f"{best.n_folds} outer folds; pooled AUC {cells.interval(best.pooled.get('auc_ovr_macro'))})."
        )
    if chance is not None:
        parts.append(
            f"Chance level ({escape(chance.label)}): AUC {cells.number(chance.mean.get('auc_ovr_macro'))}, "
            f"macro-F1 {cells.number(chance.mean.get('macro_f1'))}, accuracy "
            f"{cells.number(chance.mean.get('accuracy'))}."
        )
    significant = [
        c.model
        for c in board.comparisons
        if cells.finite(c.p_auc_holm) and c.p_auc_holm < 0.05 and board.row(c.model).kind == "model"
    ]
    if board.reference and fair:
        others = [r.label for r in fair if r.label != board.reference]
        if others:
            parts.append(
                f"Against {escape(board.reference)}, {len(significant)} of {len(others)} other entries differ "
                "in pooled AUC after Holm correction (DeLong/bootstrap p &lt; 0.05)."
            )
    return " ".join(parts)


def _figure(name: str, png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="fig-{name}"><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


CAPTIONS = {
    "folds": "Each dot is one outer fold; the bar is the mean ± SD. Overlapping spreads mean the fold-to-fold "
    "variation is as large as the difference between models.",
    "roc": "One-vs-rest ROC curves from the pooled out-of-fold predictions; the legend gives each model's AUC for "
    "that class. The dashed diagonal is chance.",
    "confusion": "Pooled out-of-fold confusion matrices: counts and row percentages (share of each true class).",
    "calibration": "Reliability of the predicted class's probability: points on the diagonal mean that a "
    "predicted 70 % is right 70 % of the time. Below: how many cases fall in each confidence bin.",
    "calibration_external": "Each model's calibration on the development cohort (pooled out-of-fold "
    "predictions, solid) beside its final model's on each external cohort (dashed): a curve that moves off the "
    "diagonal, or an ECE that rises, is calibration drift at the other site.",
    "contact": "True maximum arterial vs venous contact of every case (the synthetic cohort's ground truth), "
    "coloured by NCCN class; ringed cases are misclassified by the highlighted model. Points are "
    "jittered by a few degrees so that cases with identical angles stay visible.",
    "training": "Per-epoch logs of the final fit in each outer fold: loss terms, inner-validation scores and "
    "training tumor Dice, and the segmentation/classification loss weights chosen by the schedule.",
    "tuning": "Objective of every Optuna trial (inner validation) by trial number, with the best so far; "
    "importances are Optuna's fANOVA (optuna.importance, seed 0) on each fold's study rebuilt from its "
    "trials file, averaged over the folds.",
}

#: figures drawn only for runs with external cohorts (no "Not shown" section without them)
EXTERNAL_ONLY = ("calibration_external",)

TITLES = {
    "folds": "Per-fold spread",
    "roc": "ROC curves per class",
    "confusion": "Confusion matrices",
    "calibration": "Calibration",
    "calibration_external": "Calibration internal vs external",
    "contact": "Tumor-vessel contact (Figure 2 style)",
    "training": "Learning curves and loss weights",
    "tuning": "Hyper-parameter tuning",
}


def render_figures(runs: RunResults, board: Leaderboard, highlight: str | None = None):
    """name -> (png bytes) for every figure the run's files support; and name -> reason for the rest."""
    from .plots.contact import contact_scatter
    from .plots.performance import confusion_matrices, fold_spread, reliability, reliability_external, roc_curves
    from .plots.style import model_colors, to_png
    from .plots.training import training_curves
    from .plots.tuning import tuning_figure

    order = [r.label for r in board.rows if r.kind != "ceiling"]
    colors = model_colors(order, {r.label: r.kind for r in board.rows})
    figs, skipped = {}, {}
    figs["folds"] = to_png(fold_spread(board, runs, order, colors))
    figs["roc"] = to_png(roc_curves(runs, order, colors))
    figs["confusion"] = to_png(confusion_matrices(runs, order))
    figs["calibration"] = to_png(reliability(runs, order, colors))
    fig = reliability_external(runs, order, colors)
    if fig is not None:  # runs without external cohorts have no such section (not a gap: nothing to compare)
        figs["calibration_external"] = to_png(fig)
    highlight = highlight or board.reference or (order[0] if order else None)
    fig = contact_scatter(runs, highlight)
    if fig is None:
        skipped["contact"] = "the run has no cohort/ground_truth.csv with contact angles (real data)"
    else:
        figs["contact"] = to_png(fig)
    fig = training_curves(runs, order)
    if fig is None:
        skipped["training"] = "no model logged epochs (history.csv is empty for all: e.g. scikit-learn baselines)"
    else:
        figs["training"] = to_png(fig)
    fig = tuning_figure(runs, order)
    if fig is None:
        skipped["tuning"] = "no model has two or more complete Optuna trials in a fold"
    else:
        figs["tuning"] = to_png(fig)
    return figs, skipped, highlight


def write_report(
    runs: RunResults,
    out: str | Path,
    *,
    rank_by: str = "auc_ovr_macro",
    reference: str | None = None,
    auc_test: str = "delong",
    n_boot: int = 2000,
    seed: int = 0,
    highlight: str | None = None,
    board: Leaderboard | None = None,
) -> ReportResult:
    """Write ``out`` (HTML) and ``<out stem>_figures/*.png``; returns what was written."""
    out = Path(out)
    board = board or build_leaderboard(
        runs, rank_by=rank_by, reference=reference, auc_test=auc_test, bayesian=True, n_boot=n_boot, seed=seed
    )
    figs, skipped, highlight = render_figures(runs, board, highlight)
    fig_dir = out.parent / f"{out.stem}_figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, png in figs.items():
        path = fig_dir / f"{name}.png"
        path.write_bytes(png)
        written[name] = path

    titles = {k: v for k, v in TITLES.items() if k in figs or k not in EXTERNAL_ONLY}
    nav = "".join(
        f'<a href="#{k}">{escape(v)}</a>'
        for k, v in [
            ("leaderboard", "Leaderboard"),
            ("comparisons", "Comparisons"),
            ("details", "Details"),
            *([("external", "External validation")] if board.external_cohorts else []),
            *[(k, v) for k, v in titles.items()],
            ("manifest", "Manifest"),
        ]
    )
    facts = "".join(
        f'<div class="fact"><div class="k">{escape(k)}</div><div class="v">{escape(v)}</div></div>'
        for k, v in _facts(runs)
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in board.notes)
    body = [
        f'<section id="overview"><h2>Overview</h2><div class="facts">{facts}</div>'
        f'<p class="lead">{_headline(board)}</p>{f"<ul class=notes>{notes}</ul>" if notes else ""}'
        f"<nav>{nav}</nav></section>",
        f'<section id="leaderboard"><h2>Leaderboard</h2>{table_html(main_table(board))}</section>',
    ]
    if board.comparisons:
        body.append(
            f'<section id="comparisons"><h2>Comparisons with {escape(board.reference)}</h2>'
            f"{table_html(comparisons_table(board))}</section>"
        )
    body.append(
        f'<section id="details"><h2>Per-class F1, segmentation, calibration and cost</h2>'
        f"{table_html(details_table(board))}</section>"
    )
    external = [t for t in (external_table(board), external_pairs_table(board)) if t is not None]
    if external:
        tables = "".join(f"<h3>{escape(t.title)}</h3>{table_html(t)}" for t in external)
        body.append(f'<section id="external"><h2>External validation</h2>{tables}</section>')
    seg = segmentation_table(board)
    if seg is not None:
        body.append(f'<section id="segmentation"><h2>Segmentation</h2>{table_html(seg)}</section>')
    if any(r.label in paper_labels() for r in board.rows):
        tables = "".join(
            f"<h3>{escape(t.title)}</h3>{table_html(t)}" for t in paper_tables(board) if t.title != "Other models"
        )
        body.append(f'<section id="paper"><h2>Beside the paper (Ochs et al., MIDL 2026)</h2>{tables}</section>')
    for name, title in titles.items():
        if name in figs:
            caption = CAPTIONS[name]
            if name == "contact":
                caption += f" Highlighted model: {highlight}."
            content = _figure(name, figs[name], caption)
        else:
            content = f'<p class="warn">Not shown: {escape(skipped.get(name, "no data"))}.</p>'
        body.append(f'<section id="{name}"><h2>{escape(title)}</h2>{content}</section>')
    man = runs.manifest
    versions = man.get("versions") or {}
    ver = ", ".join(f"{k} {v}" for k, v in versions.items())
    body.append(
        f'<section id="manifest"><h2>Manifest</h2><p class="lead">Run director{"ies" if len(runs.roots) > 1 else "y"}: '
        f"{escape(', '.join(str(r) for r in runs.roots))}<br>git SHA: {escape(str(man.get('git_sha')))}; "
        f"versions: {escape(ver) or 'not recorded'}<br>device: {escape(str(man.get('device', '?')))}</p>"
        f"<details><summary>full manifest.json</summary><pre>{escape(json.dumps(man, indent=2, default=str))}</pre>"
        f"</details><details><summary>split sizes per outer fold</summary><pre>"
        + escape(
            "\n".join(
                f"repeat {o.get('repeat')} fold {o.get('fold')}: train {len(o.get('train', []))}, "
                f"test {len(o.get('test', []))}"
                for o in runs.splits.get("outer", [])
            )
        )
        + "</pre></details></section>"
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    html = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>resectbench report: {escape(board.name)}</title><style>{PAGE_CSS}{CSS}</style></head><body>"
        f"<header><h1>Resectability benchmark: {escape(board.name)}</h1>"
        f"<p>NCCN resectability (resectable / borderline / locally advanced) from CT and clinical variables. "
        f"{len([r for r in board.rows if r.kind != 'ceiling'])} models, nested cross-validation.</p></header>"
        f"<main>{''.join(body)}</main><footer>resectbench {escape(__version__)} · generated {stamp} from the run "
        f"directory files only</footer></body></html>\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return ReportResult(html=out, figure_dir=fig_dir, figures=written, board=board, skipped=skipped)
