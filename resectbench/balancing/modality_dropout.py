"""``modality-dropout``: drop a whole modality's embedding for random training cases."""

from __future__ import annotations

import torch

from ..registry import component
from ..search_space import Float
from .base import BalancingStrategy, require_two_modalities


@component(
    "modality-dropout",
    tags=("regulariser",),
    description="Zero a modality's embedding per training case at a set rate (Neverova et al. 2016 ModDrop)",
    search_space={"clinical_rate": Float(0.2, 0.8), "image_rate": Float(0.0, 0.3)},
)
class ModalityDropout(BalancingStrategy):
    """Modality dropout (ModDrop: Neverova, Wolf, Taylor, Nebout, IEEE TPAMI 2016; for clinical tables +
    images e.g. Holste et al., ISBI 2023): during training each case's clinical embedding is replaced by
    zeros with probability ``clinical_rate`` and its image embedding with probability ``image_rate``
    (never both for one case: the image is kept then), so the fused head must also classify from each
    branch alone and the fast clinical branch cannot carry every training case. Validation and inference
    see both modalities. The auxiliary segmentation is untouched (only the embedding is dropped)."""

    name = "modality-dropout"

    def __init__(self, clinical_rate: float = 0.5, image_rate: float = 0.0, seed: int = 0):
        for label, rate in (("clinical_rate", clinical_rate), ("image_rate", image_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"modality-dropout: {label} must be in [0, 1], got {rate}")
        self.clinical_rate, self.image_rate = float(clinical_rate), float(image_rate)
        self.generator = torch.Generator().manual_seed(seed)
        self.dropped = {"image": 0, "clinical": 0, "seen": 0}

    def setup(self, net, n_classes):
        require_two_modalities(net, self.name)
        return []

    def keep_masks(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(keep_image, keep_clinical) booleans per case; a case never loses both."""
        drop_clinical = torch.rand(batch, generator=self.generator) < self.clinical_rate
        drop_image = (torch.rand(batch, generator=self.generator) < self.image_rate) & ~drop_clinical
        return ~drop_image, ~drop_clinical

    def forward(self, net, image, clinical):
        keep_image, keep_clinical = self.keep_masks(clinical.shape[0])
        self.dropped["image"] += int((~keep_image).sum())
        self.dropped["clinical"] += int((~keep_clinical).sum())
        self.dropped["seen"] += clinical.shape[0]

        def drop_clinical(_module, _inputs, output):
            return output * keep_clinical.to(output.device, output.dtype)[:, None]

        def drop_image(_module, _inputs, output):
            output.embedding = (
                output.embedding * keep_image.to(output.embedding.device, output.embedding.dtype)[:, None]
            )
            return output

        handles = [net.clinical_encoder.register_forward_hook(drop_clinical)]
        if self.image_rate > 0:
            handles.append(net.backbone.register_forward_hook(drop_image))
        try:
            return net(image, clinical)
        finally:
            for handle in handles:
                handle.remove()

    def end_epoch(self, epoch, net, valid):
        seen = max(self.dropped["seen"], 1)
        row = {f"dropped_{m}": self.dropped[m] / seen for m in ("image", "clinical")}
        self.dropped = {"image": 0, "clinical": 0, "seen": 0}
        return row

    def describe(self):
        return {"name": self.name, "clinical_rate": self.clinical_rate, "image_rate": self.image_rate}
