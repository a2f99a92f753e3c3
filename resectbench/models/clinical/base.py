"""What every clinical encoder shares: input validation and the ``out_dim`` contract.

A clinical encoder maps the preprocessed clinical table (``ClinicalPreprocessor`` output:
z-scored continuous variables, one-hot categories; shape ``(B, in_features)``) to an embedding
``(B, out_dim)`` that a fusion consumes. ``out_dim`` is 0 for the ``none`` encoder.
"""

from __future__ import annotations

import torch
from torch import nn


class ClinicalEncoder(nn.Module):
    """Base class: stores ``in_features`` / ``out_dim`` and checks inputs before ``encode``."""

    #: registry name, used in error messages
    name: str = "clinical-encoder"

    def __init__(self, in_features: int, out_dim: int, *, needs_features: bool = True):
        super().__init__()
        if not isinstance(in_features, int) or in_features < 0:
            raise ValueError(
                f"clinical encoder {self.name!r}: in_features must be a non-negative int, got {in_features!r}"
            )
        if needs_features and in_features == 0:
            raise ValueError(
                f"clinical encoder {self.name!r} needs at least one clinical feature "
                "(in_features=0); use the 'none' clinical encoder for image-only models"
            )
        self.in_features = in_features
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"clinical encoder {self.name!r} expects input of shape (batch, {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        return self.encode(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
