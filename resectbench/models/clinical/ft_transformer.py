"""A tokenising transformer over the clinical variables (after FT-Transformer, Gorishniy et al. 2021)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...registry import component
from ...search_space import Categorical, Float, Int
from .base import ClinicalEncoder


@component(
    "ft-transformer",
    tags=("transformer", "tokenising"),
    description="FT-Transformer style: one learned token per clinical feature + CLS token, "
    "small pre-norm TransformerEncoder; out_dim = d_token (default 32)",
    search_space={"d_token": Categorical([16, 32, 64]), "n_layers": Int(1, 3), "dropout": Float(0.0, 0.3)},
)
class FTTransformerClinicalEncoder(ClinicalEncoder):
    """Feature-tokenising transformer encoder of the clinical table.

    Each preprocessed feature ``x_j`` (a z-scored value or one one-hot column) becomes a token
    ``x_j * W_j + b_j`` in R^d_token with its own learned ``W_j, b_j``; a learned CLS token is
    prepended and ``n_layers`` pre-norm ``nn.TransformerEncoderLayer`` blocks (``n_heads`` heads,
    feed-forward width ``ffn_factor * d_token``) mix them. The embedding is the LayerNorm of the
    CLS token, so ``out_dim == d_token``.

    Our choices (FT-Transformer uses ReGLU and a ReLU + linear output head): GELU feed-forward,
    no output activation (the fusion head follows), d_token 32 to match the paper's 32-d clinical
    embedding, 2 layers, 4 heads, dropout 0.1 on attention and feed-forward. Tokens come from
    the preprocessed table, so a categorical variable is several one-hot tokens rather than one
    embedding lookup; missing values are already imputed upstream.
    """

    name = "ft-transformer"

    def __init__(
        self,
        in_features: int,
        d_token: int = 32,
        n_layers: int = 2,
        n_heads: int = 4,
        ffn_factor: float = 2.0,
        dropout: float = 0.1,
    ):
        super().__init__(in_features, d_token)
        if d_token < 1 or n_layers < 1 or n_heads < 1:
            raise ValueError(
                f"clinical encoder 'ft-transformer': d_token, n_layers and n_heads must be >= 1, "
                f"got {d_token}, {n_layers}, {n_heads}"
            )
        if d_token % n_heads:
            raise ValueError(
                f"clinical encoder 'ft-transformer': d_token ({d_token}) must be divisible by n_heads ({n_heads})"
            )
        bound = 1.0 / math.sqrt(d_token)
        self.weight = nn.Parameter(torch.empty(in_features, d_token).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(in_features, d_token).uniform_(-bound, bound))
        self.cls = nn.Parameter(torch.empty(1, 1, d_token).uniform_(-bound, bound))
        layer = nn.TransformerEncoderLayer(
            d_token,
            n_heads,
            dim_feedforward=max(1, int(ffn_factor * d_token)),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # nested tensors only apply to post-norm layers; disabling avoids a warning and changes nothing
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_token)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_features) -> (B, 1 + in_features, d_token), CLS first."""
        features = x.unsqueeze(-1) * self.weight + self.bias
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), features], dim=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.encoder(self.tokens(x))[:, 0])
