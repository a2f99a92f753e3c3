"""What every fusion shares: dimension checks, modality requirements and input validation.

A fusion is ``nn.Module(image_dim, clinical_dim, n_classes=3, ...)`` whose forward maps
``(image_emb (B, image_dim), clinical_emb (B, clinical_dim))`` to class logits ``(B, n_classes)``;
it includes the classification head. A zero dimension means the modality is absent (e.g. the
``none`` clinical encoder); each fusion declares which modalities it cannot work without.
"""

from __future__ import annotations

import torch
from torch import nn


class Fusion(nn.Module):
    """Base class. Subclasses set ``name`` and ``needs`` and implement ``fuse``."""

    #: registry name, used in error messages
    name: str = "fusion"
    #: "both", "image", "clinical" or "any" (at least one of the two)
    needs: str = "any"

    def __init__(self, image_dim: int, clinical_dim: int, n_classes: int = 3):
        super().__init__()
        for label, dim in (("image_dim", image_dim), ("clinical_dim", clinical_dim)):
            if not isinstance(dim, int) or dim < 0:
                raise ValueError(f"fusion {self.name!r}: {label} must be a non-negative int, got {dim!r}")
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"fusion {self.name!r}: n_classes must be an int >= 2, got {n_classes!r}")
        missing = {
            "both": [m for m, d in (("an image", image_dim), ("a clinical", clinical_dim)) if d == 0],
            "image": ["an image"] if image_dim == 0 else [],
            "clinical": ["a clinical"] if clinical_dim == 0 else [],
            "any": ["an image or a clinical"] if image_dim == 0 and clinical_dim == 0 else [],
        }[self.needs]
        if missing:
            raise ValueError(
                f"fusion {self.name!r} needs {' and '.join(missing)} embedding, but got image_dim={image_dim}, "
                f"clinical_dim={clinical_dim}. " + _SUGGESTION[self.needs]
            )
        self.image_dim = image_dim
        self.clinical_dim = clinical_dim
        self.n_classes = n_classes

    def forward(self, image_emb: torch.Tensor | None, clinical_emb: torch.Tensor | None) -> torch.Tensor:
        image_emb, clinical_emb = self._checked(image_emb, clinical_emb)
        return self.fuse(image_emb, clinical_emb)

    def fuse(self, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _checked(self, image_emb, clinical_emb):
        """Check shapes; an absent modality (dim 0) may be passed as None and becomes a (B, 0) tensor."""
        present = image_emb if image_emb is not None else clinical_emb
        if present is None:
            raise ValueError(f"fusion {self.name!r} got neither an image nor a clinical embedding")
        batch = present.shape[0]
        out = []
        for label, emb, dim in (("image", image_emb, self.image_dim), ("clinical", clinical_emb, self.clinical_dim)):
            if emb is None:
                if dim:
                    raise ValueError(f"fusion {self.name!r} needs the {label} embedding (width {dim}), got None")
                emb = present.new_zeros(batch, 0)
            if emb.dim() != 2 or emb.shape[1] != dim or emb.shape[0] != batch:
                raise ValueError(
                    f"fusion {self.name!r} expects the {label} embedding as (batch={batch}, {dim}), "
                    f"got {tuple(emb.shape)}"
                )
            out.append(emb)
        return out


_SUGGESTION = {
    "both": "It models an interaction between the two modalities; use 'concat' or 'late' (which accept one "
    "modality), 'image-only' or 'clinical-only' instead.",
    "image": "Use an image backbone, or the 'clinical-only' fusion.",
    "clinical": "Use a clinical encoder other than 'none', or the 'image-only' fusion.",
    "any": "At least one modality must be present.",
}
