"""Inner-loop tuning of one recipe on one outer-training part with Optuna.

One study per unit (model, repeat, outer fold), named ``BENCHMARK::LABEL::fold_R_K``, seeded TPE.
The recipe's factory defaults for its search-space parameters are enqueued as trial 0, so the
default configuration is always evaluated. Pruning: with ``inner = "holdout"`` each epoch's
inner-validation score goes to ``trial.report`` and a MedianPruner stops unpromising fits; with
``inner = "kfold"`` every inner fold is one report step and a WilcoxonPruner compares a trial with the
best one fold by fold. ``FitContext.on_epoch`` is the only channel between a recipe and the tuner.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from .. import search_space as ss
from ..models.base import FitContext
from ..models.shared_fits import fit_shared
from ..registry import REGISTRIES, Entry
from ..vocabulary import COMPONENT_SLOTS
from .errors import ProtocolError
from .events import RunListener, Unit
from .metrics import SELECTION_METRICS, selection_score
from .seeding import derive_seed
from .splits import OuterSplit
from .store import disk_full_cause

# failed trials are reported through RunListener.trial_failed and kept in trials.csv, not logged
optuna.logging.set_verbosity(optuna.logging.ERROR)


def _takes_var_kw(params: dict[str, inspect.Parameter]) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def chosen_components(entry: Entry, fixed: dict[str, Any]) -> dict[str, tuple[Entry, str]]:
    """Components the experiment swaps into a composing recipe (``--fusion X`` = ``fixed["fusion"]``).

    slot -> (component entry, dotted prefix), for each slot the recipe takes whose value the
    experiment sets to something other than the recipe's default, when the recipe accepts dotted
    component options (``**options``). The recipe's own registered space is the curated space of
    its default components; a component swapped in brings its own registered space.
    """
    params = entry.parameters()
    if not _takes_var_kw(params):
        return {}
    out = {}
    for slot, (kind, prefix) in COMPONENT_SLOTS.items():
        chosen = fixed.get(slot)
        if slot in params and isinstance(chosen, str) and chosen and chosen != params[slot].default:
            out[slot] = (REGISTRIES[kind].get(chosen), prefix)
    return out


def component_space(entry: Entry, fixed: dict[str, Any]) -> dict[str, ss.Param]:
    """The registered spaces of the chosen components, nested under their prefix (``fusion.hidden``).

    A parameter the composing recipe sets itself (e.g. ``feature_size``, resolved against the
    profile) stays the recipe's, so trial 0 is still what the recipe builds by default; a callable
    (conditional) component space contributes nothing.
    """
    chosen = chosen_components(entry, fixed)
    if not chosen:
        return {}
    owned = _recipe_owned(entry)
    space: dict[str, ss.Param] = {}
    for component, prefix in chosen.values():
        if isinstance(component.search_space, dict):
            space.update({prefix + name: param for name, param in component.search_space.items() if name not in owned})
    return space


#: component options ``NeuralRecipe.build`` fills in from the profile beside its own parameters
_BUILD_FILLED = ("window_size", "norm_name")


def _recipe_owned(entry: Entry) -> set[str]:
    """Parameter names a composing recipe sets itself: its factory's and ``NeuralRecipe``'s (which its
    ``**options`` reach), and the options ``NeuralRecipe`` fills in while building."""
    from ..models.recipes.compose import NeuralRecipe  # lazy: torch

    return {*entry.parameters(), *inspect.signature(NeuralRecipe.__init__).parameters, *_BUILD_FILLED}


def tunable_space(entry: Entry, fixed: dict[str, Any]) -> ss.SearchSpaceLike:
    """The recipe's search space plus its chosen components' spaces, without the parameters the
    experiment fixes."""
    space = entry.search_space
    if callable(space):
        return space
    space = {**(space or {}), **component_space(entry, fixed)}
    if not space and entry.search_space is None:
        return None
    return {k: v for k, v in space.items() if k not in fixed}


def _in_space(param, value) -> bool:
    if isinstance(param, ss.Categorical):
        return value in list(param.choices)
    if isinstance(param, (ss.Float, ss.Int)):
        try:
            return param.low <= value <= param.high
        except TypeError:
            return False
    return False


def default_params(entry: Entry, space: ss.SearchSpaceLike, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Factory defaults of the tuned parameters (the first trial); those outside the space are left out.

    A chosen component's parameter (``fusion.hidden``) defaults to that component factory's default.
    """
    if not isinstance(space, dict):
        return {}
    params = entry.parameters()
    components = {prefix: component for component, prefix in chosen_components(entry, fixed or {}).values()}
    out = {}
    for name, param in space.items():
        p = params.get(name)
        prefix = next((pre for pre in components if name.startswith(pre)), None)
        if p is None and prefix is not None:
            p = components[prefix].parameters().get(name[len(prefix) :])
        if p is None or p.default is inspect.Parameter.empty:
            continue
        if _in_space(param, p.default):
            out[name] = p.default
    return out


def make_study(storage, name: str, *, seed: int, inner: str, pruning: bool) -> optuna.Study:
    if not pruning:
        pruner = optuna.pruners.NopPruner()
    elif inner == "kfold":
        with warnings.catch_warnings():  # "experimental" in Optuna; its interface is all we use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            pruner = optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    else:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=make_sampler(seed, 0),
        pruner=pruner,
        load_if_exists=True,
    )


def fail_orphaned_trials(study: optuna.Study, storage) -> int:
    """Trials left RUNNING by a crashed process (we hold the unit's claim, so nobody runs them).

    ``storage`` is the one the study was created with (its public id lookups find the trials).
    """
    orphans = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    if not orphans:
        return 0
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in orphans:
        trial = optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, t.number))
        trial.set_user_attr("error", "orphaned: its process stopped before finishing")
        study.tell(t.number, state=TrialState.FAIL)
    return len(orphans)


@dataclass
class Fitted:
    """A fitted model and what it cost."""

    model: Any
    fit_seconds: float
    trial: int | str


@dataclass
class Tuner:
    """Runs the inner loop of one unit and remembers the best fitted model (for ``refit = False``)."""

    entry: Entry
    fixed: dict[str, Any]
    unit: Unit
    outer: OuterSplit
    cohort: Any
    ctx: FitContext
    selection_metric: str = "macro_f1"
    listener: RunListener = field(default_factory=RunListener)
    keep_best: bool = True
    recipe_seconds: float = 0.0  # time spent inside recipe fit/predict calls
    best: Fitted | None = None
    best_value: float = -math.inf
    disk_full: BaseException | None = None  # a trial stopped by a full disk: the unit stops too

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self, params: dict, train_ids, valid_ids, trial: int | str, on_epoch: Callable[[int, dict], None] | None = None
    ) -> Fitted:
        train = self.cohort.subset(list(train_ids))
        valid = self.cohort.subset(list(valid_ids)) if valid_ids is not None else None
        unit, listener = self.unit, self.listener

        def epoch_hook(epoch: int, metrics: dict) -> None:
            listener.epoch(unit, trial, epoch, metrics)
            if on_epoch is not None:
                on_epoch(epoch, metrics)

        ctx = replace(self.ctx, on_epoch=epoch_hook)
        start = time.perf_counter()
        try:
            # a network another row of the run fitted the same way is loaded, not trained again
            fitted = fit_shared(self.entry.name, params, train, valid, ctx)
        finally:
            self.recipe_seconds += time.perf_counter() - start
        return Fitted(fitted, time.perf_counter() - start, trial)

    def predict(self, model, ids) -> np.ndarray:
        subset = self.cohort.subset(list(ids))
        start = time.perf_counter()
        try:
            proba = np.asarray(model.predict_proba(subset, self.ctx), dtype=float)
        finally:
            self.recipe_seconds += time.perf_counter() - start
        return proba

    def score(self, model, ids) -> float:
        proba = self.predict(model, ids)
        labels = self.cohort.subset(list(ids)).labels
        return selection_score(self.selection_metric, labels, proba)

    # -- the Optuna objective --------------------------------------------------------------------
    def objective(self, trial: optuna.Trial) -> float:
        try:
            return self._objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            if disk_full_cause(exc) is not None:  # every later trial would fail the same way: stop (see run)
                self.disk_full = exc
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            raise

    def _objective(self, trial: optuna.Trial) -> float:
        space = tunable_space(self.entry, self.fixed)
        params = {**self.fixed, **ss.suggest(space, trial, fixed=self.fixed)}
        trial.set_user_attr("params", _jsonable(params))
        self.listener.trial_started(self.unit, trial.number)
        sign = SELECTION_METRICS[self.selection_metric]
        key = f"val_{self.selection_metric}"
        inner = self.outer.inner
        if len(inner) == 1:  # holdout: prune on the per-epoch inner-validation score

            def on_epoch(epoch: int, metrics: dict) -> None:
                if key in metrics and metrics[key] is not None and np.isfinite(metrics[key]):
                    trial.report(sign * float(metrics[key]), epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

            fitted = self.fit(params, inner[0].train, inner[0].valid, trial.number, on_epoch)
            value = self.score(fitted.model, inner[0].valid)
            first = fitted
        else:  # inner k-fold: one report per inner fold (WilcoxonPruner compares fold by fold)
            scores, first = [], None
            for i, part in enumerate(inner):
                fitted = self.fit(params, part.train, part.valid, trial.number)
                scores.append(self.score(fitted.model, part.valid))
                first = first or fitted
                trial.report(scores[-1], i)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after inner fold {i}")
            value = float(np.mean(scores))
            trial.set_user_attr("inner_scores", scores)
        trial.set_user_attr("fit_seconds", first.fit_seconds)
        trial.set_user_attr("n_epochs", len(getattr(first.model, "history", []) or []))
        if self.keep_best and value > self.best_value:
            self.best_value, self.best = value, first
        return value

    def run(
        self, study: optuna.Study, n_trials: int, timeout: float | None, sampler_seed: int = 0
    ) -> optuna.trial.FrozenTrial:
        """Run the trials still missing from ``n_trials`` (finished and pruned ones count).

        Trials run one ``optimize`` call at a time with a fresh TPE sampler seeded by the number of
        trials counted so far, so a study resumed after a crash samples exactly what an uninterrupted
        one would have (TPE itself is a function of the stored trials; only its RNG needs this).
        """
        space = tunable_space(self.entry, self.fixed)
        if not space:  # nothing to tune: every trial would repeat the same fit
            n_trials = 1
        counted = (TrialState.COMPLETE, TrialState.PRUNED)
        done = study.get_trials(deepcopy=False, states=counted)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not done and not waiting:  # the defaults first (again, if a crash killed that trial)
            study.enqueue_trial(default_params(self.entry, space, self.fixed))

        def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            if trial.state == TrialState.FAIL:
                self.listener.trial_failed(self.unit, trial.number, str(trial.user_attrs.get("error", "")))
            self.listener.trial_finished(self.unit, trial.number, trial.value, trial.state.name.lower())

        start = time.monotonic()
        while True:
            n_done = len(study.get_trials(deepcopy=False, states=counted))
            if n_done >= n_trials or (timeout is not None and time.monotonic() - start >= timeout):
                break
            study.sampler = make_sampler(sampler_seed, n_done)
            # A configuration that crashes the recipe fails its trial, not the benchmark; the error is kept
            # in trials.csv. If no trial completes, the unit fails with the last error.
            study.optimize(self.objective, n_trials=1, catch=(Exception,), callbacks=[report])
            if self.disk_full is not None:
                raise self.disk_full
            failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if len(failed) > 2 * n_trials:  # a recipe that fails every configuration: stop retrying
                break
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            reason = f"Last error: {failed[-1].user_attrs.get('error', '?')}" if failed else ""
            if not reason and study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)):
                reason = "every trial was pruned"
            raise ProtocolError(f"{self.unit}: no tuning trial completed ({len(study.trials)} trials). {reason}")
        return study.best_trial


def make_sampler(seed: int, n_done: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=derive_seed(seed, "trial", n_done))


def _jsonable(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        out[k] = list(v) if isinstance(v, tuple) else v
    return out
