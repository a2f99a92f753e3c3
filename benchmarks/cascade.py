"""Does the image branch learn? One outer fold of the default cohort through the cpu-cascade profile.

Stage 1 (the localiser, :mod:`resectbench.models.cascade`): training time and how far its predicted
window centre lies from the true tumour centre on the held-out cases. Stage 2: one real
``NeuralRecipe.fit`` (inner 80/20 split for early stopping, as one unit of ``resectbench run``) and,
on the outer test cases, macro-F1, AUC and the auxiliary segmentation's Dice per structure.

    .venv/bin/python benchmarks/cascade.py [--recipe swinunetr-image-only] [--epochs 8] [--fold 0]
        [--no-cascade] [--param KEY=VALUE] [--out benchmarks/results/cascade.jsonl] [--quick]

Each run appends one JSON line to ``--out``; ``--quick`` runs the same path on a tiny generated
cohort (32^3 at 3 mm, a 2-epoch localiser, 1 epoch) in a few seconds and writes
``results/cascade.quick.json``.

The localiser and the preprocessed volumes are cached in the user cache (``RESECTBENCH_CACHE``), so
a second run with another recipe pays for stage 2 only; ``localiser_seconds`` is 0 then.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(
    recipe_name: str,
    epochs: int | None,
    patience: int | None,
    fold: int,
    cascade: bool,
    seed: int = 0,
    params: dict | None = None,
    quick_dir: Path | None = None,
) -> dict:
    import numpy as np
    import torch

    from resectbench import registry
    from resectbench.data import default_cohort
    from resectbench.data.cache import cache_root
    from resectbench.models.base import FitContext
    from resectbench.models.cascade import train_localiser
    from resectbench.profiles import get_profile
    from resectbench.protocol.metrics import classification_metrics, dice_by_structure
    from resectbench.protocol.splits import make_splits

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    # cpu: the whole field of view at 3 mm; cpu-cascade: localiser + 1.5 mm window
    profile = get_profile("cpu-cascade" if cascade else "cpu-whole")
    profile = profile.with_(**{k: v for k, v in (("max_epochs", epochs), ("patience", patience)) if v})
    t0 = time.perf_counter()
    if quick_dir is not None:  # the same path on a tiny cohort: 32^3 at 3 mm, everything shrunk
        from resectbench.data.synth import tiny_cohort
        from resectbench.profiles import Cascade

        cohort = tiny_cohort(quick_dir, n=15)
        if profile.cascade is not None:
            profile = profile.with_(
                target_spacing_mm=(3.0, 3.0, 3.0),
                cascade=Cascade(
                    context_roi=(32, 32, 32),
                    localiser_spacing_mm=(6.0, 6.0, 6.0),
                    localiser_roi=(16, 16, 16),
                    localiser_epochs=2,
                    jitter_vox=2,
                ),
            )
        outer_folds = 3
    else:
        cohort = default_cohort(profile="cpu", seed=seed)
        outer_folds = 5
    splits = make_splits(cohort.case_ids, cohort.labels, outer_folds=outer_folds, inner="holdout", seed=seed)
    outer = splits.get(0, fold)
    inner = outer.inner[0]
    train, valid, test = (cohort.subset(list(ids)) for ids in (inner.train, inner.valid, outer.test))
    prepared = time.perf_counter() - t0

    def on_epoch(epoch, row):
        print(
            f"  epoch {epoch}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, float)),
            file=sys.stderr,
            flush=True,
        )

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache" if quick_dir is not None else cache_root()
        ctx = FitContext(seed=seed, profile=profile, cache_dir=cache, work_dir=Path(tmp), on_epoch=on_epoch)
        localiser_seconds = 0.0
        if profile.cascade is not None:  # stage 1 alone, timed (the recipe then loads it from the cache)
            t1 = time.perf_counter()
            train_localiser(train, ctx, profile.cascade)
            localiser_seconds = time.perf_counter() - t1
        model = registry.models.create(recipe_name, **(params or {}))
        t1 = time.perf_counter()
        model.fit(train, valid, ctx)
        fit_seconds = time.perf_counter() - t1  # the localiser comes from the cache here
        t2 = time.perf_counter()
        proba = model.predict_proba(test, ctx)
        predict_seconds = time.perf_counter() - t2
        extra = model.extra_outputs(test, ctx) if hasattr(model, "extra_outputs") else {}
        segmenter = getattr(model, "segmenter", None)
        if hasattr(segmenter, "dice"):  # geometric baselines: the masks they measure contact on
            extra = {**(extra or {}), "dice": segmenter.dice(test)}
    metrics = classification_metrics(np.asarray(test.labels), proba)
    out = {
        "recipe": recipe_name,
        "params": params or {},
        "fold": fold,
        "cascade": cascade,
        "profile": profile.to_dict(),
        "n_train": len(train.case_ids),
        "n_valid": len(valid.case_ids),
        "n_test": len(test.case_ids),
        "cohort_seconds": prepared,
        "localiser_seconds": localiser_seconds,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "load_avg": os.getloadavg(),
        "epochs": len(model.history),
        "best_epoch": getattr(getattr(model, "fit_result", None), "best_epoch", None),
        **{k: metrics[k] for k in ("macro_f1", "auc_ovr_macro", "accuracy")},
        **dice_by_structure((extra or {}).get("dice"), list(test.case_ids)),
        **(extra or {}).get("fit_summary", {}),  # head refit: the step kept, train / inner-validation macro-F1
    }
    loc = (extra or {}).get("localisation_mm")
    if loc:
        err = np.asarray(list(loc.values()))
        out.update(
            localisation_median_mm=float(np.median(err)),
            localisation_within_10mm=float(np.mean(err <= 10)),
            localisation_worst_mm=float(err.max()),
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="swinunetr-image-only")
    ap.add_argument("--epochs", type=int, default=None, help="max epochs (default: the profile's)")
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument(
        "--no-cascade", action="store_true", help="the cpu-whole profile's input (whole view at 3 mm) instead"
    )
    ap.add_argument("--param", action="append", default=[], help="recipe parameter KEY=VALUE (repeatable; JSON value)")
    ap.add_argument(
        "--out", default=str(HERE / "results" / "cascade.jsonl"), help="append the result as one JSON line to this file"
    )
    ap.add_argument("--quick", action="store_true", help="a tiny generated cohort, 1 epoch (smoke test)")
    args = ap.parse_args()
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    if args.quick:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            result = run(
                args.recipe, 1, 1, 0, not args.no_cascade, params={"feature_size": 12, **params}, quick_dir=Path(tmp)
            )
        (HERE / "results" / "cascade.quick.json").write_text(json.dumps(result, indent=1, default=float))
        print(json.dumps({k: result[k] for k in ("recipe", "macro_f1", "fit_seconds")}))
        return
    result = run(args.recipe, args.epochs, args.patience, args.fold, not args.no_cascade, params=params)
    keys = [k for k in result if k.startswith(("dice_", "localisation"))]
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "recipe",
                    "params",
                    "fold",
                    "cascade",
                    "epochs",
                    "best_epoch",
                    "localiser_seconds",
                    "fit_seconds",
                    "macro_f1",
                    "auc_ovr_macro",
                    "accuracy",
                    *keys,
                )
            },
            indent=1,
        )
    )
    with open(args.out, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
