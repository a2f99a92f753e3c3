"""Shared plumbing of the scikit-learn recipes: class-complete probabilities from any classifier."""

from __future__ import annotations

import numpy as np

from ..models.base import N_CLASSES


def full_proba(classifier, X) -> np.ndarray:
    """(n, 3) probabilities even when a class was absent from the training labels (its column is 0)."""
    proba = np.zeros((X.shape[0], N_CLASSES), dtype=float)
    part = classifier.predict_proba(X)
    for j, cls in enumerate(classifier.classes_):
        proba[:, int(cls)] = part[:, j]
    return proba
