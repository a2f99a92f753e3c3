"""Cases as tensors: what the training loop and inference iterate over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .seeding import worker_init_fn


@dataclass
class CaseArrays:
    """Preprocessed cases, aligned by position. ``images`` is None for networks without an image branch."""

    case_ids: list[str]
    clinical: np.ndarray  # (N, F) float32, already preprocessed
    labels: np.ndarray | None = None  # (N,) int
    images: Sequence[np.ndarray] | None = None  # each (1, *roi) float32
    segs: Sequence[np.ndarray] | None = None  # each (*roi) integer canonical labels
    has_mask: np.ndarray = field(default=None)  # (N,) bool

    def __post_init__(self):
        n = len(self.case_ids)
        if self.has_mask is None:
            self.has_mask = np.zeros(n, dtype=bool)
        for name in ("clinical", "labels", "images", "segs", "has_mask"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"CaseArrays.{name} has {len(value)} rows for {n} cases")

    def __len__(self) -> int:
        return len(self.case_ids)


def _plain(x) -> torch.Tensor:
    """MONAI MetaTensor -> plain tensor (default_collate and autocast are simpler without metadata)."""
    if hasattr(x, "as_tensor"):
        x = x.as_tensor()
    return torch.as_tensor(x)


class CaseDataset(Dataset):
    """Yields dicts (image, seg, clinical, label, has_mask, case_id); ``transform`` sees image/seg only."""

    def __init__(self, arrays: CaseArrays, transform: Callable | None = None):
        self.arrays = arrays
        self.transform = transform

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict:
        a = self.arrays
        item = {
            "clinical": torch.as_tensor(a.clinical[i], dtype=torch.float32),
            "label": torch.as_tensor(int(a.labels[i]) if a.labels is not None else -1),
            "has_mask": torch.as_tensor(bool(a.has_mask[i])),
            "case_id": a.case_ids[i],
        }
        if a.images is not None:
            spatial = {"image": np.asarray(a.images[i], dtype=np.float32)}
            if a.segs is not None:
                spatial["seg"] = np.asarray(a.segs[i])[None]  # channel-first for MONAI
            if self.transform is not None:
                spatial = self.transform(spatial)
            item["image"] = _plain(spatial["image"]).float()
            if "seg" in spatial:
                item["seg"] = _plain(spatial["seg"]).long()
        return item


def make_loader(
    arrays: CaseArrays,
    *,
    batch_size: int,
    shuffle: bool,
    transform: Callable | None = None,
    generator: torch.Generator | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over ``arrays``. Shuffling and worker seeds come from ``generator`` (reproducible)."""
    return DataLoader(
        CaseDataset(arrays, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        worker_init_fn=worker_init_fn,
        drop_last=drop_last,
        persistent_workers=False,
    )
