"""The protocol end to end on an in-memory cohort: results format, leakage, failures, config errors."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import optuna
import pandas as pd
import pytest
from protocol_helpers import Recorder, config, table_cohort

from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolError, run_benchmark
from resectbench.protocol.splits import make_splits
from resectbench.protocol.store import PREDICTION_COLUMNS


def test_run_writes_the_results_format(tmp_path, toy_plugins):
    cohort = table_cohort(45)
    run = tmp_path / "run"
    result = run_benchmark(config(run, "dummy", "marker-centroids"), cohort=cohort)

    manifest = json.loads((run / "manifest.json").read_text())
    for key in (
        "config",
        "profile",
        "data_fingerprint",
        "split_fingerprint",
        "seeds",
        "versions",
        "git_sha",
        "created",
        "finished",
        "cohort",
        "cache",
        "last_session",
    ):
        assert key in manifest, key
    assert manifest["data_fingerprint"] == cohort.fingerprint and manifest["finished"]
    assert manifest["cohort"]["class_counts"] == {"resectable": 22, "borderline": 14, "locally_advanced": 9}
    splits = json.loads((run / "splits.json").read_text())
    assert splits["fingerprint"] == manifest["split_fingerprint"] and len(splits["outer"]) == 3
    # the written config runs again as it is
    assert (
        ExperimentConfig.from_toml(run / "config.toml").resolved()
        == config(run, "dummy", "marker-centroids").resolved()
    )
    assert (run / "cohort" / "cases.csv").exists() and (run / "optuna.db").exists()

    for label in ("dummy", "marker-centroids"):
        model_dir = run / "models" / label
        info = json.loads((model_dir / "model.json").read_text())
        assert info["recipe"] == label and info["mask_source"] == "none"
        for k in range(3):
            unit = model_dir / f"fold_0_{k}"
            assert (unit / "DONE").exists()
            preds = pd.read_csv(unit / "predictions.csv")
            assert list(preds.columns) == PREDICTION_COLUMNS
            assert set(preds.case_id) == set(splits["outer"][k]["test"])
            metrics = json.loads((unit / "metrics.json").read_text())
            for key in (
                "auc_ovr_macro",
                "macro_f1",
                "accuracy",
                "balanced_accuracy",
                "f1_resectable",
                "confusion_matrix",
                "ece",
                "brier",
                "n_parameters",
                "train_seconds",
                "infer_seconds_per_case",
            ):
                assert key in metrics, key
            assert np.array(metrics["confusion_matrix"]).sum() == len(preds)
            assert json.loads((unit / "timings.json").read_text())["recipe_seconds"] >= 0
        oof = pd.read_csv(model_dir / "oof_predictions.csv")
        assert sorted(oof.case_id) == sorted(cohort.case_ids)
        assert (model_dir / "oof_metrics.json").exists()

    # trial 0 is the recipe's defaults; a recipe with nothing to tune runs a single trial
    trials = pd.read_csv(run / "models/marker-centroids/fold_0_0/trials.csv")
    assert len(trials) == 2 and trials.loc[0, "params_shrink"] == 0.0 and trials.loc[0, "params_temperature"] == 1.0
    assert len(pd.read_csv(run / "models/dummy/fold_0_0/trials.csv")) == 1
    # the signal in the data is found; chance stays at chance
    summary = result.summary.set_index("model")
    assert summary.loc["marker-centroids", "macro_f1_mean"] > summary.loc["dummy", "macro_f1_mean"] + 0.2
    assert summary.loc["dummy", "auc_ovr_macro_mean"] == pytest.approx(0.5)


def test_no_leakage_fits_see_only_outer_training_cases(tmp_path, toy_plugins):
    cohort = table_cohort(45)
    run = tmp_path / "run"
    run_benchmark(config(run, "marker-centroids", trials=3, refit=True), cohort=cohort)
    manifest = json.loads((run / "manifest.json").read_text())
    splits = json.loads((run / "splits.json").read_text())["outer"]
    outer_by_seed = {manifest["seeds"]["fit"][f"fold_{o['repeat']}_{o['fold']}"]: o for o in splits}
    fits = [e for e in toy_plugins.LOG if e["event"] == "fit"]
    assert len(fits) == 3 * (3 + 1)  # 3 trials + the refit per fold
    for fit in fits:
        outer = outer_by_seed[fit["seed"]]
        seen = set(fit["train"]) | set(fit["valid"] or [])
        assert seen <= set(outer["train"]) and not seen & set(outer["test"])


def test_fitted_statistics_do_not_depend_on_test_cases(tmp_path, toy_plugins):
    """Changing the outer-test cases' data changes nothing that is fitted (same splits given)."""
    from resectbench.models.base import FitContext
    from resectbench.protocol.events import Unit
    from resectbench.protocol.tuning import Tuner, make_study
    from resectbench.registry import models

    cohort = table_cohort(45)
    outer = make_splits(cohort.case_ids, cohort.labels, outer_folds=3, seed=0).outer[0]
    changed = table_cohort(45)
    changed.clinical.loc[list(outer.test), "marker"] = 100.0  # wildly different test data

    def tune(c):
        toy_plugins.LOG.clear()
        tuner = Tuner(
            entry=models.get("marker-centroids"),
            fixed={},
            unit=Unit("m", 0, 0),
            outer=outer,
            cohort=c,
            ctx=FitContext(seed=1),
        )
        best = tuner.run(
            make_study(optuna.storages.InMemoryStorage(), "s", seed=1, inner="holdout", pruning=True), 4, None, 1
        )
        return best.params, [e["centroids"] for e in toy_plugins.LOG if e["event"] == "fit"]

    assert tune(cohort) == tune(changed)


def test_refuses_to_resume_with_other_data(tmp_path, toy_plugins):
    run = tmp_path / "run"
    run_benchmark(config(run, "dummy"), cohort=table_cohort(45, seed=0))
    with pytest.raises(ProtocolError, match="different data"):
        run_benchmark(config(run, "dummy"), cohort=table_cohort(45, seed=1))


def test_failing_configurations_fail_their_trial_not_the_benchmark(tmp_path, toy_plugins):
    class Failures(Recorder):
        def trial_failed(self, unit, trial, error):
            self.events.append(("trial_failed", unit, trial, error))

    recorder = Failures()
    # defaults (shrink 0) work; sampled shrink > 0.3 raises
    run_benchmark(
        config(tmp_path / "some", ModelSpec("broken", params={"fail_above": 0.3}), trials=4),
        recorder,
        cohort=table_cohort(45),
    )
    trials = pd.concat([pd.read_csv(p) for p in (tmp_path / "some").glob("models/*/fold_*/trials.csv")])
    failed = trials[trials.state == "FAIL"]
    assert len(failed) and failed.error.str.contains("broken on purpose").all()
    assert len(recorder.of("trial_failed")) == len(failed)
    assert len(list((tmp_path / "some").glob("models/*/fold_*/DONE"))) == 3
    with pytest.raises(ProtocolError, match="no tuning trial completed.*broken on purpose"):
        run_benchmark(config(tmp_path / "all", "broken"), cohort=table_cohort(45))


def test_config_errors_are_clear(tmp_path, toy_plugins):
    with pytest.raises(Exception, match="unknown models 'nope'.*Available:.*dummy"):
        run_benchmark(config(tmp_path / "r", "nope"), cohort=table_cohort(45))
    with pytest.raises(ProtocolError, match="no parameter"):
        run_benchmark(config(tmp_path / "r", ModelSpec("dummy", params={"C": 1})), cohort=table_cohort(45))
    with pytest.raises(ProtocolError, match="selection_metric"):
        run_benchmark(config(tmp_path / "r", "dummy", selection_metric="f2"), cohort=table_cohort(45))
    with pytest.raises(ProtocolError, match="journal file"):
        run_benchmark(
            ExperimentConfig(models=[ModelSpec("dummy")], run_dir=str(tmp_path / "r"), storage="not-a-url"),
            cohort=table_cohort(45),
        )


def test_toml_experiment_file(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(
        textwrap.dedent("""
        name = "bench"
        models = ["dummy"]
        [protocol]
        outer_folds = 4
        timeout = 0
        [data]
        path = ""
    """)
    )
    cfg = ExperimentConfig.from_toml(path)
    assert cfg.name == "bench" and cfg.models[0].name == "dummy" and cfg.protocol.outer_folds == 4
    assert cfg.protocol.timeout is None and cfg.data.path is None
    path.write_text("[protocol]\nouter_fold = 4\n")
    with pytest.raises(ProtocolError, match=r"unknown key\(s\) outer_fold in \[protocol\]"):
        ExperimentConfig.from_toml(path)
