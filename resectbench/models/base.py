"""What every model recipe provides, so the protocol can evaluate any of them the same way.

A recipe is registered in the ``models`` registry as a factory whose keyword arguments are its
hyper-parameters (the registry entry's ``search_space`` names a subset of them). The protocol
builds one per trial with ``models.create(name, **params)``, fits it on the training part of a
fold, and asks for class probabilities on held-out cases. Inference is mask-free: masks may be
used in ``fit`` only (``Cohort`` rows of the training part), never in ``predict_proba``, unless
the recipe declares ``mask_source = "oracle"`` (an upper bound, labelled so in every table).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..profiles import PROFILES, Profile
from ..vocabulary import CLASS_NAMES, N_CLASSES  # noqa: F401 (re-exported: recipes import them from here)

if TYPE_CHECKING:
    from .needs import Needs


@dataclass
class FitContext:
    """Everything a recipe needs from its caller besides data and hyper-parameters."""

    seed: int = 0
    device: str = "cpu"  # resolved device string ("cpu", "cuda", "cuda:1", "mps")
    # a fit outside a protocol (plugin conformance checks, notebooks) gets the cheapest input: no cascade
    profile: Profile = field(default_factory=lambda: PROFILES["cpu-whole"])
    cache_dir: Path | None = None  # where preprocessed volumes may be cached (shared across folds)
    work_dir: Path | None = None  # where this fit may write checkpoints (weights only)
    # where fitted networks are shared between the rows of a run (models/shared_fits.py); None: not shared
    fitted_store: Path | None = None
    # Called after each epoch with (epoch, metrics) where metrics holds at least "val_macro_f1"
    # when a validation set was given. It may raise optuna.TrialPruned to stop the fit.
    on_epoch: Callable[[int, dict], None] | None = None
    # Called with (done, total, message) for progress bars on long work (batches, cases).
    on_progress: Callable[[int, int, str], None] | None = None


class ResectabilityModel(abc.ABC):
    """Base class of recipes. Subclasses set ``mask_source`` and implement fit/predict_proba."""

    #: "none" (image/clinical only), "predicted" (masks from a segmenter trained on the training
    #: part) or "oracle" (ground-truth masks at test time: an upper bound).
    mask_source: str = "none"

    def __init__(self) -> None:
        #: one dict per epoch (loss terms, loss weights, val metrics, tumor Dice ...); reports plot it
        self.history: list[dict[str, Any]] = []

    @abc.abstractmethod
    def fit(self, train, valid, ctx: FitContext) -> "ResectabilityModel":
        """Fit on ``train`` (a :class:`resectbench.data.Cohort`); ``valid`` (or None) drives early stopping."""

    @abc.abstractmethod
    def predict_proba(self, cohort, ctx: FitContext) -> np.ndarray:
        """(n_cases, 3) probabilities in ``cohort.case_ids`` order; rows sum to 1. No masks used."""

    def n_parameters(self) -> int:
        """Number of fitted parameters (trainable weights for networks)."""
        return 0

    def trains(self) -> str:
        """What this recipe trains that costs minutes ("a swin-unetr network", "a 3D segmenter"); "" when it
        fits in seconds (scikit-learn, rules). ``resectbench list`` shows it beside the measured cost."""
        return ""

    def needs(self, profile: Profile | None = None) -> "Needs":
        """What this recipe needs from a cohort (images, clinical variables, masks naming which structures,
        a GPU) under ``profile``; checked before any work (:func:`resectbench.models.needs.unmet`). The
        default declares nothing, so nothing is refused."""
        from .needs import Needs

        return Needs()

    def extra_outputs(self, cohort, ctx: FitContext) -> dict[str, Any]:
        """Optional outputs for reports: ``dice`` (case -> structure -> Dice of the predicted mask),
        ``localisation_mm`` (case -> error), ``contact_deg``, and ``fit_summary`` (scalars about the fit
        that the protocol adds to the unit's metrics)."""
        return {}
