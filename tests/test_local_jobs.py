"""Several processes on one machine sharing a run's units (protocol/local_jobs.py)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from protocol_helpers import TESTS, results, table_cohort

from resectbench.data.synth import generate_cohort
from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark
from resectbench.protocol.assembly import prepare
from resectbench.protocol.errors import ProtocolError
from resectbench.protocol.local_jobs import default_jobs, local_workers

# a deterministic recipe that reads one clinical variable; the delay keeps a unit busy for a while
MODEL = ModelSpec("marker-centroids", params={"column": "ca19_9_baseline"})


@pytest.fixture
def on_disk(tmp_path_factory, toy_plugins, monkeypatch):
    """A generated cohort folder, and the environment a worker subprocess needs to find the test recipes."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    root = tmp_path_factory.mktemp("jobs")
    generate_cohort(root / "cohort", n=12, seed=2, profile="tiny", workers=1, class_mix=(1, 1, 1))
    return root


def config(root, name):
    cfg = ExperimentConfig(models=[MODEL], protocol=ProtocolConfig(outer_folds=3, trials=2), run_dir=str(root / name))
    cfg.data.path = str(root / "cohort")
    return cfg


def test_a_worker_process_computes_the_units_the_run_process_would(on_disk):
    # the run directory prepared, then only the worker works: every unit is its, with the same results
    # as one process alone
    cfg = config(on_disk, "shared")
    bench = prepare(cfg)
    threads = torch.get_num_threads()
    with local_workers(bench.store.root, 2) as workers:
        assert len(workers) == 1 and torch.get_num_threads() == 1  # this process too: one thread
    assert torch.get_num_threads() == threads
    assert workers[0].returncode == 0, next((on_disk / "shared" / "logs").glob("worker-*.log")).read_text()
    pids = {json.loads(t.read_text())["worker"] for t in (on_disk / "shared").glob("models/*/fold_*/timings.json")}
    assert len(pids) == 1 and next(iter(pids)).split(":")[1] != str(os.getpid())  # all three: the worker's
    run_benchmark(config(on_disk, "shared"))  # resumes: nothing left to compute
    run_benchmark(config(on_disk, "alone"))
    assert results(on_disk / "shared") == results(on_disk / "alone")


def test_two_jobs_give_the_results_of_one(on_disk):
    two = run_benchmark(config(on_disk, "two"), jobs=2)
    run_benchmark(config(on_disk, "one"))
    # the units the worker computed are not this process's: no overhead share is claimed for the session
    assert two.manifest["last_session"]["jobs"] == 2
    assert two.manifest["last_session"]["protocol_overhead_share"] is None
    assert results(on_disk / "two") == results(on_disk / "one")
    assert list((on_disk / "two" / "logs").glob("worker-*-1.log"))


def test_jobs_refuse_what_a_worker_cannot_load(tmp_path):
    cfg = ExperimentConfig(models=[ModelSpec("dummy")], run_dir=str(tmp_path / "r"))
    with pytest.raises(ProtocolError, match="data.path"):
        run_benchmark(cfg, cohort=table_cohort(30), jobs=2)
    from resectbench.profiles import get_profile

    cfg.profile_spec = get_profile("cpu").with_(max_epochs=1)
    with pytest.raises(ProtocolError, match="profile_spec"):
        run_benchmark(cfg, jobs=2)
    with pytest.raises(ProtocolError, match="at least 1"):
        with local_workers(tmp_path, 0):
            pass


def test_the_cli_starts_workers_only_for_models_that_train_on_images():
    # a worker's start-up (~5 s of imports) would outweigh table-only units
    def jobs(*names, profile="cpu"):
        return default_jobs(ExperimentConfig(models=[ModelSpec(n) for n in names], profile=profile))

    assert jobs("dummy", "clinical-sklearn", "geometric-rules-oracle") == 1
    assert jobs("dummy", "swinunetr-fusion") == 3 and jobs("geometric-rules") == 3
    assert jobs("swinunetr-fusion", profile="cpu-cascade") == 1  # the profile decides
    assert jobs("no-such-model") == 1  # refused by name later, by the run itself


def test_a_failed_worker_is_reported_with_its_log_and_threads_come_back(tmp_path):
    class Messages:
        def __init__(self):
            self.texts = []

        def message(self, text):
            self.texts.append(text)

    listener, threads = Messages(), torch.get_num_threads()
    with local_workers(tmp_path, 2, listener=listener) as workers:  # no run directory there: it fails
        pass
    assert workers[0].returncode != 0 and torch.get_num_threads() == threads
    [text] = listener.texts
    log = next((tmp_path / "logs").glob("worker-*-1.log"))
    assert "failed" in text and str(log) in text and "not a resectbench run directory" in log.read_text()


def test_a_run_directory_refuses_another_profile(tmp_path):
    # the cpu profile changed meaning (whole view -> cascade): old results must not mix with new ones
    def cfg(profile):
        return ExperimentConfig(models=[ModelSpec("dummy")], profile=profile, run_dir=str(tmp_path / "r"))

    run_benchmark(cfg("cpu-whole"), cohort=table_cohort(30))
    run_benchmark(cfg("cpu-whole"), cohort=table_cohort(30))  # the same profile resumes
    with pytest.raises(ProtocolError, match=r"cascade.*cpu-whole"):
        run_benchmark(cfg("cpu"), cohort=table_cohort(30))
