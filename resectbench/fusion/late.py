"""Late (decision-level) fusion: one head per modality, logits averaged with learned or equal weights."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import component
from ..search_space import Categorical
from .base import Fusion
from .head import HEAD_SPACE, ClassificationHead


@component(
    "late",
    tags=("late", "decision-level"),
    description="Decision-level fusion: a head per modality, their logits averaged with softmax-normalised "
    "learned (or equal) weights",
    search_space={"weighting": Categorical(["learned", "equal"]), **HEAD_SPACE},
)
class LateFusion(Fusion):
    """Decision-level fusion: ``sum_m w_m * head_m(x_m)`` over the present modalities.

    Each modality gets its own classification head; the output is a weighted average of their
    logits with ``w = softmax(alpha)``. ``weighting="learned"`` makes ``alpha`` a parameter
    initialised to zeros (so training starts from the plain average); ``"equal"`` keeps the plain
    average. Averaging logits (not probabilities) is our choice: it is a product of experts in
    probability space and keeps the output a logit for the usual cross-entropy. With one
    modality absent (dim 0) the output is that of the other modality's head alone.
    ``modality_weights()`` reports the current weights for logs.
    """

    name = "late"
    needs = "any"

    def __init__(
        self,
        image_dim: int,
        clinical_dim: int,
        n_classes: int = 3,
        weighting: str = "learned",
        head_hidden: int = 128,
        dropout: float = 0.2,
    ):
        super().__init__(image_dim, clinical_dim, n_classes)
        if weighting not in ("learned", "equal"):
            raise ValueError(f"fusion 'late': weighting must be 'learned' or 'equal', got {weighting!r}")
        self.weighting = weighting
        self.modalities = [m for m, d in (("image", image_dim), ("clinical", clinical_dim)) if d > 0]
        self.heads = nn.ModuleDict(
            {
                m: ClassificationHead(d, n_classes, head_hidden, dropout)
                for m, d in (("image", image_dim), ("clinical", clinical_dim))
                if d > 0
            }
        )
        alpha = torch.zeros(len(self.modalities))
        if weighting == "learned":
            self.alpha = nn.Parameter(alpha)
        else:
            self.register_buffer("alpha", alpha)

    def weights(self) -> torch.Tensor:
        """The modality weights (sum to 1), in ``self.modalities`` order."""
        return torch.softmax(self.alpha, dim=0)

    def modality_weights(self) -> dict[str, float]:
        return {m: float(w) for m, w in zip(self.modalities, self.weights().detach())}

    def modality_logits(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each present modality's own logits (before weighting)."""
        image_emb, clinical_emb = self._checked(image_emb, clinical_emb)
        inputs = {"image": image_emb, "clinical": clinical_emb}
        return {m: self.heads[m](inputs[m]) for m in self.modalities}

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        logits = self.modality_logits(image_emb, clinical_emb)
        stacked = torch.stack([logits[m] for m in self.modalities])  # (M, B, n_classes)
        return torch.einsum("m,mbc->bc", self.weights(), stacked)
