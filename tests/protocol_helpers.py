"""An in-memory cohort for protocol tests (no image files), a listener that records events, and the
experiment config / reproducible-results helpers the protocol tests share (import, don't collect).

It has exactly the attributes the protocol and the clinical/dummy recipes use (case_ids, labels,
table, clinical, clinical_schema, fingerprint, info, ground_truth, subset), so protocol tests run
in milliseconds. The clinical variables carry signal: ``marker`` grows with the class.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from resectbench.protocol import ExperimentConfig, ModelSpec, ProtocolConfig, RunListener

TESTS = Path(__file__).resolve().parent


def config(run_dir, *models, **protocol) -> ExperimentConfig:
    proto = {"outer_folds": 3, "trials": 2, **protocol}
    return ExperimentConfig(
        models=[m if isinstance(m, ModelSpec) else ModelSpec(m) for m in models],
        protocol=ProtocolConfig(**proto),
        run_dir=str(run_dir),
    )


def results(run_dir: Path) -> dict:
    """Everything that must be reproducible (no timings)."""
    out = {}
    for unit in sorted(run_dir.glob("models/*/fold_*")):
        metrics = json.loads((unit / "metrics.json").read_text())
        metrics = {k: v for k, v in metrics.items() if not k.endswith("seconds") and not k.endswith("per_case")}
        trials = pd.read_csv(unit / "trials.csv")
        trials = trials[trials.state != "FAIL"]  # a trial killed with its process stays in the log as FAIL
        trials = trials[[c for c in trials.columns if c.startswith("params_") or c in ("value", "state")]]
        trials = trials.astype(object).where(trials.notna(), None)  # a conditional parameter's empty cell: None == None
        out[str(unit.relative_to(run_dir))] = {
            "predictions": pd.read_csv(unit / "predictions.csv").to_dict("list"),
            "metrics": metrics,
            "best_params": json.loads((unit / "best_params.json").read_text()),
            "trials": trials.to_dict("list"),
        }
    return out


class TableCohort:
    def __init__(self, table: pd.DataFrame, clinical: pd.DataFrame, schema: dict, name: str = "table-cohort"):
        self.table, self.clinical, self.clinical_schema = table, clinical, schema
        self.name = name
        self.ground_truth = None
        self.label_map = {}
        self.info = {"name": name, "bayes_optimal_accuracy": None}

    @property
    def case_ids(self) -> list[str]:
        return list(self.table.index)

    @property
    def labels(self) -> np.ndarray:
        return self.table["label"].to_numpy(dtype=int)

    @property
    def fingerprint(self) -> str:
        text = self.table.to_csv() + self.clinical.to_csv()
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def subset(self, ids) -> "TableCohort":
        ids = list(ids)
        missing = [i for i in ids if i not in self.table.index]
        if missing:
            raise KeyError(f"unknown case ids {missing[:3]}")
        return TableCohort(self.table.loc[ids], self.clinical.loc[ids], self.clinical_schema, self.name)

    def __len__(self) -> int:
        return len(self.table)


def table_cohort(n: int = 45, seed: int = 0, counts: tuple[int, int, int] | None = None) -> TableCohort:
    rng = np.random.default_rng(seed)
    if counts is None:
        counts = (int(round(n * 0.5)), int(round(n * 0.3)), n - int(round(n * 0.5)) - int(round(n * 0.3)))
    labels = np.repeat([0, 1, 2], counts)
    rng.shuffle(labels)
    ids = [f"case_{i:03d}" for i in range(len(labels))]
    table = pd.DataFrame(
        {"label": labels, "group": [f"site{i % 3}" for i in range(len(labels))]}, index=pd.Index(ids, name="case_id")
    )
    clinical = pd.DataFrame(
        {
            "marker": labels * 1.5 + rng.normal(0, 1.0, len(labels)),
            "age": rng.normal(65, 8, len(labels)),
            "sex": rng.choice(["female", "male"], len(labels)),
        },
        index=table.index,
    )
    try:
        from resectbench.data.schema import VariableSpec

        schema = {
            "marker": VariableSpec("continuous"),
            "age": VariableSpec("continuous", "years", 18, 100),
            "sex": VariableSpec("categorical", categories=("female", "male")),
        }
    except ImportError:  # data layer not present: the protocol itself does not need the schema
        schema = {}
    return TableCohort(table, clinical, schema)


class Recorder(RunListener):
    """Keeps every event, for assertions."""

    def __init__(self):
        self.events: list[tuple] = []

    def unit_started(self, unit):
        self.events.append(("unit_started", unit))

    def unit_skipped(self, unit, reason):
        self.events.append(("unit_skipped", unit, reason))

    def unit_finished(self, unit, metrics):
        self.events.append(("unit_finished", unit))

    def trial_finished(self, unit, trial, value, state):
        self.events.append(("trial_finished", unit, trial, state))

    def epoch(self, unit, trial, epoch, metrics):
        self.events.append(("epoch", unit, trial, epoch))

    def of(self, kind: str) -> list[tuple]:
        return [e for e in self.events if e[0] == kind]
