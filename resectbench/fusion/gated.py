"""Gated fusion: learned per-sample, per-feature gates weigh image against clinical (a Gated Multimodal Unit)."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import component
from ..search_space import Categorical
from .base import Fusion
from .head import HEAD_SPACE, ClassificationHead


@component(
    "gated",
    tags=("interaction",),
    description="Gated Multimodal Unit (Arevalo et al. 2017): sigmoid gates mix tanh projections of "
    "each modality per feature -> MLP head",
    search_space={"fusion_dim": Categorical([64, 128, 256]), **HEAD_SPACE},
)
class GatedFusion(Fusion):
    """Gated Multimodal Unit (Arevalo et al., 2017) followed by the classification head.

    ``h_img = tanh(W_i x_img)``, ``h_cli = tanh(W_c x_cli)``, ``z = sigmoid(W_z [x_img, x_cli])``,
    ``h = z * h_img + (1 - z) * h_cli`` (all in R^fusion_dim), then ``head(h)``. The gate ``z`` is
    learned from both modalities, per sample and per feature: z -> 1 trusts the image, z -> 0 the
    clinical data. The gates of the last forward pass are kept (detached) in ``last_gate`` for
    inspection. Needs both modalities (with one, the gate has nothing to choose between).
    ``fusion_dim`` 128 is our default.
    """

    name = "gated"
    needs = "both"

    def __init__(
        self,
        image_dim: int,
        clinical_dim: int,
        n_classes: int = 3,
        fusion_dim: int = 128,
        head_hidden: int = 128,
        dropout: float = 0.2,
    ):
        super().__init__(image_dim, clinical_dim, n_classes)
        self.image_proj = nn.Linear(image_dim, fusion_dim)
        self.clinical_proj = nn.Linear(clinical_dim, fusion_dim)
        self.gate = nn.Linear(image_dim + clinical_dim, fusion_dim)
        self.head = ClassificationHead(fusion_dim, n_classes, head_hidden, dropout)
        self.last_gate: torch.Tensor | None = None

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        z = torch.sigmoid(self.gate(torch.cat([image_emb, clinical_emb], dim=1)))
        self.last_gate = z.detach()
        h = z * torch.tanh(self.image_proj(image_emb)) + (1 - z) * torch.tanh(self.clinical_proj(clinical_emb))
        return self.head(h)
