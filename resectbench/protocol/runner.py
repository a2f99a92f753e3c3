"""Runs a benchmark: every model on every outer fold under one protocol, resumable and shareable.

``run_benchmark(config)`` assembles the benchmark (:mod:`.assembly`: manifest, splits, cohort
tables), then works through the units (model x repeat x outer fold). Each unit is claimed in the
shared storage and computed by :mod:`.unit` (tune -> final model -> score), then written atomically.
``run_worker`` joins a running benchmark and takes unfinished units (``jobs > 1`` starts such workers on
this machine: :mod:`.local_jobs`). Re-running the same command
resumes: finished units are skipped, Optuna studies continue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DiskFullError
from ..profiles import get_profile
from ..vocabulary import PROB_COLUMNS, RunFiles as F
from .assembly import Benchmark, _now, attach, build_splits, load_data, prepare
from .config import ExperimentConfig
from .coordination import redact
from .errors import ProtocolError
from .events import Plan, RunListener, Unit, hooked
from .final import final_unit, finish_models
from .local_jobs import local_workers
from .metrics import classification_metrics
from .store import RunStore, UnitResult, disk_full_cause
from .summary import summary_table
from .unit import run_unit

__all__ = [
    "Benchmark",
    "RunResult",
    "attach",
    "build_splits",
    "execute",
    "finalize",
    "load_data",
    "prepare",
    "run_benchmark",
    "run_unit",
    "run_worker",
]


@dataclass
class RunResult:
    run_dir: Path
    summary: pd.DataFrame
    manifest: dict
    ran: list[Unit] = field(default_factory=list)  # units this process computed


# -- working through the units -------------------------------------------------------------------------
def execute(
    bench: Benchmark, listener: RunListener | None = None, *, wait: bool = True, poll_seconds: float = 2.0
) -> list[Unit]:
    """Compute every unit not finished or held elsewhere; with ``wait``, also wait for the held ones."""
    listener = listener or RunListener()
    proto = bench.config.protocol
    listener.run_started(
        Plan(
            tuple(bench.units),
            proto.trials,
            bench.profile.max_epochs,
            bool(proto.refit),
            benchmark=bench.config.name,
            profile=bench.profile.name,
        ),
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
                claim.complete(result.to_payload())  # the storage first: the run dir can be rebuilt from it
            except BaseException:  # also a storage that failed to take the result (full disk): redo it later
                claim.release()
                raise
            if bench.store is not None:
                bench.store.write_unit(result)
            ran.append(unit)
            announced.add(unit)
            listener.unit_finished(unit, result.metrics)
        if not pending or not wait:
            return ran
        listener.waiting(pending)
        time.sleep(poll_seconds)


def finalize(
    bench: Benchmark, ran: list[Unit], wall_seconds: float, finished: dict | None = None, jobs: int = 1
) -> RunResult:
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
            # (not measured with local workers: their units' time is not in `ran`, waiting for them is)
            "protocol_overhead_share": (
                max(0.0, wall_seconds - bench.setup_seconds - recipe_seconds) / wall_seconds
                if ran and wall_seconds > 0 and jobs == 1
                else None
            ),
            "jobs": jobs,
            # final models fitted or loaded and external cohorts scored in this session, with their seconds
            "final_models": (finished or {}).get("final", {}),
            "external": (finished or {}).get("external", {}),
        },
        cache=bench.cache.summary(
            [
                _timings(store, Unit(m.label, o.repeat, o.fold)).get("cache", {})
                for m in bench.config.models
                for o in bench.splits.outer
            ]
        ),
    )
    store.write_manifest(manifest)
    return RunResult(store.root, summary_table(store.root), manifest, ran)


def _timings(store: RunStore, unit: Unit) -> dict:
    return store.read_timings(unit.label, unit.key)


def run_benchmark(
    config: ExperimentConfig, listener: RunListener | None = None, *, cohort=None, wait: bool = True, jobs: int = 1
) -> RunResult:
    """Run (or resume) a benchmark and return its summary. See docs/protocol.md.

    ``jobs > 1``: up to that many processes on this machine share the units, one thread each
    (:mod:`.local_jobs`); the workers read the cohort and the profile from the run directory, so neither may
    come from the caller. The call returns when the workers have finished, also with ``wait=False``."""
    start = time.perf_counter()
    if jobs > 1 and cohort is not None:
        raise ProtocolError(
            f"jobs={jobs} needs a cohort the worker processes can load: give its folder as data.path "
            "(or use the embedded one) instead of passing the cohort object"
        )
    if jobs > 1 and config.profile_spec is not None and config.profile_spec != get_profile(config.profile):
        raise ProtocolError(
            f"jobs={jobs}: the worker processes would use the registered profile {config.profile!r}, "
            "not the modified one given as profile_spec; run with jobs=1"
        )
    config = config.resolved()
    RunStore(config.run_dir).check_usable()  # before loading the cohort
    with hooked(listener) as listener, _disk_full_named(config.storage, config.run_dir):
        bench = prepare(config, cohort=cohort, listener=listener)
        # no more processes than there is work for (each costs seconds of start-up)
        pending = sum(not bench.store.is_done(u.label, u.key) for u in bench.units)
        finals = len(bench.config.models) if bench.config.protocol.final_model or bench.config.data.external else 0
        jobs = max(1, min(jobs, pending + finals))
        with local_workers(bench.store.root, jobs, storage=config.storage, listener=listener):
            ran = execute(bench, listener, wait=wait)
            finished = finish_models(bench, listener)  # final models and external cohorts, when asked for
        return finalize(bench, ran, time.perf_counter() - start, finished, jobs=jobs)


@contextmanager
def _disk_full_named(storage: str | None, run_dir: str | Path | None) -> Iterator[None]:
    """A full disk fails wherever the next byte goes (a result file, the Optuna storage, a recipe's cache):
    turn whatever error that is into one :class:`DiskFullError` naming the file, else the storage."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        cause = disk_full_cause(exc)
        if cause is None:
            raise
        where = getattr(cause, "filename", None) or redact(storage) or Path(run_dir) / F.OPTUNA_DB
        raise DiskFullError(where) from exc


# -- workers ---------------------------------------------------------------------------------------------
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
    """Take unfinished units of a running benchmark until none is left; returns the units computed here.

    A worker on the run directory itself (``run_dir`` given, no ``results_dir``) then takes final models
    (and their external cohorts) that no other process holds: they are stored only in the run directory."""
    with hooked(listener) as listener, _disk_full_named(storage, run_dir):
        bench = attach(
            run_dir, storage=storage, benchmark=benchmark, cohort=cohort, listener=listener, results_dir=results_dir
        )
        ran = execute(bench, listener, wait=wait)
        if run_dir is not None and results_dir is None:
            finished = finish_models(bench, listener, wait=wait)
            ran += [final_unit(label) for label in finished["final"]]
    return ran
