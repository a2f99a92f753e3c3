"""Units side by side on one machine: ``jobs`` processes share a run's units, one thread each.

The run process starts ``jobs - 1`` ``resectbench worker RUN_DIR`` subprocesses on its own run
directory (the claims of :mod:`.coordination` keep any unit from being computed twice), then works
through the units itself. Why: at the cpu profile's sizes a unit uses a second thread poorly (a
Swin-UNETR epoch of the main job takes ~16 s on two threads, ~23 s on one), so units side by side
on one thread each finish sooner than one after the other on two; more processes than cores pack
the folds into fewer rounds (the main job's 5 folds: 3 + 2 with 3 jobs). With ``jobs > 1`` every
process - this one included - computes on one thread, so a unit's numbers depend neither on which
process took it nor on the machine's number of cores. Each worker's output goes to
``RUN_DIR/logs/worker-<i>.log``; a worker that fails leaves its unit to the others (and its error
in its log), and the run process stops the workers when it stops. ``resectbench run`` uses the
profile's ``jobs`` only when a model trains on images (:func:`default_jobs`): a worker's start-up
(~5 s of imports) outweighs units of table-only models.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from ..errors import RegistryError
from .errors import ProtocolError

LOG_DIR = "logs"
#: registry tags of models that train on images (networks, window segmenters): worth a process each
IMAGE_TRAINING_TAGS = frozenset({"segments", "predicted-masks", "2.5d", "image-only"})
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_jobs(config) -> int:
    """The profile's ``jobs`` when one of the configuration's models trains on images, else 1."""
    from .. import registry as reg
    from ..profiles import get_profile

    heavy = False
    for spec in config.models:
        try:
            heavy = heavy or bool(IMAGE_TRAINING_TAGS & set(reg.models.get(spec.name).tags))
        except RegistryError:  # an unknown model: the run itself reports it by name
            pass
    return get_profile(config.profile).jobs if heavy else 1


@contextlib.contextmanager
def local_workers(run_dir: str | Path, jobs: int):
    """Run ``jobs - 1`` worker processes on ``run_dir`` (and this process on one thread) while the block runs."""
    if jobs < 1:
        raise ProtocolError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1:
        yield []
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}
    logs = Path(run_dir) / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    workers: list[tuple[subprocess.Popen, object]] = []
    try:
        for i in range(1, jobs):
            log = open(logs / f"worker-{i}.log", "ab")
            command = [sys.executable, "-m", "resectbench", "worker", str(run_dir), "--no-progress"]
            workers.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log))
        yield [process for process, _ in workers]
        for process, _ in workers:  # nothing is left for them once this process has finished the run
            process.wait()
    finally:
        for process, log in workers:
            if process.poll() is None:
                process.terminate()  # a worker releases its unit on SIGTERM, as on Ctrl-C
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=60)
            log.close()
        torch.set_num_threads(threads)
