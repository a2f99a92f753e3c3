"""The classification head every fusion ends in (paper: "MLP head (LayerNorm, ReLU, dropout)")."""

from __future__ import annotations

import torch
from torch import nn

from ..search_space import Categorical, Float

#: search space shared by every fusion for its head (merged into each fusion's own space)
HEAD_SPACE = {"head_hidden": Categorical([64, 128, 256]), "dropout": Float(0.0, 0.5)}


class ClassificationHead(nn.Module):
    """LayerNorm(in_dim) -> Linear(in_dim, hidden) -> ReLU -> Dropout -> Linear(hidden, n_classes).

    Returns logits; the caller applies softmax. The paper names the parts but not their order,
    width or dropout rate: we normalise first (the image and clinical embeddings arrive on
    different scales), use one hidden layer of 128 units and dropout 0.2 by default.
    """

    def __init__(self, in_dim: int, n_classes: int = 3, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        if in_dim < 1:
            raise ValueError(f"classification head needs a non-empty input, got in_dim={in_dim}")
        if hidden < 1:
            raise ValueError(f"classification head hidden size must be >= 1, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"classification head dropout must be in [0, 1), got {dropout}")
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim),
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
