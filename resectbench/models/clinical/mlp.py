"""The paper's clinical encoder: a two-layer MLP (64 -> 32), each layer LayerNorm + ReLU."""

from __future__ import annotations

import torch
from torch import nn

from ...registry import component
from ...search_space import Categorical, Float
from .base import ClinicalEncoder


@component(
    "mlp",
    tags=("paper", "mlp"),
    description="Two-layer MLP (paper: 64 -> 32, each Linear + LayerNorm + ReLU); out_dim 32",
    search_space={
        "hidden": Categorical([32, 64, 128]),
        "out_dim": Categorical([16, 32, 64]),
        "dropout": Float(0.0, 0.3),
    },
)
class MLPClinicalEncoder(ClinicalEncoder):
    """Two-layer MLP encoder of the clinical table (the paper's choice).

    Layers: Linear(in_features, hidden) -> LayerNorm -> ReLU -> Dropout -> Linear(hidden, out_dim)
    -> LayerNorm -> ReLU. Paper: hidden 64, out_dim 32, "each LayerNorm + ReLU". The paper is
    silent on dropout inside the encoder: we default to none (0.0; the classification head has
    its own dropout) and let the tuner try up to 0.3. The search space also varies the widths.
    """

    name = "mlp"

    def __init__(self, in_features: int, hidden: int = 64, out_dim: int = 32, dropout: float = 0.0):
        super().__init__(in_features, out_dim)
        if hidden < 1 or out_dim < 1:
            raise ValueError(f"clinical encoder 'mlp': hidden and out_dim must be >= 1, got {hidden}, {out_dim}")
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
            nn.LayerNorm(out_dim),
            nn.ReLU(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
