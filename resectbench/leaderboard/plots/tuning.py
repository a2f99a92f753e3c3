"""Optuna optimisation history and parameter importances, from each fold's ``trials.csv``.

Importances are computed from the files alone (the study database may be elsewhere), with a
simple variance-explained measure instead of Optuna's fANOVA: trial values are centred within
each outer fold, then each parameter gets eta^2 (share of value variance between its levels)
when it is categorical or has at most 5 distinct values, else the squared Spearman correlation;
scores are normalised to sum to 1. With few trials these are rough indications only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from scipy import stats

from ..runs import RunResults
from .style import RC, plt

MIN_TRIALS = 4


def _complete(trials: pd.DataFrame) -> pd.DataFrame:
    if trials.empty or "value" not in trials:
        return pd.DataFrame()
    done = trials[trials["state"].astype(str).str.upper() == "COMPLETE"] if "state" in trials else trials
    return done.dropna(subset=["value"])


def parameter_importance(frames: list[pd.DataFrame]) -> pd.Series:
    """Normalised importance per parameter over the complete trials of all folds (see module doc)."""
    parts = []
    for i, f in enumerate(frames):
        done = _complete(f)
        if len(done):
            done = done.assign(value=done["value"] - done["value"].mean(), _fold=i)
            parts.append(done)
    if not parts:
        return pd.Series(dtype=float)
    trials = pd.concat(parts, ignore_index=True)
    if len(trials) < MIN_TRIALS:
        return pd.Series(dtype=float)
    scores = {}
    total = float(((trials["value"] - trials["value"].mean()) ** 2).sum())
    for col in [c for c in trials.columns if c.startswith("params_")]:
        x = trials[col]
        ok = x.notna()
        if x[ok].nunique() < 2 or total == 0:
            continue
        numeric = pd.to_numeric(x[ok], errors="coerce")
        if numeric.notna().all() and numeric.nunique() > 5:
            rho = stats.spearmanr(numeric, trials.loc[ok, "value"]).statistic
            scores[col[7:]] = float(rho**2) if np.isfinite(rho) else 0.0
        else:
            v = trials.loc[ok, "value"]
            between = sum(len(g) * (g.mean() - v.mean()) ** 2 for _, g in v.groupby(x[ok].astype(str)))
            scores[col[7:]] = float(between / max(((v - v.mean()) ** 2).sum(), 1e-12))
    s = pd.Series(scores, dtype=float)
    return (s / s.sum()).sort_values(ascending=False) if s.sum() > 0 else s


def tuning_figure(runs: RunResults, order: list[str]):
    """Per tuned model: trial values by trial number (folds as colours, best so far as steps) and
    parameter importances. None when no model has at least two complete trials."""
    models = [m for m in order if max((len(_complete(t)) for t in runs.models[m].trials.values()), default=0) >= 2]
    if not models:
        return None
    with plt.rc_context(RC):
        fig, axes = plt.subplots(
            len(models), 2, figsize=(11, 2.8 * len(models)), squeeze=False, gridspec_kw={"width_ratios": [1.6, 1]}
        )
        for (hist_ax, imp_ax), label in zip(axes, models):
            palette = plt.get_cmap("viridis")
            items = sorted(runs.models[label].trials.items())
            for k, (key, t) in enumerate(items):
                done = _complete(t)
                if done.empty:
                    continue
                color = palette(k / max(1, len(items) - 1))
                hist_ax.scatter(done["number"], done["value"], s=14, color=color, alpha=0.8)
                best = done.sort_values("number")["value"].cummax()
                hist_ax.step(
                    done.sort_values("number")["number"],
                    best,
                    where="post",
                    color=color,
                    lw=1.2,
                    label=key.replace("fold_", "fold "),
                )
            hist_ax.set_title(f"{label}: optimisation history (inner-validation objective)", fontsize=9)
            hist_ax.set_xlabel("trial")
            hist_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            hist_ax.set_ylabel("objective")
            hist_ax.legend(frameon=False, fontsize=7, ncol=2)
            imp = parameter_importance([t for _, t in items])
            if imp.empty:
                n = sum(len(_complete(t)) for _, t in items)
                imp_ax.text(
                    0.5,
                    0.5,
                    f"{n} complete trials:\ntoo few for importances",
                    ha="center",
                    va="center",
                    transform=imp_ax.transAxes,
                    color="#6b7280",
                )
                imp_ax.set_axis_off()
            else:
                imp_ax.barh(imp.index[::-1], imp.to_numpy()[::-1], color="#4c72b0")
                imp_ax.set_xlim(0, 1)
                imp_ax.set_title("parameter importance (η² / ρ², normalised)", fontsize=9)
        fig.suptitle("Hyper-parameter tuning (Optuna trials of each outer fold)", x=0.01, ha="left")
        fig.tight_layout()
    return fig
