"""Final models and external cohorts: stored, resumable, addable to a finished run, never fitted on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from resectbench import registry as reg
from resectbench.data.synth import generate_cohort, tiny_cohort
from resectbench.models.base import FitContext, ResectabilityModel
from resectbench.protocol import DataConfig, ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark

#: every fit of the spy recipe: the image files of its training and validation cases
FITS: list[set[str]] = []


class ImageSpy(ResectabilityModel):
    """Predicts from the clinical age; records the image files of every case it is fitted on."""

    uses_validation = False

    def fit(self, train, valid, ctx: FitContext):
        seen = set(train.table["image"])
        if valid is not None:
            seen |= set(valid.table["image"])
        FITS.append(seen)
        x = train.clinical.loc[train.case_ids, "age"].to_numpy(float)
        y = np.asarray(train.labels)
        self.means = np.array([x[y == c].mean() if np.any(y == c) else x.mean() for c in range(3)])
        return self

    def predict_proba(self, cohort, ctx):
        x = cohort.clinical.loc[cohort.case_ids, "age"].to_numpy(float)
        logits = -np.abs(x[:, None] - self.means[None, :]) / 10
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def spy():
    reg.models.get("dummy")  # the built-ins loaded first, so the rollback removes only the spy
    before = reg.snapshot()
    reg.models.register("image-spy", tags=("test",))(ImageSpy)
    FITS.clear()
    yield
    reg.revert(reg.changes_since(before))


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext")
    dev = tiny_cohort(root, n=18, seed=0)
    site_b = root / "site_b"
    generate_cohort(site_b, n=9, seed=3, profile="tiny", workers=1, class_mix=(1, 1, 1))
    site_c = root / "site_c"
    generate_cohort(site_c, n=6, seed=4, profile="tiny", workers=1, class_mix=(1, 1, 1))
    return dev, site_b, site_c


def _config(run_dir, external):
    return ExperimentConfig(
        models=[ModelSpec("dummy"), ModelSpec("image-spy")],
        protocol=ProtocolConfig(outer_folds=3, trials=1),
        data=DataConfig(external=[str(p) for p in external]),
        run_dir=str(run_dir),
    )


def _files(run_dir):
    """Every result file of folds, final models and external cohorts (finalize re-pools oof_* each time)."""
    return {p: p.stat().st_mtime_ns for p in (run_dir / "models").rglob("*") if p.is_file() and "oof_" not in p.name}


def test_external_cohort_scored_by_final_models_and_never_fitted_on(spy, cohorts, tmp_path):
    dev, site_b, site_c = cohorts
    run_dir = tmp_path / "run"
    result = run_benchmark(_config(run_dir, [site_b]), cohort=dev)
    external_images = {str(p) for p in (site_b / "imagesTr").iterdir()}
    dev_images = set(dev.table["image"])
    assert FITS and all(seen <= dev_images and not seen & external_images for seen in FITS)
    # 3 outer folds (the best trial's model scored: cpu profile), then the final model: one tuning trial on
    # the development cohort's inner split and the fit on all of it (image-spy needs no validation)
    assert len(FITS) == 3 + 2 and FITS[-1] == dev_images

    for label in ("dummy", "image-spy"):
        final = run_dir / "models" / label / "final"
        assert (final / "DONE").exists()
        info = json.loads((final / "final.json").read_text())
        assert info["n_development_cases"] == 18 and info["state"]["kind"] == "refit"
        ext = run_dir / "models" / label / "external" / "site_b"
        preds = pd.read_csv(ext / "predictions.csv")
        assert len(preds) == 9 and set(preds["cohort"]) == {"site_b"}
        assert np.allclose(preds[["prob_resectable", "prob_borderline", "prob_locally_advanced"]].sum(axis=1), 1)
        metrics = json.loads((ext / "metrics.json").read_text())
        assert metrics["n_cases"] == 9 and 0 <= metrics["macro_f1"] <= 1
    assert result.manifest["last_session"]["external"].keys() == {"dummy/site_b", "image-spy/site_b"}

    # the same command again computes nothing and rewrites no result
    FITS.clear()
    before = _files(run_dir)
    again = run_benchmark(_config(run_dir, [site_b]), cohort=dev)
    assert FITS == [] and _files(run_dir) == before
    assert again.manifest["last_session"]["external"] == {} and again.ran == []

    # another external cohort added to the finished run: no fold and no tuning again; the stored final
    # model is loaded (a refit recipe is fitted once more on exactly its development cases)
    third = run_benchmark(_config(run_dir, [site_b, site_c]), cohort=dev)
    assert third.ran == [] and FITS == [dev_images]
    assert set(third.manifest["last_session"]["external"]) == {"dummy/site_c", "image-spy/site_c"}
    assert len(pd.read_csv(run_dir / "models" / "image-spy" / "external" / "site_c" / "predictions.csv")) == 6
    unchanged = {p: t for p, t in _files(run_dir).items() if "site_c" not in str(p)}
    assert unchanged == before


def test_final_model_without_external_and_bad_external_named(spy, cohorts, tmp_path):
    dev, _, _ = cohorts
    cfg = _config(tmp_path / "run", [])
    cfg.protocol.final_model = True
    run_benchmark(cfg, cohort=dev)
    assert (tmp_path / "run" / "models" / "image-spy" / "final" / "DONE").exists()
    assert not (tmp_path / "run" / "models" / "image-spy" / "external").exists()
    from resectbench.errors import ResectbenchError

    with pytest.raises(ResectbenchError, match="nowhere.*do not exist"):  # refused before any work
        run_benchmark(_config(tmp_path / "other", [tmp_path / "nowhere"]), cohort=dev)
    assert not (tmp_path / "other").exists()


def test_board_shows_internal_beside_external_in_every_format(spy, cohorts, tmp_path):
    from resectbench.leaderboard import build_leaderboard, load_run
    from resectbench.leaderboard.formats import render

    dev, site_b, _ = cohorts
    run_benchmark(_config(tmp_path / "run", [site_b]), cohort=dev)
    board = build_leaderboard(load_run(tmp_path / "run"), n_boot=200, reference="image-spy")
    assert board.external_cohorts == ["site_b"]
    ext = board.row("image-spy").external["site_b"]
    preds = pd.read_csv(tmp_path / "run" / "models" / "image-spy" / "external" / "site_b" / "predictions.csv")
    metrics = json.loads(
        (tmp_path / "run" / "models" / "image-spy" / "external" / "site_b" / "metrics.json").read_text()
    )
    auc = ext["pooled"]["auc_ovr_macro"]
    assert auc.estimate == pytest.approx(metrics["auc_ovr_macro"]) and auc.low <= auc.estimate <= auc.high
    assert ext["n_cases"] == len(preds) == 9 and ext["ece"] == pytest.approx(metrics["ece"])
    [test] = board.external_comparisons
    assert (test["model"], test["reference"], test["n_cases"]) == ("dummy", "image-spy", 9)
    markdown, latex = render(board, "markdown"), render(board, "latex")
    assert "External validation" in markdown and "site_b" in markdown and "site\\_b" in latex
    assert "External validation" in render(board, "markdown", layout="paper")
    data = json.loads(render(board, "json"))
    row = next(r for r in data["rows"] if r["label"] == "image-spy")
    assert row["external"]["site_b"]["pooled"]["macro_f1"]["estimate"] == pytest.approx(metrics["macro_f1"])


def test_predict_reproduces_the_external_predictions_of_the_final_model(cohorts, tmp_path):
    from typer.testing import CliRunner

    from resectbench.cli.app import build_app

    dev, site_b, _ = cohorts
    cfg = ExperimentConfig(
        models=[ModelSpec("clinical-only", params={"max_epochs": 2})],
        protocol=ProtocolConfig(outer_folds=3, trials=1),
        data=DataConfig(external=[str(site_b)]),
        run_dir=str(tmp_path / "run"),
    )
    run_benchmark(cfg, cohort=dev)
    state = json.loads((tmp_path / "run" / "models" / "clinical-only" / "final" / "state" / "state.json").read_text())
    assert state["kind"] == "weights"
    res = CliRunner().invoke(
        build_app(), ["predict", str(tmp_path / "run" / "clinical-only"), str(site_b), "-o", str(tmp_path / "out")]
    )
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "out" / "predictions.csv").set_index("case_id")
    stored = pd.read_csv(tmp_path / "run" / "models" / "clinical-only" / "external" / "site_b" / "predictions.csv")
    stored = stored.set_index("case_id").loc[got.index]
    cols = ["prob_resectable", "prob_borderline", "prob_locally_advanced"]
    np.testing.assert_allclose(got[cols].to_numpy(), stored[cols].to_numpy(), atol=1e-6)
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert set(findings["cases"]) == set(got.index)
    bad = CliRunner().invoke(
        build_app(),
        ["predict", str(tmp_path / "run" / "clinical-only"), str(tmp_path / "none"), "-o", str(tmp_path / "o2")],
    )
    assert bad.exit_code == 2 and "none" in bad.output


def test_masks_are_resampled_onto_the_input_grid():
    from resectbench.protocol.predict import resample_to

    mask = np.zeros((4, 4, 4), dtype=np.uint8)
    mask[1, 2, 3] = 7
    model_affine = np.diag([2.0, 2.0, 2.0, 1.0])  # 2 mm grid at the origin
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])  # 1 mm input grid, x axis reversed (LPS-like storage)
    flipped[0, 3] = 7.0
    on_input = resample_to(mask, model_affine, (8, 8, 8), flipped)
    # model voxel (1, 2, 3) = world (2, 4, 6) mm = input voxel (7 - 2, 4, 6)
    assert on_input[5, 4, 6] == 7 and on_input.sum() == 7 * (on_input > 0).sum()
    assert on_input[2, 4, 6] == 0


def test_site_option_makes_a_second_site_with_its_own_clinical_coding(tmp_path):
    from typer.testing import CliRunner

    from resectbench.cli.app import build_app
    from resectbench.data import load_cohort

    out = tmp_path / "site-b"
    res = CliRunner().invoke(build_app(), ["data", "synth", str(out), "--site", "site-b", "--n", "3", "--workers", "1"])
    assert res.exit_code == 0, res.output
    raw = pd.read_csv(out / "clinical.csv")
    assert set(raw["sex"]) <= {0, 1}  # stored in the site's coding ...
    dictionary = pd.read_csv(out / "data_dictionary.csv").set_index("variable")
    assert dictionary.loc["sex", "values"] == "0=female; 1=male"
    cohort = load_cohort(out)  # ... and read back in resectbench's through its data dictionary
    assert list(cohort.clinical["sex"]) == ["female" if v == 0 else "male" for v in raw["sex"]]
    assert json.loads((out / "dataset.json").read_text())["labels"]["pdac"] == 13  # its own label numbering
    bad = CliRunner().invoke(build_app(), ["data", "synth", str(tmp_path / "x"), "--site", "site-z"])
    assert bad.exit_code == 1 and "site-z" in bad.output


def test_every_pair_of_models_is_tested_on_each_external_cohort_and_the_report_shows_calibration_drift(
    spy, cohorts, tmp_path
):
    from resectbench.leaderboard import build_leaderboard, load_run
    from resectbench.leaderboard.formats import render
    from resectbench.leaderboard.plots.performance import reliability_external
    from resectbench.leaderboard.plots.style import model_colors
    from resectbench.leaderboard.report import write_report
    from resectbench.leaderboard.stats import delong_ovr_macro_test

    dev, site_b, _ = cohorts
    cfg = _config(tmp_path / "run", [site_b])
    cfg.models.append(ModelSpec("clinical-sklearn"))
    run_benchmark(cfg, cohort=dev)
    runs = load_run(tmp_path / "run")
    board = build_leaderboard(runs, n_boot=200, reference="image-spy")
    ranked = [r.label for r in board.rows if r.label in runs.models]
    pairs = board.external_pairs
    assert [(c["model_a"], c["model_b"]) for c in pairs] == [
        (a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]
    ]  # all three pairs, better-ranked model first
    cols = ["prob_resectable", "prob_borderline", "prob_locally_advanced"]
    for c in pairs:
        pa = runs.models[c["model_a"]].external["site_b"]["predictions"].set_index("case_id")
        pb = runs.models[c["model_b"]].external["site_b"]["predictions"].set_index("case_id").loc[pa.index]
        res = delong_ovr_macro_test(pa[cols].to_numpy(), pb[cols].to_numpy(), pa["label"].to_numpy(int))
        assert c["n_cases"] == 9 and c["cohort"] == "site_b"
        assert c["auc_difference"] == pytest.approx(res.difference) and c["p_auc"] == pytest.approx(res.p_value)
        f1 = [
            json.loads((tmp_path / "run" / "models" / m / "external" / "site_b" / "metrics.json").read_text())[
                "macro_f1"
            ]
            for m in (c["model_a"], c["model_b"])
        ]
        assert c["macro_f1_difference"] == pytest.approx(f1[0] - f1[1])
        assert c["p_auc"] <= c["p_auc_holm"] <= 1
    assert min(c["p_auc_holm"] for c in pairs) == pytest.approx(min(1.0, 3 * min(c["p_auc"] for c in pairs)))
    assert "External cohorts: paired comparisons" in render(board, "markdown")
    assert json.loads(render(board, "json"))["external_pairs"][0]["model_a"] == ranked[0]

    # the reliability diagram: one panel per model, internal beside external, ECE as stored
    fig = reliability_external(runs, ranked, model_colors(ranked, {}))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ranked
    for ax, label in zip(panels, ranked):
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        ece = json.loads((tmp_path / "run" / "models" / label / "external" / "site_b" / "metrics.json").read_text())
        assert legend[0].startswith("internal (ECE ") and legend[1] == f"site_b (ECE {ece['ece']:.3f}, n=9)"
    result = write_report(runs, tmp_path / "report.html", reference="image-spy", n_boot=200, board=board)
    html = (tmp_path / "report.html").read_text()
    assert "calibration_external" in result.figures and result.figures["calibration_external"].exists()
    assert 'id="external"' in html and "Calibration internal vs external" in html and "paired comparisons" in html
    for m in runs.models.values():  # a run without external cohorts: no such figure or section
        m.external = {}
    assert reliability_external(runs, ranked, model_colors(ranked, {})) is None
    plain = write_report(runs, tmp_path / "plain.html", reference="image-spy", n_boot=50)
    assert "calibration_external" not in plain.figures and "calibration_external" not in plain.skipped
    assert 'id="external"' not in plain.html.read_text() and "calibration" in plain.figures


def test_final_models_are_split_between_processes_and_a_held_one_is_waited_for(spy, cohorts, tmp_path):
    import threading

    from resectbench.protocol import run_worker
    from resectbench.protocol.final import finish_models
    from resectbench.protocol.runner import execute, prepare

    dev, _, _ = cohorts
    run_dir = tmp_path / "run"
    cfg = _config(run_dir, [])
    cfg.protocol.final_model = True
    bench = prepare(cfg, cohort=dev)
    execute(bench)  # the outer folds
    final = {label: run_dir / "models" / label / "final" / "DONE" for label in ("dummy", "image-spy")}

    # another live process of the benchmark holds image-spy's final model: left to it
    held = bench.board.try_claim("image-spy", "final")
    assert held is not None
    assert set(finish_models(bench, wait=False)["final"]) == {"dummy"}
    assert final["dummy"].exists() and not final["image-spy"].exists()

    # the run command waits for it; when the holder gives it up (error, Ctrl-C), it fits it itself
    threading.Timer(1.0, held.release).start()
    FITS.clear()
    result = run_benchmark(cfg, cohort=dev)
    assert set(result.manifest["last_session"]["final_models"]) == {"image-spy"} and final["image-spy"].exists()
    assert FITS[-1] == set(dev.table["image"])  # fitted on the development cohort, once tuned

    # a worker on the run directory takes the final models no one holds, and then nothing is left to do
    other = tmp_path / "other"
    cfg2 = _config(other, [])
    cfg2.protocol.final_model = True
    execute(prepare(cfg2, cohort=dev))
    ran = run_worker(other, cohort=dev)
    assert sorted(map(str, ran)) == ["dummy final", "image-spy final"]
    assert all((other / "models" / label / "final" / "DONE").exists() for label in final)
    FITS.clear()
    again = run_benchmark(cfg2, cohort=dev)
    assert FITS == [] and again.manifest["last_session"]["final_models"] == {}
