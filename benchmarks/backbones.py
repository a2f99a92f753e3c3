"""Per-backbone cost at the CPU profile: parameters, train step and inference time per volume, peak memory.

Every built-in backbone is built as a recipe would build it at the ``cpu`` profile (ROI, Swin
feature size, 16 segmentation classes, 256-d embedding; group norm below 64^3) and timed on
random volumes: a training step is forward + segmentation loss (CE + Dice + focal, when the
backbone segments) + an embedding term + backward + AdamW step; inference is a no-grad forward.
Each configuration runs in a fresh process, so its peak resident memory (``ru_maxrss``) is its
own. Variants tried on the CPU path: torch threads (2 vs 1), ``channels_last_3d`` memory format,
bf16 autocast; plus the fp32 baseline at 64^3 for scale.

``--segmenter`` also measures the fold-level segmenter (:func:`resectbench.models.segmenter.train_segmenter`)
on the embedded cpu cohort: trained on a stratified 80 % (seed 0), per-structure Dice on the other
20 % and training time, for each ``--seg-epochs`` value (``--quick`` always runs it on the tiny test
cohort for 1 epoch, so it cannot rot).

    .venv/bin/python benchmarks/backbones.py [--quick] [--only cnn3d,tat] [--steps 3]
    .venv/bin/python benchmarks/backbones.py --segmenter --no-timing --seg-epochs 6,20
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

BACKBONES = ("swin-unetr", "cnn3d", "vit3d", "timm-2.5d", "tat")
VARIANTS = {  # name -> (threads, channels_last, bf16)
    "fp32-2thr": (2, False, False),
    "fp32-1thr": (1, False, False),
    "channels_last-2thr": (2, True, False),
    "bf16-2thr": (2, False, True),
}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(job: dict) -> dict:
    """Runs in a fresh process: build, time train steps and inference, report peak memory."""
    import torch

    from resectbench.losses import SegmentationLoss
    from resectbench.registry import backbones

    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    roi, batch = tuple(job["roi"]), job["batch"]
    kwargs = {"in_channels": 1, "roi": roi, "n_seg_classes": 16, "embed_dim": 256}
    entry = backbones.get(job["name"])
    if "feature_size" in entry.parameters():
        kwargs["feature_size"] = job["feature_size"]
    if "norm_name" in entry.parameters() and min(roi) < 64:
        kwargs["norm_name"] = "group"
    net = backbones.create(job["name"], **kwargs)
    params = sum(p.numel() for p in net.parameters())
    x = torch.randn(batch, 1, *roi)
    target = torch.randint(0, 16, (batch, *roi))
    if job["channels_last"]:
        try:
            net = net.to(memory_format=torch.channels_last_3d)
            x = x.contiguous(memory_format=torch.channels_last_3d)
        except RuntimeError as exc:  # 2D (timm) weights have no 3D channels-last layout
            return {**job, "error": f"channels_last_3d not applicable: {str(exc).splitlines()[0]}"}
    seg_loss = SegmentationLoss()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=job["bf16"])
    rss_built = _rss_mb()

    def train_step():
        net.train()
        with autocast:
            out = net(x)
        loss = out.embedding.float().pow(2).mean()
        if out.seg_logits is not None:
            loss = loss + seg_loss(out.seg_logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer():
        net.eval()
        with autocast:
            net(x)

    timings = {}
    for label, fn in (("train", train_step), ("infer", infer)):
        for _ in range(job["warmup"]):
            fn()
        times = []
        for _ in range(job["steps"]):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        timings[label] = statistics.median(times) / batch
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        **job,
        "params_M": params / 1e6,
        "train_s_per_volume": timings["train"],
        "infer_s_per_volume": timings["infer"],
        "peak_rss_mb": peak,
        "peak_over_model_mb": peak - rss_built,
        "segments": bool(net.segments),
    }


def run_job(job: dict) -> dict:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        try:
            return pool.apply(measure, (job,))
        except Exception as exc:  # report and go on with the other backbones
            return {**job, "error": f"{type(exc).__name__}: {exc}"}


def segmenter_quality(quick: bool, epochs_list: list[int], backbone: str = "cnn3d") -> list[dict]:
    """Held-out Dice of the fold-level segmenter per training length."""
    import tempfile

    import numpy as np
    import pandas as pd
    import torch
    from sklearn.model_selection import train_test_split

    from resectbench.models.base import FitContext
    from resectbench.models.segmenter import train_segmenter
    from resectbench.profiles import get_profile

    torch.set_num_threads(2)
    tmp = tempfile.TemporaryDirectory(prefix="bench-segmenter-")
    if quick:
        from resectbench.data.synth import tiny_cohort

        cohort, epochs_list = tiny_cohort(Path(tmp.name) / "data", n=9), [1]
    else:
        from resectbench.data import default_cohort

        cohort = default_cohort(profile="cpu", seed=0)
    train_ids, test_ids = train_test_split(
        cohort.case_ids, test_size=0.2 if not quick else 3, stratify=None if quick else cohort.labels, random_state=0
    )
    train, test = cohort.subset(train_ids), cohort.subset(test_ids)
    ctx = FitContext(seed=0, profile=get_profile("cpu-whole"), cache_dir=Path(tmp.name) / "cache")
    rows = []
    for epochs in epochs_list:
        t0 = time.perf_counter()
        seg = train_segmenter(train, ctx, backbone=backbone, epochs=epochs, cache=False)
        seconds = time.perf_counter() - t0
        dice = pd.DataFrame(seg.dice(test)).T  # cases x structures (NaN where a structure is absent)
        row = {
            "backbone": backbone,
            "epochs": epochs,
            "n_train": len(train),
            "n_test": len(test),
            "train_seconds": seconds,
            "final_train_tumor_dice": seg.history[-1]["tumor_dice"],
            "test_dice": {k: float(v) for k, v in dice.mean().items() if np.isfinite(v)},
        }
        print(
            f"segmenter {backbone} {epochs} epochs: {seconds:.0f} s; held-out Dice "
            + ", ".join(f"{k} {v:.2f}" for k, v in row["test_dice"].items()),
            flush=True,
        )
        rows.append(row)
    tmp.cleanup()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one step, baseline variant only (smoke test)")
    ap.add_argument("--only", default="", help="comma-separated backbone names")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per measurement (median reported)")
    ap.add_argument("--segmenter", action="store_true", help="also measure the segmenter's held-out Dice")
    ap.add_argument("--seg-epochs", default="6,20", help="comma-separated training lengths for --segmenter")
    ap.add_argument("--no-timing", action="store_true", help="skip the per-backbone timings")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants to time")
    ap.add_argument("--no-64", action="store_true", help="skip the fp32 baseline at 64^3")
    ap.add_argument("--tag", default="", help="write results/backbones-TAG.json (partial runs side by side)")
    args = ap.parse_args(argv)

    from resectbench.profiles import get_profile

    profile = get_profile("cpu-whole")
    names = [] if args.no_timing else [n for n in (args.only.split(",") if args.only else BACKBONES) if n]
    roi, batch = tuple(profile.roi), profile.batch_size
    jobs = []
    for name in names:
        base = {"name": name, "feature_size": profile.feature_size, "warmup": 1, "steps": args.steps}
        if args.quick:
            jobs.append(
                {
                    **base,
                    "variant": "fp32-2thr",
                    "roi": list(roi),
                    "batch": 1,
                    "threads": 2,
                    "channels_last": False,
                    "bf16": False,
                    "warmup": 0,
                    "steps": 1,
                }
            )
            continue
        for variant in [v for v in args.variants.split(",") if v]:
            threads, channels_last, bf16 = VARIANTS[variant]
            jobs.append(
                {
                    **base,
                    "variant": variant,
                    "roi": list(roi),
                    "batch": batch,
                    "threads": threads,
                    "channels_last": channels_last,
                    "bf16": bf16,
                }
            )
        if not args.no_64:
            jobs.append(
                {
                    **base,
                    "variant": "fp32-2thr",
                    "roi": [64, 64, 64],
                    "batch": 2,
                    "threads": 2,
                    "channels_last": False,
                    "bf16": False,
                    "steps": max(1, args.steps - 1),
                }
            )

    rows = []
    for i, job in enumerate(jobs, 1):
        row = run_job(job)
        rows.append(row)
        if "error" in row:
            print(
                f"[{i}/{len(jobs)}] {job['name']:<11} {job['variant']:<19} roi {job['roi'][0]}^3: {row['error']}",
                flush=True,
            )
        else:
            print(
                f"[{i}/{len(jobs)}] {job['name']:<11} {job['variant']:<19} roi {job['roi'][0]}^3 b{job['batch']}: "
                f"{row['params_M']:.2f} M params, train {row['train_s_per_volume']:.3f} s/vol, "
                f"infer {row['infer_s_per_volume']:.3f} s/vol, peak {row['peak_rss_mb']:.0f} MB",
                flush=True,
            )

    best = {}
    for name in names:
        ok = [r for r in rows if r["name"] == name and "error" not in r and tuple(r["roi"]) == roi]
        if ok:
            fastest = min(ok, key=lambda r: r["train_s_per_volume"])
            base = next((r for r in ok if r["variant"] == "fp32-2thr"), fastest)
            best[name] = {
                "fastest_train_variant": fastest["variant"],
                "speedup_vs_fp32_2thr": base["train_s_per_volume"] / fastest["train_s_per_volume"],
            }
    print("\nFastest training variant per backbone at the cpu-whole profile ROI:")
    for name, b in best.items():
        print(f"  {name:<11} {b['fastest_train_variant']:<19} x{b['speedup_vs_fp32_2thr']:.2f} vs fp32-2thr")

    import torch

    segmenter = (
        segmenter_quality(args.quick, [int(e) for e in args.seg_epochs.split(",")])
        if args.segmenter or args.quick
        else None
    )
    result = {
        "profile": profile.name,
        "roi": list(roi),
        "batch": batch,
        "rows": rows,
        "best": best,
        "segmenter": segmenter,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "torch": torch.__version__,
            "processor": platform.processor(),
        },
    }
    name = "backbones-segmenter" if args.no_timing else "backbones"
    name += f"-{args.tag}" if args.tag else ""
    out = Path(__file__).resolve().parent / "results" / (f"{name}.quick.json" if args.quick else f"{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"\nwrote {out}")
    return 0 if all("error" not in r or "not applicable" in r["error"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
