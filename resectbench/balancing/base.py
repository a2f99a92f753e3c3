"""What every balancing strategy is: hooks into the one training loop (models/engine/trainer.py).

A balancing strategy decides how the image and clinical branches of a multimodal network are trained
together. The loop calls, in order (after PyTorch Lightning's ``Callback``):

- ``setup(net, n_classes)`` once, before the optimiser is built: returns extra modules (auxiliary
  heads) whose parameters train with the clinical encoder and fusion head, at the head's rate;
- ``start_epoch(epoch, max_epochs, net, optimizer)`` before each epoch (staged training freezes
  here; the optimiser's groups are named ``"head"`` and ``"image"``);
- ``forward(net, image, clinical)`` for each training batch (default: ``net(image, clinical)``);
- ``loss(out, labels, cls_loss)``: the classification loss of the batch, from the fused logits
  and any auxiliary heads, plus the numbers to log;
- ``after_backward(net, out, labels)`` between ``backward`` and the optimiser step (gradient
  modulation);
- ``end_epoch(epoch, net, valid)`` after the epoch's validation (``valid``: the validation cases'
  embeddings, labels and the classification loss, when ``wants_validation`` is set);
- ``finish(net)`` once, when the loop ends (remove hooks, leave the network for inference).

After the loop the recipe fits a fresh clinical encoder + fusion head on the frozen image embeddings
for ``head_steps`` steps when a strategy asks for it (staged training), else for the recipe's own
``head_refit_steps``. Every number a hook returns lands in the epoch's history row (``history.csv``).
Inference is always the fused head's: auxiliary heads exist for training only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

MODALITIES = ("image", "clinical")


class BalancingStrategy:
    """Joint training, unchanged: every hook does nothing. Subclasses override the hooks they need."""

    name = "none"
    #: > 0: after the loop, fit a fresh clinical encoder + fusion head on the frozen image embeddings
    head_steps: int = 0
    #: ``end_epoch`` receives the validation cases' embeddings
    wants_validation: bool = False

    def setup(self, net: nn.Module, n_classes: int) -> list[nn.Module]:
        return []

    def start_epoch(self, epoch: int, max_epochs: int, net: nn.Module, optimizer) -> dict[str, float]:
        return {}

    def forward(self, net: nn.Module, image: torch.Tensor | None, clinical: torch.Tensor):
        return net(image, clinical)

    def loss(self, out, labels: torch.Tensor, cls_loss: nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        return cls_loss(out.logits.float(), labels), {}

    def after_backward(self, net: nn.Module, out, labels: torch.Tensor) -> dict[str, float]:
        return {}

    def end_epoch(self, epoch: int, net: nn.Module, valid: dict[str, Any] | None) -> dict[str, float]:
        return {}

    def finish(self, net: nn.Module) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        """The strategy's settings, as plain data (model.json)."""
        return {"name": self.name}


def require_two_modalities(net: nn.Module, name: str) -> None:
    """Balancing two modalities needs both: a clear error for an image-only or clinical-only network."""
    if not (getattr(net, "uses_image", False) and getattr(net, "uses_clinical", False)):
        raise ValueError(
            f"balancing {name!r} balances an image and a clinical branch, but the network has "
            f"{'an image' if getattr(net, 'uses_image', False) else 'no image'} branch and "
            f"{'a clinical' if getattr(net, 'uses_clinical', False) else 'no clinical'} branch; "
            "use balancing 'none' for a single-modality model"
        )


def unimodal_logits(net: nn.Module, image_emb: torch.Tensor, clinical_emb: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each modality's logits through the fused head with the other modality's embedding zeroed (what the
    head makes of one modality alone; the fusions treat a zero embedding as uninformative)."""
    return {
        "image": net.fusion(image_emb, torch.zeros_like(clinical_emb)),
        "clinical": net.fusion(torch.zeros_like(image_emb), clinical_emb),
    }


def branch_parameters(net: nn.Module, modality: str) -> list[nn.Parameter]:
    """The trainable parameters of one branch: the image backbone or the clinical encoder."""
    module = net.backbone if modality == "image" else net.clinical_encoder
    return [p for p in module.parameters() if p.requires_grad] if module is not None else []
