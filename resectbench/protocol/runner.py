"""Runs a benchmark: every model on every outer fold under one protocol, resumable and shareable.

``run_benchmark(config)`` prepares the run directory (manifest, splits, cohort tables), then works
through the units (model x repeat x outer fold). Each unit is claimed in the shared storage, tuned
(:mod:`.tuning`), fitted once more or taken from the best trial (``refit``), scored on its outer test
fold and written atomically. ``run_worker`` joins a running benchmark and takes unfinished units.
Re-running the same command resumes: finished units are skipped, Optuna studies continue.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from .. import registry as reg, search_space as ss
from ..errors import RegistryError
from ..models.base import FitContext
from ..profiles import Profile, get_profile
from ..vocabulary import CLASS_NAMES, COMPONENT_SLOTS, PROB_COLUMNS, RunFiles as F, resolve_device
from .cache_stats import summarize as summarize_cache, track_volume_stores
from .config import ExperimentConfig
from .coordination import UnitBoard, open_storage, redact, unit_study_name
from .errors import ProtocolError
from .events import Plan, RunListener, Unit
from .metrics import classification_metrics, dice_by_structure
from .seeding import derive_seed
from .splits import OuterSplit, Splits, make_splits
from .store import RunStore, UnitResult, write_text_atomic
from .summary import summary_table
from .tuning import Tuner, fail_orphaned_trials, make_study, tunable_space

VERSIONED = ("resectbench", "torch", "monai", "optuna", "scikit-learn", "numpy", "pandas", "scipy", "timm")


@dataclass
class Benchmark:
    """A prepared benchmark: what every process working on it shares."""

    config: ExperimentConfig
    cohort: Any
    splits: Splits
    store: RunStore | None  # None: a worker without access to the run directory
    storage: Any
    board: UnitBoard
    profile: Profile
    device: str
    cache_dir: Path
    entries: dict[str, reg.Entry] = field(default_factory=dict)
    #: loading plugins/recipes and the cohort: start-up, not protocol overhead
    setup_seconds: float = 0.0

    @property
    def units(self) -> list[Unit]:
        return [Unit(m.label, o.repeat, o.fold) for m in self.config.models for o in self.splits.outer]

    def spec(self, label: str):
        return next(m for m in self.config.models if m.label == label)


@dataclass
class RunResult:
    run_dir: Path
    summary: pd.DataFrame
    manifest: dict
    ran: list[Unit] = field(default_factory=list)  # units this process computed


# -- helpers ---------------------------------------------------------------------------------------
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def git_sha() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _resolve_entries(config: ExperimentConfig) -> dict[str, reg.Entry]:
    """Registry entries of the configured models, checked before any work: an unknown recipe or
    chosen component (``--fusion X``) lists the available ones and any plugin that failed to load."""
    entries = {}
    for spec in config.models:
        try:
            entry = reg.models.get(spec.name)  # RegistryError names close matches and all models
        except RegistryError as exc:
            raise RegistryError(f"{exc}{_failed_plugins_note()}") from None
        params = entry.parameters()
        takes_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in spec.params if k not in params and not takes_var_kw]
        if unknown:
            raise ProtocolError(
                f"model {spec.label!r}: recipe {spec.name!r} has no parameter(s) "
                f"{', '.join(unknown)}; valid: {', '.join(params)}"
            )
        for slot, (kind, _prefix) in COMPONENT_SLOTS.items():
            chosen = spec.params.get(slot)
            if slot in params and isinstance(chosen, str) and chosen:
                try:
                    reg.REGISTRIES[kind].get(chosen)
                except RegistryError as exc:
                    raise RegistryError(f"model {spec.label!r}: {exc}{_failed_plugins_note()}") from None
        entries[spec.label] = entry
    return entries


def _failed_plugins_note() -> str:
    from ..plugins import plugin_records

    failed = [f"{r.name} ({r.error})" for r in plugin_records() if r.status == "failed"]
    return (
        (f" Plugin(s) that failed to load, so registered nothing: {'; '.join(failed)} (see `resectbench plugins`).")
        if failed
        else ""
    )


def load_data(config: ExperimentConfig, listener: RunListener):
    """The cohort after every check of ``data validate`` (voxels included; the verdict is cached per cohort
    content, so a resume does not read them again): refused with every problem listed, or with
    ``skip_invalid`` the failing cases excluded and recorded (``info["excluded"]``)."""
    from ..data import default_cohort, load_cohort
    from ..data.cache import cache_root

    allow = config.data.allow_missing_variables
    if isinstance(allow, str) or not all(isinstance(v, str) for v in allow):
        raise ProtocolError(f"data.allow_missing_variables must be a list of variable names, got {allow!r}")

    def progress(what):
        return lambda done, total, message="": listener.message(f"{what}: {done}/{total} {message}".rstrip())

    checks = {
        "check_volumes": True,
        "validation_cache": cache_root() / "validation",
        "on_progress": progress("validating the cohort"),
    }
    if config.data.path:
        return load_cohort(
            config.data.path,
            skip_invalid=config.data.skip_invalid,
            allow_missing_variables=tuple(allow),
            data_dictionary=config.data.data_dictionary,
            **checks,
        )
    return default_cohort(
        profile=config.profile,
        seed=0,
        on_progress=progress("generating the embedded synthetic cohort"),
        load_options=checks,
    )


def _groups(cohort, column: str):
    if not column:
        return None
    if column not in cohort.table.columns:
        raise ProtocolError(
            f"protocol.group_by column {column!r} is not in the cohort table "
            f"(columns: {', '.join(map(str, cohort.table.columns))})"
        )
    return cohort.table.loc[cohort.case_ids, column].astype(str).tolist()


def build_splits(config: ExperimentConfig, cohort) -> Splits:
    p = config.protocol
    return make_splits(
        cohort.case_ids,
        cohort.labels,
        groups=_groups(cohort, p.group_by),
        outer_folds=p.outer_folds,
        repeats=p.repeats,
        inner=p.inner,
        inner_folds=p.inner_folds,
        valid_fraction=p.valid_fraction,
        seed=p.seed,
        data_fingerprint=cohort.fingerprint,
    )


def _cohort_info(cohort) -> dict:
    info = dict(getattr(cohort, "info", {}) or {})
    labels = np.asarray(cohort.labels, dtype=int)
    info.update(
        n_cases=int(len(labels)), class_counts={name: int((labels == i).sum()) for i, name in enumerate(CLASS_NAMES)}
    )
    info.setdefault("bayes_optimal_accuracy", None)
    return info


# -- preparing a benchmark -----------------------------------------------------------------------------
def prepare(config: ExperimentConfig, *, cohort=None, listener: RunListener | None = None) -> Benchmark:
    """Resolve the config, load data, make splits, open storage and write the run directory's header."""
    listener = listener or RunListener()
    config = config.resolved()
    t0 = time.perf_counter()
    entries = _resolve_entries(config)
    cohort = cohort if cohort is not None else load_data(config, listener)
    setup_seconds = time.perf_counter() - t0
    splits = build_splits(config, cohort)
    store = RunStore(config.run_dir)
    store.check_resumable(cohort.fingerprint, splits.fingerprint)
    store.root.mkdir(parents=True, exist_ok=True)
    storage = open_storage(config.storage, store.root)
    board = UnitBoard(storage, config.name)
    meta = {
        "benchmark": config.name,
        "config": _storable_config(config).to_dict(),
        "data_fingerprint": cohort.fingerprint,
        "split_fingerprint": splits.fingerprint,
        "splits": splits.to_dict(),
        "run_dir": str(store.root.resolve()),
    }
    board.publish_meta(meta)

    previous = store.read_manifest() or {}
    write_text_atomic(store.config_path, _storable_config(config).to_toml())
    splits.save(store.splits_path)
    _write_cohort_tables(store, cohort)
    manifest = {
        "benchmark": config.name,
        "created": previous.get("created", _now()),
        "updated": _now(),
        "finished": None,
        "config": _storable_config(config).to_dict(),
        "profile": get_profile(config.profile).to_dict(),
        "data_fingerprint": cohort.fingerprint,
        "split_fingerprint": splits.fingerprint,
        "seeds": {
            "base": config.protocol.seed,
            "fit": {o.key: derive_seed(config.protocol.seed, "fit", o.repeat, o.fold) for o in splits.outer},
        },
        "versions": package_versions(),
        "git_sha": git_sha(),
        "cohort": _cohort_info(cohort),
        "storage": redact(config.storage) or f"sqlite:///{F.OPTUNA_DB} (in the run directory)",
        "device": resolve_device(config.device),
        "resumed": bool(previous),
    }
    store.write_manifest(manifest)
    return Benchmark(
        config=config,
        cohort=cohort,
        splits=splits,
        store=store,
        storage=storage,
        board=board,
        profile=get_profile(config.profile),
        device=manifest["device"],
        cache_dir=store.cache_dir,
        entries=entries,
        setup_seconds=setup_seconds,
    )


def _storable_config(config: ExperimentConfig) -> ExperimentConfig:
    """The config as written to disk: the storage password is never written."""
    return replace(config, storage=redact(config.storage))


def _write_cohort_tables(store: RunStore, cohort) -> None:
    table = cohort.table
    cases = pd.DataFrame({"case_id": cohort.case_ids, "label": np.asarray(cohort.labels, dtype=int)})
    cases["group"] = table.loc[cohort.case_ids, "group"].to_numpy() if "group" in table.columns else None
    gt = getattr(cohort, "ground_truth", None)
    store.write_cohort_tables(cases, None if gt is None else gt.rename_axis("case_id").reset_index())


# -- one unit ------------------------------------------------------------------------------------------
def run_unit(bench: Benchmark, unit: Unit, listener: RunListener) -> UnitResult:
    """Tune, fit the final model and score it on the outer test fold."""
    with track_volume_stores() as cache:
        result = _run_unit(bench, unit, listener)
    result.timings["cache"] = dict(cache)
    return result


def _run_unit(bench: Benchmark, unit: Unit, listener: RunListener) -> UnitResult:
    started = time.perf_counter()
    started_at = _now()
    spec, entry = bench.spec(unit.label), bench.entries[unit.label]
    proto = bench.config.protocol
    outer: OuterSplit = bench.splits.get(unit.repeat, unit.fold)
    seed = derive_seed(proto.seed, "fit", unit.repeat, unit.fold)
    work_dir = (
        bench.store.work_dir(unit.label, unit.key)
        if bench.store is not None
        else bench.cache_dir / F.WORK_DIR / unit.label / unit.key
    )
    ctx = FitContext(
        seed=seed,
        device=bench.device,
        profile=bench.profile,
        cache_dir=bench.cache_dir,
        work_dir=work_dir,
        on_progress=None,
    )
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
    sampler_seed = derive_seed(proto.seed, "tpe", unit.label, unit.repeat, unit.fold)
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
    tune_seconds = time.perf_counter() - t0
    params = dict(best.user_attrs.get("params", {**spec.params, **best.params}))

    # final model: refit = false scores the best trial's model (kept in memory, or fitted again the same
    # way after a resume); refit = true fits the best configuration again (see docs/protocol.md)
    listener.trial_started(unit, "refit")
    if tuner.best is not None and tuner.best.trial == best.number:
        final, reused = tuner.best, True
        listener.trial_finished(unit, "refit", None, "reused")
    else:
        probe = reg.models.create(entry.name, **params)
        if proto.refit and not getattr(probe, "uses_validation", True):
            final = tuner.fit(params, outer.train, None, "refit")  # no early stopping: learn from all of it
        else:  # early stopping needs a validation slice: the inner one, as in the paper (80/20 of outer-train)
            final = tuner.fit(params, outer.inner[0].train, outer.inner[0].valid, "refit")
        reused = False
        listener.trial_finished(unit, "refit", None, "complete")
    model = final.model

    t1 = time.perf_counter()
    proba = tuner.predict(model, outer.test)
    infer_seconds = time.perf_counter() - t1
    _check_proba(proba, len(outer.test), unit)
    test = bench.cohort.subset(list(outer.test))
    labels = np.asarray(test.labels, dtype=int)
    metrics = classification_metrics(labels, proba)
    extra = model.extra_outputs(test, ctx) or {}
    if "dice" in extra:
        metrics.update(dice_by_structure(extra["dice"], list(outer.test)))
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

    predictions = pd.DataFrame({"case_id": list(outer.test), "repeat": unit.repeat, "fold": unit.fold, "label": labels})
    for j, col in enumerate(PROB_COLUMNS):
        predictions[col] = proba[:, j]
    predictions["pred"] = proba.argmax(axis=1)
    timings = {
        "unit_seconds": time.perf_counter() - started,
        "tune_seconds": tune_seconds,
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
    model_info = {
        "label": unit.label,
        "recipe": entry.name,
        "provider": entry.provider,
        "tags": list(entry.tags),
        "description": entry.description,
        "mask_source": getattr(model, "mask_source", "none"),
        "n_parameters": n_params,
        "fixed_params": dict(spec.params),
        "search_space": ss.describe(tunable_space(entry, spec.params)),
    }
    return UnitResult(
        label=unit.label,
        repeat=unit.repeat,
        fold=unit.fold,
        predictions=predictions,
        metrics=metrics,
        best_params=params,
        trials=_trials_frame(study),
        history=pd.DataFrame(list(getattr(model, "history", []) or [])),
        timings=timings,
        model_info=model_info,
    )


def _check_proba(proba: np.ndarray, n: int, unit: Unit) -> None:
    if proba.shape != (n, len(CLASS_NAMES)):
        raise ProtocolError(f"{unit}: predict_proba returned shape {proba.shape}, expected ({n}, {len(CLASS_NAMES)})")
    if not np.all(np.isfinite(proba)) or np.any(proba < -1e-6) or not np.allclose(proba.sum(axis=1), 1, atol=1e-4):
        raise ProtocolError(f"{unit}: predict_proba must return finite probabilities whose rows sum to 1")


def _trials_frame(study) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        row = {"number": t.number, "value": t.value, "state": t.state.name, "duration": duration}
        row.update({f"params_{k}": v for k, v in t.params.items()})
        for key in ("fit_seconds", "n_epochs", "error"):
            row[key] = t.user_attrs.get(key)
        rows.append(row)
    return pd.DataFrame(rows)


# -- working through the units -------------------------------------------------------------------------
def execute(
    bench: Benchmark, listener: RunListener | None = None, *, wait: bool = True, poll_seconds: float = 2.0
) -> list[Unit]:
    """Compute every unit not finished or held elsewhere; with ``wait``, also wait for the held ones."""
    listener = listener or RunListener()
    proto = bench.config.protocol
    listener.run_started(
        Plan(tuple(bench.units), proto.trials, bench.profile.max_epochs, bool(proto.refit)),
        str(bench.store.root) if bench.store else "",
    )
    ran: list[Unit] = []
    announced: set[Unit] = set()
    while True:
        pending = []
        all_claims = bench.board.all_claims()
        for unit in bench.units:
            if bench.store is not None and bench.store.is_done(unit.label, unit.key):
                if unit not in announced:
                    listener.unit_skipped(unit, "done")
                    announced.add(unit)
                continue
            claims = all_claims.get((unit.label, unit.key), [])
            status = bench.board.status(unit.label, unit.key, claims)
            if status == "done":
                payload = bench.board.result(unit.label, unit.key, claims)
                if bench.store is not None and payload is not None:
                    bench.store.write_unit(UnitResult.from_payload(payload))
                if unit not in announced:
                    listener.unit_skipped(unit, "done")
                    announced.add(unit)
                continue
            claim = bench.board.try_claim(unit.label, unit.key) if status != "running" else None
            if claim is None:
                pending.append(unit)
                continue
            listener.unit_started(unit)
            try:
                result = run_unit(bench, unit, listener)
            except BaseException:
                claim.release()
                raise
            claim.complete(result.to_payload())  # the storage first: the run dir can be rebuilt from it
            if bench.store is not None:
                bench.store.write_unit(result)
            ran.append(unit)
            announced.add(unit)
            listener.unit_finished(unit, result.metrics)
        if not pending or not wait:
            return ran
        listener.waiting(pending)
        time.sleep(poll_seconds)


def finalize(bench: Benchmark, ran: list[Unit], wall_seconds: float) -> RunResult:
    """Pool out-of-fold predictions of complete models; update the manifest; build the summary."""
    store = bench.store
    keys = [o.key for o in bench.splits.outer]
    complete = True
    for spec in bench.config.models:
        if all(store.is_done(spec.label, k) for k in keys):
            oof = store.write_oof(spec.label, keys)
            pooled = {}
            for r, part in oof.groupby("repeat"):
                pooled[str(r)] = classification_metrics(part["label"].to_numpy(), part[PROB_COLUMNS].to_numpy())
            store.write_oof_metrics(spec.label, pooled)
        else:
            complete = False
    manifest = store.read_manifest() or {}
    recipe_seconds = sum(_timings(store, u).get("recipe_seconds", 0.0) for u in ran)
    manifest.update(
        updated=_now(),
        finished=_now() if complete else None,
        last_session={
            "wall_seconds": wall_seconds,
            "units_computed": len(ran),
            "setup_seconds": bench.setup_seconds,
            "recipe_seconds": recipe_seconds,
            # splitting, Optuna, claims, metrics, writing: everything but start-up
            # (imports, loading data) and the recipes' own fit/predict time
            "protocol_overhead_share": (
                max(0.0, wall_seconds - bench.setup_seconds - recipe_seconds) / wall_seconds
                if ran and wall_seconds > 0
                else None
            ),
        },
        cache=summarize_cache(
            [
                _timings(store, Unit(m.label, o.repeat, o.fold)).get("cache", {})
                for m in bench.config.models
                for o in bench.splits.outer
            ],
            bench.cache_dir,
        ),
    )
    store.write_manifest(manifest)
    return RunResult(store.root, summary_table(store.root), manifest, ran)


def _timings(store: RunStore, unit: Unit) -> dict:
    return store.read_timings(unit.label, unit.key)


def run_benchmark(
    config: ExperimentConfig, listener: RunListener | None = None, *, cohort=None, wait: bool = True
) -> RunResult:
    """Run (or resume) a benchmark and return its summary. See docs/protocol.md."""
    start = time.perf_counter()
    bench = prepare(config, cohort=cohort, listener=listener)
    ran = execute(bench, listener, wait=wait)
    return finalize(bench, ran, time.perf_counter() - start)


# -- workers ---------------------------------------------------------------------------------------------
def attach(
    run_dir: str | Path | None = None,
    *,
    storage: str | None = None,
    benchmark: str | None = None,
    cohort=None,
    listener: RunListener | None = None,
    results_dir: str | Path | None = None,
) -> Benchmark:
    """Join an existing benchmark, from its run directory or from its storage and name."""
    listener = listener or RunListener()
    if run_dir is not None:
        store = RunStore(run_dir)
        manifest = store.read_manifest()
        if manifest is None or not store.config_path.exists():
            raise ProtocolError(
                f"{run_dir} is not a resectbench run directory (no manifest.json/config.toml); "
                "start the benchmark with `resectbench run` first"
            )
        config = ExperimentConfig.from_toml(store.config_path)
        if storage is None and config.storage and "***" in config.storage:
            raise ProtocolError(
                "the run's storage URL has a password that is not written to disk; pass it with --storage"
            )
        config = replace(config, storage=storage or config.storage, run_dir=str(store.root))
        name = benchmark or manifest.get("benchmark") or config.name
        db = open_storage(config.storage, store.root)
        board = UnitBoard(db, name)
        meta = board.read_meta()
        if meta is None:
            raise ProtocolError(f"benchmark {name!r} is not in storage {redact(config.storage) or F.OPTUNA_DB}")
    else:
        if storage is None or benchmark is None:
            raise ProtocolError("give a run directory, or both --storage URL and --benchmark NAME")
        db = open_storage(storage, None)
        board = UnitBoard(db, benchmark)
        meta = board.read_meta()
        if meta is None:
            raise ProtocolError(f"no benchmark named {benchmark!r} in storage {redact(storage)}")
        config = ExperimentConfig.from_dict(meta["config"])
        config = replace(config, storage=storage)
        shared = Path(meta.get("run_dir", ""))
        target = results_dir or (shared if RunStore(shared).manifest_path.exists() else None)
        store = RunStore(target) if target is not None else None
        if store is not None:
            config = replace(config, run_dir=str(store.root))
    config = config.resolved()
    entries = _resolve_entries(config)
    cohort = cohort if cohort is not None else load_data(config, listener)
    if cohort.fingerprint != meta["data_fingerprint"]:
        raise ProtocolError(
            f"this machine's data (fingerprint {cohort.fingerprint}) differs from the benchmark's "
            f"({meta['data_fingerprint']}); point --data/[data] at the same cohort"
        )
    splits = Splits.from_dict(meta["splits"])
    if store is not None and not store.manifest_path.exists():
        store.root.mkdir(parents=True, exist_ok=True)
        splits.save(store.splits_path)
    cache_dir = store.cache_dir if store is not None else _default_cache() / "workers" / board.benchmark
    return Benchmark(
        config=config,
        cohort=cohort,
        splits=splits,
        store=store,
        storage=db,
        board=board,
        profile=get_profile(config.profile),
        device=resolve_device(config.device),
        cache_dir=cache_dir,
        entries=entries,
    )


def _default_cache() -> Path:
    return Path(os.environ.get("RESECTBENCH_CACHE", Path.home() / ".cache" / "resectbench"))


def run_worker(
    run_dir: str | Path | None = None,
    *,
    storage: str | None = None,
    benchmark: str | None = None,
    listener: RunListener | None = None,
    cohort=None,
    results_dir: str | Path | None = None,
    wait: bool = False,
) -> list[Unit]:
    """Take unfinished units of a running benchmark until none is left; returns the units computed here."""
    bench = attach(
        run_dir, storage=storage, benchmark=benchmark, cohort=cohort, listener=listener, results_dir=results_dir
    )
    return execute(bench, listener, wait=wait)
