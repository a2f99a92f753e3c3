"""Learning curves and loss-weight schedules from each fold's ``history.csv`` (final fit)."""

from __future__ import annotations

import pandas as pd

from ..runs import RunResults
from .style import RC, plt

SKIP = {"epoch", "seconds", "lr", "best_epoch"}


def _groups(columns) -> tuple[list[str], list[str], list[str]]:
    cols = [c for c in columns if c not in SKIP]
    losses = [c for c in cols if "loss" in c]
    weights = [c for c in cols if c.startswith("w_")]
    scores = [c for c in cols if c not in losses and c not in weights]
    return losses, scores, weights


def training_curves(runs: RunResults, order: list[str]):
    """One row per model with an epoch history: losses, validation/Dice scores, loss weights.

    Thin lines: outer folds; thick line: the mean over folds at each epoch. None if no model
    logged epochs (scikit-learn baselines do not).
    """
    models = [m for m in order if any(not h.empty and "epoch" in h for h in runs.models[m].histories.values())]
    if not models:
        return None
    with plt.rc_context(RC):
        fig, axes = plt.subplots(len(models), 3, figsize=(12, 2.7 * len(models)), squeeze=False)
        for row, label in zip(axes, models):
            hists = [h for h in runs.models[label].histories.values() if not h.empty and "epoch" in h]
            allcols = list(dict.fromkeys(c for h in hists for c in h.columns))
            groups = _groups(allcols)
            titles = ("losses", "validation scores and training tumor Dice", "loss weights (w_seg, w_cls)")
            for ax, cols, title in zip(row, groups, titles):
                palette = plt.get_cmap("tab10").colors
                for k, col in enumerate(cols):
                    frames = [h[["epoch", col]].dropna() for h in hists if col in h]
                    frames = [f for f in frames if len(f)]
                    for f in frames:
                        ax.plot(f["epoch"], f[col], color=palette[k % 10], lw=0.6, alpha=0.35)
                    if frames:
                        mean = pd.concat(frames).groupby("epoch")[col].mean()
                        ax.plot(mean.index, mean.to_numpy(), color=palette[k % 10], lw=1.8, label=col)
                if cols:
                    ax.legend(frameon=False, fontsize=7)
                else:
                    ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="#6b7280")
                ax.set_title(f"{label}: {title}", fontsize=9)
                ax.set_xlabel("epoch")
        fig.suptitle("Training of the final model per outer fold (thin: folds, thick: mean)", x=0.01, ha="left")
        fig.tight_layout()
    return fig
