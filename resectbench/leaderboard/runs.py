"""Reading run directories (docs/results-format.md) and merging several into one comparison.

Only finished units (those with a ``DONE`` marker) are read, so a board of a run in progress shows
what is complete and says how many folds each model has. Nothing here imports the protocol:
a run directory from another machine, or from last year, reads the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..vocabulary import PREDICTION_COLUMNS, PROB_COLUMNS, UNIT_GLOB, RunFiles as F, parse_unit_key
from .errors import LeaderboardError

CHANCE_RECIPES = ("dummy",)


@dataclass
class ModelResults:
    """Everything one model of a run produced, fold by fold."""

    label: str
    run_dir: Path
    info: dict  # model.json
    folds: pd.DataFrame  # one row per finished unit: repeat, fold, scalar metrics
    confusion: dict[str, np.ndarray]  # unit key -> confusion matrix (true x predicted)
    predictions: pd.DataFrame  # all finished units' predictions.csv, concatenated
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)  # unit key -> history.csv
    trials: dict[str, pd.DataFrame] = field(default_factory=dict)  # unit key -> trials.csv
    best_params: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, dict] = field(default_factory=dict)
    #: external cohort name -> {"predictions": DataFrame, "metrics": dict} (models/<label>/external/<name>)
    external: dict[str, dict] = field(default_factory=dict)

    @property
    def recipe(self) -> str:
        return self.info.get("recipe", self.label)

    @property
    def mask_source(self) -> str:
        return self.info.get("mask_source", "none")

    @property
    def is_chance(self) -> bool:
        return self.recipe in CHANCE_RECIPES or "chance" in self.info.get("tags", [])

    @property
    def is_oracle(self) -> bool:
        return self.mask_source == "oracle"

    @property
    def n_folds(self) -> int:
        return len(self.folds)

    def oof(self) -> pd.DataFrame:
        """Pooled out-of-fold predictions, sorted by repeat and case (the oof_predictions.csv order)."""
        return self.predictions.sort_values(["repeat", "case_id"], kind="stable").reset_index(drop=True)


@dataclass
class RunResults:
    """One run directory, or several merged ones with the same data and splits."""

    roots: list[Path]
    manifest: dict
    splits: dict
    cases: pd.DataFrame  # cohort/cases.csv: case_id, label, group
    ground_truth: pd.DataFrame | None  # cohort/ground_truth.csv (synthetic cohorts)
    models: dict[str, ModelResults]

    @property
    def data_fingerprint(self) -> str | None:
        return self.manifest.get("data_fingerprint")

    @property
    def split_fingerprint(self) -> str | None:
        return self.manifest.get("split_fingerprint") or self.splits.get("fingerprint")

    @property
    def n_expected_folds(self) -> int:
        return len(self.splits.get("outer", []))

    @property
    def test_train_ratio(self) -> float:
        """Mean n_test / n_train over the outer folds (the Nadeau-Bengio correction factor)."""
        outer = self.splits.get("outer", [])
        if not outer:
            k = int(self.manifest.get("config", {}).get("protocol", {}).get("outer_folds", 5))
            return 1.0 / (k - 1)
        return float(np.mean([len(o["test"]) / max(1, len(o["train"])) for o in outer]))

    @property
    def bayes_optimal_accuracy(self) -> float | None:
        value = (self.manifest.get("cohort") or {}).get("bayes_optimal_accuracy")
        return None if value is None else float(value)

    @property
    def name(self) -> str:
        return self.manifest.get("benchmark") or self.roots[0].name

    def patient_of(self, case_ids) -> np.ndarray:
        """Resampling unit of each case: its group (patient) when the cohort has one, else itself."""
        cases = self.cases.set_index("case_id") if "case_id" in self.cases else pd.DataFrame()
        ids = np.asarray(case_ids, dtype=object)
        if "group" not in cases or cases["group"].isna().all():
            return ids
        groups = cases["group"].reindex(ids)
        return np.where(groups.isna(), ids, groups.astype(str).to_numpy())


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LeaderboardError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LeaderboardError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):  # every file a run writes holds one object
        raise LeaderboardError(f"{path} holds a JSON {type(data).__name__}, not an object; it is damaged or was edited")
    return data


def _read_csv(path: Path, required: bool = False) -> pd.DataFrame:
    if not path.exists():
        if required:
            raise LeaderboardError(f"{path} is missing")
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _read_predictions(path: Path) -> pd.DataFrame:
    """A unit's predictions.csv, refused when a column or a cell is missing (a file cut short or edited)."""
    p = _read_csv(path, required=True)
    missing = [c for c in ["case_id", "label", *PROB_COLUMNS] if c not in p.columns]
    if missing:
        raise LeaderboardError(f"{path} lacks column(s) {', '.join(missing)}")
    numbers = p[[c for c in ["label", *PROB_COLUMNS, "pred"] if c in p]].apply(pd.to_numeric, errors="coerce")
    bad = p.index[p["case_id"].isna() | numbers.isna().any(axis=1)]
    if len(bad):
        raise LeaderboardError(
            f"{path}: {len(bad)} row(s) with empty or non-numeric cells; the file was cut short or edited. "
            "Delete the DONE file next to it and run `resectbench run --run-dir` on this run again to write it anew"
        )
    p["case_id"] = p["case_id"].astype(str)
    return p


def _read_model(folder: Path) -> ModelResults | None:
    rows, confusion, preds, hist, trials, params, timings = [], {}, [], {}, {}, {}, {}
    for unit in sorted(folder.glob(UNIT_GLOB)):
        if not (unit / F.DONE).exists():
            continue
        try:
            repeat, fold = parse_unit_key(unit.name)
        except ValueError:
            continue
        metrics = _read_json(unit / F.METRICS)
        rows.append(
            {"repeat": repeat, "fold": fold, **{k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}}
        )
        if "confusion_matrix" in metrics:
            confusion[unit.name] = np.asarray(metrics["confusion_matrix"], dtype=float)
        p = _read_predictions(unit / F.PREDICTIONS)
        p["repeat"], p["fold"] = repeat, fold
        if "pred" not in p:
            p["pred"] = p[PROB_COLUMNS].to_numpy().argmax(axis=1)
        preds.append(p)
        hist[unit.name] = _read_csv(unit / F.HISTORY)
        trials[unit.name] = _read_csv(unit / F.TRIALS)
        if (unit / F.BEST_PARAMS).exists():
            params[unit.name] = _read_json(unit / F.BEST_PARAMS)
        if (unit / F.TIMINGS).exists():
            timings[unit.name] = _read_json(unit / F.TIMINGS)
    info = _read_json(folder / F.MODEL_INFO) if (folder / F.MODEL_INFO).exists() else {}
    external = {}
    for ext in sorted((folder / F.EXTERNAL_DIR).glob("*")):
        if not (ext / F.DONE).exists():
            continue
        p = _read_predictions(ext / F.PREDICTIONS)
        external[ext.name] = {"predictions": p, "metrics": _read_json(ext / F.METRICS)}
    if not rows and not info:
        return None
    folds = pd.DataFrame(rows)
    if not folds.empty:
        folds = folds.sort_values(["repeat", "fold"], kind="stable").reset_index(drop=True)
    predictions = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(columns=PREDICTION_COLUMNS)
    return ModelResults(
        label=folder.name,
        run_dir=folder.parent.parent,
        info=info,
        folds=folds,
        confusion=confusion,
        predictions=predictions,
        histories=hist,
        trials=trials,
        best_params=params,
        timings=timings,
        external=external,
    )


def load_run(path: str | Path) -> RunResults:
    """Read one run directory (finished units only)."""
    root = Path(path)
    if not root.is_dir():
        raise LeaderboardError(f"run directory {root} {'is a file' if root.exists() else 'does not exist'}")
    if not (root / F.MANIFEST).exists():
        raise LeaderboardError(
            f"{root} is not a resectbench run directory (no manifest.json); create one with `resectbench run`"
        )
    manifest = _read_json(root / F.MANIFEST)
    splits = _read_json(root / F.SPLITS) if (root / F.SPLITS).exists() else {}
    cases = _read_csv(root / F.COHORT_DIR / F.CASES)
    if "case_id" in cases:
        cases["case_id"] = cases["case_id"].astype(str)
    gt = _read_csv(root / F.COHORT_DIR / F.GROUND_TRUTH)
    if not gt.empty and "case_id" in gt:
        gt["case_id"] = gt["case_id"].astype(str)
        gt = gt.set_index("case_id")
    else:
        gt = None
    models = {}
    models_dir = root / F.MODELS_DIR
    for folder in sorted(models_dir.glob("*")) if models_dir.is_dir() else []:
        if folder.is_dir():
            result = _read_model(folder)
            if result is not None:
                models[folder.name] = result
    return RunResults(roots=[root], manifest=manifest, splits=splits, cases=cases, ground_truth=gt, models=models)


def load_runs(paths) -> RunResults:
    """Read one or several run directories; several merge only when their data and splits match."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise LeaderboardError("give at least one run directory")
    return merge_runs([load_run(p) for p in paths])


def merge_runs(runs: list[RunResults]) -> RunResults:
    """One comparison from runs of the same data and splits (model labels made unique with ``@run``)."""
    if len(runs) == 1:
        return runs[0]
    for what, get in (("data", lambda r: r.data_fingerprint), ("split", lambda r: r.split_fingerprint)):
        values = [get(r) for r in runs]
        if None in values or len(set(values)) > 1:
            listing = "; ".join(f"{r.roots[0]}: {what}_fingerprint={get(r) or 'missing'}" for r in runs)
            raise LeaderboardError(
                f"cannot merge these run directories: their {what} fingerprints differ ({listing}). "
                f"Models are comparable only on the same {'cohort' if what == 'data' else 'splits'}; "
                "re-run them into one run directory (or with the same data, seed and protocol)"
            )
    models: dict[str, ModelResults] = {}
    for run in runs:
        for label, result in run.models.items():
            name = label
            if name in models:
                name = f"{label}@{run.roots[0].name}"
                i = 2
                while name in models:
                    name, i = f"{label}@{run.roots[0].name}-{i}", i + 1
            result.label = name
            models[name] = result
    first = runs[0]
    gt = next((r.ground_truth for r in runs if r.ground_truth is not None), None)
    return RunResults(
        roots=[p for r in runs for p in r.roots],
        manifest=first.manifest,
        splits=first.splits,
        cases=first.cases,
        ground_truth=gt,
        models=models,
    )
