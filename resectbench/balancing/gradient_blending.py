"""``gradient-blending``: per-modality heads weighted by how much each generalises (Gradient-Blending)."""

from __future__ import annotations

import math

import torch

from ..registry import component
from ..search_space import Float
from .aux_heads import HEADS, AuxiliaryHeads


@component(
    "gradient-blending",
    tags=("auxiliary", "adaptive"),
    description="Per-modality heads, loss weights from each head's generalisation/overfitting (Wang et al. 2020)",
    search_space={"min_weight": Float(0.0, 0.2)},
)
class GradientBlending(AuxiliaryHeads):
    """Gradient-Blending (Wang, Tran, Feiszli, "What makes training multi-modal classification networks
    hard?", CVPR 2020; online form, their sec. 3.3): the fused head and one linear head per modality, their
    losses weighted by how well each generalises. After each epoch, for each head k, from its training loss
    (the epoch's running mean - the online approximation) and its inner-validation loss at the previous and
    this epoch:

    - generalisation G_k = L_val(previous) - L_val(now) (clipped at 0),
    - overfitting change O_k = (L_val - L_train)(now) - (L_val - L_train)(previous),
    - weight w_k proportional to G_k / O_k^2, normalised to sum 1, none below ``min_weight`` (a head whose
      validation loss stopped falling still trains a little; the fused head is what predicts).

    Epoch 1 uses equal weights. Without an inner validation split the weights stay equal. Needs the
    validation cases' embeddings (``wants_validation``): a head that overfits fast - on few cases, the
    clinical one - is turned down as it does."""

    name = "gradient-blending"
    wants_validation = True

    def __init__(self, min_weight: float = 0.05):
        if not 0.0 <= min_weight < 1.0 / len(HEADS):
            raise ValueError(f"gradient-blending: min_weight must be in [0, {1 / len(HEADS):.3f}), got {min_weight}")
        super().__init__(image_weight=1.0, clinical_weight=1.0, fused_weight=1.0)
        self.weights = {h: 1.0 / len(HEADS) for h in HEADS}
        self.min_weight = float(min_weight)
        self._previous: tuple[dict, dict] | None = None  # (train losses, validation losses) of the last epoch

    @torch.no_grad()
    def validation_losses(self, valid) -> dict[str, float]:
        out = valid["output"]
        return {h: float(v) for h, v in self.head_losses(out, valid["labels"], valid["cls_loss"]).items()}

    def end_epoch(self, epoch, net, valid):
        train = self.epoch_train_losses()
        row = {f"train_loss_{h}": v for h, v in train.items()}
        if valid is not None:
            val = self.validation_losses(valid)
            row.update({f"val_loss_{h}": v for h, v in val.items()})
            if self._previous is not None:
                self.weights = self.blend(*self._previous, train, val)
            self._previous = (train, val)
        row.update({f"weight_{h}": w for h, w in self.weights.items()})
        return row

    def blend(self, train0: dict, val0: dict, train1: dict, val1: dict) -> dict[str, float]:
        """The next epoch's weights from two epochs' train / validation losses per head (the paper's eq. 5)."""
        raw = {}
        for h in HEADS:
            gain = max(val0[h] - val1[h], 0.0)
            overfit = (val1[h] - train1[h]) - (val0[h] - train0[h])
            raw[h] = gain / max(overfit * overfit, 1e-4)  # an unchanged gap counts as 0.01: no infinite weight
        total = sum(raw.values())
        if not math.isfinite(total) or total <= 0:
            return dict(self.weights)  # no head generalised better: keep the weights
        weights = {h: raw[h] / total for h in HEADS}
        # lift the heads below the floor to it, taking the difference from the others in proportion
        low = [h for h in HEADS if weights[h] < self.min_weight]
        if low:
            spare = 1.0 - self.min_weight * len(low)
            rest = sum(weights[h] for h in HEADS if h not in low)
            weights = {h: self.min_weight if h in low else weights[h] * spare / rest for h in HEADS}
        return weights

    def describe(self):
        return {"name": self.name, "min_weight": self.min_weight}
