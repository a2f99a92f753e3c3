"""Experiment trackers fed by the ``run_event`` plugin hook (docs/tracking.md); resectbench ships an MLflow logger.

Any plugin may track runs by implementing ``run_event``; this package only holds the logger that comes
with resectbench, switched on by an environment variable so that worker processes inherit it.
"""

from __future__ import annotations

import os

#: "1" or "run-dir": an MLflow file store in RUN_DIR/mlruns; any other value: an MLflow tracking URI; unset,
#: "" or "0": off. An environment variable, so ``--jobs`` workers (started with this environment) and
#: ``resectbench worker`` processes started with it log the units they compute too.
MLFLOW_VARIABLE = "RESECTBENCH_MLFLOW"
MLFLOW_PLUGIN = "resectbench-mlflow"


def enable_from_environment(pm) -> None:
    """Register a fresh MLflow logger on the plugin manager ``pm`` when RESECTBENCH_MLFLOW asks for one.

    Called as each run starts: a logger of an earlier run in this process is replaced (or dropped when
    the variable is no longer set), so each run logs where the environment says at its start."""
    if pm.get_plugin(MLFLOW_PLUGIN) is not None:
        pm.unregister(name=MLFLOW_PLUGIN)
    target = os.environ.get(MLFLOW_VARIABLE, "").strip()
    if target not in ("", "0"):
        from .mlflow import MlflowLogger

        pm.register(MlflowLogger(target), name=MLFLOW_PLUGIN)
