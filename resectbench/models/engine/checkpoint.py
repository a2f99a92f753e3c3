"""Weights-only checkpoints: plain state dicts written atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s state dict (cheap in-memory 'best epoch' copy)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def save_weights(state: dict[str, torch.Tensor], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict, refusing pickled code (``weights_only=True``)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)
