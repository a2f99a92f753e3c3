"""``cnn3d``: a residual 3D CNN encoder-decoder (MONAI SegResNet) with an embedding head."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ...registry import component
from ...search_space import Categorical
from .base import BackboneOutput, VolumeBackbone, check_input, require_divisible


@component(
    "cnn3d",
    tags=("cnn", "3d", "segments"),
    description="MONAI SegResNet: deepest encoder level -> avg pool -> linear embedding; decoder -> seg logits",
    search_space={"init_filters": Categorical([8, 16, 32]), "dropout_prob": Categorical([0.0, 0.1, 0.2])},
)
class CNN3DBackbone(VolumeBackbone):
    """MONAI SegResNet (Myronenko 2018, without the VAE branch) as a resectbench backbone.

    Choices (resectbench's own): the encoder's deepest level (``init_filters * 8`` channels at
    roi/8, after its residual blocks) is globally average-pooled and linearly projected to
    ``embed_dim``; segmentation logits come from SegResNet's decoder at full ROI resolution.
    With ``n_seg_classes=0`` the decoder is not built. Group normalisation (8 groups, MONAI's
    default) works at any batch size, so this is the CPU-friendly default backbone of the
    segmenter and of ``tat``. Every roi edge must be divisible by 8.
    """

    def __init__(
        self,
        in_channels: int = 1,
        roi: Sequence[int] | int = (64, 64, 64),
        n_seg_classes: int = 16,
        embed_dim: int = 256,
        init_filters: int = 16,
        blocks_down: Sequence[int] = (1, 2, 2, 4),
        dropout_prob: float = 0.0,
    ):
        super().__init__(in_channels, roi, embed_dim, n_seg_classes)
        from monai.networks.nets import SegResNet

        if init_filters % 8:
            raise ValueError(f"cnn3d: init_filters must be a multiple of 8 (group norm, 8 groups), got {init_filters}")
        blocks_down = tuple(int(b) for b in blocks_down)
        require_divisible(self.roi, 2 ** (len(blocks_down) - 1), "cnn3d", f"{len(blocks_down) - 1} 2x down-samplings")
        self.net = SegResNet(
            spatial_dims=3,
            init_filters=init_filters,
            in_channels=self.in_channels,
            out_channels=max(self.n_seg_classes, 1),
            dropout_prob=dropout_prob or None,
            blocks_down=blocks_down,
            blocks_up=tuple(1 for _ in blocks_down[1:]) if self.segments else (),
            use_conv_final=self.segments,
        )
        if not self.segments:
            del self.net.conv_final  # built unconditionally by SegResNet; unused without a decoder
        self.project = nn.Linear(init_filters * 2 ** (len(blocks_down) - 1), self.embed_dim)

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        check_input(x, self.in_channels, self.roi, "cnn3d")
        deepest, levels = self.net.encode(x)
        embedding = self.project(deepest.mean(dim=(2, 3, 4)))
        if not self.segments:
            return BackboneOutput(embedding=embedding, seg_logits=None)
        levels.reverse()
        return BackboneOutput(embedding=embedding, seg_logits=self.net.decode(deepest, levels))
