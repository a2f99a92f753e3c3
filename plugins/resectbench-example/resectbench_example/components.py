"""The plugin's components: plain torch modules honouring resectbench's component contracts."""

from __future__ import annotations

import torch
from torch import nn

from resectbench.fusion.base import Fusion
from resectbench.models.backbones.base import BackboneOutput


class TinyCNN3D(nn.Module):
    """A very small 3D CNN image backbone (no segmentation head): conv blocks, global pooling, projection.

    Useful as a fast baseline and as a template for your own backbone.
    """

    def __init__(
        self,
        in_channels: int = 1,
        roi: tuple[int, int, int] = (64, 64, 64),
        n_seg_classes: int = 0,
        embed_dim: int = 64,
        width: int = 8,
        depth: int = 3,
    ):
        super().__init__()
        layers, channels = [], in_channels
        for i in range(depth):
            out = width * 2**i
            layers += [nn.Conv3d(channels, out, 3, stride=2, padding=1), nn.GroupNorm(min(4, out), out), nn.ReLU()]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.project = nn.Linear(channels, embed_dim)
        self.embed_dim = embed_dim
        self.in_channels = in_channels
        self.segments = False  # this backbone has no decoder; recipes must use a cls-only schedule

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"example-tinycnn expects (B, {self.in_channels}, D, H, W), got {tuple(x.shape)}")
        return BackboneOutput(embedding=self.project(self.features(x)), seg_logits=None)


class BilinearFusion(Fusion):
    """Low-dimensional bilinear fusion: project both embeddings, take their outer product, classify.

    Subclasses resectbench's ``Fusion`` base class, which checks the dimensions and the embeddings'
    shapes (``ValueError`` naming the fusion) and refuses a missing modality (``needs = "both"``).
    """

    name = "example-bilinear"
    needs = "both"

    def __init__(self, image_dim: int, clinical_dim: int, n_classes: int = 3, rank_dim: int = 16, dropout: float = 0.1):
        super().__init__(image_dim, clinical_dim, n_classes)
        self.image = nn.Linear(image_dim, rank_dim)
        self.clinical = nn.Linear(clinical_dim, rank_dim)
        self.head = nn.Sequential(
            nn.LayerNorm(rank_dim * rank_dim), nn.Dropout(dropout), nn.Linear(rank_dim * rank_dim, n_classes)
        )

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:
        outer = torch.einsum("bi,bj->bij", self.image(image_emb), self.clinical(clinical_emb))
        return self.head(outer.flatten(1))
