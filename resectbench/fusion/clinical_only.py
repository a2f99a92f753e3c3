"""Ablation: classify from the clinical embedding alone (the image embedding is ignored)."""

from __future__ import annotations

import torch

from ..registry import component
from .base import Fusion
from .head import HEAD_SPACE, ClassificationHead


@component(
    "clinical-only",
    tags=("ablation",),
    description="Ablation: MLP head on the clinical embedding; any image embedding is ignored",
    search_space=dict(HEAD_SPACE),
)
class ClinicalOnlyFusion(Fusion):
    """``head(clinical_emb)``; the image embedding (any width, also 0) is accepted and ignored.

    Needs ``clinical_dim > 0``. (A recipe that skips the image backbone entirely passes
    ``image_dim=0``.)
    """

    name = "clinical-only"
    needs = "clinical"

    def __init__(
        self, image_dim: int, clinical_dim: int, n_classes: int = 3, head_hidden: int = 128, dropout: float = 0.2
    ):
        super().__init__(image_dim, clinical_dim, n_classes)
        self.head = ClassificationHead(clinical_dim, n_classes, head_hidden, dropout)

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        return self.head(clinical_emb)
