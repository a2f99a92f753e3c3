"""A single linear projection of the clinical table: the simplest learned clinical embedding."""

from __future__ import annotations

import torch
from torch import nn

from ...registry import component
from ...search_space import Categorical
from .base import ClinicalEncoder


@component(
    "linear",
    tags=("linear",),
    description="One linear layer (no nonlinearity) projecting the clinical table to out_dim (default 32)",
    search_space={"out_dim": Categorical([8, 16, 32])},
)
class LinearClinicalEncoder(ClinicalEncoder):
    """Linear projection ``Linear(in_features, out_dim)`` of the preprocessed clinical table.

    No normalisation or activation: any nonlinearity comes from the fusion and its head, so this
    encoder asks whether the MLP's extra capacity helps. ``out_dim`` defaults to 32 to match the
    paper's MLP embedding width (our choice).
    """

    name = "linear"

    def __init__(self, in_features: int, out_dim: int = 32):
        super().__init__(in_features, out_dim)
        if out_dim < 1:
            raise ValueError(f"clinical encoder 'linear': out_dim must be >= 1, got {out_dim}")
        self.proj = nn.Linear(in_features, out_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
