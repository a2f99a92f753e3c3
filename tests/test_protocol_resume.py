"""Resume, determinism, refit and pruning of the protocol on an in-memory cohort."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
from protocol_helpers import Recorder, config, results, table_cohort

from resectbench.protocol import run_benchmark


class CrashAfter(Recorder):
    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def unit_finished(self, unit, metrics):
        super().unit_finished(unit, metrics)
        if len(self.of("unit_finished")) == self.n:
            raise KeyboardInterrupt("simulated crash")


def test_resume_after_a_crash_gives_the_same_results(tmp_path, toy_plugins):
    cohort = table_cohort(45)
    clean = tmp_path / "clean"
    run_benchmark(config(clean, "dummy", "marker-centroids", trials=3), cohort=cohort)

    crashed = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config(crashed, "dummy", "marker-centroids", trials=3), CrashAfter(4), cohort=cohort)
    assert len(list(crashed.glob("models/*/fold_*/DONE"))) == 4
    second = Recorder()
    result = run_benchmark(config(crashed, "dummy", "marker-centroids", trials=3), second, cohort=cohort)
    assert len(second.of("unit_skipped")) == 4 and len(second.of("unit_started")) == 2  # nothing redone
    assert result.manifest["resumed"] and result.manifest["finished"]
    assert results(crashed) == results(clean)


def test_resume_continues_an_interrupted_study(tmp_path, toy_plugins):
    """A crash in the middle of a unit's tuning: the study keeps its trials and samples on identically."""

    class CrashInTrial(Recorder):
        def trial_finished(self, unit, trial, value, state):
            if unit.fold == 1 and trial == 2:
                raise KeyboardInterrupt("simulated crash in a study")

    cohort = table_cohort(45)
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    run_benchmark(config(clean, "marker-centroids", trials=4), cohort=cohort)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config(crashed, "marker-centroids", trials=4), CrashInTrial(), cohort=cohort)
    study = optuna.load_study(
        study_name="crashed::marker-centroids::fold_0_1", storage=f"sqlite:///{crashed}/optuna.db"
    )
    assert len(study.trials) == 3
    run_benchmark(config(crashed, "marker-centroids", trials=4), cohort=cohort)
    assert len(study.trials) == 4  # continued, not restarted
    assert results(crashed) == results(clean)


def test_same_seed_same_results_and_another_seed_other_splits(tmp_path, toy_plugins):
    cohort = table_cohort(45)
    run_benchmark(config(tmp_path / "a", "marker-centroids", seed=7), cohort=cohort)
    run_benchmark(config(tmp_path / "b", "marker-centroids", seed=7), cohort=cohort)
    assert results(tmp_path / "a") == results(tmp_path / "b")
    run_benchmark(config(tmp_path / "c", "marker-centroids", seed=8), cohort=cohort)
    split = lambda d: json.loads((tmp_path / d / "splits.json").read_text())["fingerprint"]  # noqa: E731
    assert split("a") == split("b") != split("c")


def test_refit_and_reuse_of_the_best_trial(tmp_path, toy_plugins):
    cohort = table_cohort(45)
    run_benchmark(config(tmp_path / "reuse", "marker-centroids", refit=False), cohort=cohort)
    fits_reuse = len([e for e in toy_plugins.LOG if e["event"] == "fit"])
    toy_plugins.LOG.clear()
    run_benchmark(config(tmp_path / "refit", "marker-centroids", refit=True), cohort=cohort)
    fits_refit = len([e for e in toy_plugins.LOG if e["event"] == "fit"])
    assert (fits_reuse, fits_refit) == (6, 9)  # one fit fewer per fold
    timing = json.loads((tmp_path / "reuse/models/marker-centroids/fold_0_0/timings.json").read_text())
    assert timing["reused_trial"] is not None and timing["refit"] is False
    # a deterministic recipe that early-stops on the inner validation split: the same model either way
    assert results(tmp_path / "reuse") == results(tmp_path / "refit")


def test_pruning_and_epoch_progress(tmp_path, toy_plugins):
    recorder = Recorder()
    run_benchmark(config(tmp_path / "run", "epoch-toy", outer_folds=2, trials=8), recorder, cohort=table_cohort(45))
    trials = pd.concat([pd.read_csv(p) for p in (tmp_path / "run").glob("models/*/fold_*/trials.csv")])
    assert (trials.state == "PRUNED").any() and (trials.state == "COMPLETE").any()
    assert recorder.of("epoch")


def test_inner_kfold_with_wilcoxon_pruner(tmp_path, toy_plugins):
    run = tmp_path / "run"
    run_benchmark(config(run, "marker-centroids", inner="kfold", inner_folds=3, trials=3), cohort=table_cohort(45))
    splits = json.loads((run / "splits.json").read_text())
    assert splits["inner_mode"] == "kfold" and all(len(o["inner"]) == 3 for o in splits["outer"])
    assert len(list(run.glob("models/*/fold_*/DONE"))) == 3
