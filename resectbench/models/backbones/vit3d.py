"""``vit3d``: a plain 3D Vision Transformer encoder (MONAI ViT) with the UNETR decoder."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ...registry import component
from ...search_space import Categorical
from .base import BackboneOutput, VolumeBackbone, check_input, norm_argument, require_divisible

PATCH = 16  # UNETR's patch size: its decoder up-samples four times by 2
_DECODER = ("encoder1", "encoder2", "encoder3", "encoder4", "decoder5", "decoder4", "decoder3", "decoder2", "out")


@component(
    "vit3d",
    tags=("transformer", "3d", "segments"),
    description="MONAI ViT (16^3 patches): mean of final tokens -> linear embedding; UNETR decoder -> seg logits",
    search_space={
        "hidden_size": Categorical([192, 384, 768]),
        "num_layers": Categorical([6, 12]),
        "dropout_rate": Categorical([0.0, 0.1]),
    },
)
class ViT3DBackbone(VolumeBackbone):
    """A 3D ViT encoder (MONAI ``ViT``) with the UNETR decoder (Hatamizadeh et al. 2022).

    Choices (resectbench's own): non-overlapping 16^3 patches (UNETR's), learned position
    embeddings, no class token; the embedding is the mean of the final (layer-normalised)
    tokens, linearly projected to ``embed_dim``. The UNETR decoder takes skip features from
    the blocks at depth L/4, L/2 and 3L/4 (3, 6, 9 for UNETR's 12 layers), so ``num_layers``
    is free (a multiple of 4 keeps the skips evenly spaced). ``num_heads`` defaults to
    ``hidden_size // 64``. Defaults are smaller than UNETR's (hidden 768) to suit CPUs; the
    search space covers UNETR's size. With ``n_seg_classes=0`` only the ViT is built. Every roi
    edge must be divisible by 16; note that at the cpu profile's 32^3 the ViT sees only 2x2x2
    tokens (a coarse model, kept for comparability; it is meant for 64^3 and larger). Decoder
    normalisation: ``instance`` (UNETR's), ``batch`` or ``group``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        roi: Sequence[int] | int = (64, 64, 64),
        n_seg_classes: int = 16,
        embed_dim: int = 256,
        hidden_size: int = 384,
        num_layers: int = 12,
        num_heads: int | None = None,
        mlp_ratio: float = 4.0,
        feature_size: int = 16,
        norm_name: str = "instance",
        dropout_rate: float = 0.0,
    ):
        super().__init__(in_channels, roi, embed_dim, n_seg_classes)
        from monai.networks.nets import UNETR, ViT

        num_heads = num_heads or max(1, hidden_size // 64)
        if hidden_size % num_heads:
            raise ValueError(f"vit3d: hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
        if num_layers < 4:
            raise ValueError(
                f"vit3d: num_layers must be >= 4 (the decoder taps three intermediate blocks), got {num_layers}"
            )
        require_divisible(self.roi, PATCH, "vit3d", f"{PATCH}^3 patches")
        self.grid = tuple(r // PATCH for r in self.roi)
        self.hidden_size = hidden_size
        self.vit = ViT(
            in_channels=self.in_channels,
            img_size=self.roi,
            patch_size=PATCH,
            hidden_size=hidden_size,
            mlp_dim=int(hidden_size * mlp_ratio),
            num_layers=num_layers,
            num_heads=num_heads,
            proj_type="conv",
            classification=False,
            dropout_rate=dropout_rate,
            spatial_dims=3,
        )
        for block in self.vit.blocks:  # MONAI builds a cross-attention LayerNorm even when unused
            if not block.with_cross_attention:
                block.norm_cross_attn = nn.Identity()
        self.skips = tuple(k * num_layers // 4 for k in (1, 2, 3))
        if self.segments:
            # UNETR builds its own 12-layer ViT; only its decoder blocks are kept (the ViT above replaces it)
            net = UNETR(
                in_channels=self.in_channels,
                out_channels=self.n_seg_classes,
                img_size=self.roi,
                feature_size=feature_size,
                hidden_size=hidden_size,
                mlp_dim=int(hidden_size * mlp_ratio),
                num_heads=num_heads,
                norm_name=norm_argument(norm_name, feature_size, "vit3d"),
                dropout_rate=dropout_rate,
            )
            for name in _DECODER:
                self.add_module(name, getattr(net, name))
        self.project = nn.Linear(hidden_size, self.embed_dim)

    def _tokens_to_volume(self, tokens: torch.Tensor) -> torch.Tensor:
        # (B, N, hidden) -> (B, hidden, *grid), as UNETR.proj_feat
        return tokens.transpose(1, 2).reshape(tokens.shape[0], self.hidden_size, *self.grid).contiguous()

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        check_input(x, self.in_channels, self.roi, "vit3d")
        tokens, hidden = self.vit(x)
        embedding = self.project(tokens.mean(dim=1))
        if not self.segments:
            return BackboneOutput(embedding=embedding, seg_logits=None)
        enc1 = self.encoder1(x)
        enc2 = self.encoder2(self._tokens_to_volume(hidden[self.skips[0]]))
        enc3 = self.encoder3(self._tokens_to_volume(hidden[self.skips[1]]))
        enc4 = self.encoder4(self._tokens_to_volume(hidden[self.skips[2]]))
        dec3 = self.decoder5(self._tokens_to_volume(tokens), enc4)
        dec2 = self.decoder4(dec3, enc3)
        dec1 = self.decoder3(dec2, enc2)
        out = self.decoder2(dec1, enc1)
        return BackboneOutput(embedding=embedding, seg_logits=self.out(out))
