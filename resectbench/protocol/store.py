"""The run directory: every result of a benchmark as plain files (docs/results-format.md).

Each file is written atomically (temporary file in the same folder, then ``os.replace``), and a
unit's ``DONE`` marker is written last, so a crash leaves either a complete unit or one that the
next run redoes. Readers (leaderboards, reports) need nothing but these files.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.cache import folder_problem
from ..errors import DiskFullError, OutputError
from ..vocabulary import PREDICTION_COLUMNS, PROB_COLUMNS, RunFiles as F, parse_unit_key, unit_key
from .errors import ProtocolError

__all__ = [
    "PREDICTION_COLUMNS",
    "PROB_COLUMNS",
    "RunStore",
    "UnitResult",
    "csv_text",
    "dumps_json",
    "write_json_atomic",
    "write_text_atomic",
]


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path,)):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _clean(value):
    """JSON has no NaN: write null instead (readers get NaN back from pandas/None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all; a full disk raises :class:`DiskFullError`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if disk_full_cause(exc) is not None:
            raise DiskFullError(path) from exc
        raise


def disk_full_cause(exc: BaseException | None) -> BaseException | None:
    """The error in ``exc`` or behind it that says the disk is full: ENOSPC, or SQLite's "database or disk is
    full" (which the Optuna storage wraps in its own error); None when there is none."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return exc
        if isinstance(exc, sqlite3.OperationalError) and "database or disk is full" in str(exc):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def dumps_json(data: Any) -> str:
    return json.dumps(_clean(json.loads(json.dumps(data, default=_json_default))), indent=2, sort_keys=False) + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, dumps_json(data))


def csv_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


@dataclass
class UnitResult:
    """Everything one (model, repeat, outer fold) unit produces."""

    label: str
    repeat: int
    fold: int
    predictions: pd.DataFrame
    metrics: dict
    best_params: dict
    trials: pd.DataFrame
    history: pd.DataFrame
    timings: dict
    model_info: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return unit_key(self.repeat, self.fold)

    def to_payload(self) -> dict:
        """Plain-JSON form stored in the shared Optuna storage (for workers on other machines)."""
        return json.loads(
            dumps_json(
                {
                    "label": self.label,
                    "repeat": self.repeat,
                    "fold": self.fold,
                    "predictions": csv_text(self.predictions),
                    "metrics": self.metrics,
                    "best_params": self.best_params,
                    "trials": csv_text(self.trials),
                    "history": csv_text(self.history),
                    "timings": self.timings,
                    "model_info": self.model_info,
                }
            )
        )

    @classmethod
    def from_payload(cls, data: dict) -> "UnitResult":
        def frame(text: str) -> pd.DataFrame:
            return pd.read_csv(io.StringIO(text)) if text.strip() else pd.DataFrame()

        return cls(
            label=data["label"],
            repeat=data["repeat"],
            fold=data["fold"],
            predictions=frame(data["predictions"]),
            metrics=data["metrics"],
            best_params=data["best_params"],
            trials=frame(data["trials"]),
            history=frame(data["history"]),
            timings=data["timings"],
            model_info=data.get("model_info", {}),
        )


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # -- paths ----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / F.MANIFEST

    @property
    def splits_path(self) -> Path:
        return self.root / F.SPLITS

    @property
    def config_path(self) -> Path:
        return self.root / F.CONFIG

    @property
    def cache_dir(self) -> Path:
        return self.root / F.CACHE_DIR

    @property
    def cohort_dir(self) -> Path:
        return self.root / F.COHORT_DIR

    def model_dir(self, label: str) -> Path:
        return self.root / F.MODELS_DIR / label

    def unit_dir(self, label: str, key: str) -> Path:
        return self.model_dir(label) / key

    def work_dir(self, label: str, key: str) -> Path:
        return self.root / F.WORK_DIR / label / key

    # -- manifest ---------------------------------------------------------------------------
    def read_manifest(self) -> dict | None:
        """The manifest, None when there is none yet; refused when it is not a JSON object (damaged or edited)."""
        path = self.manifest_path
        if not path.exists():
            return None
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problem = f"is not valid JSON ({exc})"
        else:
            if isinstance(manifest, dict):
                return manifest
            problem = f"holds a JSON {type(manifest).__name__}, not an object"
        # resuming without it would skip the checks that keep other data or splits out of this run
        raise ProtocolError(
            f"{path} {problem}: it is damaged or was edited; restore it from a copy, or delete it to let "
            "`resectbench run` write a new one (that resume then cannot check that the data and splits are the same)"
        )

    def check_usable(self) -> None:
        """Refuse, before any work, a run directory that cannot be written or whose manifest cannot be read."""
        problem = folder_problem(self.root)
        if problem:
            raise OutputError(f"run directory {self.root} {problem}; give another --run-dir")
        self.read_manifest()

    def check_resumable(self, data_fingerprint: str, split_fingerprint: str, profile: dict | None = None) -> None:
        """Refuse to mix results of different data, splits or compute profiles in one run directory."""
        manifest = self.read_manifest()
        if manifest is None:
            return
        for what, mine in (("data_fingerprint", data_fingerprint), ("split_fingerprint", split_fingerprint)):
            theirs = manifest.get(what)
            if theirs is not None and theirs != mine:
                raise ProtocolError(
                    f"run directory {self.root} holds results for a different {what.split('_')[0]} "
                    f"({what} {theirs} there, {mine} now); use another --run-dir (or delete that one) "
                    "instead of mixing results"
                )
        theirs = manifest.get("profile")
        if profile is None or not isinstance(theirs, dict):
            return
        mine = json.loads(json.dumps(profile))  # tuples as the manifest stores them
        # fields both know (older manifests lack some); `jobs` is how many processes, not what is computed;
        # a renamed profile with the same settings computes the same (the data has its own fingerprint)
        changed = sorted(k for k in set(theirs) & set(mine) - {"jobs", "name", "cohort"} if theirs[k] != mine[k])
        if changed:
            name = mine.get("name", "?")
            hint = (
                "; the cpu profile became the cascade in stop 22 and the whole view at 3 mm is now "
                "`--profile cpu-whole`"
                if name == "cpu" and theirs.get("cascade") is None and mine.get("cascade") is not None
                else ""
            )
            raise ProtocolError(
                f"run directory {self.root} was computed with profile {theirs.get('name')!r} as it was then, "
                f"which differs from {name!r} now in {', '.join(changed)}{hint}; continue it with the profile "
                "it was made with, or use another --run-dir, instead of mixing results"
            )

    def write_manifest(self, manifest: dict) -> None:
        write_json_atomic(self.manifest_path, manifest)

    # -- units ----------------------------------------------------------------------------
    def is_done(self, label: str, key: str) -> bool:
        return (self.unit_dir(label, key) / F.DONE).exists()

    def write_unit(self, result: UnitResult) -> None:
        folder = self.unit_dir(result.label, result.key)
        (folder / F.DONE).unlink(missing_ok=True)
        write_text_atomic(folder / F.PREDICTIONS, csv_text(result.predictions))
        write_json_atomic(folder / F.METRICS, result.metrics)
        write_json_atomic(folder / F.BEST_PARAMS, result.best_params)
        write_text_atomic(folder / F.TRIALS, csv_text(result.trials))
        write_text_atomic(folder / F.HISTORY, csv_text(result.history))
        write_json_atomic(folder / F.TIMINGS, result.timings)
        if result.model_info:
            write_json_atomic(self.model_dir(result.label) / F.MODEL_INFO, result.model_info)
        write_text_atomic(folder / F.DONE, "")

    def read_unit(self, label: str, key: str) -> UnitResult:
        folder = self.unit_dir(label, key)
        repeat, fold = parse_unit_key(key)

        def frame(name: str) -> pd.DataFrame:
            try:
                return pd.read_csv(folder / name)
            except pd.errors.EmptyDataError:
                return pd.DataFrame()

        model_json = self.model_dir(label) / F.MODEL_INFO
        return UnitResult(
            label=label,
            repeat=repeat,
            fold=fold,
            predictions=frame(F.PREDICTIONS),
            metrics=json.loads((folder / F.METRICS).read_text()),
            best_params=json.loads((folder / F.BEST_PARAMS).read_text()),
            trials=frame(F.TRIALS),
            history=frame(F.HISTORY),
            timings=json.loads((folder / F.TIMINGS).read_text()),
            model_info=json.loads(model_json.read_text()) if model_json.exists() else {},
        )

    def write_oof(self, label: str, keys: list[str]) -> pd.DataFrame:
        """Pool the out-of-fold predictions of every unit of a model (all units must be done)."""
        frames = [pd.read_csv(self.unit_dir(label, k) / F.PREDICTIONS) for k in keys]
        oof = pd.concat(frames, ignore_index=True).sort_values(["repeat", "case_id"], kind="stable")
        write_text_atomic(self.model_dir(label) / F.OOF_PREDICTIONS, csv_text(oof))
        return oof

    def write_oof_metrics(self, label: str, pooled: dict) -> None:
        write_json_atomic(self.model_dir(label) / F.OOF_METRICS, pooled)

    def write_cohort_tables(self, cases: pd.DataFrame, ground_truth: pd.DataFrame | None) -> None:
        """``cohort/cases.csv`` (case_id, label, group) and, for synthetic cohorts, ``cohort/ground_truth.csv``."""
        write_text_atomic(self.cohort_dir / F.CASES, csv_text(cases))
        if ground_truth is not None:
            write_text_atomic(self.cohort_dir / F.GROUND_TRUTH, csv_text(ground_truth))

    def read_timings(self, label: str, key: str) -> dict:
        path = self.unit_dir(label, key) / F.TIMINGS
        return json.loads(path.read_text()) if path.exists() else {}
