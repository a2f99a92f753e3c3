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


class DiceDrivenSchedule(LossSchedule):
    """A schedule whose weights follow the tumor Dice ``tau`` of the previous epoch's training batches:
    ``w_seg = w_seg_at(tau)``, ``w_cls = 1 / w_seg``. ``tau`` is 0 before the first epoch, and an
    epoch without a Dice keeps the previous value (a buffer: saved with ``state_dict``)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("tau", torch.tensor(0.0, dtype=torch.float64))

    def w_seg_at(self, tau: float) -> float:
        """The segmentation weight for a tumor Dice ``tau``."""
        raise NotImplementedError

    def current_weights(self) -> dict[str, float]:
        w_seg = self.w_seg_at(float(self.tau))
        return {"w_seg": w_seg, "w_cls": 1.0 / w_seg}

    def end_epoch(self, stats: dict) -> None:
        value = epoch_dice(stats, self.name)
        if value is not None:
            self.tau.fill_(value)


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
