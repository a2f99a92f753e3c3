"""End to end: `resectbench run` (dummy, clinical-sklearn) on a tiny phantom cohort, then
`resectbench leaderboard` merging two run directories and `resectbench report`."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.data.synth import tiny_cohort


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    tiny_cohort(root, n=15, seed=0)
    return root, next(root.glob("tiny-cohort-*"))


def _run(app, data, run_dir, *models):
    args = [
        "run",
        "--data",
        str(data),
        "--outer-folds",
        "3",
        "--trials",
        "2",
        "--run-dir",
        str(run_dir),
        "--no-progress",
        "--no-references",  # one model per run: the boards of two runs are merged below
    ]
    for m in models:
        args += ["-m", m]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return run_dir


def test_run_then_leaderboard_and_report(cohort_dir):
    root, data = cohort_dir
    app = build_app()
    a = _run(app, data, root / "run_dummy", "dummy")
    b = _run(app, data, root / "run_clinical", "clinical-sklearn")
    runner = CliRunner()
    res = runner.invoke(app, ["leaderboard", str(a), str(b), "-f", "json", "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    board = json.loads(res.output)
    rows = {r["label"]: r for r in board["rows"]}
    assert set(rows) == {"dummy", "clinical-sklearn", "ceiling (Bayes-optimal)"}
    assert rows["dummy"]["kind"] == "chance" and rows["dummy"]["n_folds"] == 3
    # fold means equal the protocol's own per-fold metrics.json
    folds = [
        json.loads(p.read_text())["macro_f1"] for p in sorted(b.glob("models/clinical-sklearn/fold_*/metrics.json"))
    ]
    assert rows["clinical-sklearn"]["mean"]["macro_f1"] == pytest.approx(sum(folds) / len(folds))
    # pooled accuracy equals the accuracy of the protocol's oof_predictions.csv
    oof = pd.read_csv(b / "models/clinical-sklearn/oof_predictions.csv")
    assert rows["clinical-sklearn"]["pooled"]["accuracy"]["estimate"] == pytest.approx(
        (oof["pred"] == oof["label"]).mean()
    )
    assert board["reference"] == "clinical-sklearn" and len(board["comparisons"]) == 1

    out = root / "report" / "report.html"
    res = runner.invoke(app, ["report", str(a), str(b), "--out", str(out), "--bootstrap", "100"])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "clinical-sklearn" in html and 'id="fig-contact"' in html and "data:image/png;base64," in html


def test_leaderboard_refuses_runs_with_other_splits(cohort_dir):
    root, data = cohort_dir
    app = build_app()
    a = root / "run_dummy"
    if not a.exists():
        _run(app, data, a, "dummy")
    other = root / "run_other_seed"
    res = CliRunner().invoke(
        app,
        [
            "run",
            "--data",
            str(data),
            "--outer-folds",
            "3",
            "--trials",
            "1",
            "--seed",
            "7",
            "--run-dir",
            str(other),
            "--no-progress",
            "-m",
            "dummy",
        ],
    )
    assert res.exit_code == 0, res.output
    bad = CliRunner().invoke(app, ["leaderboard", str(a), str(other)])
    assert bad.exit_code == 2 and "split fingerprints differ" in bad.output
