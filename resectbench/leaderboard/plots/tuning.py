"""Optuna optimisation history and parameter importances, from each fold's ``trials.csv``.

Importances are Optuna's own (``optuna.importance.get_param_importances`` with the fANOVA evaluator,
seed 0), computed per outer fold on the fold's study rebuilt from its ``trials.csv`` - the file keeps each
trial's parameter distributions (older runs: inferred from the values, a float or integer range or the
categories seen) - and averaged over folds. The study database may be elsewhere; the files suffice. With
few trials these are rough indications only.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..runs import RunResults
from .style import RC, plt

MIN_TRIALS = 4


def _complete(trials: pd.DataFrame) -> pd.DataFrame:
    if trials.empty or "value" not in trials:
        return pd.DataFrame()
    done = trials[trials["state"].astype(str).str.upper() == "COMPLETE"] if "state" in trials else trials
    return done.dropna(subset=["value"])


def _inferred(values: pd.Series):
    """A distribution that holds the values a trials file shows, for files written without distributions."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > 1:
        if (numeric == numeric.round()).all():
            return IntDistribution(int(numeric.min()), int(numeric.max()))
        return FloatDistribution(float(numeric.min()), float(numeric.max()))
    return CategoricalDistribution(sorted({_plain(v) for v in values}, key=str))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def fold_study(trials: pd.DataFrame):
    """The fold's Optuna study rebuilt from its trials file (complete trials only), or None when empty."""
    import optuna
    from optuna.distributions import IntDistribution, json_to_distribution

    done = _complete(trials)
    names = [c[len("params_") :] for c in done.columns if c.startswith("params_")]
    if done.empty or not names:
        return None
    inferred = {n: _inferred(done[f"params_{n}"].dropna()) for n in names if done[f"params_{n}"].notna().any()}
    study = optuna.create_study(direction="maximize")
    for _, row in done.iterrows():
        given = json.loads(row["distributions"]) if isinstance(row.get("distributions"), str) else {}
        params, dists = {}, {}
        for name, fallback in inferred.items():
            value = row[f"params_{name}"]
            if pd.isna(value):
                continue  # a conditional parameter this trial did not sample
            dists[name] = json_to_distribution(given[name]) if name in given else fallback
            params[name] = int(value) if isinstance(dists[name], IntDistribution) else _plain(value)
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(row["value"])))
    return study


def parameter_importance(frames: list[pd.DataFrame]) -> pd.Series:
    """Optuna's fANOVA importance per parameter (seed 0), per fold's rebuilt study, averaged over the folds
    with enough complete trials; normalised to sum to 1 (see module doc)."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    per_fold = []
    for frame in frames:
        if len(_complete(frame)) < MIN_TRIALS:
            continue
        study = fold_study(frame)
        with warnings.catch_warnings():  # a parameter that never varied, a conditional one: Optuna says so
            warnings.simplefilter("ignore")
            try:
                imp = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
            except (RuntimeError, ValueError):  # no parameter varied in this fold's trials
                continue
        per_fold.append(pd.Series(imp, dtype=float))
    if not per_fold:
        return pd.Series(dtype=float)
    mean = pd.concat(per_fold, axis=1).fillna(0.0).mean(axis=1)
    return (mean / mean.sum()).sort_values(ascending=False) if mean.sum() > 0 else mean


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
                imp_ax.set_title("parameter importance (Optuna fANOVA, mean over folds)", fontsize=9)
        fig.suptitle("Hyper-parameter tuning (Optuna trials of each outer fold)", x=0.01, ha="left")
        fig.tight_layout()
    return fig
