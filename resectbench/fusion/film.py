"""FiLM fusion: the clinical embedding scales and shifts the image embedding feature-wise."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import component
from .base import Fusion
from .head import HEAD_SPACE, ClassificationHead


@component(
    "film",
    tags=("interaction",),
    description="FiLM (Perez et al. 2018): clinical embedding -> per-feature scale and shift of the image "
    "embedding -> MLP head",
    search_space=dict(HEAD_SPACE),
)
class FiLMFusion(Fusion):
    """Feature-wise linear modulation of the image embedding by the clinical one (Perez et al., 2018).

    ``gamma, beta = Linear(clinical_dim, 2 * image_dim)(x_cli)``;
    ``h = (1 + gamma) * x_img + beta``; then ``head(h)``. The ``1 +`` keeps the modulation near
    identity at initialisation, so training starts from image features that pass through
    unchanged rather than from random scales (our choice). The generator is a single linear
    layer (our choice; the clinical encoder before it is already nonlinear). Needs both
    modalities.
    """

    name = "film"
    needs = "both"

    def __init__(
        self, image_dim: int, clinical_dim: int, n_classes: int = 3, head_hidden: int = 128, dropout: float = 0.2
    ):
        super().__init__(image_dim, clinical_dim, n_classes)
        self.generator = nn.Linear(clinical_dim, 2 * image_dim)
        self.head = ClassificationHead(image_dim, n_classes, head_hidden, dropout)

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.generator(clinical_emb).chunk(2, dim=1)
        return self.head((1 + gamma) * image_emb + beta)
