"""Cost of the evaluation protocol itself, the preprocessing cache, and the main job end to end.

1. Overhead: a benchmark of the scikit-learn baselines (dummy + clinical-sklearn: the cheapest
   recipes, so the worst case for the protocol's share) runs through prepare / execute /
   finalize with timers. Protocol overhead = wall time minus the time spent inside recipe
   ``fit``/``predict_proba``, split into preparation (data fingerprint, splits, storage,
   manifest), per-unit bookkeeping (Optuna, metrics) and claiming/writing/pooling.
2. Main job (full mode, unless --skip-main-job): ``resectbench run --model swinunetr-fusion``
   on the embedded synthetic cohort (cpu profile) as a subprocess, timed (``--fresh-cache``: cohort
   generation included), with the reference rows it adds (``dummy``, ``clinical-sklearn``). Reports
   wall time, macro-F1 / AUC / accuracy and test tumour Dice mean +- SD over the outer folds with the
   per-fold values, the chance level, the preprocessing cache hit rate and the protocol overhead
   share of that run (from its manifest).

    .venv/bin/python benchmarks/protocol.py              # overhead on the default cohort + main job
    .venv/bin/python benchmarks/protocol.py --quick      # seconds: tiny cohort, no main job
    .venv/bin/python benchmarks/protocol.py --skip-main-job
    .venv/bin/python benchmarks/protocol.py --only-main-job --fresh-cache   # the README's main-job figures

Prints a table and writes benchmarks/results/protocol.json (protocol.quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    import importlib.metadata as md

    out = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    for name in ("resectbench", "torch", "optuna", "scikit-learn"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def overhead(cohort, run_dir: Path, folds: int, trials: int) -> dict:
    """Time the phases of a sklearn-baseline benchmark; recipe time comes from the units' timings."""
    from resectbench import registry
    from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig
    from resectbench.protocol.runner import build_splits, execute, finalize, prepare

    registry.models.list()  # load the registry first: plugin import time is start-up, not protocol
    cfg = ExperimentConfig(
        models=[ModelSpec("dummy"), ModelSpec("clinical-sklearn")],
        protocol=ProtocolConfig(outer_folds=folds, trials=trials),
        run_dir=str(run_dir),
    )
    t0 = time.perf_counter()
    splits_seconds = _timed(lambda: build_splits(cfg.resolved(), cohort))
    t1 = time.perf_counter()
    bench = prepare(cfg, cohort=cohort)
    t2 = time.perf_counter()
    ran = execute(bench)
    t3 = time.perf_counter()
    result = finalize(bench, ran, t3 - t1)
    t4 = time.perf_counter()
    timings = [json.loads(p.read_text()) for p in sorted(run_dir.glob("models/*/fold_*/timings.json"))]
    recipe = sum(t["recipe_seconds"] for t in timings)
    units = sum(t["unit_seconds"] for t in timings)
    wall = t4 - t1
    return {
        "cases": len(cohort.case_ids),
        "outer_folds": folds,
        "trials_per_unit": trials,
        "units": len(timings),
        "wall_seconds": wall,
        "recipe_seconds": recipe,
        "overhead_seconds": wall - recipe,
        "overhead_share": (wall - recipe) / wall,
        "parts": {
            "splits_seconds": splits_seconds,
            "prepare_seconds": t2 - t1,
            "tuning_bookkeeping_seconds": units - recipe,
            "claims_and_writing_seconds": (t3 - t2) - units,
            "finalize_seconds": t4 - t3,
        },
        "overhead_per_trial_seconds": (units - recipe) / max(1, sum(_n_trials(run_dir))),
        "summary": result.summary.to_dict("records"),
        "_setup_seconds": t1 - t0,
    }


def _n_trials(run_dir: Path) -> list[int]:
    import pandas as pd

    return [len(pd.read_csv(p)) for p in run_dir.glob("models/*/fold_*/trials.csv")]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


FOLD_METRICS = (
    "macro_f1",
    "auc_ovr_macro",
    "accuracy",
    "f1_resectable",
    "f1_borderline",
    "f1_locally_advanced",
    "dice_tumor",
    "dice_sma",
    "dice_smv",
    "dice_portal_vein",
)


def main_job(run_dir: Path, fresh_cache: Path | None = None) -> dict:
    """``resectbench run --model swinunetr-fusion`` exactly as a user types it, timed (``fresh_cache``: an
    empty RESECTBENCH_CACHE, so generating the embedded cohort is in the wall time)."""
    exe = Path(sys.executable).with_name("resectbench")
    cmd = [str(exe), "run", "--model", "swinunetr-fusion", "--run-dir", str(run_dir), "--no-progress"]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # the user's default (the profile's jobs set their own threads)
    if fresh_cache is not None:
        env["RESECTBENCH_CACHE"] = str(fresh_cache)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"main job failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    folds = {}
    for label in ("swinunetr-fusion", "dummy", "clinical-sklearn"):  # the reference rows come with the run
        rows = [json.loads(p.read_text()) for p in sorted((run_dir / "models" / label).glob("fold_*/metrics.json"))]
        folds[label] = {m: [r.get(m) for r in rows] for m in FOLD_METRICS}
    timings = [json.loads(p.read_text()) for p in (run_dir / "models" / "swinunetr-fusion").glob("fold_*/timings.json")]
    recipe = sum(t["recipe_seconds"] for t in timings)
    return {
        "command": "resectbench run --model swinunetr-fusion",
        "fresh_cache": fresh_cache is not None,
        "load_avg_at_end": os.getloadavg(),
        "wall_seconds": wall,
        "wall_minutes": wall / 60,
        "folds": folds,
        "cache": manifest.get("cache"),
        "units_seconds": sum(t["unit_seconds"] for t in timings),
        "recipe_seconds": recipe,
        "protocol_overhead_share_of_units": 1 - recipe / max(1e-9, sum(t["unit_seconds"] for t in timings)),
        "run_dir": str(run_dir),
        "stdout_tail": done.stdout[-1500:],
    }


def _mean_sd(values) -> str:
    import numpy as np

    v = np.array([x for x in values if x is not None], dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny cohort, few trials, no main job")
    parser.add_argument("--skip-main-job", action="store_true", help="only the overhead measurement")
    parser.add_argument(
        "--only-main-job",
        action="store_true",
        help="only the main job (keeps an earlier overhead measurement in the JSON)",
    )
    parser.add_argument("--main-run-dir", default=None, help="run dir of the main job (default: a temp dir)")
    parser.add_argument("--fresh-cache", action="store_true", help="main job: generate the cohort into an empty cache")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    work = Path(tempfile.mkdtemp(prefix="resectbench-protocol-bench-"))
    try:
        if args.only_main_job:
            cohort = folds = trials = None
        elif args.quick:
            from resectbench.data.synth import tiny_cohort

            cohort, folds, trials = tiny_cohort(work / "data", n=18), 3, 2
        else:
            from resectbench.data import default_cohort

            cohort, folds, trials = default_cohort("cpu"), 5, 10
        result = {"machine": machine(), "quick": args.quick}
        if not args.only_main_job:
            result["overhead_sklearn_baselines"] = overhead(cohort, work / "run", folds, trials)
        if not args.quick and not args.skip_main_job:
            run_dir = Path(args.main_run_dir) if args.main_run_dir else work / "main-job"
            result["main_job"] = main_job(run_dir, work / "cache" if args.fresh_cache else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("protocol.quick.json" if args.quick else "protocol.json")
    previous = json.loads(out.read_text()) if out.exists() and not args.quick else {}
    for key in ("overhead_sklearn_baselines", "main_job"):  # keep the part not measured this time
        if key not in result and key in previous:
            result[key] = previous[key]
    o = result.get("overhead_sklearn_baselines")
    if o:
        _print_overhead(o)
    if "main_job" in result:
        _print_main_job(result["main_job"])
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


def _print_overhead(o: dict) -> None:
    print(
        f"protocol overhead, dummy + clinical-sklearn on {o['cases']} cases, {o['outer_folds']} folds x "
        f"{o['trials_per_unit']} trials ({o['units']} units)"
    )
    print(f"  {'wall':<28}{o['wall_seconds']:8.2f} s")
    print(f"  {'inside recipes':<28}{o['recipe_seconds']:8.2f} s")
    print(f"  {'protocol overhead':<28}{o['overhead_seconds']:8.2f} s  ({100 * o['overhead_share']:.1f} %)")
    for name, seconds in o["parts"].items():
        print(f"    {name:<26}{seconds:8.2f} s")
    print(f"  {'overhead per trial':<28}{o['overhead_per_trial_seconds']:8.3f} s")


def _print_main_job(m: dict) -> None:
    cache = m.get("cache") or {}
    print(f"\nmain job: {m['command']}: {m['wall_minutes']:.1f} min wall")
    for label, folds_ in m["folds"].items():
        print(
            f"  {label:<18} macro-F1 {_mean_sd(folds_['macro_f1'])}  AUC {_mean_sd(folds_['auc_ovr_macro'])}  "
            f"accuracy {_mean_sd(folds_['accuracy'])}  per fold F1 " + ", ".join(f"{x:.3f}" for x in folds_["macro_f1"])
        )
    dice = m["folds"].get("swinunetr-fusion", {}).get("dice_tumor") or []
    if any(d is not None for d in dice):
        print(f"  tumour Dice {_mean_sd(dice)}  per fold " + ", ".join("-" if d is None else f"{d:.2f}" for d in dice))
    print(f"  cache hit rate {cache.get('hit_rate')}  (hits {cache.get('hits')}, misses {cache.get('misses')})")
    print(f"  protocol overhead of the units {100 * m['protocol_overhead_share_of_units']:.2f} %")


if __name__ == "__main__":
    main()
