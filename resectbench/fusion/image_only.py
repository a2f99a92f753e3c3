"""Ablation: classify from the image embedding alone (the clinical embedding is ignored)."""

from __future__ import annotations

import torch

from ..registry import component
from .base import Fusion
from .head import HEAD_SPACE, ClassificationHead


@component(
    "image-only",
    tags=("ablation",),
    description="Ablation: MLP head on the image embedding; any clinical embedding is ignored",
    search_space=dict(HEAD_SPACE),
)
class ImageOnlyFusion(Fusion):
    """``head(image_emb)``; the clinical embedding (any width, also 0) is accepted and ignored.

    Pair it with the ``none`` clinical encoder to avoid computing an unused clinical embedding.
    Needs ``image_dim > 0``.
    """

    name = "image-only"
    needs = "image"

    def __init__(
        self, image_dim: int, clinical_dim: int, n_classes: int = 3, head_hidden: int = 128, dropout: float = 0.2
    ):
        super().__init__(image_dim, clinical_dim, n_classes)
        self.head = ClassificationHead(image_dim, n_classes, head_hidden, dropout)

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        return self.head(image_emb)
