"""One unit of a benchmark: tune -> final model -> score.

A unit is (model, repeat, outer fold). :func:`tune` runs the inner loop on the outer-training part
(one Optuna study per unit); :func:`final_model` takes the best trial's model (``refit = false``) or
fits the best configuration again; :func:`score` predicts the outer test fold and gathers metrics,
predictions, trials, history and timings into a :class:`UnitResult`. :func:`run_unit` chains the
three. The same pieces fit and score the final model of a whole development cohort (docs/protocol.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from optuna.distributions import distribution_to_json
from optuna.trial import TrialState

from .. import registry as reg, search_space as ss
from ..models.base import FitContext
from ..vocabulary import CLASS_NAMES, PROB_COLUMNS, RunFiles as F
from .assembly import Benchmark
from .coordination import unit_study_name
from .errors import ProtocolError
from .events import RunListener, Unit
from .metrics import classification_metrics, dice_by_structure
from .seeding import derive_seed
from .splits import OuterSplit
from .store import UnitResult
from .tuning import Fitted, Tuner, fail_orphaned_trials, make_study, tunable_space


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Tuned:
    """The inner loop of one unit, done."""

    tuner: Tuner
    study: Any
    best: Any  # optuna FrozenTrial
    params: dict
    seconds: float


def fit_context(bench: Benchmark, unit: Unit, seed: int) -> FitContext:
    work_dir = (
        bench.store.work_dir(unit.label, unit.key)
        if bench.store is not None
        else bench.cache_dir / F.WORK_DIR / unit.label / unit.key
    )
    return FitContext(
        seed=seed,
        device=bench.device,
        profile=bench.profile,
        cache_dir=bench.cache.directory,
        work_dir=work_dir,
        fitted_store=bench.cache.directory / "fitted" if _shares_fits(bench) else None,
        on_progress=None,
    )


def _shares_fits(bench: Benchmark) -> bool:
    """A run with a model made of experts (``expert-ensemble``) shares fitted networks between its rows: the
    ensemble's image expert is the image-only row's model (models/shared_fits.py)."""
    return any("ensemble" in entry.tags for entry in bench.entries.values())


def tune(
    bench: Benchmark, unit: Unit, outer: OuterSplit, ctx: FitContext, sampler_seed: int, listener: RunListener
) -> Tuned:
    """The unit's Optuna study (created or resumed) run to its trial budget on ``outer``'s inner split(s)."""
    spec, entry = bench.spec(unit.label), bench.entries[unit.label]
    proto = bench.config.protocol
    tuner = Tuner(
        entry=entry,
        fixed=dict(spec.params),
        unit=unit,
        outer=outer,
        cohort=bench.cohort,
        ctx=ctx,
        selection_metric=proto.selection_metric,
        listener=listener,
        keep_best=not proto.refit,
    )
    study = make_study(
        bench.storage,
        unit_study_name(bench.config.name, unit.label, unit.key),
        seed=sampler_seed,
        inner=proto.inner,
        pruning=proto.pruning,
    )
    fail_orphaned_trials(study, bench.storage)
    t0 = time.perf_counter()
    best = tuner.run(study, proto.trials, proto.timeout, sampler_seed)
    params = dict(best.user_attrs.get("params", {**spec.params, **best.params}))
    return Tuned(tuner, study, best, params, time.perf_counter() - t0)


def final_model(bench: Benchmark, unit: Unit, outer: OuterSplit, tuned: Tuned, listener: RunListener):
    """(fitted, reused): ``refit = false`` scores the best trial's model (kept in memory, or fitted again the
    same way after a resume); ``refit = true`` fits the best configuration again (see docs/protocol.md)."""
    proto, tuner, best = bench.config.protocol, tuned.tuner, tuned.best
    listener.trial_started(unit, "refit")
    if tuner.best is not None and tuner.best.trial == best.number:
        listener.trial_finished(unit, "refit", None, "reused")
        return tuner.best, True
    probe = reg.models.create(bench.entries[unit.label].name, **tuned.params)
    if proto.refit and not getattr(probe, "uses_validation", True):
        final = tuner.fit(tuned.params, outer.train, None, "refit")  # no early stopping: learn from all of it
    else:  # early stopping needs a validation slice: the inner one, as in the paper (80/20 of outer-train)
        final = tuner.fit(tuned.params, outer.inner[0].train, outer.inner[0].valid, "refit")
    listener.trial_finished(unit, "refit", None, "complete")
    return final, False


def score(
    bench: Benchmark,
    unit: Unit,
    outer: OuterSplit,
    tuned: Tuned,
    final: Fitted,
    reused: bool,
    *,
    started: float,
    started_at: str,
) -> UnitResult:
    """Predict the outer test fold with the final model; metrics, predictions and bookkeeping of the unit."""
    proto, tuner, best, study = bench.config.protocol, tuned.tuner, tuned.best, tuned.study
    model = final.model
    t1 = time.perf_counter()
    proba = tuner.predict(model, outer.test)
    infer_seconds = time.perf_counter() - t1
    check_proba(proba, len(outer.test), unit)
    test = bench.cohort.subset(list(outer.test))
    labels = np.asarray(test.labels, dtype=int)
    metrics = classification_metrics(labels, proba)
    extra = model.extra_outputs(test, tuner.ctx) or {}
    if "dice" in extra:
        metrics.update(dice_by_structure(extra["dice"], list(outer.test)))
    metrics.update(extra.get("fit_summary") or {})  # e.g. what a head refit chose (models/engine/head_refit.py)
    if extra.get("localisation_mm"):  # the cascade's stage 1: distance of the window centre to the tumour
        errors = np.asarray(list(extra["localisation_mm"].values()), dtype=float)
        metrics.update(
            localisation_median_mm=float(np.median(errors)), localisation_within_10mm=float(np.mean(errors <= 10.0))
        )
    n_params = int(model.n_parameters())
    train_seconds = final.fit_seconds if not reused else float(best.user_attrs.get("fit_seconds", final.fit_seconds))
    metrics.update(
        n_parameters=n_params,
        train_seconds=train_seconds,
        infer_seconds_per_case=infer_seconds / max(1, len(outer.test)),
        best_trial=best.number,
        best_inner_value=best.value,
        n_trials=len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))),
    )
    predictions = prediction_frame(list(outer.test), labels, proba, repeat=unit.repeat, fold=unit.fold)
    timings = {
        "unit_seconds": time.perf_counter() - started,
        "tune_seconds": tuned.seconds,
        "final_fit_seconds": 0.0 if reused else final.fit_seconds,
        "train_seconds": train_seconds,
        "infer_seconds": infer_seconds,
        "infer_seconds_per_case": metrics["infer_seconds_per_case"],
        "recipe_seconds": tuner.recipe_seconds,
        "refit": bool(proto.refit),
        "reused_trial": best.number if reused else None,
        "worker": bench.board.worker,
        "device": bench.device,
        "started": started_at,
        "finished": _now(),
    }
    return UnitResult(
        label=unit.label,
        repeat=unit.repeat,
        fold=unit.fold,
        predictions=predictions,
        metrics=metrics,
        best_params=tuned.params,
        trials=trials_frame(study),
        history=pd.DataFrame(list(getattr(model, "history", []) or [])),
        timings=timings,
        model_info=model_info(bench, unit.label, model),
    )


def run_unit(bench: Benchmark, unit: Unit, listener: RunListener) -> UnitResult:
    """Tune, fit the final model and score it on the outer test fold."""
    with bench.cache.counting() as cache:
        started, started_at = time.perf_counter(), _now()
        proto = bench.config.protocol
        outer = bench.splits.get(unit.repeat, unit.fold)
        ctx = fit_context(bench, unit, derive_seed(proto.seed, "fit", unit.repeat, unit.fold))
        sampler_seed = derive_seed(proto.seed, "tpe", unit.label, unit.repeat, unit.fold)
        tuned = tune(bench, unit, outer, ctx, sampler_seed, listener)
        final, reused = final_model(bench, unit, outer, tuned, listener)
        result = score(bench, unit, outer, tuned, final, reused, started=started, started_at=started_at)
    result.timings["cache"] = dict(cache)
    return result


# -- shared pieces -------------------------------------------------------------------------------------
def model_info(bench: Benchmark, label: str, model) -> dict:
    spec, entry = bench.spec(label), bench.entries[label]
    return {
        "label": label,
        "recipe": entry.name,
        "provider": entry.provider,
        "tags": list(entry.tags),
        "description": entry.description,
        "mask_source": getattr(model, "mask_source", "none"),
        # another segmenter's masks (mask source "external"): which folder, for the record and the board
        **({"masks": str(model.masks)} if getattr(model, "masks", None) else {}),
        "n_parameters": int(model.n_parameters()),
        "fixed_params": dict(spec.params),
        "search_space": ss.describe(tunable_space(entry, spec.params)),
    }


def prediction_frame(case_ids: list[str], labels, proba: np.ndarray, **columns) -> pd.DataFrame:
    """case_id, the given constant columns (repeat, fold / cohort), label, class probabilities, pred."""
    frame = pd.DataFrame({"case_id": case_ids, **columns, "label": labels})
    for j, col in enumerate(PROB_COLUMNS):
        frame[col] = proba[:, j]
    frame["pred"] = proba.argmax(axis=1)
    return frame


def check_proba(proba: np.ndarray, n: int, unit) -> None:
    if proba.shape != (n, len(CLASS_NAMES)):
        raise ProtocolError(f"{unit}: predict_proba returned shape {proba.shape}, expected ({n}, {len(CLASS_NAMES)})")
    if not np.all(np.isfinite(proba)) or np.any(proba < -1e-6) or not np.allclose(proba.sum(axis=1), 1, atol=1e-4):
        raise ProtocolError(f"{unit}: predict_proba must return finite probabilities whose rows sum to 1")


def trials_frame(study) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        row = {"number": t.number, "value": t.value, "state": t.state.name, "duration": duration}
        row.update({f"params_{k}": v for k, v in t.params.items()})
        # the search space of the trial: the report rebuilds the study from this file for Optuna's importances
        # sorted: storages (SQLite, PostgreSQL) return a trial's parameters in different orders
        row["distributions"] = json.dumps(
            {k: distribution_to_json(d) for k, d in sorted(t.distributions.items())}, sort_keys=True
        )
        for key in ("fit_seconds", "n_epochs", "error"):
            row[key] = t.user_attrs.get(key)
        rows.append(row)
    return pd.DataFrame(rows)
