"""What a shorter cascade buys: one model, 5 outer folds on cpu-cascade with a smaller localiser / epoch budget.

The main job (`resectbench run --model swinunetr-fusion`, cpu profile) must finish in 15 minutes, cohort
generation included, and `geometric-rules` should fill a 5-fold row in as much. At the `cpu-cascade`
defaults (a 30-epoch localiser per fold, 16 window epochs, a 40-epoch window segmenter) neither does
(~22 min for geometric-rules). This runs the whole protocol (run_benchmark: splits, tuning trial 0,
scoring) on a profile with the given budget and reports wall time, macro-F1 / AUC and test Dice per fold.

    .venv/bin/python benchmarks/cascade_budget.py --model swinunetr-fusion --localiser-epochs 15 \\
        --max-epochs 8 --param lr=0.003 --fresh-cache          # the main job through the cascade
    .venv/bin/python benchmarks/cascade_budget.py --model geometric-rules --localiser-epochs 15 \\
        --param segmenter_epochs=14
    .venv/bin/python benchmarks/cascade_budget.py --quick      # seconds: tiny cohort, 2 epochs

Appends one JSON line per run to benchmarks/results/cascade_budget.jsonl (--quick: cascade_budget.quick.json).
``--fresh-cache`` points RESECTBENCH_CACHE at an empty folder, so cohort generation is in the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLD_KEYS = ("macro_f1", "auc_ovr_macro", "dice_tumor", "dice_sma", "dice_smv", "dice_portal_vein", "dice_celiac_trunk")


def run(model: str, params: dict, localiser_epochs: int | None, max_epochs: int | None, run_dir: Path, quick: bool):
    from resectbench.profiles import Cascade, get_profile
    from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark

    t0 = time.perf_counter()
    profile = get_profile("cpu-cascade")
    cohort, folds = None, 5
    if quick:  # the same path on a tiny cohort: 32^3 at 3 mm, everything shrunk
        from resectbench.data.synth import tiny_cohort

        cohort, folds = tiny_cohort(run_dir.parent / "cohort", n=15), 3
        profile = profile.with_(
            target_spacing_mm=(3.0, 3.0, 3.0),
            cascade=Cascade(context_roi=(32, 32, 32), localiser_spacing_mm=(6.0, 6.0, 6.0), localiser_roi=(16, 16, 16)),
        )
    cascade = replace(profile.cascade, localiser_epochs=localiser_epochs or profile.cascade.localiser_epochs)
    epochs = max_epochs or profile.max_epochs
    # a shorter budget runs to its end (patience = epochs); the geometric segmenters use no patience
    profile = profile.with_(cascade=cascade, max_epochs=epochs, patience=epochs if max_epochs else profile.patience)
    config = ExperimentConfig(
        models=[ModelSpec(model, params=params)],
        profile="cpu-cascade",
        profile_spec=profile,
        run_dir=str(run_dir),
        protocol=ProtocolConfig(outer_folds=folds),
    )
    result = run_benchmark(config, cohort=cohort)
    wall = time.perf_counter() - t0
    summary = result.summary.iloc[0]
    per_fold = []
    for fold_dir in sorted((run_dir / "models").glob("*/fold_*")):
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        timings = json.loads((fold_dir / "timings.json").read_text())
        per_fold.append(
            {"unit": fold_dir.name, "seconds": timings["unit_seconds"], **{k: metrics.get(k) for k in FOLD_KEYS}}
        )
    tumour = [f["dice_tumor"] for f in per_fold if f["dice_tumor"] is not None]
    return {
        "model": model,
        "params": params,
        "localiser_epochs": cascade.localiser_epochs,
        "max_epochs": epochs,
        "outer_folds": folds,
        "wall_minutes": wall / 60,
        "macro_f1_mean": float(summary["macro_f1_mean"]),
        "macro_f1_sd": float(summary["macro_f1_sd"]),
        "auc_mean": float(summary["auc_ovr_macro_mean"]),
        "auc_sd": float(summary["auc_ovr_macro_sd"]),
        "dice_tumor_mean": sum(tumour) / len(tumour) if tumour else None,
        "folds": per_fold,
        "load_avg": os.getloadavg(),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="swinunetr-fusion")
    ap.add_argument("--param", action="append", default=[], help="model parameter KEY=VALUE (repeatable; JSON value)")
    ap.add_argument("--localiser-epochs", type=int, default=None, help="default: the profile's (30)")
    ap.add_argument("--max-epochs", type=int, default=None, help="window epochs (patience the same); default 16")
    ap.add_argument("--fresh-cache", action="store_true", help="an empty RESECTBENCH_CACHE: cohort generation timed")
    ap.add_argument("--quick", action="store_true", help="a tiny generated cohort, 2 epochs (smoke test)")
    ap.add_argument("--run-dir", type=Path, default=None, help="keep the run here (default: a temporary folder)")
    args = ap.parse_args()
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.fresh_cache or args.quick:
            os.environ["RESECTBENCH_CACHE"] = str(Path(tmp) / "cache")
        if args.quick:
            params = {"feature_size": 12, **params} if args.model.startswith("swinunetr") else params
            result = run(args.model, params, 2, 2, Path(tmp) / "run", quick=True)
            (HERE / "results" / "cascade_budget.quick.json").write_text(json.dumps(result, indent=1, default=float))
        else:
            run_dir = args.run_dir or Path(tmp) / "run"
            result = run(args.model, params, args.localiser_epochs, args.max_epochs, run_dir, quick=False)
            with open(HERE / "results" / "cascade_budget.jsonl", "a") as f:
                f.write(json.dumps(result, default=float) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "folds"}, indent=1, default=float))
    for fold in result["folds"]:
        print(" ", json.dumps(fold, default=lambda x: round(x, 3)))


if __name__ == "__main__":
    main()
