"""``aux-heads``: a classification head per modality beside the fused one, with fixed loss weights."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import component
from ..search_space import Float
from .base import MODALITIES, BalancingStrategy, require_two_modalities

HEADS = ("fused", *MODALITIES)


@component(
    "aux-heads",
    tags=("auxiliary",),
    description="Per-modality auxiliary classification heads beside the fused head, fixed loss weights",
    search_space={"image_weight": Float(0.25, 2.0), "clinical_weight": Float(0.0, 1.0)},
)
class AuxiliaryHeads(BalancingStrategy):
    """Per-modality auxiliary supervision (Holste et al., ISBI 2023, for images + clinical tables on small
    data; the uni-modal heads of Wang, Tran, Feiszli, CVPR 2020): a linear classification head on the image
    embedding and one on the clinical embedding, trained beside the fused head. The classification loss is
    ``fused_weight * L(fused) + image_weight * L(image head) + clinical_weight * L(clinical head)``, so the
    image branch keeps a classification signal of its own after the clinical branch has fitted the training
    cases. The heads are for training only: inference is the fused head's."""

    name = "aux-heads"

    def __init__(self, image_weight: float = 1.0, clinical_weight: float = 0.5, fused_weight: float = 1.0):
        self.weights = {"fused": float(fused_weight), "image": float(image_weight), "clinical": float(clinical_weight)}
        for head, w in self.weights.items():
            if w < 0:
                raise ValueError(f"{self.name}: {head}_weight must be >= 0, got {w}")
        if sum(self.weights.values()) <= 0:
            raise ValueError(f"{self.name}: at least one head needs a positive weight")
        self.heads: nn.ModuleDict | None = None
        self._sums = {h: 0.0 for h in HEADS}
        self._seen = 0

    def setup(self, net, n_classes):
        require_two_modalities(net, self.name)
        self.heads = nn.ModuleDict(
            {"image": nn.Linear(net.image_dim, n_classes), "clinical": nn.Linear(net.clinical_dim, n_classes)}
        )
        return [self.heads]

    def head_logits(self, out) -> dict[str, torch.Tensor]:
        return {
            "fused": out.logits.float(),
            "image": self.heads["image"](out.image_embedding.float()),
            "clinical": self.heads["clinical"](out.clinical_embedding.float()),
        }

    def head_losses(self, out, labels, cls_loss) -> dict[str, torch.Tensor]:
        return {head: cls_loss(logits, labels) for head, logits in self.head_logits(out).items()}

    def loss(self, out, labels, cls_loss):
        losses = self.head_losses(out, labels, cls_loss)
        total = sum(self.weights[h] * losses[h] for h in HEADS)
        b = labels.shape[0]
        for h in HEADS:
            self._sums[h] += float(losses[h].detach()) * b
        self._seen += b
        return total, {}

    def epoch_train_losses(self) -> dict[str, float]:
        """Mean training loss of each head over the epoch's batches; resets the running sums."""
        means = {h: self._sums[h] / max(self._seen, 1) for h in HEADS}
        self._sums, self._seen = {h: 0.0 for h in HEADS}, 0
        return means

    def end_epoch(self, epoch, net, valid):
        row = {f"train_loss_{h}": v for h, v in self.epoch_train_losses().items()}
        row.update({f"weight_{h}": w for h, w in self.weights.items()})
        return row

    def describe(self):
        return {"name": self.name, **{f"{h}_weight": w for h, w in self.weights.items()}}
