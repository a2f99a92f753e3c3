"""The HTML report: self-contained, every figure present, and rendered by a real browser (chromium)."""

import base64
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest
from leaderboard_helpers import STANDARD, fabricate_run
from PIL import Image
from typer.testing import CliRunner

from resectbench.cli.app import build_app
from resectbench.leaderboard import load_runs
from resectbench.leaderboard.plots.tuning import parameter_importance
from resectbench.leaderboard.report import write_report

MODELS = {
    "dummy": STANDARD["dummy"],
    "clinical-sklearn": STANDARD["weak"],
    "swinunetr-fusion": (2.0, "swinunetr-fusion", "predicted"),
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs = load_runs([fabricate_run(root / "run", MODELS, n=60)])
    return write_report(runs, root / "out" / "report.html", n_boot=100)


def test_report_is_one_self_contained_file_with_pngs_next_to_it(report):
    html = report.html.read_text()
    assert set(report.figures) == {"folds", "roc", "confusion", "calibration", "contact", "training", "tuning"}
    imgs = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == len(report.figures)
    for name, path in report.figures.items():
        assert path.parent == report.html.parent / "report_figures"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert base64.b64decode(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing fetched from elsewhere: no external src/href, no scripts
    assert not re.search(r'(src|href)="(http|//|/)', html) and "<script" not in html
    for text in (
        'class="board"',
        "swinunetr-fusion",
        "dummy (chance)",
        "ceiling (Bayes-optimal)",
        "Manifest",
        "data-fp-1",
        "split-0",
        'id="paper"',
        "Table 1: method comparison",
    ):
        assert text in html


def test_report_says_what_it_cannot_show(tmp_path):
    runs = load_runs(
        [fabricate_run(tmp_path / "run", {"strong": STANDARD["strong"]}, with_ground_truth=False, trials=1, epochs=0)]
    )
    result = write_report(runs, tmp_path / "r.html", n_boot=50)
    assert set(result.skipped) == {"contact", "training", "tuning"}
    html = result.html.read_text()
    assert "Not shown: the run has no cohort/ground_truth.csv" in html
    assert "no chance row" in html
    assert 'id="paper"' not in html  # no model of the paper's tables in this run


def test_parameter_importance_finds_the_parameter_that_matters():
    rng = np.random.default_rng(0)
    frames = []
    for fold in range(3):
        lr = rng.choice([1e-3, 1e-4], 12)
        width = rng.choice([12, 24, 48], 12)
        value = 0.5 + 0.2 * (lr == 1e-3) + rng.normal(0, 0.01, 12) + 0.1 * fold
        frames.append(
            pd.DataFrame(
                {"number": range(12), "value": value, "state": "COMPLETE", "params_lr": lr, "params_width": width}
            )
        )
    imp = parameter_importance(frames)
    assert imp.index[0] == "lr" and imp["lr"] > 0.9 and imp.sum() == pytest.approx(1.0)
    assert parameter_importance(frames[:1][:0]).empty


def test_report_command(tmp_path):
    run = fabricate_run(tmp_path / "run", {"dummy": STANDARD["dummy"]}, with_ground_truth=False, epochs=0, trials=1)
    res = CliRunner().invoke(
        build_app(), ["report", str(run), "--out", str(tmp_path / "x" / "r.html"), "--bootstrap", "50"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "x" / "r.html").exists() and (tmp_path / "x" / "r_figures" / "roc.png").exists()


def _chromium(*args, timeout=120):
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`; .ci/run installs it)"
)
def test_report_renders_in_headless_chromium(report, tmp_path):
    url = report.html.resolve().as_uri()
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table class="board"' in dom.stdout and dom.stdout.count("<img") >= 5
    assert "swinunetr-fusion" in dom.stdout
    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1400,2200", "--hide-scrollbars", url)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2200, 1400)
    assert pixels.std() > 20  # not a blank page
    # the header band is dark and the body mostly light: the stylesheet was applied
    assert pixels[:40].mean() < 100 and pixels[200:].mean() > 180
    # many distinct grey levels further down: figures (not only text) were painted
    assert len(np.unique(pixels[1200:].astype(int))) > 100


def test_importances_are_optunas_on_the_same_study():
    """The report's importances equal Optuna's fANOVA (seed 0) on the study itself, read back from the trials
    file the run directory keeps."""
    import io

    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    from resectbench.protocol.unit import trials_frame

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        depth = trial.suggest_int("max_depth", 2, 8)
        kind = trial.suggest_categorical("classifier", ["logistic", "forest"])
        return -abs(np.log10(lr) + 2) + 0.01 * depth + (0.05 if kind == "forest" else 0.0)

    study.optimize(objective, n_trials=30)
    stored = io.StringIO(trials_frame(study).to_csv(index=False))  # as trials.csv
    ours = parameter_importance([pd.read_csv(stored)])
    theirs = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    assert list(ours.index) == list(theirs) and ours.index[0] == "lr"
    assert ours.to_numpy() == pytest.approx(np.array(list(theirs.values())) / sum(theirs.values()), abs=1e-9)
