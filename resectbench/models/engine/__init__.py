"""The training engine shared by every neural recipe (see :mod:`.trainer`)."""

from .batches import CaseArrays, CaseDataset, make_loader
from .checkpoint import load_weights, save_weights, snapshot
from .inference import Predictions, predict
from .metrics import macro_f1, per_structure_dice, structure_dice
from .precision import autocast, resolve_amp, resolve_device
from .seeding import deterministic, seed_everything
from .trainer import FitResult, TrainConfig, train_network

__all__ = [
    "CaseArrays",
    "CaseDataset",
    "make_loader",
    "load_weights",
    "save_weights",
    "snapshot",
    "Predictions",
    "predict",
    "macro_f1",
    "per_structure_dice",
    "structure_dice",
    "autocast",
    "resolve_amp",
    "resolve_device",
    "deterministic",
    "seed_everything",
    "FitResult",
    "TrainConfig",
    "train_network",
]
