"""``timm-2.5d``: any timm 2D image model applied to axial slices, pooled over slices by attention."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ...registry import component
from ...search_space import Categorical
from .base import BackboneOutput, as_roi, check_input, load_pretrained


class GatedAttentionPool(nn.Module):
    """Gated attention pooling over a set (Ilse et al. 2018): softmax(w^T (tanh(Vh) * sigmoid(Uh)))."""

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.value = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # h: (B, S, dim) -> pooled (B, dim), weights (B, S)
        weights = torch.softmax(self.score(torch.tanh(self.value(h)) * torch.sigmoid(self.gate(h))).squeeze(-1), dim=1)
        return torch.einsum("bs,bsd->bd", weights, h), weights


@component(
    "timm-2.5d",
    tags=("2.5d", "timm", "slices"),
    description="timm 2D model on axial slices (optionally 3 adjacent as channels), gated attention pooling "
    "over slices -> embedding; no segmentation",
    search_space={
        "model_name": Categorical(["convnext_atto", "resnet18", "vit_tiny_patch16_224"]),
        "adjacent_slices": Categorical([True, False]),
        "slice_stride": Categorical([1, 2]),
    },
)
class Timm25DBackbone(nn.Module):
    """A timm 2D backbone applied slice by slice (2.5D), with learned attention pooling over slices.

    Choices (resectbench's own):

    - **Slices** are axial: the volume's last axis (canonical RAS orientation: the z axis), so
      each slice is a (roi[0], roi[1]) image. Every ``slice_stride``-th slice is used (2 by
      default, halving CPU cost; neighbouring 1-1.5 mm slices are largely redundant).
    - ``adjacent_slices=True`` feeds slices z-1, z, z+1 as the 3 input channels (edges repeat
      the border slice); otherwise one channel. Inputs are the z-scored CT, unchanged.
    - **Model**: any ``timm`` model name, always built with ``pretrained=False`` (nothing is
      downloaded) and its classifier removed (``num_classes=0``, timm's global pooling).
      Models that take an image size (ViTs) get the slice size. ``pretrained`` may name a local
      timm state-dict file, loaded weights-only and non-strictly (the stem is skipped when the
      channel count differs). ``convnext_atto`` is the default: small (3.4M) and fast on CPU.
    - **Pooling**: a learned per-slice position embedding is added to the slice features (so
      attention can prefer levels of the pancreas), then gated attention pooling (Ilse et al.
      2018) and a linear projection to ``embed_dim``. The last attention weights are kept in
      ``self.last_slice_weights`` for inspection.
    - No segmentation head (``segments=False``): recipes must use a classification-only schedule.
    """

    def __init__(
        self,
        in_channels: int = 1,
        roi: Sequence[int] | int = (64, 64, 64),
        n_seg_classes: int = 0,
        embed_dim: int = 256,
        model_name: str = "convnext_atto",
        adjacent_slices: bool = True,
        slice_stride: int = 2,
        slice_position: bool = True,
        drop_path_rate: float = 0.0,
        attention_hidden: int = 128,
        pretrained: str | None = None,
    ):
        super().__init__()
        import timm

        self.roi = as_roi(roi)
        self.in_channels = int(in_channels)
        if self.in_channels != 1:
            raise ValueError(f"timm-2.5d takes a single-channel CT (in_channels=1), got in_channels={in_channels}")
        self.embed_dim = int(embed_dim)
        self.segments = False  # n_seg_classes is accepted for a uniform signature but nothing segments here
        self.n_seg_classes = 0
        if not timm.is_model(model_name):
            close = difflib.get_close_matches(model_name, timm.list_models(), n=5)
            raise ValueError(
                f"timm-2.5d: unknown timm model {model_name!r}"
                + (f"; did you mean {', '.join(close)}?" if close else "")
            )
        if slice_stride < 1:
            raise ValueError(f"timm-2.5d: slice_stride must be >= 1, got {slice_stride}")
        self.model_name = model_name
        self.adjacent_slices = bool(adjacent_slices)
        channels = 3 if self.adjacent_slices else 1
        depth = self.roi[2]
        self.register_buffer(
            "slice_index", torch.arange((slice_stride - 1) // 2, depth, slice_stride), persistent=False
        )
        common = dict(pretrained=False, num_classes=0, in_chans=channels, drop_path_rate=drop_path_rate)
        try:
            self.encoder = timm.create_model(model_name, img_size=self.roi[:2], **common)
        except TypeError:  # convolutional models take any size and no img_size argument
            self.encoder = timm.create_model(model_name, **common)
        features = int(self.encoder.num_features)
        n_slices = len(self.slice_index)
        self.position = nn.Parameter(torch.zeros(1, n_slices, features)) if slice_position else None
        self.pool = GatedAttentionPool(features, attention_hidden)
        self.project = nn.Linear(features, self.embed_dim)
        self.last_slice_weights: torch.Tensor | None = None
        self.pretrained_report = self.load_pretrained(pretrained) if pretrained else None

    def load_pretrained(self, path: str | Path):
        """Load a local timm state dict (weights only) into the 2D encoder; returns the load report."""
        return load_pretrained(self.encoder, path)

    def _slices(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 1, X, Y, Z) -> (B * S, C, X, Y) axial slices along Z
        volume = x[:, 0]
        z = self.slice_index
        if self.adjacent_slices:
            last = volume.shape[-1] - 1
            z = torch.stack([(z - 1).clamp(0, last), z, (z + 1).clamp(0, last)], dim=1)  # (S, 3)
            stack = volume[..., z]  # (B, X, Y, S, 3)
            return stack.permute(0, 3, 4, 1, 2).reshape(-1, 3, *volume.shape[1:3])
        return volume[..., z].permute(0, 3, 1, 2).reshape(-1, 1, *volume.shape[1:3])

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        check_input(x, self.in_channels, self.roi, "timm-2.5d")
        batch = x.shape[0]
        features = self.encoder(self._slices(x).contiguous()).reshape(batch, len(self.slice_index), -1)
        if self.position is not None:
            features = features + self.position
        pooled, weights = self.pool(features)
        self.last_slice_weights = weights.detach()
        return BackboneOutput(embedding=self.project(pooled), seg_logits=None)
