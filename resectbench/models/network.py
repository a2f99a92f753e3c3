"""The multitask network every neural recipe trains: image backbone + clinical encoder + fusion.

``MultitaskNet`` only wires registered components together; it knows none of them. The image
branch is optional (``backbone=None`` gives a clinical-only network) and so is the clinical one
(an encoder whose ``out_dim`` is 0, such as ``none``). The fusion owns the classification head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class NetOutput:
    logits: torch.Tensor  # (B, n_classes) class logits
    seg_logits: torch.Tensor | None  # (B, n_seg, *roi) or None when nothing segments
    image_embedding: torch.Tensor  # (B, image_dim); (B, 0) without an image branch
    clinical_embedding: torch.Tensor  # (B, clinical_dim); (B, 0) without a clinical branch


class MultitaskNet(nn.Module):
    """Backbone (image -> embedding [+ segmentation]) + clinical encoder, joined by a fusion head."""

    def __init__(self, backbone: nn.Module | None, clinical_encoder: nn.Module | None, fusion: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.clinical_encoder = clinical_encoder
        self.fusion = fusion

    @property
    def uses_image(self) -> bool:
        return self.backbone is not None

    @property
    def uses_clinical(self) -> bool:
        return self.clinical_encoder is not None and int(getattr(self.clinical_encoder, "out_dim", 0)) > 0

    @property
    def segments(self) -> bool:
        return self.backbone is not None and bool(getattr(self.backbone, "segments", False))

    @property
    def image_dim(self) -> int:
        return int(self.backbone.embed_dim) if self.backbone is not None else 0

    @property
    def clinical_dim(self) -> int:
        return int(self.clinical_encoder.out_dim) if self.uses_clinical else 0

    def forward(self, image: torch.Tensor | None, clinical: torch.Tensor) -> NetOutput:
        batch = clinical.shape[0]
        seg_logits = None
        if self.backbone is not None:
            out = self.backbone(image)
            image_emb, seg_logits = out.embedding, out.seg_logits
        else:
            image_emb = clinical.new_zeros((batch, 0))
        if self.uses_clinical:
            clinical_emb = self.clinical_encoder(clinical)
        else:
            clinical_emb = clinical.new_zeros((batch, 0))
        logits = self.fusion(image_emb, clinical_emb)
        return NetOutput(
            logits=logits, seg_logits=seg_logits, image_embedding=image_emb, clinical_embedding=clinical_emb
        )

    def n_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
