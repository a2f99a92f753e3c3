"""What every loss schedule shares: how the weighted total is formed and the weights reported.

A schedule combines the auxiliary segmentation loss and the classification loss of one batch:
``total = w_seg * seg_loss + w_cls * cls_loss``. The engine calls :meth:`LossSchedule.combine`
on every batch (logging the weights it returns) and :meth:`LossSchedule.end_epoch` once per
epoch with ``stats["tumor_dice"]``, the mean hard tumor Dice of that epoch's training batches
(``None`` or NaN when no batch had a mask). State (e.g. the current Dice) lives in buffers, so it
is saved and restored with ``state_dict``.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LossSchedule(nn.Module):
    """Base class: fixed-per-epoch weights from :meth:`current_weights`; subclasses may override."""

    #: registry name, used in error messages
    name: str = "schedule"
    #: whether the auxiliary segmentation loss is used at all (False: the engine skips it)
    uses_segmentation: bool = True

    def current_weights(self) -> dict[str, float]:
        """The ``{"w_seg", "w_cls"}`` the next batch will use."""
        raise NotImplementedError

    def combine(self, seg_loss: torch.Tensor | None, cls_loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``(total, {"w_seg", "w_cls"})``. ``seg_loss=None`` (no masked case in the batch, or no
        segmentation head) leaves only the weighted classification term."""
        weights = self.current_weights()
        total = weights["w_cls"] * cls_loss
        if seg_loss is not None and self.uses_segmentation:
            total = total + weights["w_seg"] * seg_loss
        return total, weights

    def end_epoch(self, stats: dict) -> None:
        """Update internal state from an epoch's training statistics (default: nothing)."""


def epoch_dice(stats: dict, schedule: str) -> float | None:
    """``stats["tumor_dice"]`` as a float in [0, 1], or None when the epoch measured none."""
    value = stats.get("tumor_dice")
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"loss schedule {schedule!r}: tumor_dice must be in [0, 1], got {value}")
    return value
