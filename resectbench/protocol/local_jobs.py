"""Units side by side on one machine: ``jobs`` processes share a run's units, one thread each.

The run process starts ``jobs - 1`` ``resectbench worker RUN_DIR`` subprocesses on its own run
directory (the claims of :mod:`.coordination` keep any unit from being computed twice), then works
through the units itself. Why: at the cpu profile's sizes a unit uses a second thread poorly (a
Swin-UNETR epoch of the main job takes ~16 s on two threads, ~23 s on one), so units side by side
on one thread each finish sooner than one after the other on two; more processes than cores pack
the folds into fewer rounds (the main job's 5 folds: 3 + 2 with 3 jobs). With ``jobs > 1`` every
process - this one included - computes on one thread (torch and the BLAS/OpenMP pools), so a unit's
numbers depend neither on which process took it nor on the machine's number of cores.

Each worker's output goes to ``RUN_DIR/logs/worker-<pid of the run process>-<i>.log``. A worker that
fails leaves its unit to the others; its exit status and log are reported when the block ends. Exited
workers are reaped at once, so a worker killed outright (OOM) is seen as gone and its unit taken over
without waiting for the claim to go stale. The run process stops the workers when it stops (SIGTERM,
which releases their units, then SIGKILL after a grace period). ``resectbench run`` uses the profile's
``jobs`` only when a model trains on images on the CPU (:func:`default_jobs`): a worker's start-up
(~5 s of imports) outweighs units of table-only models, and an accelerator is one device.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import RegistryError
from .errors import ProtocolError

LOG_DIR = "logs"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: the storage URL with its password, for workers (config.toml keeps it redacted); read by `resectbench worker`
STORAGE_VARIABLE = "RESECTBENCH_STORAGE"
#: registry tags of models that train on images (networks, window segmenters): worth a process each
IMAGE_TRAINING_TAGS = frozenset({"segments", "predicted-masks", "2.5d", "image-only"})
STOP_GRACE_SECONDS = 60.0


def default_jobs(config) -> int:
    """The profile's ``jobs`` when one of the configuration's models trains on images on the CPU, else 1."""
    from .. import registry as reg
    from ..profiles import get_profile
    from ..vocabulary import resolve_device

    if resolve_device(config.device or "auto") != "cpu":
        return 1
    heavy = False
    for spec in config.models:
        try:
            heavy = heavy or bool(IMAGE_TRAINING_TAGS & set(reg.models.get(spec.name).tags))
        except RegistryError:  # an unknown model: the run itself reports it by name
            pass
    return get_profile(config.profile).jobs if heavy else 1


@contextlib.contextmanager
def local_workers(run_dir: str | Path, jobs: int, *, storage: str | None = None, listener=None):
    """Run ``jobs - 1`` worker processes on ``run_dir`` (and this process on one thread) while the block runs.

    ``storage``: the run's storage URL (passed in the environment, so a password stays off the command
    line and out of the run directory)."""
    if jobs < 1:
        raise ProtocolError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1:
        yield []
        return
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    env = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}
    if storage:
        env[STORAGE_VARIABLE] = storage
    logs = Path(run_dir) / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    workers: list[tuple[subprocess.Popen, Path]] = []
    handles = []
    try:
        torch.set_num_threads(1)
        with threadpool_limits(1):
            for i in range(1, jobs):
                path = logs / f"worker-{os.getpid()}-{i}.log"
                handles.append(open(path, "ab"))
                command = [sys.executable, "-m", "resectbench", "worker", str(run_dir), "--no-progress"]
                process = subprocess.Popen(command, stdout=handles[-1], stderr=subprocess.STDOUT, env=env)
                workers.append((process, path))
                # reap it the moment it exits: a zombie still answers os.kill(pid, 0), so its claim
                # would look alive until it goes stale
                threading.Thread(target=process.wait, daemon=True).start()
            yield [process for process, _ in workers]
            for process, _ in workers:  # nothing is left for them once this process has finished the run
                process.wait()
    finally:
        _stop(workers)
        for handle in handles:
            handle.close()
        torch.set_num_threads(threads)
        failed = [(p, path) for p, path in workers if p.returncode not in (0, None)]
        if failed and listener is not None:
            listener.message(
                "worker process(es) failed: "
                + "; ".join(f"exit {p.returncode}, log {path}" for p, path in failed)
                + " (their units were left to the other processes)"
            )


def _stop(workers) -> None:
    """SIGTERM every worker still running (each releases its unit), then SIGKILL what outlives the grace."""
    running = [p for p, _ in workers if p.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        if process.poll() is None:
            process.kill()
            process.wait()
