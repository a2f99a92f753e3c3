"""Run events as a plugin hook (``run_event``) and the MLflow logger on it (resectbench/tracking/)."""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from protocol_helpers import results, table_cohort

from resectbench import hookimpl
from resectbench.data.synth import tiny_cohort
from resectbench.plugins import PluginWarning, plugin_manager
from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, RunListener, run_benchmark
from resectbench.protocol.store import dumps_json


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return tiny_cohort(tmp_path_factory.mktemp("tracking"), n=18)


@pytest.fixture
def mlflow_on(monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("RESECTBENCH_MLFLOW", "run-dir")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this test's own client (MLflow 3)


@pytest.fixture
def registered():
    """Registers plugin objects on the plugin manager for one test."""
    added = []

    def register(plugin, name):
        plugin_manager().register(plugin, name=name)
        added.append(plugin)
        return plugin

    yield register
    for plugin in added:
        if plugin_manager().is_registered(plugin):
            plugin_manager().unregister(plugin)


class Collector:
    def __init__(self):
        self.payloads: list[dict] = []

    @hookimpl
    def run_event(self, event, payload):
        self.payloads.append(payload)


class Meddler:
    """Empties every dict and list it is given, and raises at the end of the first unit."""

    @hookimpl
    def run_event(self, event, payload):
        for value in payload.values():
            if isinstance(value, (dict, list)):
                value.clear()
        if event == "unit_finished":
            raise ConnectionError("tracking server down")


def experiment(run_dir: Path, *models, **protocol) -> ExperimentConfig:
    return ExperimentConfig(
        models=[ModelSpec(m) for m in models],
        protocol=ProtocolConfig(**{"outer_folds": 3, "trials": 2, **protocol}),
        run_dir=str(run_dir),
    )


def mlflow_runs(run_dir: Path) -> tuple:
    """MLflow's own client on the run directory's store, and the runs in it by (model, unit folder)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient((run_dir / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name(run_dir.name)  # the benchmark's name: the run dir's by default
    return client, {
        (r.data.tags["model"], r.info.run_name.split()[-1]): r for r in client.search_runs([exp.experiment_id])
    }


def histories(run_dir: Path) -> dict:
    return {str(p.relative_to(run_dir)): p.read_text() for p in run_dir.glob("models/*/fold_*/history.csv")}


def unit_dirs(run_dir: Path) -> dict:
    return {(d.parent.name, d.name): d for d in run_dir.glob("models/*/fold_*")}


def test_the_mlflow_store_holds_each_unit_with_the_numbers_of_the_run_directory(tmp_path, cohort, mlflow_on):
    run = tmp_path / "run"
    run_benchmark(experiment(run, "dummy", "clinical-sklearn"), cohort=cohort)
    client, runs = mlflow_runs(run)
    units = unit_dirs(run)
    assert len(units) == 6 and set(runs) == set(units)
    for (label, key), folder in units.items():
        r = runs[label, key]
        metrics = json.loads((folder / "metrics.json").read_text())
        params = json.loads((folder / "best_params.json").read_text())
        timings = json.loads((folder / "timings.json").read_text())
        assert r.info.status == "FINISHED"
        assert r.data.params == {k: str(v) for k, v in params.items()}
        # flat keys: the test metrics; keys with "/" are curves (trials' inner scores, epochs)
        flat = {k: v for k, v in r.data.metrics.items() if "/" not in k}
        assert flat == {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        assert {"model": label, "fold": key.split("_")[-1], "profile": "cpu", "worker": timings["worker"]}.items() <= (
            r.data.tags.items()
        )
        assert r.data.tags["resectbench_version"]
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"predictions.csv", "history.csv", "metrics.json"} <= artifacts
        inner = client.get_metric_history(r.info.run_id, "trials/inner_value")
        assert sorted(m.step for m in inner) == list(range(metrics["n_trials"]))


def test_a_plugin_receives_the_run_events_in_order(tmp_path, toy_plugins, registered):
    collector = registered(Collector(), "collector")
    run = tmp_path / "run"
    run_benchmark(experiment(run, "epoch-toy", outer_folds=2), cohort=table_cohort(30))
    payloads = collector.payloads
    events = " ".join(p["event"] for p in payloads)
    unit = r"unit_started( trial_started( epoch)* trial_finished)+ unit_finished"
    assert re.fullmatch(rf"run_started( {unit})+ run_finished", events), events
    assert payloads[-1]["status"] == "finished" and {p["run_dir"] for p in payloads} == {str(run)}
    assert [u["key"] for u in payloads[-1]["units"]] == ["fold_0_0", "fold_0_1"]
    last, last_fit = None, None
    for p in payloads:  # epochs of one fit count up from 0
        if p["event"] == "epoch":
            assert p["epoch"] == (last + 1 if last_fit == (p["key"], p["trial"]) else 0)
            last, last_fit = p["epoch"], (p["key"], p["trial"])
        else:
            last, last_fit = None, None
    for p in payloads:
        if p["event"] == "unit_finished":
            folder = run / "models" / "epoch-toy" / p["key"]
            assert json.loads(dumps_json(p["metrics"])) == json.loads((folder / "metrics.json").read_text())
            assert p["params"] == json.loads((folder / "best_params.json").read_text())
            assert p["files"] and all(Path(f).parent == folder for f in p["files"])


def test_epoch_curves_are_step_metrics(tmp_path, toy_plugins, mlflow_on):
    run = tmp_path / "run"
    run_benchmark(experiment(run, "epoch-toy", outer_folds=2), cohort=table_cohort(30))
    client, runs = mlflow_runs(run)
    assert len(runs) == 2
    for (label, key), r in runs.items():
        folder = run / "models" / label / key
        # the final model's curve (history.csv) is that of the refit, or of the trial it reused
        timings = json.loads((folder / "timings.json").read_text())
        fit = "refit" if timings["refit"] else f"trial_{timings['reused_trial']}"
        curve = client.get_metric_history(r.info.run_id, f"{fit}/val_macro_f1")
        history = pd.read_csv(folder / "history.csv")
        assert sorted((m.step, m.value) for m in curve) == list(enumerate(history["val_macro_f1"]))


def test_a_failing_tracker_changes_nothing(tmp_path, toy_plugins, registered):
    cfg = experiment(tmp_path / "plain", "epoch-toy", "marker-centroids")
    run_benchmark(cfg, cohort=table_cohort(30))
    registered(Meddler(), "meddler")
    collector = registered(Collector(), "collector")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_benchmark(experiment(tmp_path / "tracked", "epoch-toy", "marker-centroids"), cohort=table_cohort(30))
    failures = [w for w in caught if issubclass(w.category, PluginWarning)]
    assert len(failures) == 1 and "'meddler'" in str(failures[0].message)  # once, and then no more events
    assert results(tmp_path / "tracked") == results(tmp_path / "plain")
    assert histories(tmp_path / "tracked") == histories(tmp_path / "plain")  # epoch metrics are its copies
    assert collector.payloads[-1]["event"] == "run_finished"  # the other tracker got everything


class HoldFirstUnit(RunListener):
    """Holds this process's first unit until another process has finished one: a worker surely computes one."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def unit_started(self, unit):
        deadline = time.monotonic() + 150
        while not list(self.run_dir.glob("models/*/fold_*/DONE")) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.mark.timeout(300)
def test_local_workers_log_their_units_to_the_same_store(tmp_path, cohort, mlflow_on):
    run = tmp_path / "jobs"
    cfg = experiment(run, "dummy")
    cfg.data.path = str(cohort.root)  # the workers load it from there
    run_benchmark(cfg, HoldFirstUnit(run), jobs=2)
    _, runs = mlflow_runs(run)
    units = unit_dirs(run)
    assert set(runs) == set(units)
    workers = {json.loads((d / "timings.json").read_text())["worker"] for d in units.values()}
    assert {r.data.tags["worker"] for r in runs.values()} == workers
    pids = {w.split(":")[1] for w in workers}
    assert str(os.getpid()) in pids and len(pids) == 2, (workers, list((run / "logs").glob("*.log")))


def test_the_run_command_takes_mlflow(tmp_path, cohort, monkeypatch):
    pytest.importorskip("mlflow")
    from typer.testing import CliRunner

    from resectbench.cli.app import build_app

    monkeypatch.delenv("RESECTBENCH_MLFLOW", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    run = tmp_path / "run"
    argv = ["run", "-m", "dummy", "--no-references", "--data", str(cohort.root), "--outer-folds", "3"]
    res = CliRunner().invoke(build_app(), [*argv, "--run-dir", str(run), "--mlflow", "run-dir"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    _, runs = mlflow_runs(run)
    assert sorted(runs) == [("dummy", f"fold_0_{k}") for k in range(3)]
    monkeypatch.delenv("RESECTBENCH_MLFLOW", raising=False)  # the option set it for this process
