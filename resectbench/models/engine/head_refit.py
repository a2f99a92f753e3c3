"""Refit the classification head on the trained backbone's frozen image embedding.

Why: an embedding read off the segmentation (swin-unetr ``embedding="contact"``) is noise for the
first epochs and keeps moving while the cosine schedule takes the learning rate to zero, so the head
trained alongside ends near the class prior although the final embedding separates the classes
(docs/models.md). Once the backbone is trained its embeddings of the training cases are fixed numbers:
a fresh head (clinical encoder + fusion) is fitted on them full batch in about a second, like a
linear probe, and kept only if it beats the jointly trained head on the inner validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..network import MultitaskNet
from .batches import CaseArrays, make_loader
from .checkpoint import snapshot
from .metrics import macro_f1
from .precision import autocast
from .seeding import seed_everything


@dataclass
class HeadRefit:
    steps: int = 300  # full-batch optimiser steps on the frozen embeddings
    lr: float = 3e-3
    weight_decay: float = 1e-4
    eval_every: int = 10  # steps between inner-validation checks (the best check is kept)


@torch.no_grad()
def image_embeddings(net: MultitaskNet, arrays: CaseArrays, *, batch_size: int, device: str, amp_dtype=None):
    """(N, image_dim) image embeddings of ``arrays``' cases in order, backbone in eval mode."""
    net.eval()
    out = []
    for batch in make_loader(arrays, batch_size=batch_size, shuffle=False):
        with autocast(amp_dtype, device):
            out.append(net.backbone(batch["image"].to(device)).embedding.float())
    return torch.cat(out)


def _head_modules(net: MultitaskNet) -> list[torch.nn.Module]:
    return [m for m in (net.clinical_encoder, net.fusion) if m is not None]


def _score(net, image_emb, clinical, labels, cls_loss, n_classes) -> tuple[float, float]:
    """(macro-F1, loss) of the current head on fixed embeddings; the key a higher value of wins."""
    for module in _head_modules(net):
        module.eval()
    with torch.no_grad():
        logits = net.fusion(image_emb, net.clinical_encoder(clinical) if net.uses_clinical else _empty(clinical))
        loss = float(cls_loss(logits, labels))
    return macro_f1(labels.cpu().numpy(), logits.argmax(dim=1).cpu().numpy(), n_classes), loss


def _empty(clinical: torch.Tensor) -> torch.Tensor:
    return clinical.new_zeros((clinical.shape[0], 0))


def refit_head(
    net: MultitaskNet,
    train: CaseArrays,
    valid: CaseArrays | None,
    cls_loss: torch.nn.Module,
    settings: HeadRefit,
    *,
    batch_size: int,
    device: str,
    seed: int,
    amp_dtype=None,
    n_classes: int = 3,
    keep_joint: bool = True,
) -> dict:
    """Fit a fresh head on ``net``'s frozen image embeddings of ``train``, in place.

    With a ``valid`` split the head is checked every ``eval_every`` steps and the best check (macro-F1,
    then lower loss) is kept - the jointly trained head included, so the refit never makes the inner
    validation worse (unless ``keep_joint`` is False: a head trained with the clinical branch withheld, by
    staged training, is no candidate); without one the last step is kept. Returns what happened."""
    if net.backbone is None:
        raise ValueError("refit_head: the network has no image branch to freeze")

    def tensors(arrays: CaseArrays):
        emb = image_embeddings(net, arrays, batch_size=batch_size, device=device, amp_dtype=amp_dtype)
        clinical = torch.as_tensor(np.array(arrays.clinical), dtype=torch.float32, device=device)
        labels = torch.as_tensor(np.array(arrays.labels), dtype=torch.long, device=device)
        return emb, clinical, labels

    train_t = tensors(train)
    valid_t = tensors(valid) if valid is not None and len(valid) else None
    joint_key = _score(net, *valid_t, cls_loss, n_classes) if valid_t is not None else None
    best_key, best_state, best_step = (joint_key if keep_joint else None), snapshot(net), 0

    seed_everything(seed)
    for module in _head_modules(net):
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
    params = [p for m in _head_modules(net) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    emb, clinical, labels = train_t
    for step in range(1, settings.steps + 1):
        for module in _head_modules(net):
            module.train()
        logits = net.fusion(emb, net.clinical_encoder(clinical) if net.uses_clinical else _empty(clinical))
        loss = cls_loss(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if valid_t is not None and (step % settings.eval_every == 0 or step == settings.steps):
            f1, val_loss = _score(net, *valid_t, cls_loss, n_classes)
            if best_key is None or (f1, -val_loss) > (best_key[0], -best_key[1]):
                best_key, best_state, best_step = (f1, val_loss), snapshot(net), step
    if valid_t is None:
        best_step = settings.steps
    else:
        net.load_state_dict(best_state)
    train_f1, _ = _score(net, *train_t, cls_loss, n_classes)
    return {
        "head_refit_step": best_step,  # 0: the jointly trained head was kept
        "head_refit_train_macro_f1": train_f1,
        "head_refit_val_macro_f1": best_key[0] if best_key is not None else None,
        "joint_head_val_macro_f1": joint_key[0] if joint_key is not None else None,
    }
