"""Metrics the engine logs while training: macro-F1 for early stopping, Dice for the schedule."""

from __future__ import annotations

import numpy as np
import torch

from ...data.labels import INDEX, STRUCTURES
from ...vocabulary import macro_f1  # noqa: F401 (the engine logs it; defined once for engine and protocol)

TUMOR = INDEX["tumor"]


def structure_dice(seg_logits: torch.Tensor, target: torch.Tensor, index: int) -> torch.Tensor:
    """Per-sample Dice of one structure from logits (B, C, *) vs labels (B, *) or (B, 1, *).

    NaN where the structure is absent from the target (MONAI ``ignore_empty``), so callers can
    average over samples that contain it.
    """
    if target.ndim == seg_logits.ndim:
        target = target[:, 0]
    pred = (seg_logits.argmax(dim=1) == index).unsqueeze(1).float()
    truth = (target == index).unsqueeze(1).float()
    from monai.metrics import compute_dice  # lazy: monai costs seconds at registry load

    return compute_dice(pred, truth, include_background=True, ignore_empty=True)[:, 0]


def mean_structure_dice(pred_masks, true_masks, index: int) -> float | None:
    """Mean Dice of one structure over the cases whose true mask contains it (None: no such case)."""
    scores = []
    for pred, truth in zip(pred_masks, true_masks):
        truth = np.asarray(truth) == index
        if truth.any():
            pred = np.asarray(pred) == index
            scores.append(2.0 * np.logical_and(pred, truth).sum() / (pred.sum() + truth.sum()))
    return float(np.mean(scores)) if scores else None


def per_structure_dice(
    pred_mask: np.ndarray, true_mask: np.ndarray, n_classes: int = len(STRUCTURES)
) -> dict[str, float]:
    """Dice of every foreground structure present in ``true_mask`` (integer label volumes)."""
    out = {}
    for index in range(1, n_classes):
        truth = true_mask == index
        if not truth.any():
            continue
        pred = pred_mask == index
        out[STRUCTURES[index] if index < len(STRUCTURES) else str(index)] = float(
            2.0 * np.logical_and(pred, truth).sum() / (pred.sum() + truth.sum())
        )
    return out
