"""Discrimination and calibration figures from pooled out-of-fold predictions."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from ...vocabulary import PROB_COLUMNS
from ..board import Leaderboard
from ..runs import RunResults
from .style import CHANCE_COLOR, RC, class_title, plt


def roc_curves(runs: RunResults, order: list[str], colors: dict[str, str]):
    """One panel per class: one-vs-rest ROC curve of every model (pooled out-of-fold predictions)."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.0), sharey=True)
        for c, ax in enumerate(axes):
            ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color=CHANCE_COLOR)
            for label in order:
                oof = runs.models[label].oof()
                y = oof["label"].to_numpy(int) == c
                if len(oof) == 0 or y.all() or not y.any():
                    continue
                score = oof[PROB_COLUMNS[c]].to_numpy(float)
                fpr, tpr, _ = roc_curve(y, score)
                ax.plot(fpr, tpr, lw=1.6, color=colors[label], label=f"{label} ({roc_auc_score(y, score):.2f})")
            ax.set_title(f"{class_title(c)} vs rest")
            ax.set_xlabel("1 − specificity")
            ax.set_aspect("equal")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.01)
            ax.legend(loc="lower right", title="model (AUC)", title_fontsize=8, frameon=False)
        axes[0].set_ylabel("sensitivity")
        fig.suptitle("ROC curves per class (pooled out-of-fold predictions)", x=0.01, ha="left")
        fig.tight_layout()
    return fig


def confusion_matrices(runs: RunResults, order: list[str]):
    """Pooled out-of-fold confusion matrix per model: row-normalised colour, counts and row % as text."""
    n = len(order)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    short = ["R", "BR", "LA"]
    with plt.rc_context({**RC, "axes.grid": False}):
        fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.9 * rows), squeeze=False)
        for ax in axes.flat[n:]:
            ax.axis("off")
        for ax, label in zip(axes.flat, order):
            oof = runs.models[label].oof()
            cm = confusion_matrix(oof["label"].astype(int), oof["pred"].astype(int), labels=[0, 1, 2])
            share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
            ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
            for i in range(3):
                for j in range(3):
                    ax.text(
                        j,
                        i,
                        f"{cm[i, j]}\n{share[i, j]:.0%}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if share[i, j] > 0.55 else "#1f2937",
                    )
            ax.set_xticks(range(3), short)
            ax.set_yticks(range(3), short)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            acc = np.trace(cm) / max(cm.sum(), 1)
            ax.set_title(f"{label}\naccuracy {acc:.2f}", fontsize=9)
        fig.suptitle(
            "Confusion matrices (pooled out-of-fold; R resectable, BR borderline, LA locally advanced)",
            x=0.01,
            ha="left",
        )
        fig.tight_layout()
    return fig


def _reliability_points(p: np.ndarray, y: np.ndarray, n_bins: int, min_cases: int = 3):
    """(bin mean confidence, bin accuracy) of bins with ``min_cases`` or more, and the ECE over every bin,
    for the top-class probability of ``p`` (n, 3) against labels ``y``."""
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    xs, ys = [], []
    for b in range(n_bins):
        m = bins == b
        if m.sum() >= min_cases:
            xs.append(conf[m].mean())
            ys.append(correct[m].mean())
    ece = sum(
        (bins == b).mean() * abs(correct[bins == b].mean() - conf[bins == b].mean())
        for b in range(n_bins)
        if (bins == b).any()
    )
    return xs, ys, float(ece), conf


def reliability(runs: RunResults, order: list[str], colors: dict[str, str], n_bins: int = 10):
    """Top-class reliability diagram (accuracy vs confidence per bin) and confidence histogram."""
    edges = np.linspace(0, 1, n_bins + 1)
    with plt.rc_context(RC):
        fig, (ax, hist) = plt.subplots(2, 1, figsize=(6.0, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color=CHANCE_COLOR, label="perfect calibration")
        for label in order:
            oof = runs.models[label].oof()
            p = oof[PROB_COLUMNS].to_numpy(float)
            if not len(p):
                continue
            xs, ys, ece, conf = _reliability_points(p, oof["label"].to_numpy(int), n_bins)
            ax.plot(xs, ys, marker="o", ms=4, lw=1.4, color=colors[label], label=f"{label} (ECE {ece:.3f})")
            hist.hist(conf, bins=edges, histtype="step", lw=1.4, color=colors[label])
        ax.set_ylabel("observed accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="upper left", frameon=False)
        ax.set_title("Reliability of the top-class probability (bins with ≥ 3 cases)")
        hist.set_xlabel("predicted probability of the predicted class")
        hist.set_ylabel("cases")
        fig.tight_layout()
    return fig


#: line styles of the external cohorts in :func:`reliability_external` (the internal curve is solid)
EXTERNAL_STYLES = (("--", "s"), (":", "^"), ("-.", "D"))


def reliability_external(runs: RunResults, order: list[str], colors: dict[str, str], n_bins: int = 10):
    """Calibration internal vs external: one panel per model with an external cohort, its pooled out-of-fold
    reliability curve (solid) beside its final model's on each external cohort (dashed), ECE in the legend.
    None when no model has an external cohort."""
    labels = [label for label in order if runs.models[label].external]
    if not labels:
        return None
    cohorts = sorted({name for label in labels for name in runs.models[label].external})
    ncols = min(3, len(labels))
    nrows = -(-len(labels) // ncols)
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.0 * nrows), squeeze=False)
        for ax in axes.ravel()[len(labels) :]:
            ax.set_visible(False)
        for ax, label in zip(axes.ravel(), labels):
            m = runs.models[label]
            ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color=CHANCE_COLOR)
            oof = m.oof()
            if len(oof):
                xs, ys, ece, _ = _reliability_points(
                    oof[PROB_COLUMNS].to_numpy(float), oof["label"].to_numpy(int), n_bins
                )
                ax.plot(xs, ys, marker="o", ms=4, lw=1.6, color=colors[label], label=f"internal (ECE {ece:.3f})")
            for i, name in enumerate(cohorts):
                if name not in m.external:
                    continue
                p = m.external[name]["predictions"]
                ls, marker = EXTERNAL_STYLES[i % len(EXTERNAL_STYLES)]
                xs, ys, ece, _ = _reliability_points(p[PROB_COLUMNS].to_numpy(float), p["label"].to_numpy(int), n_bins)
                ax.plot(
                    xs,
                    ys,
                    ls=ls,
                    marker=marker,
                    ms=4,
                    lw=1.4,
                    color=colors[label],
                    alpha=0.75,
                    label=f"{name} (ECE {ece:.3f}, n={len(p)})",
                )
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_title(label)
            ax.set_xlabel("predicted probability of the predicted class")
            ax.set_ylabel("observed accuracy")
            ax.legend(loc="upper left", frameon=False, fontsize="small")
        fig.suptitle("Calibration internal (out-of-fold) vs external (final model), bins with ≥ 3 cases")
        fig.tight_layout()
    return fig


def fold_spread(board: Leaderboard, runs: RunResults, order: list[str], colors: dict[str, str]):
    """Per-fold scores of each model (dots), with the fold mean ± SD (bar) for the headline metrics."""
    metrics = [("auc_ovr_macro", "AUC (one-vs-rest macro)"), ("macro_f1", "macro-F1"), ("accuracy", "accuracy")]
    ceiling = next((r.mean.get("accuracy") for r in board.rows if r.kind == "ceiling"), None)
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, 3, figsize=(12, 0.9 + 0.42 * len(order) + 1.2), sharey=True)
        ypos = np.arange(len(order))[::-1]
        rng = np.random.default_rng(0)
        for ax, (metric, title) in zip(axes, metrics):
            for y, label in zip(ypos, order):
                folds = runs.models[label].folds
                if metric not in folds:
                    continue
                v = folds[metric].to_numpy(float)
                v = v[np.isfinite(v)]
                ax.scatter(v, y + rng.uniform(-0.12, 0.12, len(v)), s=16, color=colors[label], alpha=0.8, zorder=3)
                if len(v):
                    sd = v.std(ddof=1) if len(v) > 1 else 0
                    ax.errorbar(v.mean(), y, xerr=sd, fmt="|", ms=14, mew=2, color="#111827", capsize=3, zorder=4)
            if metric == "accuracy" and ceiling is not None:
                ax.axvline(ceiling, color="#1d4e89", ls=":", lw=1.2, label=f"Bayes-optimal ceiling {ceiling:.2f}")
                ax.legend(loc="lower left", frameon=False)
            ax.set_title(title)
            ax.set_xlim(0, 1.02)
        axes[0].set_yticks(ypos, order)
        fig.suptitle("Spread over outer folds (dots: folds; bar: mean ± SD)", x=0.01, ha="left")
        fig.tight_layout()
    return fig
