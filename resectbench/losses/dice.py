"""Hard (argmax) Dice of one structure, per sample: what the adaptive loss schedules measure."""

from __future__ import annotations

import torch

from ..vocabulary import STRUCTURE_INDEX as INDEX

TUMOR = INDEX["tumor"]


def class_dice(seg_logits: torch.Tensor, seg_target: torch.Tensor, index: int, reduction: str = "mean") -> torch.Tensor:
    """Dice of structure ``index`` between ``argmax(seg_logits)`` and ``seg_target``, without gradient.

    ``seg_logits`` is ``(B, C, *spatial)``; ``seg_target`` holds canonical indices as ``(B, *spatial)``
    or ``(B, 1, *spatial)``. A sample whose target lacks the structure (e.g. a case without a mask)
    gets NaN (MONAI ``compute_dice(ignore_empty=True)``), so it does not count. ``reduction="none"``
    returns the ``(B,)`` per-sample values; ``"mean"`` their mean over samples that contain the
    structure (NaN if none does).
    """
    from monai.metrics import compute_dice  # monai is heavy; import when first needed

    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if seg_target.dim() == seg_logits.dim():
        seg_target = seg_target[:, 0]
    if seg_target.shape != seg_logits.shape[:1] + seg_logits.shape[2:]:
        raise ValueError(
            f"segmentation target {tuple(seg_target.shape)} does not match logits {tuple(seg_logits.shape)}"
        )
    if not 0 <= index < seg_logits.shape[1]:
        raise ValueError(f"structure index {index} is outside the {seg_logits.shape[1]} segmentation channels")
    with torch.no_grad():
        pred = (seg_logits.argmax(dim=1) == index).unsqueeze(1).float()
        truth = (seg_target == index).unsqueeze(1).float()
        per_sample = compute_dice(pred, truth, include_background=True, ignore_empty=True)[:, 0]
    if reduction == "none":
        return per_sample
    return per_sample.nanmean()


def tumor_dice(seg_logits: torch.Tensor, seg_target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Hard Dice of the tumor (canonical index ``INDEX["tumor"]``); see :func:`class_dice`."""
    return class_dice(seg_logits, seg_target, TUMOR, reduction)
