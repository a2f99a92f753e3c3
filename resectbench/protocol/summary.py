"""A small end-of-run table: mean +- SD over outer folds per model, read from the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..vocabulary import UNIT_GLOB, RunFiles as F, parse_unit_key

SUMMARY_METRICS = ("macro_f1", "auc_ovr_macro", "accuracy", "balanced_accuracy")


def fold_metrics(run_dir: str | Path) -> pd.DataFrame:
    """One row per finished unit: model, repeat, fold and its scalar metrics."""
    rows = []
    for path in sorted(Path(run_dir).glob(f"{F.MODELS_DIR}/*/{UNIT_GLOB}/{F.METRICS}")):
        if not (path.parent / F.DONE).exists():
            continue
        repeat, fold = parse_unit_key(path.parent.name)
        metrics = json.loads(path.read_text())
        rows.append(
            {
                "model": path.parent.parent.name,
                "repeat": repeat,
                "fold": fold,
                **{k: v for k, v in metrics.items() if not isinstance(v, (list, dict))},
            }
        )
    return pd.DataFrame(rows)


def summary_table(run_dir: str | Path) -> pd.DataFrame:
    """Per model: number of finished folds and mean/SD (ddof=1) of the headline metrics, best first."""
    folds = fold_metrics(run_dir)
    if folds.empty:
        return pd.DataFrame(columns=["model", "folds"])
    rows = []
    for model, part in folds.groupby("model", sort=False):
        row = {"model": model, "folds": len(part)}
        for m in SUMMARY_METRICS:
            values = pd.to_numeric(part.get(m), errors="coerce").dropna() if m in part else pd.Series(dtype=float)
            row[f"{m}_mean"] = float(values.mean()) if len(values) else np.nan
            row[f"{m}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows).sort_values("macro_f1_mean", ascending=False, kind="stable").reset_index(drop=True)
