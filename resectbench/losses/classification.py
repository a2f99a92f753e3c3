"""The classification loss: class-weighted cross-entropy (paper weights (1.0, 2.0, 2.5))."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DataError

PAPER_CLASS_WEIGHTS = (1.0, 2.0, 2.5)


def inverse_frequency_weights(labels, n_classes: int = 3) -> np.ndarray:
    """Per-class weights proportional to 1 / class count, scaled so the most frequent class has 1.

    This normalisation reproduces the paper's inverse-frequency weights (1, 1.8, 3.2) from its
    85 / 47 / 27 cohort. Pass the training labels only. Raises :class:`DataError` when a class
    has no training case (its weight would be infinite) or a label is out of range.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        raise DataError("inverse-frequency class weights need training labels, got none")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.number) or not np.all(labels == np.round(labels)):
        raise DataError(
            f"class labels must be a 1-D sequence of integers, got array of shape {labels.shape} "
            f"and dtype {labels.dtype}"
        )
    labels = labels.astype(int)
    bad = labels[(labels < 0) | (labels >= n_classes)]
    if bad.size:
        raise DataError(f"class label {int(bad[0])} is outside 0..{n_classes - 1}")
    counts = np.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        missing = [int(c) for c in np.flatnonzero(counts == 0)]
        raise DataError(
            f"class(es) {missing} have no training case, so inverse-frequency weights are undefined "
            f"(counts {counts.tolist()}); use explicit class_weights"
        )
    weights = 1.0 / counts
    return weights / weights.min()


def classification_loss(
    class_weights: Sequence[float] | str | None = PAPER_CLASS_WEIGHTS,
    labels=None,
    n_classes: int = 3,
    label_smoothing: float = 0.0,
) -> nn.CrossEntropyLoss:
    """Class-weighted cross-entropy on logits ``(B, n_classes)`` vs integer labels ``(B,)``.

    ``class_weights``: a sequence of ``n_classes`` positive weights (default: the paper's
    (1.0, 2.0, 2.5)), ``"inverse-frequency"`` (computed from ``labels``, which must be the
    training labels; see :func:`inverse_frequency_weights`), or ``None`` / ``"none"`` for plain
    cross-entropy. The weights are a buffer of the returned module (``.weight``), so they move
    with ``.to(device)``. Label smoothing defaults to 0 (the paper does not mention any).
    """
    if isinstance(class_weights, str):
        key = class_weights.lower().replace("_", "-")
        if key == "inverse-frequency":
            if labels is None:
                raise ValueError("class_weights='inverse-frequency' needs the training labels (labels=...)")
            weights = inverse_frequency_weights(labels, n_classes)
        elif key == "none":
            weights = None
        else:
            raise ValueError(
                f"class_weights must be a sequence of {n_classes} numbers, 'inverse-frequency' or "
                f"'none'; got {class_weights!r}"
            )
    elif class_weights is None:
        weights = None
    else:
        weights = np.asarray(class_weights, dtype=float)
        if weights.shape != (n_classes,) or not np.all(np.isfinite(weights)) or (weights <= 0).any():
            raise ValueError(f"class_weights must be {n_classes} positive finite numbers, got {class_weights!r}")
    weight = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
