"""The one training loop behind every neural recipe.

AdamW + per-step cosine annealing, optional gradient accumulation and bf16 autocast, class
logits + (optionally) auxiliary segmentation combined by a registered loss schedule, early
stopping on inner validation, a weights-only checkpoint of the best epoch, and one ``history`` row
per epoch. The best epoch has the highest validation macro-F1 - for a network that segments, the
mean of macro-F1 and validation tumour Dice (:func:`checkpoint_score`) - ties broken by lower
validation loss. A non-finite input or loss
stops the fit with :class:`~resectbench.errors.TrainingError` naming the epoch and the cause.

How the image and clinical branches share the loop is a balancing strategy's (:mod:`resectbench.balancing`:
joint, modality dropout, staged, auxiliary heads, Gradient-Blending, OGM-GE): it hooks into the epoch, the
forward pass, the classification loss and the gradients; what its hooks return joins the epoch's row.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ...balancing import BalancingStrategy, JointTraining
from ...errors import TrainingError
from ..network import MultitaskNet, NetOutput
from .batches import CaseArrays, make_loader
from .checkpoint import load_weights, save_weights, snapshot
from .inference import predict
from .metrics import TUMOR, macro_f1, mean_structure_dice, structure_dice
from .precision import autocast, resolve_amp
from .seeding import deterministic, seed_everything


@dataclass
class TrainConfig:
    lr: float = 1e-4
    weight_decay: float = 1e-5
    batch_size: int = 4
    max_epochs: int = 6
    patience: int = 3
    grad_accum: int = 1  # optimizer step every `grad_accum` batches
    grad_clip: float | None = 1.0  # max grad norm per param group (not in the paper: a guard for transformers)
    backbone_lr_scale: float = 1.0  # the image backbone's lr = lr * this (clinical encoder, fusion: lr)
    amp: str = "auto"  # auto: bf16 on CUDA, off on CPU
    device: str = "cpu"
    seed: int = 0
    channels_last: bool = False  # channels_last_3d memory format for the image branch
    patch_size: tuple[int, int, int] | None = None  # sliding-window inference above this size
    num_workers: int = 0
    n_classes: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_macro_f1: float | None = None
    checkpoint: Path | None = None
    stopped_early: bool = False
    head_refit: dict[str, Any] | None = None  # what engine/head_refit.py did after training, if asked


def _check_finite_input(batch: dict, epoch: int) -> None:
    for key in ("image", "clinical"):
        x = batch.get(key)
        if x is None:
            continue
        bad = ~torch.isfinite(x.flatten(1)).all(dim=1)
        if bad.any():
            ids = [cid for cid, b in zip(batch["case_id"], bad.tolist()) if b]
            raise TrainingError(
                f"epoch {epoch}: non-finite {key} input (NaN or inf) for case(s) "
                f"{', '.join(map(str, ids))}; check the data and its preprocessing"
            )


def _check_finite_loss(epoch: int, step: int, batch: dict, **terms) -> None:
    for name, value in terms.items():
        if value is not None and not torch.isfinite(value.detach()).all():
            raise TrainingError(
                f"epoch {epoch}: non-finite {name} loss ({float(value.detach()):g}) at step {step} on case(s) "
                f"{', '.join(map(str, batch['case_id']))}; lower the learning rate or check the data"
            )


def train_network(
    net: MultitaskNet,
    *,
    schedule: nn.Module,
    seg_loss: nn.Module | None,
    cls_loss: nn.Module,
    train: CaseArrays,
    valid: CaseArrays | None,
    config: TrainConfig,
    transform: Callable | None = None,
    checkpoint_path: Path | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    balancing: BalancingStrategy | None = None,
) -> FitResult:
    """Train ``net`` in place; on return it holds the weights of the best epoch. ``balancing``: how the
    image and clinical branches are trained together (None: joint training)."""
    strategy = balancing if balancing is not None else JointTraining()
    device = config.device
    amp_dtype = resolve_amp(config.amp, device)
    use_seg = bool(getattr(schedule, "uses_segmentation", False)) and net.segments and seg_loss is not None
    with deterministic(device), _finished(strategy, net):
        generator = seed_everything(config.seed)
        net.to(device)
        for module in (schedule, cls_loss, seg_loss):
            if isinstance(module, nn.Module):
                module.to(device)
        if config.channels_last and net.backbone is not None:
            net.backbone.to(memory_format=torch.channels_last_3d)
        # modules a balancing strategy trains beside the network (auxiliary heads), seeded like the network
        extra = [m.to(device) for m in strategy.setup(net, config.n_classes)]
        # learned loss weights (e.g. the `uncertainty` schedule) are optimised with the network
        backbone = {id(p) for p in net.backbone.parameters()} if net.backbone is not None else set()
        owned = list(net.parameters()) + list(schedule.parameters()) + [p for m in extra for p in m.parameters()]
        rest = [p for p in owned if p.requires_grad and id(p) not in backbone]
        groups = [{"params": rest, "lr": config.lr, "name": "head"}]
        if backbone:
            groups.append(
                {
                    "params": [p for p in net.backbone.parameters() if p.requires_grad],
                    "lr": config.lr * config.backbone_lr_scale,
                    "name": "image",
                }
            )
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        # drop a last partial batch: a batch of 1 breaks batch norm at small bottlenecks and gives a
        # noisy step; shuffling means a different case sits out each epoch
        loader = make_loader(
            train,
            batch_size=config.batch_size,
            shuffle=True,
            transform=transform,
            generator=generator,
            num_workers=config.num_workers,
            drop_last=len(train) > config.batch_size and len(train) % config.batch_size != 0,
        )
        steps_per_epoch = max(1, math.ceil(len(loader) / config.grad_accum))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, steps_per_epoch * config.max_epochs)
        )
        result = FitResult(checkpoint=Path(checkpoint_path) if checkpoint_path else None)
        best_key, best_state, stale = None, None, 0
        total_batches = len(loader) * config.max_epochs
        for epoch in range(1, config.max_epochs + 1):
            started = time.perf_counter()
            for module in extra:
                module.train()
            strategy_row = strategy.start_epoch(epoch, config.max_epochs, net, optimizer)
            row = _train_epoch(
                strategy,
                net,
                schedule,
                seg_loss if use_seg else None,
                cls_loss,
                loader,
                optimizer,
                scheduler,
                config,
                amp_dtype,
                epoch,
                on_progress,
                total_batches,
            )
            schedule.end_epoch({"tumor_dice": row["tumor_dice"], "epoch": epoch})
            valid_out = None
            if valid is not None and len(valid):
                scores, valid_out = _validate(
                    net, cls_loss, valid, config, amp_dtype, epoch, segments=use_seg, outputs=strategy.wants_validation
                )
                row.update(scores)
                key = (checkpoint_score(row), -row["val_loss"])
            else:
                key = (epoch, 0.0)  # no validation: the last epoch is the one kept
            row.update(strategy_row)
            row.update(strategy.end_epoch(epoch, net, valid_out))
            row["seconds"] = time.perf_counter() - started
            improved = best_key is None or key > best_key
            if improved:
                best_key, stale = key, 0
                best_state = snapshot(net)
                result.best_epoch = epoch
                result.best_val_macro_f1 = row.get("val_macro_f1")
                if result.checkpoint is not None:
                    save_weights(best_state, result.checkpoint)
            else:
                stale += 1
            row["best_epoch"] = result.best_epoch
            result.history.append(row)
            if on_epoch is not None:
                on_epoch(epoch, dict(row))  # may raise optuna.TrialPruned: let it propagate
            if valid is not None and stale >= config.patience:
                result.stopped_early = epoch < config.max_epochs
                break
        state = load_weights(result.checkpoint) if result.checkpoint is not None else best_state
        net.load_state_dict(state)
    return result


@contextlib.contextmanager
def _finished(strategy: BalancingStrategy, net):
    """The strategy's ``finish`` however the loop ends (hooks off, every parameter it froze trainable)."""
    try:
        yield
    finally:
        strategy.finish(net)


def _train_epoch(
    strategy,
    net,
    schedule,
    seg_loss,
    cls_loss,
    loader,
    optimizer,
    scheduler,
    config,
    amp_dtype,
    epoch,
    on_progress,
    total_batches,
) -> dict:
    device = config.device
    net.train()
    schedule.train()
    sums = {"train_loss": 0.0, "train_cls_loss": 0.0, "train_seg_loss": 0.0, "w_seg": 0.0, "w_cls": 0.0}
    n_seen, n_seg_seen, dices = 0, 0, []
    optimizer.zero_grad(set_to_none=True)
    n_batches = len(loader)
    for step, batch in enumerate(loader, start=1):
        _check_finite_input(batch, epoch)
        clinical = batch["clinical"].to(device)
        labels = batch["label"].to(device)
        image = batch.get("image")
        if image is not None and net.uses_image:
            image = image.to(device)
            if config.channels_last:
                image = image.contiguous(memory_format=torch.channels_last_3d)
        else:
            image = None
        with autocast(amp_dtype, device):
            out = strategy.forward(net, image, clinical)
        cls, _ = strategy.loss(out, labels, cls_loss)
        seg = None
        has_mask = batch["has_mask"].to(device)
        if seg_loss is not None and out.seg_logits is not None and bool(has_mask.any()):
            seg_logits = out.seg_logits[has_mask].float()
            target = batch["seg"].to(device)[has_mask]
            seg = seg_loss(seg_logits, target)
            with torch.no_grad():
                d = structure_dice(seg_logits.detach(), target, TUMOR)
                dices.extend(v for v in d.cpu().tolist() if not math.isnan(v))
        total, weights = schedule.combine(seg, cls)
        _check_finite_loss(epoch, step, batch, classification=cls, segmentation=seg, total=total)
        (total / config.grad_accum).backward()
        strategy.after_backward(net, out, labels)
        if step % config.grad_accum == 0 or step == n_batches:
            if config.grad_clip:
                # per group: the image backbone's segmentation gradient (weighted up to 3x by
                # dice-step) must not shrink the clinical encoder's and head's steps via a global norm
                for group in optimizer.param_groups:
                    torch.nn.utils.clip_grad_norm_(group["params"], config.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        b = len(batch["case_id"])
        n_seen += b
        sums["train_loss"] += float(total.detach()) * b
        sums["train_cls_loss"] += float(cls.detach()) * b
        if seg is not None:
            sums["train_seg_loss"] += float(seg.detach()) * b
            n_seg_seen += b
        sums["w_seg"] += float(weights.get("w_seg", 0.0)) * b
        sums["w_cls"] += float(weights.get("w_cls", 1.0)) * b
        if on_progress is not None:
            on_progress((epoch - 1) * n_batches + step, total_batches, f"epoch {epoch} step {step}/{n_batches}")
    row = {"epoch": epoch}
    row["train_loss"] = sums["train_loss"] / max(n_seen, 1)
    row["train_cls_loss"] = sums["train_cls_loss"] / max(n_seen, 1)
    row["train_seg_loss"] = sums["train_seg_loss"] / n_seg_seen if n_seg_seen else None
    row["w_seg"] = sums["w_seg"] / max(n_seen, 1)
    row["w_cls"] = sums["w_cls"] / max(n_seen, 1)
    # tumor Dice measured on the (augmented) training batches of this epoch; feeds the schedule
    row["tumor_dice"] = float(np.mean(dices)) if dices else None
    row["lr"] = float(optimizer.param_groups[0]["lr"])
    return row


def checkpoint_score(row: dict) -> float:
    """What the checkpoint maximises: validation macro-F1, averaged with the validation tumour Dice when
    the network segments. Macro-F1 alone on ~25 validation cases is noisy enough to crown an epoch from
    before the segmentation learned anything (measured: a 24-epoch fusion fold kept epoch 2, validation
    macro-F1 0.67, tumour Dice 0.00 on test, while its training tumour Dice went on to 0.75), and an
    auxiliary task that the kept weights never learned defeats the architecture."""
    dice = row.get("val_tumor_dice")
    return row["val_macro_f1"] if dice is None else (row["val_macro_f1"] + dice) / 2


def _validate(
    net, cls_loss, valid: CaseArrays, config: TrainConfig, amp_dtype, epoch: int, segments: bool, outputs: bool = False
) -> tuple[dict, dict | None]:
    """The validation scores of the epoch's row; with ``outputs``, also what a balancing strategy reads: the
    validation cases' network output (logits and both embeddings), labels and the classification loss."""
    # validation cases belong to the fold's training part: their masks may steer the checkpoint
    want_masks = segments and valid.segs is not None and bool(np.any(valid.has_mask))
    preds = predict(
        net,
        valid,
        batch_size=config.batch_size,
        device=config.device,
        amp_dtype=amp_dtype,
        patch_size=config.patch_size,
        channels_last=config.channels_last,
        n_classes=config.n_classes,
        want_masks=want_masks,
        want_embeddings=outputs,
    )
    logits = torch.from_numpy(preds.logits)
    if not torch.isfinite(logits).all():
        raise TrainingError(f"epoch {epoch}: non-finite validation logits; the network diverged")
    labels = torch.as_tensor(np.array(valid.labels), dtype=torch.long)
    with torch.no_grad():
        loss = float(cls_loss(logits.to(config.device), labels.to(config.device)))
    predicted = logits.argmax(dim=1).numpy()
    row = {
        "val_macro_f1": macro_f1(labels.numpy(), predicted, config.n_classes),
        "val_accuracy": float((predicted == labels.numpy()).mean()),
        "val_loss": loss,
    }
    if want_masks and preds.masks is not None:
        masked = [i for i, has in enumerate(valid.has_mask) if has]
        row["val_tumor_dice"] = mean_structure_dice(
            [preds.masks[i] for i in masked], [valid.segs[i] for i in masked], TUMOR
        )
    if not outputs:
        return row, None
    out = NetOutput(
        logits=logits.to(config.device),
        seg_logits=None,
        image_embedding=torch.from_numpy(preds.image_embedding).to(config.device),
        clinical_embedding=torch.from_numpy(preds.clinical_embedding).to(config.device),
    )
    return row, {"output": out, "labels": labels.to(config.device), "cls_loss": cls_loss}
