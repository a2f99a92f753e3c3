"""Final models and external cohorts.

The **final model** of a benchmark's model is tuned on the whole development cohort with the same
inner protocol as every outer fold (:func:`.splits.development_split`), fitted once (on all of it, or
on the inner 80 % with the inner 20 % for early stopping, as in every outer fold) and stored under
``models/<label>/final/`` (:mod:`resectbench.models.persist`: weights-only checkpoint and fitted
preprocessing as JSON, or a refit recipe). Its ``DONE`` marker makes it a resumable unit.

An **external cohort** is read through the same readers and checks as the development cohort (through its
own data dictionary, :class:`.config.ExternalSpec`) and scored by every final model; predictions and metrics
go to ``models/<label>/external/<name>/`` like a fold's. Nothing fitted ever sees an external case: final
models are fitted on development cases only and external cohorts are only ever passed to ``predict_proba``
and ``extra_outputs``. A development variable the cohort lacks is refused unless its options allow it; an
allowed one is added as missing, so each final model's imputer (fitted on development cases) fills it, and
recorded with the scores.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import registry as reg
from ..data.clinical import with_absent_columns
from ..data.readers.load import find_dictionary
from ..models import persist
from ..vocabulary import CLASS_NAMES, RunFiles as F
from .assembly import Benchmark, _groups, _now, load_data
from .config import ExternalSpec, external_name
from .errors import ProtocolError
from .events import RunListener, Unit
from .metrics import classification_metrics, dice_by_structure
from .seeding import derive_seed
from .splits import DEVELOPMENT, development_split
from .store import csv_text, write_json_atomic, write_text_atomic
from .unit import check_proba, fit_context, model_info, prediction_frame, trials_frame, tune


@dataclass(frozen=True)
class FinalUnit(Unit):
    """The final model's unit: ``models/<label>/final``; its study is ``BENCHMARK::LABEL::final``."""

    @property
    def key(self) -> str:
        return F.FINAL_DIR

    def __str__(self) -> str:
        return f"{self.label} final"


def final_unit(label: str) -> FinalUnit:
    return FinalUnit(label, DEVELOPMENT, DEVELOPMENT)


def development(bench: Benchmark):
    p, cohort = bench.config.protocol, bench.cohort
    return development_split(
        cohort.case_ids,
        cohort.labels,
        groups=_groups(cohort, p.group_by),
        inner=p.inner,
        inner_folds=p.inner_folds,
        valid_fraction=p.valid_fraction,
        seed=p.seed,
        data_fingerprint=cohort.fingerprint,
    )


# -- the final model -----------------------------------------------------------------------------------
def final_dir(bench: Benchmark, label: str) -> Path:
    return bench.store.model_dir(label) / F.FINAL_DIR


def final_done(bench: Benchmark, label: str) -> bool:
    return (final_dir(bench, label) / F.DONE).exists()


def fit_final(bench: Benchmark, label: str, listener: RunListener):
    """Tune on the development cohort, fit the final model, store it; returns the fitted model."""
    if bench.store is None:
        raise ProtocolError("final models are stored in the run directory; this process has none")
    unit = final_unit(label)
    proto = bench.config.protocol
    folder = final_dir(bench, label)
    (folder / F.DONE).unlink(missing_ok=True)
    listener.message(f"{unit}: tuning and fitting on the whole development cohort")
    with bench.cache.counting() as cache:
        started, started_at = time.perf_counter(), _now()
        dev = development(bench)
        seed = derive_seed(proto.seed, "fit", "final")
        ctx = fit_context(bench, unit, seed)
        tuned = tune(bench, unit, dev, ctx, derive_seed(proto.seed, "tpe", label, "final"), listener)
        tuner, best = tuned.tuner, tuned.best
        listener.trial_started(unit, "refit")
        probe = reg.models.create(bench.entries[label].name, **tuned.params)
        if getattr(probe, "uses_validation", True):  # early stopping: the inner split, as in every outer fold
            train_ids, valid_ids = dev.inner[0].train, dev.inner[0].valid
            if tuner.best is not None and tuner.best.trial == best.number:  # that very fit, kept in memory
                final, reused = tuner.best, True
            else:
                final, reused = tuner.fit(tuned.params, train_ids, valid_ids, "refit"), False
        else:  # learns from all of it
            train_ids, valid_ids = dev.train, None
            final, reused = tuner.fit(tuned.params, train_ids, None, "refit"), False
        listener.trial_finished(unit, "refit", None, "reused" if reused else "complete")
        model = final.model
        state = persist.save_model(model, folder / F.STATE_DIR, train_ids=train_ids, valid_ids=valid_ids)
    info = {
        "label": label,
        "recipe": bench.entries[label].name,
        "params": tuned.params,
        "seed": seed,
        "profile": bench.config.profile,
        "data_fingerprint": bench.cohort.fingerprint,
        "n_development_cases": len(dev.train),
        "n_train_cases": len(train_ids),
        "n_valid_cases": 0 if valid_ids is None else len(valid_ids),
        "state": state,
        "best_trial": best.number,
        "best_inner_value": best.value,
        "model": model_info(bench, label, model),
    }
    timings = {
        "unit_seconds": time.perf_counter() - started,
        "tune_seconds": tuned.seconds,
        "final_fit_seconds": 0.0 if reused else final.fit_seconds,
        "train_seconds": final.fit_seconds,
        "reused_trial": best.number if reused else None,
        "recipe_seconds": tuner.recipe_seconds,
        "device": bench.device,
        "started": started_at,
        "finished": _now(),
        "cache": dict(cache),
    }
    write_json_atomic(folder / F.FINAL_INFO, info)
    write_json_atomic(folder / F.BEST_PARAMS, tuned.params)
    write_text_atomic(folder / F.TRIALS, csv_text(trials_frame(tuned.study)))
    write_text_atomic(folder / F.HISTORY, csv_text(pd.DataFrame(list(getattr(model, "history", []) or []))))
    write_json_atomic(folder / F.TIMINGS, timings)
    write_text_atomic(folder / F.DONE, "")
    return model


def load_final(model_dir: str | Path, ctx, *, development=None):
    """The stored final model of ``RUN_DIR/models/<label>``; ``development()`` gives the development cohort
    (needed only for models stored as a refit recipe)."""
    folder = Path(model_dir) / F.FINAL_DIR
    if not (folder / F.DONE).exists():
        raise ProtocolError(
            f"{model_dir} has no finished final model ({folder / F.DONE} missing); run the benchmark with "
            "--final-model or --external PATH first"
        )
    info = read_final_info(model_dir)
    return persist.load_model(
        folder / F.STATE_DIR, lambda: reg.models.create(info["recipe"], **info["params"]), ctx, development=development
    ), info


#: the keys of final.json that loading and applying a final model read, with their JSON types
FINAL_INFO_KEYS = {
    "label": (str, "a string"),
    "recipe": (str, "a string"),
    "params": (dict, "an object"),
    "seed": (int, "an integer"),
}


def read_final_info(model_dir: str | Path) -> dict:
    """``RUN_DIR/models/<label>/final/final.json``, refused with the file and the key when it is damaged."""
    path = Path(model_dir) / F.FINAL_DIR / F.FINAL_INFO
    run_dir = Path(model_dir).parent.parent
    refit = f"delete {path.parent / F.DONE} and run `resectbench run --run-dir {run_dir} --final-model` to fit it again"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProtocolError(f"{path} is missing; {refit}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{path} is not valid JSON ({exc}); {refit}") from None
    if not isinstance(info, dict):
        raise ProtocolError(f"{path} holds a JSON {type(info).__name__}, not an object; {refit}")
    for key, (kind, name) in FINAL_INFO_KEYS.items():
        if key not in info:
            raise ProtocolError(f"{path} lacks the key {key!r}; {refit}")
        if not isinstance(info[key], kind) or isinstance(info[key], bool):
            raise ProtocolError(f"{path}: {key!r} must be {name}, got {info[key]!r}; {refit}")
    return info


# -- external cohorts --------------------------------------------------------------------------------------
def external_names(paths: list[str]) -> dict[str, str]:
    """name -> path; the name is the cohort folder's (or manifest file's) name, made a safe file name."""
    out: dict[str, str] = {}
    for path in paths:
        name = external_name(path)
        if name in out and out[name] != str(path):
            raise ProtocolError(f"external cohorts {out[name]} and {path} have the same name {name!r}; rename one")
        out[name] = str(path)
    return out


def external_cohorts(bench: Benchmark) -> dict[str, ExternalSpec]:
    """name -> the external cohort with its options (``[[data.externals]]``; none for a plain path), its allowed
    missing variables checked against the development variables (the only ones a final model is fitted on)."""
    options = {spec.path: spec for spec in bench.config.data.externals}
    out = {
        name: options.get(path, ExternalSpec(path)) for name, path in external_names(bench.config.data.external).items()
    }
    development = list(bench.cohort.clinical.columns)
    for name, spec in out.items():
        unknown = [v for v in spec.allow_missing_variables if v not in development]
        if unknown:
            raise ProtocolError(
                f"external cohort {name}: allow_missing_variables {', '.join(unknown)}: not a development variable "
                f"(the final models are fitted on {', '.join(development) or 'no clinical variable'})"
            )
    return out


def load_external(bench: Benchmark, name: str, spec: ExternalSpec, listener: RunListener):
    """The external cohort read through its own data dictionary, with the development variables it lacks and
    may lack added as missing (``info["imputed_variables"]``); one it may not lack is refused, naming the option."""
    development = list(bench.cohort.clinical.columns)
    dictionary = find_dictionary(spec.path, spec.data_dictionary)
    # the reader refuses a dictionary variable without a column, naming the development cohort's option; for a
    # development variable the check below decides instead, naming this cohort's
    listed = [v for v in (dictionary.variables if dictionary is not None else ()) if v in development]
    data = replace(
        bench.config.data, path=spec.path, data_dictionary=spec.data_dictionary, allow_missing_variables=listed
    )
    cohort = load_data(replace(bench.config, data=data), listener)
    if cohort.fingerprint == bench.cohort.fingerprint:
        raise ProtocolError(f"external cohort {spec.path} is the development cohort itself (same fingerprint)")
    absent = [v for v in development if v not in cohort.clinical.columns]
    refused = [v for v in absent if v not in spec.allow_missing_variables]
    if refused:
        raise ProtocolError(
            f"external cohort {name} ({spec.path}): its clinical table has no column for development variable(s) "
            f"{', '.join(refused)}, which the final models are fitted on. If a column holds it under another name, "
            "give that name as its `column` in the cohort's data dictionary (data_dictionary of its "
            f"[[data.externals]] entry, or --external-dictionary {name}=PATH); if the cohort does not record it, "
            "allow each final model to impute it from the development cohort: allow_missing_variables = "
            f"{json.dumps(refused)} in its [[data.externals]] entry, or "
            + " ".join(f"--external-allow-missing {name}={v}" for v in refused)
        )
    schema = {**cohort.clinical_schema, **{v: bench.cohort.clinical_schema[v] for v in absent}}
    info = {**cohort.info, "imputed_variables": absent}
    return replace(cohort, clinical=with_absent_columns(cohort.clinical, absent), clinical_schema=schema, info=info)


def external_dir(bench: Benchmark, label: str, name: str) -> Path:
    return bench.store.model_dir(label) / F.EXTERNAL_DIR / name


def score_external(bench: Benchmark, label: str, model, name: str, cohort, ctx) -> dict:
    """Predictions and metrics of the final model on one external cohort, written like a fold's."""
    folder = external_dir(bench, label, name)
    (folder / F.DONE).unlink(missing_ok=True)
    ids = list(cohort.case_ids)
    t0 = time.perf_counter()
    proba = np.asarray(model.predict_proba(cohort, ctx), dtype=float)
    infer_seconds = time.perf_counter() - t0
    check_proba(proba, len(ids), f"{label} on external cohort {name}")
    labels = np.asarray(cohort.labels, dtype=int)
    metrics = classification_metrics(labels, proba)
    extra = model.extra_outputs(cohort, ctx) or {}
    if "dice" in extra:
        metrics.update(dice_by_structure(extra["dice"], ids))
    metrics.update(
        n_cases=len(ids),
        infer_seconds=infer_seconds,
        infer_seconds_per_case=infer_seconds / max(1, len(ids)),
        class_counts={c: int((labels == i).sum()) for i, c in enumerate(CLASS_NAMES)},
    )
    metrics.update(
        # recorded with the scores they rest on: variables the cohort lacks, and the dictionary it was read through
        imputed_variables=cohort.info["imputed_variables"],
        data_dictionary=(cohort.info.get("data_dictionary") or {}).get("path"),
    )
    write_text_atomic(folder / F.PREDICTIONS, csv_text(prediction_frame(ids, labels, proba, cohort=name)))
    write_json_atomic(folder / F.METRICS, metrics)
    write_text_atomic(folder / F.DONE, "")
    return metrics


def finish_models(
    bench: Benchmark, listener: RunListener | None = None, *, wait: bool = True, poll_seconds: float = 2.0
) -> dict:
    """Final models (when asked for, or when there are external cohorts) and every external cohort's
    predictions not yet in the run directory. Returns what this call computed, with timings.

    Each model's final fit and external scoring happen under a lock on the benchmark's board
    (``BENCHMARK::claim::LABEL::final::G``), so the ``run`` process and workers sharing the run
    directory split the models between them; a model another live process holds is waited for
    (``wait``) or left to it."""
    listener = listener or RunListener()
    cfg = bench.config
    externals = external_cohorts(bench)
    done: dict = {"final": {}, "external": {}}
    if bench.store is None or not (cfg.protocol.final_model or externals):
        return done
    if externals:
        _write_external_index(bench, externals)
    cohorts: dict = {}
    pending = [spec.label for spec in cfg.models]
    while pending:
        held = []
        for label in pending:
            if _finished(bench, label, externals):
                continue
            lock = bench.board.try_claim(label, F.FINAL_DIR)
            if lock is None:  # another process of this benchmark is fitting or scoring it
                held.append(label)
                continue
            try:
                _finish_model(bench, label, externals, cohorts, done, listener)
            finally:
                # a lock, not a result: the DONE markers in the run directory say what is finished
                lock.release()
        if not held or not wait:
            break
        listener.waiting([final_unit(label) for label in held])
        time.sleep(poll_seconds)
        pending = held
    return done


def _finished(bench: Benchmark, label: str, externals: dict[str, ExternalSpec]) -> bool:
    return final_done(bench, label) and all((external_dir(bench, label, n) / F.DONE).exists() for n in externals)


def _finish_model(bench: Benchmark, label: str, externals: dict, cohorts: dict, done: dict, listener) -> None:
    """The final model of ``label`` (fitted, or loaded when stored) and its scores on the external cohorts
    it has none for yet; ``cohorts`` caches the loaded external cohorts across models."""
    todo = [n for n in externals if not (external_dir(bench, label, n) / F.DONE).exists()]
    if final_done(bench, label) and not todo:  # finished by another process since the last look
        return
    for name in todo:  # read (or refused) before the final model costs a fit
        if name not in cohorts:
            listener.message(f"loading external cohort {name}")
            cohorts[name] = load_external(bench, name, externals[name], listener)
    ctx = fit_context(bench, final_unit(label), derive_seed(bench.config.protocol.seed, "fit", "final"))
    t0 = time.perf_counter()
    if final_done(bench, label):
        model, _ = load_final(bench.store.model_dir(label), ctx, development=lambda: bench.cohort)
        done["final"][label] = {"loaded_seconds": time.perf_counter() - t0}
    else:
        model = fit_final(bench, label, listener)
        done["final"][label] = {"fit_seconds": time.perf_counter() - t0}
    for name in todo:
        listener.message(f"{label}: scoring external cohort {name}")
        t1 = time.perf_counter()
        metrics = score_external(bench, label, model, name, cohorts[name], ctx)
        done["external"][f"{label}/{name}"] = {"seconds": time.perf_counter() - t1, "macro_f1": metrics["macro_f1"]}


def _write_external_index(bench: Benchmark, externals: dict[str, ExternalSpec]) -> None:
    """Each external cohort's path and options (``data_dictionary`` None: the cohort's own); the variables it
    lacked and the dictionary file read are recorded with each model's scores (metrics.json)."""
    path = bench.store.root / F.EXTERNAL_INFO
    index = json.loads(path.read_text()) if path.exists() else {}
    for name, spec in externals.items():
        index.setdefault(name, {}).update(
            path=spec.path,
            data_dictionary=spec.data_dictionary,
            allow_missing_variables=spec.allow_missing_variables,
        )
    write_json_atomic(path, index)
