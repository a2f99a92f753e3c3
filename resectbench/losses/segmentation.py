"""The auxiliary segmentation loss: a * cross-entropy + b * Dice + c * focal over the canonical classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..search_space import Float

#: the paper tunes a, b, c in [0.2, 0.6]; recipes nest this under their own prefix
SEARCH_SPACE = {"ce": Float(0.2, 0.6), "dice": Float(0.2, 0.6), "focal": Float(0.2, 0.6)}


class SegmentationLoss(nn.Module):
    """``ce * CrossEntropy + dice * DiceLoss + focal * FocalLoss`` on segmentation logits.

    Inputs: ``seg_logits (B, C, *spatial)`` (C = the canonical 16 structures, or fewer for a
    smaller head) and ``seg_target`` with canonical indices as ``(B, *spatial)`` or
    ``(B, 1, *spatial)`` of any integer (or integral float) dtype. Pass only samples that have a
    mask: an all-zero target would be learned as "all background".

    Terms (MONAI where it fits):
    - cross-entropy: ``torch.nn.functional.cross_entropy``, mean over voxels;
    - Dice: ``monai.losses.DiceLoss(softmax=True, to_onehot_y=True)``, foreground classes only
      (``include_background=False``, as in nnU-Net: background dominates the volume), by default
      computed over the whole batch (``batch_dice=True``, more stable for small structures), and
      averaged over the classes present in the target only: an absent structure (a duct that is
      not dilated, a vessel outside the crop) would otherwise add a near-constant ~1 with almost
      no gradient (its Dice is smooth / (predicted volume + smooth)); CE and focal still push its
      probability down. A batch with no foreground at all has a Dice term of 0;
    - focal: ``monai.losses.FocalLoss(use_softmax=True, gamma=gamma)``, all classes.

    The paper fixes neither the focal gamma nor these Dice details: gamma 2.0 (Lin et al.'s
    default) and the choices above are ours. Default weights 0.4 / 0.4 / 0.2 sit in the paper's
    tuning range [0.2, 0.6] (:data:`SEARCH_SPACE`).
    """

    def __init__(
        self,
        ce: float = 0.4,
        dice: float = 0.4,
        focal: float = 0.2,
        gamma: float = 2.0,
        include_background_dice: bool = False,
        batch_dice: bool = True,
    ):
        super().__init__()
        from monai.losses import DiceLoss, FocalLoss  # monai is heavy; import when a loss is built

        for name, value in (("ce", ce), ("dice", dice), ("focal", focal), ("gamma", gamma)):
            if not (value >= 0.0):
                raise ValueError(f"SegmentationLoss: {name} must be >= 0, got {value!r}")
        if ce + dice + focal <= 0:
            raise ValueError("SegmentationLoss: at least one of ce, dice, focal must be positive")
        self.weights = {"ce": float(ce), "dice": float(dice), "focal": float(focal)}
        self.gamma = float(gamma)
        self.include_background_dice = include_background_dice
        self.batch_dice = batch_dice
        self.dice_loss = DiceLoss(
            include_background=include_background_dice,
            to_onehot_y=True,
            softmax=True,
            batch=batch_dice,
            reduction="none",
        )
        self.focal_loss = FocalLoss(include_background=True, to_onehot_y=True, gamma=gamma, use_softmax=True)

    def forward(self, seg_logits: torch.Tensor, seg_target: torch.Tensor) -> torch.Tensor:
        return sum(self.weights[k] * v for k, v in self.terms(seg_logits, seg_target).items())

    def terms(self, seg_logits: torch.Tensor, seg_target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted CE, Dice and focal terms (only those with a non-zero weight)."""
        target = self._target(seg_logits, seg_target)
        out = {}
        if self.weights["ce"]:
            out["ce"] = F.cross_entropy(seg_logits, target)
        if self.weights["dice"]:
            out["dice"] = self._present_class_dice(seg_logits, target)
        if self.weights["focal"]:
            out["focal"] = self.focal_loss(seg_logits, target.unsqueeze(1))
        return out

    def _present_class_dice(self, seg_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean Dice loss over the (sample, class) pairs - or classes, with batch Dice - present in ``target``."""
        per_class = self.dice_loss(seg_logits, target.unsqueeze(1))  # (C',) or (B, C') plus singleton dims
        per_class = (
            per_class.reshape(per_class.shape[0], -1)[:, 0]
            if self.batch_dice
            else per_class.reshape(*per_class.shape[:2], -1)[..., 0]
        )
        n_classes = seg_logits.shape[1]
        counts = torch.stack([(target == c).flatten(1).any(dim=1) for c in range(n_classes)], dim=1)  # (B, C)
        if not self.include_background_dice:
            counts = counts[:, 1:]
        present = counts.any(dim=0) if self.batch_dice else counts
        if not bool(present.any()):
            return seg_logits.sum() * 0.0
        return per_class[present].mean()

    @staticmethod
    def _target(seg_logits: torch.Tensor, seg_target: torch.Tensor) -> torch.Tensor:
        if seg_logits.dim() < 3:
            raise ValueError(f"segmentation logits must be (B, C, *spatial), got {tuple(seg_logits.shape)}")
        if seg_target.dim() == seg_logits.dim():
            if seg_target.shape[1] != 1:
                raise ValueError(
                    f"segmentation target must be (B, *spatial) or (B, 1, *spatial), got {tuple(seg_target.shape)}"
                )
            seg_target = seg_target[:, 0]
        if seg_target.shape != seg_logits.shape[:1] + seg_logits.shape[2:]:
            raise ValueError(
                f"segmentation target {tuple(seg_target.shape)} does not match logits "
                f"{tuple(seg_logits.shape)} (batch and spatial sizes must agree)"
            )
        target = seg_target.long()
        n_classes = seg_logits.shape[1]
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= n_classes):
            raise ValueError(
                f"segmentation target holds labels in [{int(target.min())}, {int(target.max())}] but "
                f"the logits have {n_classes} channels"
            )
        return target
