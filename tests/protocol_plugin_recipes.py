"""Recipes registered as a third-party plugin (RESECTBENCH_PLUGINS=protocol_plugin_recipes) by the
protocol tests: a deterministic recipe that logs which case ids it saw, and one that reports epochs."""

from __future__ import annotations

import os
import time

import numpy as np

from resectbench import hookimpl
from resectbench.models.base import FitContext, ResectabilityModel
from resectbench.search_space import Categorical, Float, Int

#: every fit/predict call of this process: {"event", "train", "valid", "ids", "centroids"}
LOG: list[dict] = []


class MarkerCentroids(ResectabilityModel):
    """Softmax over negative distances of one clinical variable (``column``) to the per-class training means.

    Deterministic; ``shrink`` pulls the centroids towards the overall mean (a tunable parameter whose
    effect is real), ``temperature`` scales the softmax.
    """

    def __init__(self, shrink: float = 0.0, temperature: float = 1.0, column: str = "marker"):
        super().__init__()
        self.shrink, self.temperature, self.column = shrink, temperature, column
        self.centroids = None

    def fit(self, train, valid, ctx: FitContext):
        delay = float(os.environ.get("PROTOCOL_TEST_FIT_DELAY", 0))
        if delay:  # lets a test kill the process in the middle of a unit
            time.sleep(delay)
        x = train.clinical.loc[train.case_ids, self.column].to_numpy(float)
        y = np.asarray(train.labels)
        overall = x.mean()
        self.centroids = np.array([x[y == c].mean() if np.any(y == c) else overall for c in range(3)])
        self.centroids = (1 - self.shrink) * self.centroids + self.shrink * overall
        LOG.append(
            {
                "event": "fit",
                "train": list(train.case_ids),
                "valid": None if valid is None else list(valid.case_ids),
                "centroids": self.centroids.tolist(),
                "seed": ctx.seed,
            }
        )
        return self

    def predict_proba(self, cohort, ctx: FitContext):
        LOG.append({"event": "predict", "ids": list(cohort.case_ids)})
        x = cohort.clinical.loc[cohort.case_ids, self.column].to_numpy(float)
        logits = -np.abs(x[:, None] - self.centroids[None, :]) / self.temperature
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def n_parameters(self):
        return 3


class EpochToy(ResectabilityModel):
    """Reports a per-epoch validation score through ctx.on_epoch (for pruning and progress tests)."""

    uses_validation = True

    def __init__(self, quality: float = 0.5, epochs: int = 4):
        super().__init__()
        self.quality, self.epochs = quality, epochs
        self.inner = MarkerCentroids()

    def fit(self, train, valid, ctx: FitContext):
        self.inner.fit(train, valid, ctx)
        for epoch in range(self.epochs):
            metrics = {
                "epoch": epoch,
                "loss": 1.0 / (epoch + 1),
                "val_macro_f1": self.quality * (epoch + 1) / self.epochs,
            }
            self.history.append(metrics)
            if ctx.on_epoch is not None:
                ctx.on_epoch(epoch, metrics)
        return self

    def predict_proba(self, cohort, ctx: FitContext):
        return self.inner.predict_proba(cohort, ctx)


class Broken(MarkerCentroids):
    """Raises in ``fit`` when ``shrink`` > ``fail_above`` (every configuration by default)."""

    def __init__(self, shrink: float = 0.0, fail_above: float = -1.0):
        super().__init__(shrink=shrink)
        self.fail_above = fail_above

    def fit(self, train, valid, ctx: FitContext):
        if self.shrink > self.fail_above:
            raise ValueError(f"broken on purpose (shrink {self.shrink:.2f})")
        return super().fit(train, valid, ctx)


@hookimpl
def register_models(registry):
    registry.register("broken", tags=("test",), search_space={"shrink": Float(0.0, 0.9)})(Broken)
    registry.register(
        "marker-centroids",
        tags=("test",),
        search_space={"shrink": Float(0.0, 0.9), "temperature": Categorical([0.5, 1.0, 2.0])},
    )(MarkerCentroids)
    registry.register("epoch-toy", tags=("test",), search_space={"quality": Float(0.0, 1.0), "epochs": Int(2, 4)})(
        EpochToy
    )
