"""Resume after the process is killed (SIGKILL) in the middle of a unit: same final results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from protocol_helpers import TESTS, results, table_cohort

from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark

KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from protocol_helpers import table_cohort
from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, run_benchmark
cfg = ExperimentConfig(models=[ModelSpec("marker-centroids")],
                       protocol=ProtocolConfig(outer_folds=3, trials=3), run_dir={run!r})
run_benchmark(cfg, cohort=table_cohort(45))
"""


def test_resume_after_kill_9(tmp_path, toy_plugins):
    """A process killed in the middle of a unit: its claim and its running trial are recovered."""
    run = tmp_path / "killed"
    env = {
        **os.environ,
        "RESECTBENCH_PLUGINS": "protocol_plugin_recipes",
        "PROTOCOL_TEST_FIT_DELAY": "0.4",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    script = KILL_SCRIPT.format(tests=str(TESTS), run=str(run))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 300
    while not list(run.glob("models/*/fold_0_0/DONE")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # into the next unit's tuning
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(run.glob("models/*/fold_*/DONE")))
    assert 1 <= done < 3
    spec = ModelSpec("marker-centroids")
    cfg = ExperimentConfig(models=[spec], protocol=ProtocolConfig(outer_folds=3, trials=3), run_dir=str(run))
    run_benchmark(cfg, cohort=table_cohort(45))  # no wait: the dead holder's claim is recognised
    clean = tmp_path / "clean"
    run_benchmark(
        ExperimentConfig(models=[spec], protocol=ProtocolConfig(outer_folds=3, trials=3), run_dir=str(clean)),
        cohort=table_cohort(45),
    )
    assert results(run) == results(clean)


def _sigint_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _sigint_default():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    "sig, code, sigint_ignored_at_start",
    [
        (signal.SIGINT, 130, False),
        (signal.SIGINT, 130, True),  # a background job (`nohup make test &`): Python installs no SIGINT handler
        (signal.SIGTERM, 143, False),
    ],
    ids=["sigint", "sigint-in-background-job", "sigterm"],
)
def test_ctrl_c_stops_the_cli_cleanly_and_the_same_command_resumes(
    tmp_path, toy_plugins, sig, code, sigint_ignored_at_start
):
    from resectbench.data.synth import tiny_cohort
    from resectbench.protocol.coordination import UnitBoard, open_storage

    data = tiny_cohort(tmp_path / "data", n=18).root
    run = tmp_path / "run"
    exp = tmp_path / "exp.toml"
    exp.write_text(
        f'[data]\npath = "{data}"\n[protocol]\nouter_folds = 3\ntrials = 2\n'
        '[[models]]\nname = "marker-centroids"\nparams = { column = "age" }\n'
    )
    cmd = [sys.executable, "-m", "resectbench", "run", "--config", str(exp), "--run-dir", str(run), "--no-progress"]
    env = {
        **os.environ,
        "RESECTBENCH_PLUGINS": "protocol_plugin_recipes",
        "PROTOCOL_TEST_FIT_DELAY": "0.4",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    # the signal disposition is inherited, so the test means the same whether pytest itself runs in a
    # terminal or in a background job: the CLI must install its handlers itself
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_sigint_ignored if sigint_ignored_at_start else _sigint_default,
    )
    deadline = time.monotonic() + 300
    while not list(run.glob("models/*/fold_0_0/DONE")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)  # into the next unit
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, out[-2000:]
    assert "interrupted" in out and "resume" in out and "Traceback" not in out
    done = len(list(run.glob("models/*/fold_*/DONE")))
    assert 1 <= done < 3
    # the unit in flight was released (heartbeat set far in the past), not left for its holder's timeout
    board = UnitBoard(open_storage(None, run), json.loads((run / "manifest.json").read_text())["benchmark"])
    open_claims = [board.state(sid, gen) for claims in board.all_claims().values() for gen, sid in claims[-1:]]
    open_claims = [c for c in open_claims if not c.done]
    assert len(open_claims) == 1 and open_claims[0].heartbeat < 0
    again = subprocess.run(
        cmd, env={**env, "PROTOCOL_TEST_FIT_DELAY": "0"}, capture_output=True, text=True, timeout=240
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["finished"] and manifest["last_session"]["units_computed"] == 3 - done
