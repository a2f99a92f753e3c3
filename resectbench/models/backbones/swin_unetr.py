"""``swin-unetr``: the paper's image backbone (MONAI Swin-UNETR) with an embedding head."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ...registry import component
from ...search_space import Categorical
from .base import (
    N_CONTACT_FEATURES,
    BackboneOutput,
    VolumeBackbone,
    check_input,
    contact_features,
    load_pretrained,
    norm_argument,
    require_divisible,
)

#: ``pooled``: the paper's pooled bottleneck; ``contact``: tumour-vessel contact read off the segmentation
EMBEDDINGS = ("pooled", "contact")
# SwinUNETR's decoder blocks (kept only when segmenting); the Swin encoder is always ``swinViT``.
_DECODER = (
    "encoder1",
    "encoder2",
    "encoder3",
    "encoder4",
    "encoder10",
    "decoder5",
    "decoder4",
    "decoder3",
    "decoder2",
    "decoder1",
    "out",
)


@component(
    "swin-unetr",
    tags=("transformer", "3d", "segments", "paper"),
    description="MONAI Swin-UNETR: Swin encoder bottleneck -> avg pool -> linear embedding; decoder -> seg logits",
    search_space={"feature_size": Categorical([24, 36, 48]), "drop_path_rate": Categorical([0.0, 0.1])},
)
class SwinUNETRBackbone(VolumeBackbone):
    """MONAI Swin-UNETR encoder-decoder (the paper's backbone) as a resectbench backbone.

    Choices where the paper is silent (resectbench's own):

    - **Embedding**: the Swin encoder's deepest stage (``16 * feature_size`` channels at roi/32,
      layer-normalised as in Swin-UNETR's forward) is globally average-pooled and linearly
      projected to ``embed_dim`` (256 by default, as in the paper). Pooling the transformer
      output rather than the decoder keeps the embedding independent of the decoder, so with
      ``n_seg_classes=0`` the decoder is not built at all (it holds most of the weights: 3.4 M
      of 4.1 M at ``feature_size=12``). ``embedding="contact"`` replaces it with the
      tumour-vessel contact read off the predicted segmentation (:func:`~resectbench.models.
      backbones.base.contact_features`, 19 numbers; needs the decoder): at the cpu-cascade profile the
      pooled bottleneck collapses across cases (its spread falls from 0.5 to 0.002 in the first
      epoch) and a head on it, even with the contact features appended, stays at the class prior,
      while a head on the contact features alone learns (docs/models.md, benchmarks/cascade.py).
    - **Segmentation**: logits from Swin-UNETR's own UNet-style decoder at full ROI resolution.
    - **Normalisation** in the decoder: ``instance`` (MONAI's default; the paper does not say),
      ``batch`` or ``group``. With ``instance`` the bottleneck block normalises roi/32 voxels,
      which fails to train below 64^3 (a single voxel per channel); use ``group`` (any batch
      size) or ``batch`` (batch >= 2) for smaller ROIs - an error says so. ``group`` uses the
      largest of 8/6/4/3/2 groups dividing ``feature_size``.
    - **Window**: ``window_size`` 7 (MONAI's default). At small ROIs the first stage's 7^3
      windows are mostly padding (16^3 tokens at 32^3 pad to 21^3); ``window_size=4`` tiles them
      exactly (measured: ~13 s vs ~48 s per training epoch of one cpu-profile fold, 2 cores) -
      the cpu profile's choice (profiles.py).
      Pretrained weights carry relative-position tables sized for their window: keep 7 with them.
    - **ROI**: every edge must be divisible by 32 (patch size 2, five down-samplings). MONAI 1.6
      dropped ``img_size``; the ROI is only used here to validate shapes.
    - **Pretrained weights** (``pretrained``: a path the user supplies; nothing is downloaded)
      are read with ``torch.load(weights_only=True)`` and loaded non-strictly. Accepted layouts:
      a full Swin-UNETR state dict (MONAI BTCV fine-tuned ``model.pt`` or a bundle's weights,
      keys ``swinViT.* / encoder1.* / ... / out.*``, optionally under ``state_dict`` and/or
      prefixed ``module.``), the MONAI self-supervised encoder checkpoint
      (``model_swinvit.pt``: ``module.patch_embed.* / module.layers1.*`` -> ``swinViT.*``), or
      this backbone's own ``state_dict()``. Tensors with a different shape (e.g. BTCV's 14-class
      ``out`` layer) are skipped; ``self.pretrained_report`` lists what was loaded, skipped and
      left initialised. A corrupt file, or one where almost nothing fits, raises
      :class:`~resectbench.models.backbones.base.PretrainedLoadError` naming the file.
      BTCV weights use ``feature_size=48``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        roi: Sequence[int] | int = (64, 64, 64),
        n_seg_classes: int = 16,
        embed_dim: int = 256,
        feature_size: int = 48,
        norm_name: str = "instance",
        use_checkpoint: bool = False,
        drop_path_rate: float = 0.0,
        use_v2: bool = False,
        window_size: int = 7,
        pretrained: str | None = None,
        embedding: str = "pooled",
    ):
        super().__init__(in_channels, roi, embed_dim, n_seg_classes)
        from monai.networks.nets import SwinUNETR  # heavy import kept out of registry loading

        if feature_size % 12:
            raise ValueError(
                f"swin-unetr: feature_size must be a multiple of 12 (Swin heads 3/6/12/24), got {feature_size}"
            )
        require_divisible(self.roi, 32, "swin-unetr", "patch size 2 and five 2x down-samplings")
        if self.segments and norm_name == "instance" and min(self.roi) < 64:
            raise ValueError(
                f"swin-unetr: norm_name='instance' cannot train at roi={self.roi} (the bottleneck has "
                "one voxel per channel below 64^3); use norm_name='batch' or 'group', or roi >= 64"
            )
        net = SwinUNETR(
            in_channels=self.in_channels,
            out_channels=max(self.n_seg_classes, 1),
            feature_size=feature_size,
            norm_name=norm_argument(norm_name, feature_size, "swin-unetr"),
            use_checkpoint=use_checkpoint,
            dropout_path_rate=drop_path_rate,
            use_v2=use_v2,
            window_size=window_size,
        )
        # Adopt Swin-UNETR's children under their own names, so BTCV checkpoints map 1:1 onto ours.
        self.swinViT = net.swinViT
        if self.segments:
            for name in _DECODER:
                self.add_module(name, getattr(net, name))
        self.normalize = net.normalize
        if embedding not in EMBEDDINGS:
            raise ValueError(f"swin-unetr: embedding must be one of {EMBEDDINGS}, got {embedding!r}")
        if embedding == "contact" and not self.segments:
            raise ValueError(
                "swin-unetr: embedding='contact' reads the predicted segmentation; it needs "
                "n_seg_classes > 0 (a segmenting loss schedule)"
            )
        self.embedding = embedding
        if embedding == "contact":
            self.embed_dim = N_CONTACT_FEATURES
        else:
            self.project = nn.Linear(16 * feature_size, self.embed_dim)
        self.pretrained_report = None
        if pretrained:
            self.pretrained_report = self.load_pretrained(pretrained)

    def load_pretrained(self, path: str | Path):
        """Load a user-supplied checkpoint (see the class docstring); returns the load report."""

        def strip(key: str) -> str:
            return key[len("module.") :] if key.startswith("module.") else key

        return load_pretrained(self, path, key_maps=(lambda k: k, strip, lambda k: "swinViT." + strip(k)))

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        check_input(x, self.in_channels, self.roi, "swin-unetr")
        hidden = self.swinViT(x, self.normalize)
        # pooled before the decoder runs: autograd then sums the bottleneck's gradients in the order the
        # figures in README were measured with (after the decoder they differ in the last bits and a
        # 5-fold run drifts by ~0.03 macro-F1)
        pooled = hidden[4].mean(dim=(2, 3, 4)) if self.embedding == "pooled" else None
        if not self.segments:
            return BackboneOutput(embedding=self.project(pooled), seg_logits=None)
        # Swin-UNETR's decoder, as in monai.networks.nets.SwinUNETR.forward
        enc0 = self.encoder1(x)
        enc1 = self.encoder2(hidden[0])
        enc2 = self.encoder3(hidden[1])
        enc3 = self.encoder4(hidden[2])
        dec4 = self.encoder10(hidden[4])
        dec3 = self.decoder5(dec4, hidden[3])
        dec2 = self.decoder4(dec3, enc3)
        dec1 = self.decoder3(dec2, enc2)
        dec0 = self.decoder2(dec1, enc1)
        out = self.decoder1(dec0, enc0)
        seg_logits = self.out(out)
        embedding = contact_features(seg_logits) if pooled is None else self.project(pooled)
        return BackboneOutput(embedding=embedding, seg_logits=seg_logits)
