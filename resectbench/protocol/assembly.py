"""Assembling a benchmark: resolved configuration, validated cohort, splits, storage, run directory.

Both ways into a benchmark go through here: :func:`prepare` starts (or resumes) one from its
configuration and writes the run directory's header (manifest, config, splits, cohort tables);
:func:`attach` joins an existing one from its run directory or its storage. Each resolves the
configuration and its registry entries, loads and checks the cohort (:func:`_open`), then builds
the :class:`Benchmark` in one place (:func:`_benchmark`), which owns the run's preprocessing cache.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import registry as reg
from ..data.cache import cache_root
from ..errors import RegistryError
from ..profiles import Profile
from ..vocabulary import CLASS_NAMES, COMPONENT_SLOTS, RunFiles as F, resolve_device
from .cache_stats import RunCache
from .config import ExperimentConfig
from .coordination import UnitBoard, open_storage, redact
from .errors import ProtocolError
from .events import RunListener, Unit
from .seeding import derive_seed
from .splits import ImportedFolds, Splits, make_splits, read_folds
from .store import RunStore, write_text_atomic

VERSIONED = ("resectbench", "torch", "monai", "optuna", "scikit-learn", "numpy", "pandas", "scipy", "timm")


@dataclass
class Benchmark:
    """A prepared benchmark: what every process working on it shares."""

    config: ExperimentConfig  # resolved: config.profile_spec is the profile
    cohort: Any
    splits: Splits
    store: RunStore | None  # None: a worker without access to the run directory
    storage: Any
    board: UnitBoard
    device: str
    cache: RunCache  # the run's preprocessing cache, passed to every fit (FitContext.cache_dir)
    entries: dict[str, reg.Entry] = field(default_factory=dict)
    #: loading plugins/recipes and the cohort: start-up, not protocol overhead
    setup_seconds: float = 0.0

    @property
    def profile(self) -> Profile:
        return self.config.profile_spec

    @property
    def cache_dir(self) -> Path:
        return self.cache.directory

    @property
    def units(self) -> list[Unit]:
        return [Unit(m.label, o.repeat, o.fold) for m in self.config.models for o in self.splits.outer]

    def spec(self, label: str):
        return next(m for m in self.config.models if m.label == label)


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
        cohort = load_cohort(
            config.data.path,
            skip_invalid=config.data.skip_invalid,
            allow_missing_variables=tuple(allow),
            data_dictionary=config.data.data_dictionary,
            **checks,
        )
        # the protocol's own columns (group_by, folds_column) are read from the table, not ignored
        for warning in cohort_warnings(cohort, skip=(config.protocol.group_by, config.protocol.folds_column)):
            listener.message(f"warning: {warning}")
        return cohort
    return default_cohort(
        profile=config.profile,
        seed=0,
        on_progress=progress("generating the embedded synthetic cohort"),
        load_options=checks,
    )


def cohort_warnings(cohort, skip=()) -> list[str]:
    """What a user's cohort lacks that changes every row of the board: an absent class, ignored columns."""
    from ..data.cohort import class_counts
    from ..vocabulary import CLASS_NAMES

    warnings = [
        f"no {name} (class {k}) cases in the cohort: its F1 is 0 and the AUC averages over the classes present"
        for k, (name, n) in enumerate(zip(CLASS_NAMES, class_counts(cohort.labels)))
        if n == 0
    ]
    ignored = cohort.info.get("ignored_columns", {})
    warnings += [f"column {col!r} is ignored: {why}" for col, why in ignored.items() if col not in skip]
    return warnings


def _groups(cohort, column: str):
    if not column:
        return None
    if column not in cohort.table.columns:
        raise ProtocolError(
            f"protocol.group_by column {column!r} is not in the cohort table "
            f"(columns: {', '.join(map(str, cohort.table.columns))})"
        )
    return cohort.table.loc[cohort.case_ids, column].astype(str).tolist()


def build_splits(config: ExperimentConfig, cohort, listener: RunListener | None = None) -> Splits:
    """The benchmark's splits: outer folds made here, or imported (``protocol.folds`` / ``folds_column``) and
    checked; each warning about imported folds goes to ``listener`` (and is kept in splits.json)."""
    p, listener = config.protocol, listener or RunListener()
    imported = _imported_folds(config, cohort) if p.folds or p.folds_column else None
    splits = make_splits(
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
        imported=imported,
    )
    for warning in splits.warnings:
        listener.message(f"warning: {warning}")
    return splits


def _imported_folds(config: ExperimentConfig, cohort) -> ImportedFolds:
    """The folds file (``protocol.folds``, else the cohort's own table: ``clinical.csv`` of a dataset folder or
    the manifest CSV), without the cases ``skip_invalid`` excluded from the cohort: they are tested nowhere."""
    p, data = config.protocol, config.data.path
    if p.folds:
        path = Path(p.folds)
    elif data:
        path = Path(data) / "clinical.csv" if Path(data).is_dir() else Path(data)
    else:
        raise ProtocolError(
            "protocol.folds_column reads the cohort's table, but the embedded synthetic cohort has none; "
            "give data.path (--data) or a folds CSV (protocol.folds / --folds)"
        )
    imported = read_folds(path, p.folds_column)
    excluded = {e["case_id"] for e in cohort.info.get("excluded", []) if e.get("case_id")} - set(cohort.case_ids)
    if not excluded:
        return imported
    folds = {name: [c for c in cases if c not in excluded] for name, cases in imported.folds.items()}
    return replace(imported, source={**imported.source, "excluded_cases": sorted(excluded)}, folds=folds)


def _cohort_info(cohort) -> dict:
    info = dict(getattr(cohort, "info", {}) or {})
    labels = np.asarray(cohort.labels, dtype=int)
    info.update(
        n_cases=int(len(labels)),
        class_counts={name: int((labels == i).sum()) for i, name in enumerate(CLASS_NAMES)},
        # what final models are fitted on: new cases (predict) are checked against it
        clinical_variables=list(cohort.clinical.columns),
    )
    info.setdefault("bayes_optimal_accuracy", None)
    return info


# -- the one assembly path ----------------------------------------------------------------------------
def _open(config: ExperimentConfig, cohort, listener: RunListener):
    """Resolve the configuration and its registry entries (refused before any work), load and check the cohort."""
    config = config.resolved()
    t0 = time.perf_counter()
    entries = _resolve_entries(config)
    missing = [p for p in config.data.external if not Path(p).exists()]
    if missing:
        raise ProtocolError(f"external cohort(s) {', '.join(missing)} do not exist (data.external / --external)")
    cohort = cohort if cohort is not None else load_data(config, listener)
    _check_needs(config, cohort)
    return config, entries, cohort, time.perf_counter() - t0


def _check_needs(config: ExperimentConfig, cohort) -> None:
    """Refuse, before any work, a model the cohort cannot feed (masks naming the structures it reads,
    clinical variables, a GPU), naming what is missing (``resectbench data validate`` lists it per model)."""
    from ..models.needs import check_models

    models = {}
    for spec in config.models:
        try:
            models[spec.label] = reg.models.create(spec.name, **spec.params)
        except (TypeError, ValueError, RegistryError) as exc:
            raise ProtocolError(f"model {spec.label!r}: {exc}") from None
    unfit = check_models(models, cohort, config.profile_spec, resolve_device(config.device))
    if unfit:
        lines = "; ".join(f"{label}: {' and '.join(why)}" for label, why in unfit.items())
        raise ProtocolError(
            f"the cohort cannot feed {len(unfit)} model(s) - {lines} "
            "(`resectbench data validate DATASET` lists which models it can feed)"
        )


def _benchmark(config, entries, cohort, splits, store, storage, board, cache_dir, setup_seconds=0.0) -> Benchmark:
    return Benchmark(
        config=config,
        cohort=cohort,
        splits=splits,
        store=store,
        storage=storage,
        board=board,
        device=resolve_device(config.device),
        cache=RunCache(Path(cache_dir)),
        entries=entries,
        setup_seconds=setup_seconds,
    )


def prepare(config: ExperimentConfig, *, cohort=None, listener: RunListener | None = None) -> Benchmark:
    """Resolve the config, load data, make splits, open storage and write the run directory's header."""
    listener = listener or RunListener()
    config, entries, cohort, setup_seconds = _open(config, cohort, listener)
    splits = build_splits(config, cohort, listener)
    store = RunStore(config.run_dir)
    store.check_resumable(cohort.fingerprint, splits.fingerprint, config.profile_spec.to_dict())
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
        "profile": config.profile_spec.to_dict(),
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
    return _benchmark(config, entries, cohort, splits, store, storage, board, store.cache_dir, setup_seconds)


def _storable_config(config: ExperimentConfig) -> ExperimentConfig:
    """The config as written to disk: the storage password is never written."""
    return replace(config, storage=redact(config.storage))


def _write_cohort_tables(store: RunStore, cohort) -> None:
    table = cohort.table
    cases = pd.DataFrame({"case_id": cohort.case_ids, "label": np.asarray(cohort.labels, dtype=int)})
    cases["group"] = table.loc[cohort.case_ids, "group"].to_numpy() if "group" in table.columns else None
    gt = getattr(cohort, "ground_truth", None)
    store.write_cohort_tables(cases, None if gt is None else gt.rename_axis("case_id").reset_index())


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
    config, entries, cohort, setup_seconds = _open(config, cohort, listener)
    if cohort.fingerprint != meta["data_fingerprint"]:
        raise ProtocolError(
            f"this machine's data (fingerprint {cohort.fingerprint}) differs from the benchmark's "
            f"({meta['data_fingerprint']}); point --data/[data] at the same cohort"
        )
    splits = Splits.from_dict(meta["splits"])
    if store is not None and not store.manifest_path.exists():
        store.root.mkdir(parents=True, exist_ok=True)
        splits.save(store.splits_path)
    cache_dir = store.cache_dir if store is not None else cache_root() / "workers" / board.benchmark
    return _benchmark(config, entries, cohort, splits, store, db, board, cache_dir)
