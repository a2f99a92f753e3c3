"""Preprocessing throughput: cases/s cold (load + reorient + resample + clip + crop + z-score + write
cache) vs cached (read back), and peak resident memory, at the profile's ROI.

    .venv/bin/python benchmarks/preprocess.py [--quick] [--profile cpu-whole] [--n 40]

Prints a table and writes benchmarks/results/preprocess.json (preprocess.quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--profile", default="cpu-whole")
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from resectbench.data import load_cohort
    from resectbench.data.images import ImageConfig, VolumeStore
    from resectbench.data.synth import generate_cohort

    data_profile = "tiny" if args.quick else args.profile
    n = 6 if args.quick else args.n
    configs = {"profile-roi": ImageConfig.from_profile("cpu-whole" if args.quick else args.profile)}
    if not args.quick and args.profile == "cpu-whole":
        configs["64^3@1.5mm"] = ImageConfig(target_spacing=(1.5, 1.5, 1.5), roi=(64, 64, 64))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_cohort(Path(tmp) / "c", n=n, seed=0, profile=data_profile, workers=2)
        cohort = load_cohort(Path(tmp) / "c")
        # warm-up (imports, MONAI/torch first-call costs) into a throwaway cache, not timed
        VolumeStore(Path(tmp) / "warmup", next(iter(configs.values()))).get(cohort.subset(cohort.case_ids[:1]))
        for name, cfg in configs.items():
            store = VolumeStore(Path(tmp) / f"cache-{name.replace('^', '').replace('@', '-')}", cfg)
            before = _peak_mb()
            t = time.perf_counter()
            store.get(cohort)
            cold = time.perf_counter() - t
            t = time.perf_counter()
            again = VolumeStore(store.dir.parent, cfg)
            again.get(cohort)
            warm = time.perf_counter() - t
            rows.append(
                {
                    "config": name,
                    "roi": list(cfg.roi),
                    "target_spacing": list(cfg.target_spacing),
                    "cases": n,
                    "cold_cases_per_s": n / cold,
                    "cached_cases_per_s": n / warm,
                    "cold_s": cold,
                    "cached_s": warm,
                    "cache_hits": again.stats["hits"],
                    "peak_rss_mb": _peak_mb(),
                    "peak_rss_before_mb": before,
                }
            )
    print(f"{'config':12} {'cases':>5} {'cold c/s':>9} {'cached c/s':>11} {'speed-up':>9} {'peak MB':>8}")
    for r in rows:
        print(
            f"{r['config']:12} {r['cases']:5d} {r['cold_cases_per_s']:9.1f} {r['cached_cases_per_s']:11.1f} "
            f"{r['cached_cases_per_s'] / r['cold_cases_per_s']:9.1f} {r['peak_rss_mb']:8.0f}"
        )
    out = ROOT / "benchmarks" / "results" / ("preprocess.quick.json" if args.quick else "preprocess.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "rows": rows,
                "data_profile": data_profile,
                "cpu_count": os.cpu_count(),
                "machine": platform.platform(),
                "load_avg": os.getloadavg(),
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
