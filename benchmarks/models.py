"""Per-recipe cost at a compute profile: parameters, training step and inference time per volume, peak memory.

Every neural recipe registered in ``models`` (built-ins and plugins) is built exactly as
``NeuralRecipe.fit`` builds it for the profile (ROI, spacing, feature size, batch size), and fed
random volumes and clinical rows of the profile's shapes. Each configuration runs in its own
subprocess so the peak resident memory (``resource.getrusage``, ru_maxrss) belongs to it alone.

CPU choices tried (``--variants``): torch threads (1 vs 2), ``channels_last_3d`` memory format, and
bf16 autocast; the table shows which help. Optionally ``--fit`` times one real ``NeuralRecipe.fit``
+ ``predict_proba`` of a recipe on one outer fold of the default synthetic cohort (what one unit of
``resectbench run`` costs on this machine, with no tuning) and reports its test macro-F1.

    .venv/bin/python benchmarks/models.py [--quick] [--profile cpu-whole] [--recipes a,b] [--variants swinunetr-fusion] [--fit swinunetr-fusion]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
N_CLINICAL_FEATURES = 24  # width of ClinicalPreprocessor output for the 17 variables (one-hot expanded)


def _child(spec: dict) -> dict:
    """Measure one (recipe, variant) configuration in this process."""
    import torch

    torch.set_num_threads(spec["threads"])
    from resectbench import registry
    from resectbench.losses import SegmentationLoss, classification_loss
    from resectbench.models.base import FitContext
    from resectbench.models.engine.precision import autocast
    from resectbench.models.recipes.compose import NeuralRecipe
    from resectbench.profiles import get_profile

    torch.manual_seed(0)
    ctx = FitContext(profile=get_profile(spec["profile"]))
    recipe = registry.models.create(spec["recipe"])
    if not isinstance(recipe, NeuralRecipe):
        return {"skipped": "not a neural recipe"}
    resolved = recipe._resolved(ctx)
    schedule = recipe.build_schedule()
    segment = recipe.uses_image and bool(getattr(schedule, "uses_segmentation", False))
    net = recipe.build(N_CLINICAL_FEATURES, resolved, segment=segment)
    segment = net.segments and segment
    batch, roi = resolved["batch_size"], resolved["patch_size"] or resolved["roi"]
    amp = torch.bfloat16 if spec["bf16"] else None
    image = torch.randn(batch, 1, *roi) if recipe.uses_image else None
    if image is not None and spec["channels_last"]:
        net.to(memory_format=torch.channels_last_3d)
        image = image.contiguous(memory_format=torch.channels_last_3d)
    clinical = torch.randn(batch, N_CLINICAL_FEATURES)
    labels = torch.arange(batch) % 3
    seg_target = torch.randint(0, 16, (batch, 1, *roi)) if segment else None
    seg_loss, cls_loss = SegmentationLoss(), classification_loss()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def step():
        with autocast(amp, "cpu"):
            out = net(image, clinical)
        total = cls_loss(out.logits.float(), labels)
        if segment:
            total = total + seg_loss(out.seg_logits.float(), seg_target)
        total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def infer():
        with torch.no_grad(), autocast(amp, "cpu"):
            net(image, clinical)

    timings = {}
    for name, fn in (("train", step), ("infer", infer)):
        net.train(name == "train")
        fn()  # warm-up (allocator, kernel selection)
        times = []
        for _ in range(spec["repeats"]):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        timings[name] = min(times) / batch
    return {
        "n_parameters": net.n_parameters(),
        "segments": segment,
        "roi": list(roi),
        "batch_size": batch,
        "train_s_per_volume": timings["train"],
        "infer_s_per_volume": timings["infer"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _run_child(spec: dict, timeout: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fit_one_fold(recipe_name: str, profile: str, seed: int = 0) -> dict:
    """One outer fold (80/20) with an inner 80/20 split for early stopping, as one unit of `resectbench run`."""
    import numpy as np
    import torch
    from sklearn.model_selection import train_test_split

    from resectbench import registry
    from resectbench.data import default_cohort
    from resectbench.models.base import FitContext
    from resectbench.models.engine.metrics import macro_f1
    from resectbench.profiles import get_profile

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    started = time.perf_counter()
    cohort = default_cohort(profile=profile, seed=seed)
    prepared = time.perf_counter() - started
    ids, y = np.array(cohort.case_ids), cohort.labels
    outer_train, test = train_test_split(ids, test_size=0.2, stratify=y, random_state=seed)
    y_outer = cohort.subset(list(outer_train)).labels
    inner_train, inner_valid = train_test_split(outer_train, test_size=0.2, stratify=y_outer, random_state=seed)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:

        def on_epoch(epoch, row):
            print(
                f"  epoch {epoch}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, float)),
                file=sys.stderr,
                flush=True,
            )

        ctx = FitContext(
            seed=seed,
            profile=get_profile(profile),
            cache_dir=Path(tmp) / "cache",
            work_dir=Path(tmp),
            on_epoch=on_epoch,
        )
        model = registry.models.create(recipe_name)
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(cohort.subset(list(inner_train)), cohort.subset(list(inner_valid)), ctx)
        t1, c1 = time.perf_counter(), time.process_time()
        test_cohort = cohort.subset(list(test))
        proba = model.predict_proba(test_cohort, ctx)
        t2 = time.perf_counter()
    return {
        "recipe": recipe_name,
        "profile": profile,
        "n_train": len(inner_train),
        "n_valid": len(inner_valid),
        "n_test": len(test),
        "cohort_seconds": prepared,
        "fit_seconds": t1 - t0,
        "predict_seconds": t2 - t1,
        "fit_cpu_seconds": c1 - c0,
        "threads": torch.get_num_threads(),
        "load_avg": os.getloadavg(),
        "epochs": len(model.history),
        "best_epoch": model.fit_result.best_epoch,
        "test_macro_f1": macro_f1(test_cohort.labels, proba.argmax(1)),
        "test_accuracy": float((proba.argmax(1) == test_cohort.labels).mean()),
        "history": model.history,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one configuration per recipe, one timed step")
    ap.add_argument("--profile", default="cpu-whole")
    ap.add_argument("--recipes", default="", help="comma-separated recipe names (default: every neural recipe)")
    ap.add_argument(
        "--variants",
        default="",
        help="comma-separated recipes for which to also try 1 thread, "
        "channels_last_3d and bf16 (e.g. swinunetr-fusion)",
    )
    ap.add_argument("--fit", default="", help="also time one real outer-fold fit of this recipe")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return

    import torch

    from resectbench import registry

    names = [n for n in args.recipes.split(",") if n] or [
        n for n in registry.models.list() if "neural" in registry.models.get(n).tags
    ]
    threads = 1 if args.quick else min(2, os.cpu_count() or 1)
    baseline = [{"label": f"fp32, {threads} thread(s)", "threads": threads, "channels_last": False, "bf16": False}]
    variants = baseline + [
        {"label": "fp32, 1 thread", "threads": 1, "channels_last": False, "bf16": False},
        {"label": f"channels_last_3d, {threads} threads", "threads": threads, "channels_last": True, "bf16": False},
        {"label": f"bf16 autocast, {threads} threads", "threads": threads, "channels_last": False, "bf16": True},
    ]
    with_variants = set(args.variants.split(",")) if args.variants and not args.quick else set()
    rows = []
    for name in names:
        for v in variants if name in with_variants else baseline:
            spec = {"recipe": name, "profile": args.profile, "repeats": 1 if args.quick else 3, **v}
            result = _run_child(spec, timeout=300 if args.quick else 900)
            rows.append(
                {
                    "recipe": name,
                    "variant": v["label"],
                    **{k: v[k] for k in ("threads", "channels_last", "bf16")},
                    **result,
                }
            )
            r = rows[-1]
            if "error" in r or "skipped" in r:
                print(f"{name:22s} {v['label']:28s} {r.get('error') or r.get('skipped')}", flush=True)
            else:
                print(
                    f"{name:22s} {v['label']:28s} params {r['n_parameters'] / 1e6:6.2f}M  "
                    f"train {r['train_s_per_volume']:6.3f} s/vol  infer {r['infer_s_per_volume']:6.3f} s/vol  "
                    f"peak {r['peak_rss_mb']:7.0f} MB",
                    flush=True,
                )
    out = {
        "profile": args.profile,
        "quick": args.quick,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_avg": os.getloadavg(),
        },
        "note": "seconds per volume = best of the timed steps / batch size; random inputs of the profile's shapes",
        "rows": rows,
    }
    if args.fit:
        fit = _fit_one_fold(args.fit, args.profile)
        out["fit"] = fit
        print(
            f"fit {fit['recipe']}: {fit['fit_seconds']:.0f} s fit ({fit['epochs']} epochs, best {fit['best_epoch']}), "
            f"{fit['predict_seconds']:.1f} s predict, test macro-F1 {fit['test_macro_f1']:.3f}, "
            f"accuracy {fit['test_accuracy']:.3f}",
            flush=True,
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("models.quick.json" if args.quick else "models.json")
    path.write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
