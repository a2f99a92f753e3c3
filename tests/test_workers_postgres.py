"""Two worker processes share one benchmark through a real PostgreSQL server on loopback.

The server is a throwaway cluster (initdb + pg_ctl in a temporary folder, as the ``postgres`` OS
user when the tests run as root). Every unit must be computed exactly once, by one of the workers,
and the results must equal those of a single-process run.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from protocol_helpers import TESTS, results, table_cohort

from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, execute, prepare, run_benchmark
from resectbench.protocol.runner import finalize


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 (the dev extra) is needed to talk to PostgreSQL")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; "
            "`.ci/run` installs the Debian postgresql package"
        )
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` OS user to run the server")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="resectbench-pg-"))
    if as_root:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()

    def run(*cmd):
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)

    done = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {done.stderr.strip()[-300:]}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    done = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    if done.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {done.stderr} {log[-500:]}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


WORKER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from protocol_helpers import table_cohort
from resectbench import registry
from resectbench.protocol import run_worker
registry.models.list()  # imports done: now wait for the other worker, so both start together
barrier = Path({barrier!r})
(barrier / sys.argv[2]).touch()
while len(list(barrier.iterdir())) < 2:
    time.sleep(0.05)
kwargs = json.loads(sys.argv[1])
ran = run_worker(cohort=table_cohort(45), **kwargs)
print("RAN " + json.dumps([[u.label, u.key] for u in ran]))
"""

# the brief's tiny benchmark (chance + clinical-only) plus a recipe slow enough that the workers overlap
MODELS = ("dummy", "clinical-sklearn", "marker-centroids")


@pytest.mark.slow
def test_two_workers_share_a_benchmark_through_postgres(tmp_path, postgres_url, toy_plugins):
    cohort = table_cohort(45)
    protocol = ProtocolConfig(outer_folds=3, trials=2)
    run = tmp_path / "shared"
    cfg = ExperimentConfig(
        models=[ModelSpec(m) for m in MODELS],
        protocol=protocol,
        run_dir=str(run),
        storage=postgres_url,
        name="pg-bench",
    )
    bench = prepare(cfg, cohort=cohort)  # the coordinator: manifest, splits, benchmark metadata

    env = {
        **os.environ,
        "RESECTBENCH_PLUGINS": "protocol_plugin_recipes",
        "PROTOCOL_TEST_FIT_DELAY": "0.2",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    script = WORKER.format(tests=str(TESTS), barrier=str(barrier))
    joins = [
        {"run_dir": str(run), "storage": postgres_url},  # from the shared run directory
        {"storage": postgres_url, "benchmark": "pg-bench"},
    ]  # from the storage alone
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(j), f"w{i}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, j in enumerate(joins)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-2000:]
    ran = [tuple(u) for out, _ in outputs for u in json.loads(out.split("RAN ", 1)[1])]
    expected = {(m, f"fold_0_{k}") for m in MODELS for k in range(3)}
    assert sorted(ran) == sorted(expected)  # every unit exactly once
    assert all(json.loads(out.split("RAN ", 1)[1]) for out, _ in outputs), "both workers took units"

    # the coordinator has nothing left to compute; it pools the results
    assert execute(bench, wait=True) == []
    finalize(bench, [], 1.0)
    for m, key in expected:
        claims = bench.board.claims(m, key)
        assert len(claims) == 1  # claimed once, never taken over
        study = bench.storage.get_study_id_from_name(f"pg-bench::{m}::{key}")
        assert len(bench.storage.get_all_trials(study)) == (1 if m == "dummy" else 2)

    single = tmp_path / "single"
    run_benchmark(
        ExperimentConfig(
            models=[ModelSpec(m) for m in MODELS], protocol=protocol, run_dir=str(single), name="pg-bench"
        ),
        cohort=cohort,
    )
    assert results(run) == results(single)
