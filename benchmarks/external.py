"""Cost of external validation and of `resectbench predict`.

1. A finished small run (dev cohort: phantoms of the cpu profile, 3 outer folds x 1 trial; models dummy,
   clinical-sklearn and clinical-only, a network recipe) is made first, without final models.
2. A 52-case external cohort of the second phantom style (`data synth --site site-b --n 52`: other
   scanner, LPS storage, other labels, sex coded 0/1) is added with `resectbench run --run-dir RUN
   --external PATH`: timed, split into final model (tune + fit) and external scoring per model (from
   the manifest's last_session), and checked that no fold is recomputed.
3. The same command again: timed, checked that nothing is computed and no result file changes.
4. `resectbench predict RUN/clinical-only CASE -o OUT` on a one-case cohort: wall time of the command
   and the library's own load/read/predict split (findings.json).
5. `predict` with a segmenting model (`predict_segmenting`): a cpu-profile swinunetr-fusion final model
   (24 cpu phantoms, 2 outer folds x 1 trial, the profile's 8 epochs, --final-model) applied to one 160^3
   case at 1 mm: wall time of the command, its parts (load, read, predict, masks = masks placed on the
   input grid + contacts + NCCN rule) and that the mask was written on the input's grid.

    .venv/bin/python benchmarks/external.py                 # dev 60 cases, external 52, then 5.
    .venv/bin/python benchmarks/external.py --predict-only  # only 5., updating external.json's entry
    .venv/bin/python benchmarks/external.py --quick         # tiny phantoms, seconds

Writes benchmarks/results/external.json (external.quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLI = [sys.executable, "-m", "resectbench"]


def sh(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(CLI + args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def files(run: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in (run / "models").rglob("*") if p.is_file() and "oof_" not in p.name}


def predict_segmenting(work: Path, quick: bool) -> dict:
    """5.: a segmenting cpu-whole-profile final model applied to one 160^3 case (tiny phantoms with --quick)."""
    import nibabel as nib

    dev, one, run, pred = work / "seg-dev", work / "seg-one", work / "seg-run", work / "seg-pred"
    profile, n_dev = ("tiny", 24) if quick else ("cpu", 24)
    sh(["data", "synth", str(dev), "--n", str(n_dev), "--profile", profile, "--seed", "3"])
    sh(["data", "synth", str(one), "--n", "1", "--profile", "tiny" if quick else "paper", "--seed", "9"])
    config = work / "seg.toml"
    params = "params = { max_epochs = 1 }\n" if quick else ""  # else the profile's 8 epochs
    config.write_text(f'[[models]]\nname = "swinunetr-fusion"\n{params}')
    t0 = time.perf_counter()
    sh(
        [
            "run",
            "-c",
            str(config),
            "--data",
            str(dev),
            "--outer-folds",
            "2",
            "--trials",
            "1",
            "--final-model",
            "--profile",
            "cpu-whole",  # the recorded figure's input: the whole view (the cpu profile is a cascade now)
            "--run-dir",
            str(run),
            "--no-progress",
        ]
    )
    run_seconds = time.perf_counter() - t0
    wall = sh(["predict", str(run / "swinunetr-fusion"), str(one), "-o", str(pred)])
    findings = json.loads((pred / "findings.json").read_text())
    [(cid, case)] = findings["cases"].items()
    image = nib.load(str(next((one / "imagesTr").glob("*.nii.gz"))))
    mask = nib.load(str(pred / case["mask"]))
    assert mask.shape == image.shape[:3] and (abs(mask.affine - image.affine) < 1e-5).all(), (
        "mask not on the input grid"
    )
    state = json.loads((run / "models" / "swinunetr-fusion" / "final" / "state" / "state.json").read_text())
    return {
        "model": "swinunetr-fusion (cpu-whole profile: 32^3 at 3 mm, feature size 12)",
        "dev_cases": n_dev,
        "segments": state["segment"],
        "input_shape": list(image.shape[:3]),
        "input_spacing_mm": [round(float(z), 3) for z in image.header.get_zooms()[:3]],
        "run_seconds": run_seconds,
        "predict_wall_seconds": wall,
        "predict_parts": findings["timings"],
        "mask_written": case["mask"],
        "mask_labels": sorted(int(v) for v in set(mask.get_fdata().ravel().astype(int))),
        "nccn": case.get("nccn"),
        "contact_deg": case.get("contact_deg"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--predict-only", action="store_true", help="only 5.: update predict_segmenting in the JSON")
    ap.add_argument("--n-dev", type=int, default=60)
    ap.add_argument("--n-external", type=int, default=52)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="resectbench-external-"))
    os.environ.setdefault("RESECTBENCH_CACHE", str(work / "cache"))
    path = RESULTS / ("external.quick.json" if args.quick else "external.json")
    if args.predict_only:
        out = json.loads(path.read_text()) if path.exists() else {}
        out["predict_segmenting"] = predict_segmenting(work, args.quick)
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out["predict_segmenting"], indent=2))
        return
    dev_profile, n_dev, n_ext = ("tiny", 18, 9) if args.quick else ("cpu", args.n_dev, args.n_external)
    out: dict = {"dev_profile": dev_profile, "n_dev": n_dev, "n_external": n_ext, "models": 3}
    dev, ext, one, run = work / "dev", work / "site-b", work / "one-case", work / "run"
    out["synth_dev_seconds"] = sh(["data", "synth", str(dev), "--n", str(n_dev), "--profile", dev_profile])
    if args.quick:
        out["synth_external_seconds"] = sh(["data", "synth", str(ext), "--n", str(n_ext), "--profile", "tiny"])
        sh(["data", "synth", str(one), "--n", "1", "--profile", "tiny", "--seed", "9"])
    else:
        out["synth_external_seconds"] = sh(["data", "synth", str(ext), "--site", "site-b", "--n", str(n_ext)])
        sh(["data", "synth", str(one), "--n", "1", "--profile", "paper", "--seed", "9"])  # one 160^3 case
    base = ["run", "-m", "dummy", "-m", "clinical-sklearn", "-m", "clinical-only", "--data", str(dev)]
    base += ["--outer-folds", "3", "--trials", "1", "--run-dir", str(run), "--no-progress"]
    out["run_seconds"] = sh(base)
    before = files(run)
    out["add_external_seconds"] = sh(["run", "--run-dir", str(run), "--external", str(ext), "--no-progress"])
    manifest = json.loads((run / "manifest.json").read_text())
    session = manifest["last_session"]
    out["add_external_units_recomputed"] = session["units_computed"]
    out["add_external_parts"] = {"final_models": session["final_models"], "external": session["external"]}
    for label in ("dummy", "clinical-sklearn", "clinical-only"):
        t = json.loads((run / "models" / label / "final" / "timings.json").read_text())
        out["add_external_parts"]["final_models"][label].update(
            tune_seconds=t["tune_seconds"], final_fit_seconds=t["final_fit_seconds"]
        )
    assert all(before[p] == t for p, t in files(run).items() if p in before), "a fold result was rewritten"
    after = files(run)
    out["rerun_seconds"] = sh(["run", "--run-dir", str(run), "--external", str(ext), "--no-progress"])
    session = json.loads((run / "manifest.json").read_text())["last_session"]
    out["rerun_computed"] = {
        "units": session["units_computed"],
        "final_models": session["final_models"],
        "external": session["external"],
        "files_changed": sum(after.get(p) != t for p, t in files(run).items()),
    }
    out["predict_wall_seconds"] = sh(["predict", str(run / "clinical-only"), str(one), "-o", str(work / "pred")])
    out["predict_parts"] = json.loads((work / "pred" / "findings.json").read_text())["timings"]
    board = subprocess.run(
        CLI + ["leaderboard", str(run), "-f", "markdown", "--bootstrap", "500"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out["board_external_table"] = board[board.find("External validation") :]
    out["predict_segmenting"] = predict_segmenting(work, args.quick)
    out["work_dir"] = str(work)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "board_external_table"}, indent=2))
    print(out["board_external_table"])


if __name__ == "__main__":
    main()
