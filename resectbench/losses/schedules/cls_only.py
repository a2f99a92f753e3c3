"""No auxiliary segmentation: the classification loss alone."""

from __future__ import annotations

import torch

from ...registry import component
from .base import LossSchedule


@component(
    "cls-only",
    tags=("ablation",),
    description="No auxiliary segmentation (uses_segmentation False): total = classification loss",
    search_space={},
)
class ClsOnlySchedule(LossSchedule):
    """Classification only: ``total = cls_loss``, reported as ``w_seg = 0, w_cls = 1``.

    ``uses_segmentation`` is False, so the engine needs no masks and skips the segmentation
    loss; a ``seg_loss`` passed anyway is ignored. Required for backbones without a decoder.
    Nothing to tune.
    """

    name = "cls-only"
    uses_segmentation = False

    def current_weights(self) -> dict[str, float]:
        return {"w_seg": 0.0, "w_cls": 1.0}

    def combine(self, seg_loss: torch.Tensor | None, cls_loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return cls_loss, self.current_weights()
