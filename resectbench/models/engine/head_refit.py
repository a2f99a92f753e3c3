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

#: what the head is fitted to: the fused logits, or each modality's own logits (a fusion with
#: ``modality_logits``, e.g. ``late``: each head learns from its modality alone, a uni-modal ensemble)
OBJECTIVES = ("fused", "unimodal")


@dataclass
class HeadRefit:
    steps: int = 300  # full-batch optimiser steps on the frozen embeddings
    lr: float = 3e-3
    weight_decay: float = 1e-4
    eval_every: int = 10  # steps between inner-validation checks (the best check is kept)
    objective: str = "fused"

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"head refit objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")


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
    unimodal = settings.objective == "unimodal"
    if unimodal and not has_modality_heads(net.fusion):
        raise ValueError(
            f"refit_head: objective 'unimodal' needs a fusion with a head per modality (``heads``, "
            f"``modality_logits``: e.g. 'late'), got {type(net.fusion).__name__}"
        )

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
    modality_best: dict[str, tuple] = {}  # modality -> (step, key, state) of its own best validation check
    for step in range(1, settings.steps + 1):
        for module in _head_modules(net):
            module.train()
        clinical_emb = net.clinical_encoder(clinical) if net.uses_clinical else _empty(clinical)
        if settings.objective == "unimodal":  # each modality's head learns from its modality alone
            loss = sum(cls_loss(z, labels) for z in net.fusion.modality_logits(emb, clinical_emb).values())
        else:
            loss = cls_loss(net.fusion(emb, clinical_emb), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if valid_t is not None and (step % settings.eval_every == 0 or step == settings.steps):
            if unimodal:
                _keep_best_heads(net, valid_t, cls_loss, n_classes, step, modality_best)
            f1, val_loss = _score(net, *valid_t, cls_loss, n_classes)
            if best_key is None or (f1, -val_loss) > (best_key[0], -best_key[1]):
                best_key, best_state, best_step = (f1, val_loss), snapshot(net), step
    if valid_t is None:
        best_step = settings.steps
    elif unimodal:
        # each modality's head stops on its own: the clinical one long before it memorises the training cases
        net.load_state_dict(_assemble(snapshot(net), modality_best))
        best_key = _score(net, *valid_t, cls_loss, n_classes)
        best_step = max(step for step, _key, _state in modality_best.values())
    else:
        net.load_state_dict(best_state)
    train_f1, _ = _score(net, *train_t, cls_loss, n_classes)
    return {
        **{f"head_refit_step_{m}": s for m, (s, _key, _state) in modality_best.items()},
        "head_refit_step": best_step,  # 0: the jointly trained head was kept
        "head_refit_train_macro_f1": train_f1,
        "head_refit_val_macro_f1": best_key[0] if best_key is not None else None,
        "joint_head_val_macro_f1": joint_key[0] if joint_key is not None else None,
    }


def has_modality_heads(fusion) -> bool:
    """A fusion the ``unimodal`` objective can fit: one head per modality (``heads``, ``modality_logits``)."""
    return callable(getattr(fusion, "modality_logits", None)) and hasattr(fusion, "heads")


def _modality_prefixes(net: MultitaskNet, modality: str) -> tuple[str, ...]:
    """State-dict prefixes of one modality's part of the head: its head in the fusion, and for the clinical
    modality the clinical encoder."""
    return (f"fusion.heads.{modality}.",) + (("clinical_encoder.",) if modality == "clinical" else ())


def _keep_best_heads(net, valid_t, cls_loss, n_classes, step, best: dict) -> None:
    """Record each modality head's state where its own validation (macro-F1, then loss) is best so far."""
    emb, clinical, labels = valid_t
    for module in _head_modules(net):
        module.eval()
    with torch.no_grad():
        clinical_emb = net.clinical_encoder(clinical) if net.uses_clinical else _empty(clinical)
        logits = net.fusion.modality_logits(emb, clinical_emb)
    for modality, z in logits.items():
        key = (macro_f1(labels.cpu().numpy(), z.argmax(dim=1).cpu().numpy(), n_classes), -float(cls_loss(z, labels)))
        if modality not in best or key > best[modality][1]:
            state = {k: v for k, v in snapshot(net).items() if k.startswith(_modality_prefixes(net, modality))}
            best[modality] = (step, key, state)


def _assemble(state: dict, best: dict) -> dict:
    """``state`` with each modality's part replaced by its best check's."""
    out = dict(state)
    for _step, _key, part in best.values():
        out.update(part)
    return out
