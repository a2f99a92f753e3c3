"""Measured cost per outer fold of each model, read from finished run directories, for `resectbench list`.

For every model row of each RUN_DIR run with its registry defaults (no fixed parameters), the mean of
``unit_seconds`` (tuning, fitting and scoring one outer fold, as the run's workers measured it) over its
folds goes into ``resectbench/models/fold_costs.json`` under the run's profile, with the run, the number
of worker processes, the machine and the date. Runs of one profile on different machines should not be
mixed: measure on the machine the figures describe.

    .venv/bin/python benchmarks/fold_costs.py runs/main-job runs/other-run --machine "2-core CPU, no GPU"
    .venv/bin/python benchmarks/fold_costs.py --quick      # a tiny run, written to results/fold_costs.quick.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent / "resectbench" / "models" / "fold_costs.json"


def costs_of(run_dir: Path, machine: str) -> tuple[str, dict]:
    """(profile, {model: entry}) of one finished run directory."""
    import tomllib

    config = tomllib.loads((run_dir / "config.toml").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    jobs = (manifest.get("last_session") or {}).get("jobs") or config.get("jobs")
    out = {}
    for spec in config.get("models", []):
        if spec.get("params"):  # a variant: its cost is not the registry model's
            continue
        folds = sorted((run_dir / "models" / spec["label"]).glob("fold_*/timings.json"))
        if not folds:
            continue
        seconds = [json.loads(p.read_text())["unit_seconds"] for p in folds]
        out[spec["name"]] = {
            "seconds_per_fold": round(float(np.mean(seconds)), 1),
            "folds": len(seconds),
            "run": run_dir.name,
            "worker_processes": jobs,
            "machine": machine,
            "measured": (manifest.get("finished") or manifest.get("updated") or "")[:10],
        }
    return config.get("profile", "cpu"), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="finished run directories")
    parser.add_argument("--machine", default="2-core CPU, no GPU", help="where the runs were measured")
    parser.add_argument("--quick", action="store_true", help="a tiny dummy run; writes results/fold_costs.quick.json")
    args = parser.parse_args()
    if args.quick:
        from resectbench.data.synth import tiny_cohort
        from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark

        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            cfg = ExperimentConfig(
                models=[ModelSpec("dummy")],
                profile="cpu-whole",
                run_dir=str(run),
                protocol=ProtocolConfig(outer_folds=3),
            )
            run_benchmark(cfg, cohort=tiny_cohort(Path(tmp) / "data", n=18))
            profile, costs = costs_of(run, args.machine)
        result = {"command": "python benchmarks/fold_costs.py --quick", profile: costs}
        (HERE / "results" / "fold_costs.quick.json").write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
        return
    if not args.runs:
        parser.error("give finished run directories (or --quick)")
    table = json.loads(TABLE.read_text()) if TABLE.exists() else {}
    for run in args.runs:
        profile, costs = costs_of(run, args.machine)
        table.setdefault(profile, {}).update(costs)
    table["_about"] = (
        "mean seconds per outer fold (tuning, fit, scoring) of each model at its registry defaults, from the "
        f"named run; written by benchmarks/fold_costs.py on {time.strftime('%Y-%m-%d')}"
    )
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(json.dumps(table, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
