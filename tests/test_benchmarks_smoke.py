"""Every benchmark script runs in --quick mode and writes its JSON result, so none can rot."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_runs_quick(script):
    candidates = [BENCH / "results" / f"{script.stem}.quick.json", BENCH / "results" / f"{script.stem}.json"]
    started = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, env=env, timeout=600, cwd=BENCH.parent
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    written = [p for p in candidates if p.exists() and p.stat().st_mtime >= started - 1]
    assert written, f"{script.name} --quick wrote no JSON under benchmarks/results/"
    assert json.loads(written[0].read_text())
