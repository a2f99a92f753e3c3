"""Deterministic seeding: same seed + same data -> same weights and predictions on CPU."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch generator for DataLoader shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def worker_init_fn(worker_id: int) -> None:
    """Give each DataLoader worker its own reproducible NumPy/random stream (torch seeds it)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


@contextlib.contextmanager
def deterministic(device: str):
    """Ask torch for deterministic kernels while training on CPU, restoring the caller's setting.

    ``warn_only`` because a few 3D kernels have no deterministic variant on CUDA; on CPU the
    kernels we use are deterministic already, so this mostly guards against future changes.
    """
    if not str(device).startswith("cpu"):
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
