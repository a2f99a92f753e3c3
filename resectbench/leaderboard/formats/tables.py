"""The leaderboard as display tables (header + cell text + emphasis), independent of the output format.

Three views: ``main`` (rank, headline metrics as mean ± SD over folds, pooled out-of-fold
estimates with bootstrap intervals, the test against the reference, notes), ``details``
(per-class F1, Dice, calibration, size and time) and ``comparisons`` (every test against the
reference). "Best" cells (emphasised in every format) are the best fold mean among fair entries:
rows that are neither chance, oracle-mask nor the ceiling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import metrics as M
from ..board import Leaderboard, Row
from . import cells


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    bold: list[list[bool]]
    kinds: list[str] = field(default_factory=list)  # row kind (model/chance/oracle/ceiling) for styling
    caption: str = ""
    align: list[str] = field(default_factory=list)  # "l" or "r" per column


def model_name(row: Row) -> str:
    suffix = {"chance": " (chance)", "oracle": " (oracle masks)", "ceiling": ""}.get(row.kind, "")
    return row.label + suffix


def _best(board: Leaderboard, metric: str) -> float:
    fair = [r.value(metric) for r in board.rows if r.kind == "model" and math.isfinite(r.value(metric))]
    if len(fair) < 2:  # nothing to compare: no "best"
        return math.nan
    return max(fair) if M.higher_is_better(metric) else min(fair)


def _is_best(board, row, metric, best) -> bool:
    return row.kind == "model" and math.isfinite(best) and row.value(metric) == best


def _notes(board: Leaderboard, row: Row) -> str:
    return "; ".join(row.flags)


def main_table(board: Leaderboard, digits: int = 3) -> Table:
    headline = [m for m in (*M.HEADLINE, "balanced_accuracy") if m in board.metrics]
    level = int(round(board.settings.get("level", 0.95) * 100))
    ref = board.reference
    headers = [
        "#",
        "model",
        *[M.label(m) for m in headline],
        f"pooled AUC [{level}% CI]",
        f"pooled macro-F1 [{level}% CI]",
        "folds",
        "p vs ref. (t / AUC)",
        "notes",
    ]
    best = {m: _best(board, m) for m in headline}
    rows, bold, kinds = [], [], []
    for r in board.rows:
        comp = board.comparison(r.label)
        versus = (
            "reference"
            if r.label == ref
            else (f"{cells.p_value(comp.p_ttest_holm)} / {cells.p_value(comp.p_auc_holm)}" if comp else "")
        )
        folds = f"{r.n_folds}/{r.n_expected}" if r.kind != "ceiling" else ""
        rows.append(
            [
                str(r.rank or ""),
                model_name(r),
                *[cells.mean_sd(r.mean.get(m), r.sd.get(m), digits) for m in headline],
                cells.interval(r.pooled.get("auc_ovr_macro"), digits),
                cells.interval(r.pooled.get("macro_f1"), digits),
                folds,
                versus,
                _notes(board, r),
            ]
        )
        bold.append([False, False, *[_is_best(board, r, m, best[m]) for m in headline]] + [False] * 5)
        kinds.append(r.kind)
    caption = (
        f"Mean ± SD over outer folds; ranked by {M.label(board.rank_by)}. Pooled = all out-of-fold "
        f"predictions, {level}% CI from {board.settings.get('n_boot')} patient-level stratified bootstrap "
        f"resamples (seed {board.settings.get('seed')})."
    )
    if ref:
        test = "DeLong" if board.settings.get("auc_test") == "delong" else "paired bootstrap"
        caption += (
            f" p vs ref.: Holm-adjusted p-values against the reference {ref}, of the Nadeau-Bengio corrected "
            f"t-test on fold {M.label(board.rank_by)} / of the {test} test on pooled macro AUC."
        )
    return Table("Leaderboard", headers, rows, bold, kinds, caption, ["r", "l"] + ["r"] * (len(headers) - 3) + ["l"])


def details_table(board: Leaderboard, digits: int = 3) -> Table:
    metrics = [m for m in board.metrics if m.startswith("f1_") or m in M.DICE_SUMMARY or m in M.CALIBRATION]
    headers = ["model", *[M.label(m) for m in metrics], "params", "train s/fold", "infer ms/case"]
    best = {m: _best(board, m) for m in metrics}
    rows, bold, kinds = [], [], []
    for r in board.rows:
        if r.kind == "ceiling":
            continue
        rows.append(
            [
                model_name(r),
                *[cells.mean_sd(r.mean.get(m), r.sd.get(m), digits) for m in metrics],
                cells.count(r.n_parameters),
                cells.number(r.train_seconds, 1),
                cells.millis(r.infer_seconds_per_case),
            ]
        )
        bold.append([False, *[_is_best(board, r, m, best[m]) for m in metrics], False, False, False])
        kinds.append(r.kind)
    caption = (
        "Per-class F1, Dice of the auxiliary segmentation where the model segments (pancreas, tumor, and "
        "the mean over SMA, celiac trunk, CHA, SMV and portal vein; every structure in the Segmentation "
        "table), calibration "
        "(ECE: top-class, 10 bins; Brier: multi-class, lower is better) as mean ± SD over folds; "
        "parameters, mean training time per outer fold, inference time per case."
    )
    return Table("Details", headers, rows, bold, kinds, caption, ["l"] + ["r"] * (len(headers) - 1))


def segmentation_table(board: Leaderboard, digits: int = 2) -> Table | None:
    """Mean ± SD Dice over folds per structure (rows) for each model that segments (columns);
    None if no model segments."""
    structures = [m for m in board.metrics if m.startswith("dice_") and m != "dice_vessels"]
    models = [r for r in board.rows if r.kind != "ceiling" and any(m in r.mean for m in structures)]
    if not structures or not models:
        return None
    headers = ["structure", *[model_name(r) for r in models]]
    rows, bold = [], []
    for m in structures:
        rows.append([m[5:].replace("_", " "), *[cells.mean_sd(r.mean.get(m), r.sd.get(m), digits) for r in models]])
        fair = [r.mean[m] for r in models if r.kind == "model" and cells.finite(r.mean.get(m))]
        best = max(fair) if fair else math.nan
        bold.append([False, *[len(models) > 1 and r.kind == "model" and r.mean.get(m) == best for r in models]])
    return Table(
        "Segmentation Dice",
        headers,
        rows,
        bold,
        ["model"] * len(rows),
        "Dice of the auxiliary segmentation per structure on the outer test folds (predicted masks "
        "against the reference masks), mean ± SD over folds.",
        ["l"] + ["r"] * len(models),
    )


def comparisons_table(board: Leaderboard, digits: int = 3) -> Table:
    bayes = any(c.bayes is not None for c in board.comparisons)
    metric = M.label(board.rank_by)
    test = "DeLong" if board.settings.get("auc_test") == "delong" else "bootstrap"
    headers = ["model", "folds", f"Δ {metric}", "t", "p", "p Holm", "Δ pooled AUC", f"p {test}", "p Holm"]
    if bayes:
        rope = board.settings.get("rope")
        headers += ["P(worse)", f"P(|Δ|<{rope:g})", "P(better)"]
    rows, bold, kinds = [], [], []
    for c in board.comparisons:
        row = [
            c.model,
            str(c.n_folds),
            cells.signed(c.mean_difference, digits),
            cells.number(c.t, 2),
            cells.p_value(c.p_ttest),
            cells.p_value(c.p_ttest_holm),
            cells.signed(c.auc_difference, digits),
            cells.p_value(c.p_auc),
            cells.p_value(c.p_auc_holm),
        ]
        if bayes:
            b = c.bayes
            row += (
                [cells.number(b.p_left, 3), cells.number(b.p_rope, 3), cells.number(b.p_right, 3)] if b else ["-"] * 3
            )
        rows.append(row)
        bold.append(
            [False] * 4
            + [
                False,
                cells.finite(c.p_ttest_holm) and c.p_ttest_holm < 0.05,
                False,
                False,
                cells.finite(c.p_auc_holm) and c.p_auc_holm < 0.05,
            ]
            + [False] * (3 if bayes else 0)
        )
        kinds.append(board.row(c.model).kind)
    caption = (
        f"Each model against the reference {board.reference} (Δ = model − reference). Corrected t-test: "
        f"Nadeau & Bengio (2003) over paired outer folds, n_test/n_train = "
        f"{board.settings.get('test_train_ratio', math.nan):.3f}. Pooled AUC: "
        + (
            "DeLong test of the one-vs-rest macro AUC (fast DeLong, probabilities averaged over repeats)"
            if test == "DeLong"
            else "paired patient-level stratified bootstrap of the macro AUC"
        )
        + ". Holm adjustment across the comparisons of each test; bold: adjusted p < 0.05."
    )
    if bayes:
        caption += (
            " Bayesian correlated t-test (Corani & Benavoli 2015): posterior probability that the model is "
            "worse than, practically equivalent to, or better than the reference."
        )
    return Table("Comparisons", headers, rows, bold, kinds, caption, ["l"] + ["r"] * (len(headers) - 1))


def external_table(board: Leaderboard, digits: int = 3) -> Table | None:
    """Internal (mean ± SD over outer folds) beside external (the final model's point estimate with its
    bootstrap CI) per model and external cohort, calibration internal -> external, and the DeLong test
    against the reference's final model on that cohort; None without external cohorts."""
    cohorts = board.external_cohorts
    if not cohorts:
        return None
    level = int(round(board.settings.get("level", 0.95) * 100))
    headers = [
        "model",
        "external cohort",
        "n",
        "AUC internal",
        f"AUC external [{level}% CI]",
        "macro-F1 internal",
        f"macro-F1 external [{level}% CI]",
        "ECE int. -> ext.",
        "Brier int. -> ext.",
        "p AUC vs ref. (Holm)",
    ]
    tests = {(c["cohort"], c["model"]): c for c in board.external_comparisons}
    rows, bold, kinds = [], [], []
    for name in cohorts:
        for r in board.rows:
            ext = r.external.get(name)
            if ext is None:
                continue
            test = tests.get((name, r.label))
            versus = "reference" if r.label == board.reference else (cells.p_value(test["p_auc_holm"]) if test else "")
            rows.append(
                [
                    model_name(r),
                    name,
                    str(ext["n_cases"]),
                    cells.mean_sd(r.mean.get("auc_ovr_macro"), r.sd.get("auc_ovr_macro"), digits),
                    cells.interval(ext["pooled"].get("auc_ovr_macro"), digits),
                    cells.mean_sd(r.mean.get("macro_f1"), r.sd.get("macro_f1"), digits),
                    cells.interval(ext["pooled"].get("macro_f1"), digits),
                    f"{cells.number(r.mean.get('ece'), digits)} -> {cells.number(ext.get('ece'), digits)}",
                    f"{cells.number(r.mean.get('brier'), digits)} -> {cells.number(ext.get('brier'), digits)}",
                    versus,
                ]
            )
            bold.append([False] * 9 + [bool(test) and cells.finite(test["p_auc_holm"]) and test["p_auc_holm"] < 0.05])
            kinds.append(r.kind)
    caption = (
        "External validation: each model's final model (tuned and fitted on the whole development cohort) "
        f"scored on another cohort. Internal = mean ± SD over outer folds; external = point estimate with a "
        f"{level}% stratified bootstrap CI over that cohort's cases ({board.settings.get('n_boot')} resamples). "
        "ECE and Brier score: internal fold mean -> external (a rise is calibration drift). p: DeLong test of the "
        f"macro AUC against the reference {board.reference}'s final model on the same cases, Holm-adjusted per cohort."
    )
    return Table("External validation", headers, rows, bold, kinds, caption, ["l", "l"] + ["r"] * 8)


def external_pairs_table(board: Leaderboard, digits: int = 3) -> Table | None:
    """Every pair of models' final models on each external cohort (DeLong, Holm per cohort); None without
    external cohorts or with fewer than two models scored on one."""
    if not board.external_pairs:
        return None
    headers = ["external cohort", "model A", "model B", "n", "AUC A - B", "macro-F1 A - B", "p AUC", "p AUC (Holm)"]
    rows, bold = [], []
    for c in board.external_pairs:
        rows.append(
            [
                c["cohort"],
                c["model_a"],
                c["model_b"],
                str(c["n_cases"]),
                cells.signed(c["auc_difference"], digits),
                cells.signed(c["macro_f1_difference"], digits),
                cells.p_value(c["p_auc"]),
                cells.p_value(c["p_auc_holm"]),
            ]
        )
        bold.append([False] * 7 + [cells.finite(c["p_auc_holm"]) and c["p_auc_holm"] < 0.05])
    caption = (
        "External cohorts, every pair of final models on the same cases: difference A - B of the one-vs-rest "
        "macro AUC (DeLong test) and of macro-F1 (point estimate); A is the better-ranked model internally. "
        "Holm adjustment across the pairs of each cohort; bold: adjusted p < 0.05."
    )
    return Table(
        "External cohorts: paired comparisons",
        headers,
        rows,
        bold,
        ["model"] * len(rows),
        caption,
        ["l", "l", "l"] + ["r"] * 5,
    )


def all_tables(board: Leaderboard, digits: int = 3) -> list[Table]:
    tables = [main_table(board, digits), details_table(board, digits)]
    seg = segmentation_table(board)
    if seg is not None:
        tables.append(seg)
    if board.comparisons:
        tables.append(comparisons_table(board, digits))
    for extra in (external_table(board, digits), external_pairs_table(board, digits)):
        if extra is not None:
            tables.append(extra)
    return tables
