"""Logs a benchmark to MLflow (``pip install resectbench[mlflow]``; docs/tracking.md).

One MLflow experiment per benchmark (named after it), one MLflow run per unit (model x repeat x outer
fold): its parameters (the tuned and fixed ones of ``best_params.json``), its test metrics, the epoch curves
of its fits as step metrics (``trial_<n>/<metric>``, ``refit/<metric>``), each trial's inner score
(``trials/inner_value``, step = trial number), the unit's files as artifacts, and tags (model, repeat, fold,
profile, benchmark, resectbench version, worker). Every process logs the units it computes; final models
(``models/<label>/final``) are not units and are not logged.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from .._version import __version__
from ..plugins import hookimpl

RUN_DIR_VALUES = ("1", "run-dir")
STORE_DIR = "mlruns"
BATCH = 1000  # metrics per log_batch call: MLflow's limit


def tracking_uri(target: str, run_dir: str) -> str:
    """The MLflow tracking URI that RESECTBENCH_MLFLOW's value names for a run in ``run_dir``."""
    if target not in RUN_DIR_VALUES:
        return target
    if not run_dir:
        raise ValueError("this process has no run directory: set RESECTBENCH_MLFLOW to a tracking URI")
    return (Path(run_dir).resolve() / STORE_DIR).as_uri()


class MlflowLogger:
    """The ``run_event`` hook of one run in one process: an MLflow run per unit this process computes."""

    def __init__(self, target: str):
        self.target = target
        self.client = None
        self.experiment_id = ""
        self.tags: dict[str, str] = {}
        self.runs: dict[tuple[str, str], str] = {}  # (label, unit key) -> id of the unit's open MLflow run
        self.curves: dict[str, list[tuple]] = {}  # MLflow run id -> step metrics not yet sent

    @hookimpl
    def run_event(self, event, payload):
        handler = getattr(self, f"on_{event}", None)
        if handler is not None:
            handler(payload)

    def on_run_started(self, p: dict) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise RuntimeError(
                "RESECTBENCH_MLFLOW is set but MLflow is not installed: pip install resectbench[mlflow]"
            ) from exc
        uri = tracking_uri(self.target, p["run_dir"])
        if urlparse(uri).scheme in ("", "file"):
            # MLflow 3 refuses its file store unless asked; here it is chosen on purpose: no server, and the
            # processes of a run write separate files
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(uri)
        self.experiment_id = self._experiment(p["benchmark"])
        self.tags = {"benchmark": p["benchmark"], "profile": p["profile"], "resectbench_version": __version__}

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(name)
            except Exception:  # noqa: BLE001 - another process of the benchmark may have created it meanwhile
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        return found.experiment_id

    def on_unit_started(self, p: dict) -> None:
        tags = {**self.tags, "model": p["label"], "repeat": str(p["repeat"]), "fold": str(p["fold"])}
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=f"{p['label']} {p['key']}")
        self.runs[p["label"], p["key"]] = run.info.run_id

    def on_epoch(self, p: dict) -> None:
        run = self.runs.get((p["label"], p["key"]))
        if run is None:  # a final model's fit
            return
        prefix = "refit" if p["trial"] == "refit" else f"trial_{p['trial']}"
        now = _millis()
        self.curves.setdefault(run, []).extend(
            (f"{prefix}/{k}", float(v), now, p["epoch"]) for k, v in p["metrics"].items() if k != "epoch" and _number(v)
        )

    def on_trial_finished(self, p: dict) -> None:
        run = self.runs.get((p["label"], p["key"]))
        if run is None:
            return
        if p["trial"] != "refit" and _number(p["value"]):
            self.curves.setdefault(run, []).append(("trials/inner_value", float(p["value"]), _millis(), p["trial"]))
        self._flush(run)

    def on_unit_finished(self, p: dict) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run = self.runs.pop((p["label"], p["key"]), None)
        if run is None:
            return
        self._flush(run)
        now = _millis()
        self.client.log_batch(
            run,
            metrics=[Metric(k, float(v), now, 0) for k, v in p["metrics"].items() if _number(v)],
            params=[Param(k, str(v)) for k, v in p["params"].items()],
            tags=[RunTag("worker", str(p["timings"].get("worker", "")))],
        )
        for path in p["files"]:
            self.client.log_artifact(run, path)
        self.client.set_terminated(run, "FINISHED")

    def on_run_finished(self, p: dict) -> None:
        for run in self.runs.values():  # units this process stopped in the middle
            self._flush(run)
            self.client.set_terminated(run, "KILLED" if p["status"] == "interrupted" else "FAILED")
        self.runs.clear()

    def _flush(self, run: str) -> None:
        from mlflow.entities import Metric

        rows = self.curves.pop(run, [])
        for start in range(0, len(rows), BATCH):
            self.client.log_batch(run, metrics=[Metric(*row) for row in rows[start : start + BATCH]])


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _millis() -> int:
    return int(time.time() * 1000)
