"""``none``: joint training as the paper does it - one fused loss, every branch at the same rate."""

from __future__ import annotations

from ..registry import component
from .base import BalancingStrategy


@component("none", tags=("joint", "paper"), description="Joint training: one fused loss, no balancing (the paper's)")
class JointTraining(BalancingStrategy):
    """Joint training, the paper's: the fused head's classification loss (weighted against the auxiliary
    segmentation by the loss schedule) trains every branch at once.

    With few cases the clinical branch - 17 numbers, a small MLP - fits the training labels within a few
    epochs, the classification loss vanishes and the image branch gets little classification signal
    (docs/models.md, "Balancing the modalities"); the other strategies of this registry are the field's
    remedies."""

    name = "none"
