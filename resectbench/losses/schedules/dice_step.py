"""The paper's adaptive schedule: segmentation weight steps down as the tumor Dice improves."""

from __future__ import annotations

import bisect
from typing import Sequence

from ...registry import component
from .base import DiceDrivenSchedule


@component(
    "dice-step",
    tags=("paper", "adaptive"),
    description="Paper's adaptive weights: tumor Dice tau < 0.1 -> w_seg 3.0, < 0.5 -> 1.5, else 1.0; "
    "w_cls = 1 / w_seg; tau = previous epoch's mean training-batch tumor Dice",
    search_space={},
)
class DiceStepSchedule(DiceDrivenSchedule):
    """Step schedule of the paper: ``w_seg = 3.0 / 1.5 / 1.0`` for tumor Dice ``tau`` in
    ``[0, 0.1) / [0.1, 0.5) / [0.5, 1]``, and always ``w_cls = 1 / w_seg``.

    Where and how often tau is measured (the paper is silent; our choice): tau is the mean hard
    (argmax) tumor Dice over the training batches of the previous epoch, as the engine computes
    it (on augmented training crops, cases with a mask only), and it is updated once per epoch
    in :meth:`end_epoch`, so the weights are constant within an epoch. Training batches rather
    than the validation split because validation cases serve early stopping and model selection
    and would otherwise also steer training; once per epoch because a per-batch Dice on a few
    cases is noisy. Before the first epoch tau counts as 0 (w_seg 3.0: the network cannot
    segment yet); an epoch without any tumor Dice leaves tau unchanged. A threshold value itself
    belongs to the upper step (tau = 0.1 -> 1.5, tau = 0.5 -> 1.0).

    ``thresholds`` and ``w_seg_steps`` generalise the step; the paper fixes them, so nothing is
    tuned (empty search space).
    """

    name = "dice-step"

    def __init__(self, thresholds: Sequence[float] = (0.1, 0.5), w_seg_steps: Sequence[float] = (3.0, 1.5, 1.0)):
        super().__init__()
        thresholds, w_seg_steps = tuple(float(t) for t in thresholds), tuple(float(w) for w in w_seg_steps)
        if len(w_seg_steps) != len(thresholds) + 1:
            raise ValueError(
                f"loss schedule 'dice-step': needs one more weight than thresholds, got "
                f"{len(thresholds)} thresholds and {len(w_seg_steps)} weights"
            )
        if list(thresholds) != sorted(set(thresholds)) or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(
                f"loss schedule 'dice-step': thresholds must be strictly increasing in [0, 1], got {thresholds}"
            )
        if not all(w > 0 for w in w_seg_steps):
            raise ValueError(f"loss schedule 'dice-step': weights must be positive, got {w_seg_steps}")
        self.thresholds = thresholds
        self.w_seg_steps = w_seg_steps

    def w_seg_at(self, tau: float) -> float:
        """The segmentation weight for a tumor Dice ``tau``."""
        return self.w_seg_steps[bisect.bisect_right(self.thresholds, tau)]
