"""No clinical encoder: a zero-width embedding, for image-only models."""

from __future__ import annotations

import torch

from ...registry import component
from .base import ClinicalEncoder


@component(
    "none", tags=("ablation",), description="No clinical input: a zero-width embedding (out_dim 0)", search_space={}
)
class NoClinicalEncoder(ClinicalEncoder):
    """Ignore the clinical table and return a ``(B, 0)`` embedding.

    ``in_features`` may be anything (the table is not read, only its batch size), so recipes can
    build every encoder the same way. Fusions that need a clinical embedding refuse
    ``clinical_dim=0`` with a clear error; ``concat``, ``late`` and ``image-only`` accept it.
    Nothing to tune (empty search space).
    """

    name = "none"

    def __init__(self, in_features: int = 0):
        super().__init__(in_features, 0, needs_features=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"clinical encoder 'none' expects input of shape (batch, features), got {tuple(x.shape)}")
        return x.new_zeros(x.shape[0], 0)
