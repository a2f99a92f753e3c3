"""A segmentation model trained on the training part of a fold, for recipes that need masks at test time.

Geometric baselines with ``mask_source = "predicted"`` measure tumor-vessel contact on masks, but
test cases come without masks. :func:`train_segmenter` trains a segmenting backbone (``cnn3d`` by
default) on the cases of the cohort it is given - the protocol passes the outer-training part, so
nothing of the test fold is seen - and :meth:`Segmenter.predict_masks` predicts masks from the CT
alone::

    seg = train_segmenter(train, ctx)               # uses ctx.seed / device / profile / cache_dir
    masks = seg.predict_masks(test)                 # case_id -> (uint8 mask, spacing_mm)

**Mask space.** Masks live in the *preprocessed ROI space*: the CT resampled to the profile's
``target_spacing`` and cropped/padded to ``roi`` exactly as :class:`resectbench.data.images.VolumeStore`
prepares network inputs (canonical orientation, canonical label indices of
:mod:`resectbench.data.labels`), so the returned spacing is that target spacing, not the native one.
Contact angles and distances measured on them are physical (mm, degrees); voxel positions are not
those of the original file.

A trained segmenter is cached under ``<cache_dir>/segmenters/`` keyed by the training cases, their
data fingerprint, the configuration and the seed: every recipe of a fold that asks for the same
segmenter trains it once (training is deterministic on CPU, so the cache changes no result).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .. import registry
from ..data.labels import INDEX, STRUCTURES
from ..errors import DataError, TrainingError
from .base import FitContext
from .engine.batches import CaseArrays, make_loader
from .engine.checkpoint import load_weights, save_weights, snapshot
from .engine.metrics import per_structure_dice, structure_dice
from .engine.precision import autocast, resolve_amp, resolve_device
from .engine.seeding import deterministic, seed_everything

N_SEG_CLASSES = len(STRUCTURES)  # the canonical structures, background included
TUMOR = INDEX["tumor"]
CACHE_VERSION = 1  # bump when training changes in a way that changes the weights


@dataclass
class SegmenterConfig:
    """Everything that determines a trained segmenter (and so its cache key)."""

    backbone: str = "cnn3d"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    roi: tuple[int, int, int] = (32, 32, 32)
    spacing: tuple[float, float, float] = (3.0, 3.0, 3.0)
    hu_clip: tuple[float, float] | None = None  # None: ImageConfig's default
    epochs: int = 20
    batch_size: int = 2
    lr: float = 3e-3
    weight_decay: float = 1e-5
    seg_ce: float = 0.4
    seg_dice: float = 0.4
    seg_focal: float = 0.2
    augment: bool = True  # small affine, noise, intensity shift; no flips (image_config)
    amp: str = "auto"
    grad_clip: float | None = 1.0
    seed: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["roi"], d["spacing"] = list(self.roi), list(self.spacing)
        d["hu_clip"] = list(self.hu_clip) if self.hu_clip else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SegmenterConfig":
        d = dict(d)
        d["roi"], d["spacing"] = tuple(d["roi"]), tuple(d["spacing"])
        d["hu_clip"] = tuple(d["hu_clip"]) if d.get("hu_clip") else None
        return cls(**d)

    def image_config(self):
        from ..data.transforms import AugmentationConfig, ImageConfig

        # No flips or 90-degree turns: they swap left/right-specific labels (SMA vs SMV, aorta vs
        # IVC), which a segmenter of named vessels must tell apart by position.
        kwargs = {
            "target_spacing": tuple(self.spacing),
            "roi": tuple(self.roi),
            "augmentation": AugmentationConfig(flip_prob=0.0, rot90_prob=0.0),
        }
        if self.hu_clip:
            kwargs["hu_clip"] = tuple(self.hu_clip)
        return ImageConfig(**kwargs)


def build_network(config: SegmenterConfig) -> nn.Module:
    """The segmenting backbone named by ``config`` (fresh weights; seeded by the caller)."""
    entry = registry.backbones.get(config.backbone)
    kwargs = {"in_channels": 1, "roi": tuple(config.roi), "n_seg_classes": N_SEG_CLASSES, "embed_dim": 8}
    if "norm_name" in entry.parameters() and min(config.roi) < 64 and "norm_name" not in config.backbone_kwargs:
        kwargs["norm_name"] = "group"  # instance norm cannot train Swin-UNETR's bottleneck below 64^3
    net = registry.backbones.create(config.backbone, **{**kwargs, **config.backbone_kwargs})
    if not getattr(net, "segments", False):
        raise ValueError(
            f"segmenter backbone {config.backbone!r} has no segmentation head; "
            f"choose one tagged 'segments' (e.g. cnn3d, swin-unetr, vit3d)"
        )
    return net


class Segmenter:
    """A trained segmentation network and the preprocessing it was trained with."""

    def __init__(
        self,
        net: nn.Module,
        config: SegmenterConfig,
        history: list[dict] | None = None,
        cache_dir: str | Path | None = None,
        device: str = "cpu",
    ):
        self.net = net.eval()
        self.config = config
        self.history = history or []
        self.cache_dir = cache_dir
        self.device = device
        self._tmp: tempfile.TemporaryDirectory | None = None

    # -- prediction ----------------------------------------------------------------------------
    @torch.no_grad()
    def predict_arrays(self, images, batch_size: int | None = None) -> np.ndarray:
        """Argmax masks (N, *roi) uint8 for preprocessed images, each (1, *roi) float32."""
        self.net.to(self.device).eval()
        amp_dtype = resolve_amp(self.config.amp, self.device)
        batch_size = batch_size or self.config.batch_size
        out = []
        for start in range(0, len(images), batch_size):
            x = torch.as_tensor(
                np.stack([np.asarray(im, dtype=np.float32) for im in images[start : start + batch_size]])
            )
            with autocast(amp_dtype, self.device):
                logits = self.net(x.to(self.device)).seg_logits
            out.append(logits.argmax(dim=1).to(torch.uint8).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, *self.config.roi), dtype=np.uint8)

    def predict_masks(
        self, cohort, on_progress: Callable[[int, int, str], None] | None = None
    ) -> dict[str, tuple[np.ndarray, tuple[float, float, float]]]:
        """``case_id -> (mask, spacing_mm)`` from the CT alone (masks of ``cohort`` are never read).

        ``mask`` is uint8 canonical indices in the preprocessed ROI space (see the module docs);
        ``spacing_mm`` is the configured target spacing.
        """
        vols = self._store().get(cohort, on_progress=on_progress)
        ids = list(cohort.case_ids)
        masks = self.predict_arrays([vols[c]["image"] for c in ids])
        spacing = tuple(float(s) for s in self.config.spacing)
        return {c: (m, spacing) for c, m in zip(ids, masks)}

    def dice(self, cohort) -> dict[str, dict[str, float]]:
        """Per-case Dice of every structure present in the reference masks (cases with a mask only)."""
        vols = self._store().get(cohort, on_progress=None)
        ids = [c for c in cohort.case_ids if vols[c]["has_mask"]]
        masks = self.predict_arrays([vols[c]["image"] for c in ids])
        return {c: per_structure_dice(m, np.asarray(vols[c]["seg"])) for c, m in zip(ids, masks)}

    def _store(self):
        from ..data.images import VolumeStore

        cache = self.cache_dir
        if cache is None:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="resectbench-volumes-")
            cache = self._tmp.name
        return VolumeStore(cache, self.config.image_config())

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # -- persistence (weights only + a JSON config) ----------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        save_weights(snapshot(self.net), path)
        meta = {"config": self.config.to_dict(), "history": self.history, "version": CACHE_VERSION}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(path.with_suffix(".json"))
        return path

    @classmethod
    def load(cls, path: str | Path, cache_dir: str | Path | None = None, device: str = "cpu") -> "Segmenter":
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        config = SegmenterConfig.from_dict(meta["config"])
        net = build_network(config)
        net.load_state_dict(load_weights(path))
        return cls(net, config, meta.get("history"), cache_dir=cache_dir, device=device)


# -- training ---------------------------------------------------------------------------------------
def fit_segmentation(
    net: nn.Module,
    arrays: CaseArrays,
    config: SegmenterConfig,
    *,
    device: str = "cpu",
    transform: Callable | None = None,
    loss: nn.Module | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> list[dict]:
    """Train ``net`` in place on the cases of ``arrays`` that have a mask; returns per-epoch metrics.

    AdamW + cosine annealing over all steps, gradient clipping, bf16 autocast on CUDA. A
    non-finite input or loss stops training with a :class:`TrainingError` naming epoch and cases.
    """
    from ..losses import SegmentationLoss

    keep = np.flatnonzero(np.asarray(arrays.has_mask, dtype=bool))
    if len(keep) == 0:
        raise DataError("cannot train a segmenter: no training case has a segmentation mask")
    train = CaseArrays(
        case_ids=[arrays.case_ids[i] for i in keep],
        clinical=np.zeros((len(keep), 0), dtype=np.float32),
        images=[arrays.images[i] for i in keep],
        segs=[arrays.segs[i] for i in keep],
        has_mask=np.ones(len(keep), dtype=bool),
    )
    loss = loss or SegmentationLoss(ce=config.seg_ce, dice=config.seg_dice, focal=config.seg_focal)
    amp_dtype = resolve_amp(config.amp, device)
    history = []
    with deterministic(device):
        generator = seed_everything(config.seed)
        net.to(device).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        loader = make_loader(
            train, batch_size=config.batch_size, shuffle=True, transform=transform, generator=generator
        )
        total = len(loader) * config.epochs
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total))
        done = 0
        for epoch in range(1, config.epochs + 1):
            net.train()
            losses, dices = [], []
            for batch in loader:
                image, seg = batch["image"].to(device), batch["seg"].to(device)
                if not torch.isfinite(image).all():
                    bad = [
                        c for c, ok in zip(batch["case_id"], torch.isfinite(image.flatten(1)).all(1).tolist()) if not ok
                    ]
                    raise TrainingError(f"segmenter epoch {epoch}: non-finite image input for case(s) {', '.join(bad)}")
                with autocast(amp_dtype, device):
                    logits = net(image).seg_logits
                value = loss(logits.float(), seg)
                if not torch.isfinite(value):
                    raise TrainingError(
                        f"segmenter epoch {epoch}: non-finite loss ({float(value):g}) on case(s) "
                        f"{', '.join(batch['case_id'])}; lower the learning rate or check the data"
                    )
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                losses.append(float(value.detach()))
                dices.extend(structure_dice(logits.detach().float(), seg, TUMOR).tolist())
                done += 1
                if on_progress is not None:
                    on_progress(done, total, f"segmenter epoch {epoch}/{config.epochs}")
            tumor = [d for d in dices if not math.isnan(d)]
            row = {
                "epoch": epoch,
                "seg_loss": float(np.mean(losses)),
                "tumor_dice": float(np.mean(tumor)) if tumor else float("nan"),
                "lr": float(optimizer.param_groups[0]["lr"]),
            }
            history.append(row)
            if on_epoch is not None:
                on_epoch(epoch, dict(row))
    net.eval()
    return history


def segmenter_config(
    ctx: FitContext, backbone: str = "cnn3d", epochs: int | None = None, roi=None, **options
) -> SegmenterConfig:
    """A :class:`SegmenterConfig` with the profile's ROI and spacing unless given.

    Our choices, measured on the cpu cohort (benchmarks/backbones.py --segmenter): epochs default
    to ``max(20, profile.max_epochs)`` - small vessels and the tumor appear only after ~8 epochs
    of 64 steps; batch 2 and lr 3e-3 (more, larger steps) - at batch 4 / lr 1e-3 nothing but
    aorta and IVC was segmented after 10 epochs.
    """
    p = ctx.profile
    config = SegmenterConfig(
        backbone=backbone,
        roi=tuple(roi or p.roi),
        spacing=tuple(p.target_spacing_mm),
        epochs=int(epochs or max(20, p.max_epochs)),
        seed=ctx.seed,
    )
    valid = set(SegmenterConfig.__dataclass_fields__)
    unknown = sorted(set(options) - valid)
    if unknown:
        raise TypeError(
            f"train_segmenter got unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
        )
    for key, value in options.items():
        setattr(config, key, value)
    if isinstance(config.roi, int):
        config.roi = (config.roi,) * 3
    return config


def _cache_key(cohort, config: SegmenterConfig, device: str) -> str:
    augmentation = asdict(config.image_config().augmentation) if config.augment else None
    payload = {
        "version": CACHE_VERSION,
        "config": config.to_dict(),
        "augmentation": augmentation,
        "cases": sorted(cohort.case_ids),
        "fingerprint": getattr(cohort, "fingerprint", None),
        "torch": torch.__version__,
        "device": torch.device(device).type,
    }  # GPU and CPU kernels give (slightly) different weights
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def train_segmenter(
    train_cohort,
    ctx: FitContext,
    backbone: str = "cnn3d",
    epochs: int | None = None,
    roi=None,
    *,
    cache: bool = True,
    on_epoch: Callable[[int, dict], None] | None = None,
    **options,
) -> Segmenter:
    """Train a segmenter on ``train_cohort`` (its cases with masks) and return it.

    ``options`` set any :class:`SegmenterConfig` field (``lr``, ``batch_size``, ``backbone_kwargs``,
    ``seg_ce`` ...). Seed, device and cache directory come from ``ctx``; progress goes to
    ``ctx.on_progress``, per-epoch metrics to ``on_epoch`` (not ``ctx.on_epoch``, which reports
    the classifier's validation metrics to the tuner). With ``cache`` and a
    ``ctx.cache_dir``, a segmenter trained before on the same cases and configuration is loaded
    instead of retrained.
    """
    config = segmenter_config(ctx, backbone, epochs, roi, **options)
    device = resolve_device(ctx.device)
    cache_dir = ctx.cache_dir
    cached = None
    if cache and cache_dir is not None:
        cached = Path(cache_dir) / "segmenters" / f"{config.backbone}-{_cache_key(train_cohort, config, device)}.pt"
        if cached.exists() and cached.with_suffix(".json").exists():
            return Segmenter.load(cached, cache_dir=cache_dir, device=device)
    seed_everything(config.seed)
    segmenter = Segmenter(build_network(config), config, cache_dir=cache_dir, device=device)
    vols = segmenter._store().get(train_cohort, on_progress=ctx.on_progress)
    ids = list(train_cohort.case_ids)
    arrays = CaseArrays(
        case_ids=ids,
        clinical=np.zeros((len(ids), 0), dtype=np.float32),
        images=[vols[c]["image"] for c in ids],
        segs=[vols[c]["seg"] for c in ids],
        has_mask=np.array([bool(vols[c]["has_mask"]) for c in ids]),
    )
    transform = None
    if config.augment:
        from ..data.transforms import train_augmentation

        transform = train_augmentation(config.image_config(), config.seed)
    segmenter.history = fit_segmentation(
        segmenter.net,
        arrays,
        config,
        device=device,
        transform=transform,
        on_epoch=on_epoch,
        on_progress=ctx.on_progress,
    )
    if cached is not None:
        segmenter.save(cached)
    return segmenter
