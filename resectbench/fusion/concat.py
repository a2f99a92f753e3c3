"""The paper's fusion: concatenate the image and clinical embeddings (256 + 32 = 288) and classify."""

from __future__ import annotations

import torch

from ..registry import component
from .base import Fusion
from .head import HEAD_SPACE, ClassificationHead


@component(
    "concat",
    tags=("paper", "early"),
    description="Concatenate image and clinical embeddings (paper: 256 + 32 = 288) -> MLP head",
    search_space=dict(HEAD_SPACE),
)
class ConcatFusion(Fusion):
    """Concatenation fusion (the paper's): ``head([image_emb, clinical_emb])``.

    Works with one modality absent (it then classifies the other alone). The head is
    :class:`~resectbench.fusion.head.ClassificationHead` (LayerNorm, Linear(288, head_hidden), ReLU,
    dropout, Linear(head_hidden, n_classes)); head width 128 and dropout 0.2 are our defaults
    (the paper gives neither).
    """

    name = "concat"
    needs = "any"

    def __init__(
        self, image_dim: int, clinical_dim: int, n_classes: int = 3, head_hidden: int = 128, dropout: float = 0.2
    ):
        super().__init__(image_dim, clinical_dim, n_classes)
        self.head = ClassificationHead(image_dim + clinical_dim, n_classes, head_hidden, dropout)

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([image_emb, clinical_emb], dim=1))
