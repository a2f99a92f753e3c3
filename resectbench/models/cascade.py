"""The cascade: find the tumour on a coarse grid (stage 1), then look closely there (stage 2).

At the ``cpu`` profile's budget an image model sees 32^3 voxels. Over the whole ~96 mm field of
view that is 3 mm per voxel, where the SMA is one voxel wide and tumour-vessel contact - what the
NCCN classes are decided by - is barely in the input. The cascade (after nnU-Net's) spends the same
32^3 on a 1.5 mm window around the tumour instead. Stage 1, the :class:`Localiser`: a small MONAI
U-Net (150k parameters, ~0.01 s per 32^3 volume and step on 2 cores) trained on the training cases'
masks at 3 mm to segment pancreas and tumour only. Its prediction on a CT alone gives the window's
centre, and the model's window is cut from a cached fine-grid context volume (:func:`cut_windows`).
Inference stays mask-free; nothing of a held-out case is seen in training.

Guarding the choice (the coarse prediction can hold several tumour-like blobs): the largest tumour
component within reach of the predicted pancreas wins (the largest of all when none is); without a
predicted tumour, the pancreas centroid; without either, the scan centre.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..data.labels import INDEX
from ..profiles import Cascade
from .backbones.base import BackboneOutput
from .base import FitContext
from .engine.batches import CaseArrays
from .engine.checkpoint import load_weights, save_weights, snapshot
from .engine.precision import resolve_device
from .engine.seeding import seed_everything

TUMOR, PANCREAS = INDEX["tumor"], INDEX["pancreas"]
#: the localiser's classes keep their canonical indices: 0 background (everything else), 1, 2
N_LOCALISER_CLASSES = 3
#: a tumour blob within this many voxels of the predicted pancreas is preferred to any blob farther away
PANCREAS_REACH_VOX = 2
CACHE_VERSION = 1


def tumour_centre_vox(mask: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Centre (continuous voxel coordinates) of the tumour in a predicted or true canonical mask, and
    what it was taken from: ``"tumour"``, ``"pancreas"`` (no tumour voxel) or ``"none"``."""
    from scipy import ndimage

    tumour, pancreas = mask == TUMOR, mask == PANCREAS
    labels, n = ndimage.label(tumour)
    if n:
        index = np.arange(1, n + 1)
        sizes = np.asarray(ndimage.sum(tumour, labels, index))
        if pancreas.any():
            reach = ndimage.binary_dilation(pancreas, iterations=PANCREAS_REACH_VOX)
            touches = np.asarray(ndimage.maximum(reach, labels, index)) > 0
            if touches.any():  # a PDAC grows from the pancreas: blobs away from it are false positives
                sizes = np.where(touches, sizes, 0.0)
        best = int(index[np.argmax(sizes)])
        return np.asarray(ndimage.center_of_mass(labels == best)), "tumour"
    if pancreas.any():
        return np.argwhere(pancreas).mean(axis=0), "pancreas"
    return None, "none"


def voxel_to_world(affine: np.ndarray, vox) -> np.ndarray:
    return (np.asarray(affine, dtype=float) @ np.append(np.asarray(vox, dtype=float), 1.0))[:3]


class SmallUNet(nn.Module):
    """MONAI U-Net (8-16-32-64 channels, one residual unit per level, ~150k parameters) -> seg logits.
    The localiser (pancreas / tumour) and the window segmenter (every structure) are one each."""

    def __init__(self, n_classes: int = N_LOCALISER_CLASSES):
        super().__init__()
        from monai.networks.nets import UNet

        self.net = UNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=n_classes,
            channels=(8, 16, 32, 64),
            strides=(2, 2, 2),
            num_res_units=1,
            norm="batch",
        )

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        return BackboneOutput(embedding=x.new_zeros((x.shape[0], 0)), seg_logits=self.net(x))


class Localiser:
    """A trained :class:`SmallUNet` that answers ``centres(cohort)`` from the CT alone."""

    def __init__(self, net: SmallUNet, cascade: Cascade, cache_dir: str | Path | None, device: str = "cpu"):
        self.net, self.cascade, self.device = net.eval(), cascade, device
        self.history: list[dict] = []  # per-epoch training metrics (empty when loaded from the cache)
        self._tmp = None if cache_dir is not None else tempfile.TemporaryDirectory(prefix="resectbench-volumes-")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(self._tmp.name)

    def store(self):
        from ..data.images import ImageConfig, VolumeStore

        return VolumeStore(
            self.cache_dir,
            ImageConfig(target_spacing=tuple(self.cascade.localiser_spacing_mm), roi=tuple(self.cascade.localiser_roi)),
        )

    @torch.no_grad()
    def predict_arrays(self, images) -> np.ndarray:
        self.net.to(self.device).eval()
        out = [
            self.net(torch.as_tensor(np.asarray(im, dtype=np.float32))[None].to(self.device))
            .seg_logits.argmax(dim=1)[0]
            .to(torch.uint8)
            .cpu()
            .numpy()
            for im in images
        ]
        return np.stack(out) if out else np.zeros((0, *self.cascade.localiser_roi), dtype=np.uint8)

    def centres(
        self, cohort, on_progress: Callable[[int, int, str], None] | None = None
    ) -> dict[str, tuple[np.ndarray, str]]:
        """``case_id -> (centre in world mm (RAS), source)``; masks of ``cohort`` are never read."""
        vols = self.store().get(cohort, on_progress=on_progress)
        ids = list(cohort.case_ids)
        masks = self.predict_arrays([vols[c]["image"] for c in ids])
        out = {}
        for cid, mask in zip(ids, masks):
            vox, source = tumour_centre_vox(mask)
            if vox is None:
                vox = (np.asarray(mask.shape) - 1) / 2.0
            out[cid] = (voxel_to_world(vols[cid]["affine"], vox), source)
        return out


def true_centres(vols: dict) -> dict[str, np.ndarray | None]:
    """World centre (mm) of each case's tumour in its reference mask (None: no mask, or nothing in it)."""
    out = {}
    for cid, v in vols.items():
        vox = tumour_centre_vox(v["seg"])[0] if v["has_mask"] else None
        out[cid] = None if vox is None else voxel_to_world(v["affine"], vox)
    return out


def cut_windows(vols: dict, centres: dict, size) -> dict:
    """Each cached context volume cut to the ``size`` window around its case's centre (world mm); the
    window's affine places it in the world like the context it came from."""
    from ..data.transforms import crop_around, window_start, world_to_voxel

    out = {}
    for cid, centre in centres.items():
        v = vols[cid]
        vox = world_to_voxel(v["affine"], centre)
        affine = np.array(v["affine"], dtype=np.float64)
        affine[:3, 3] += affine[:3, :3] @ window_start(vox, size)
        out[cid] = {
            "image": crop_around(v["image"], vox, size, pad_value=float(v["image"].min())),
            "seg": crop_around(v["seg"], vox, size, pad_value=0),
            "has_mask": v["has_mask"],
            "affine": affine,
        }
    return out


def _cache_key(cohort, cascade: Cascade, seed: int, device: str, extra: dict | None = None) -> str:
    payload = {
        "version": CACHE_VERSION,
        "cascade": asdict(cascade),
        "seed": seed,
        "cases": sorted(cohort.case_ids),
        "fingerprint": getattr(cohort, "fingerprint", None),
        "torch": torch.__version__,
        "device": torch.device(device).type,
        **(extra or {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def training_centres(vols: dict, localiser: Localiser, cohort) -> dict[str, np.ndarray]:
    """Window centres of training cases: their mask's tumour (else the pancreas), or the localiser's
    guess for a case whose mask shows neither."""
    centres = true_centres(vols)
    missing = [c for c, v in centres.items() if v is None]
    if missing:
        guess = localiser.centres(cohort.subset(missing))
        centres.update({c: guess[c][0] for c in missing})
    return centres


def _fit_small_unet(
    net: SmallUNet,
    ids,
    images,
    segs,
    has_mask,
    roi,
    spacing,
    epochs: int,
    transform,
    ctx: FitContext,
    device: str,
    path: Path | None,
) -> list[dict]:
    """Train ``net`` in place (lr 3e-3, batch 2) and keep its weights at ``path``; the per-epoch history."""
    from .segmenter import SegmenterConfig, fit_segmentation

    arrays = CaseArrays(
        case_ids=list(ids),
        clinical=np.zeros((len(ids), 0), dtype=np.float32),
        images=images,
        segs=segs,
        has_mask=np.asarray(has_mask, dtype=bool),
    )
    config = SegmenterConfig(
        roi=tuple(roi), spacing=tuple(spacing), epochs=epochs, batch_size=2, lr=3e-3, seed=ctx.seed
    )
    history = fit_segmentation(net, arrays, config, device=device, transform=transform, on_progress=ctx.on_progress)
    net.eval()
    if path is not None:
        save_weights(snapshot(net), path)
    return history


def _no_flip_augmentation(roi, seed: int):
    """The training augmentation without flips or 90-degree turns: they would move a head tumour to
    where tails are and swap side-specific vessels (SMA / SMV)."""
    from ..data.transforms import AugmentationConfig, ImageConfig, train_augmentation

    return train_augmentation(
        ImageConfig(roi=tuple(roi), augmentation=AugmentationConfig(flip_prob=0.0, rot90_prob=0.0)), seed
    )


def train_localiser(train_cohort, ctx: FitContext, cascade: Cascade) -> Localiser:
    """Train the localiser of ``cascade`` on the cases of ``train_cohort`` that have masks.

    Cached under ``ctx.cache_dir/localisers`` (weights only) by cases, settings and seed, so every
    recipe and trial of a fold that uses the cascade shares one (training is deterministic on CPU).
    """
    device = resolve_device(ctx.device)
    seed_everything(ctx.seed)
    localiser = Localiser(SmallUNet(), cascade, ctx.cache_dir, device)
    path = None
    if ctx.cache_dir is not None:
        path = Path(ctx.cache_dir) / "localisers" / f"{_cache_key(train_cohort, cascade, ctx.seed, device)}.pt"
        if path.exists():
            localiser.net.load_state_dict(load_weights(path))
            return localiser
    vols = localiser.store().get(train_cohort, on_progress=ctx.on_progress)
    ids = list(train_cohort.case_ids)
    # pancreas and tumour keep their indices (1, 2); every other structure is background here
    segs = [np.where(np.isin(vols[c]["seg"], (PANCREAS, TUMOR)), vols[c]["seg"], 0).astype(np.uint8) for c in ids]
    localiser.history = _fit_small_unet(
        localiser.net,
        ids,
        [vols[c]["image"] for c in ids],
        segs,
        [vols[c]["has_mask"] for c in ids],
        cascade.localiser_roi,
        cascade.localiser_spacing_mm,
        cascade.localiser_epochs,
        _no_flip_augmentation(cascade.localiser_roi, ctx.seed),
        ctx,
        device,
        path,
    )
    return localiser


class WindowSegmenter:
    """Every canonical structure segmented in the cascade's fine window: the masks that the geometric
    baselines measure contact on (``predict_masks`` answers like :class:`resectbench.models.segmenter.Segmenter`)."""

    def __init__(self, net: SmallUNet, localiser: Localiser, profile, device: str = "cpu"):
        self.net, self.localiser, self.profile, self.device = net.eval(), localiser, profile, device
        self.history: list[dict] = []

    def store(self):
        from ..data.images import ImageConfig, VolumeStore

        return VolumeStore(
            self.localiser.cache_dir,
            ImageConfig(
                target_spacing=tuple(self.profile.target_spacing_mm), roi=tuple(self.profile.cascade.context_roi)
            ),
        )

    def _windows(self, cohort, on_progress=None) -> dict:
        """Each case's window around the localiser's centre (image, and the reference seg when it has one)."""
        centres = {c: v[0] for c, v in self.localiser.centres(cohort).items()}
        return cut_windows(self.store().get(cohort, on_progress=on_progress), centres, self.profile.roi)

    @torch.no_grad()
    def _segment(self, windows: dict) -> dict[str, np.ndarray]:
        self.net.to(self.device).eval()
        return {
            cid: self.net(torch.as_tensor(w["image"])[None].to(self.device))
            .seg_logits.argmax(dim=1)[0]
            .to(torch.uint8)
            .cpu()
            .numpy()
            for cid, w in windows.items()
        }

    def predict_masks(
        self, cohort, on_progress: Callable[[int, int, str], None] | None = None
    ) -> dict[str, tuple[np.ndarray, tuple[float, float, float]]]:
        """``case_id -> (mask in the window around the localiser's centre, spacing mm)``; no mask is read."""
        spacing = tuple(float(s) for s in self.profile.target_spacing_mm)
        masks = self._segment(self._windows(cohort, on_progress))
        return {cid: (masks[cid], spacing) for cid in cohort.case_ids}

    def dice(self, cohort) -> dict[str, dict[str, float]]:
        """Per-case Dice of every structure, against the reference mask cut at the same window."""
        from .engine.metrics import per_structure_dice

        windows = {c: w for c, w in self._windows(cohort).items() if w["has_mask"]}
        masks = self._segment(windows)
        return {c: per_structure_dice(masks[c], w["seg"]) for c, w in windows.items()}


#: the window segmenter's training (measured: benchmarks/cascade.py --recipe geometric-rules)
WINDOW_SEGMENTER_EPOCHS = 40


def train_window_segmenter(train_cohort, ctx: FitContext, epochs: int = WINDOW_SEGMENTER_EPOCHS) -> WindowSegmenter:
    """Localiser + a :class:`SmallUNet` of every structure trained on fine windows around the training
    cases' tumours (shifted like the image models' windows); both cached by cases and settings."""
    from monai.transforms import Compose, RandSpatialCropd

    from ..data.labels import STRUCTURES

    profile, cascade = ctx.profile, ctx.profile.cascade
    device = resolve_device(ctx.device)
    localiser = train_localiser(train_cohort, ctx, cascade)
    seed_everything(ctx.seed)
    seg = WindowSegmenter(SmallUNet(len(STRUCTURES)), localiser, profile, device)
    path = None
    if ctx.cache_dir is not None:
        key = _cache_key(
            train_cohort,
            cascade,
            ctx.seed,
            device,
            extra={"window": [list(profile.roi), list(profile.target_spacing_mm)], "epochs": epochs},
        )
        path = Path(ctx.cache_dir) / "window-segmenters" / f"{key}.pt"
        if path.exists():
            seg.net.load_state_dict(load_weights(path))
            return seg
    vols = seg.store().get(train_cohort, on_progress=ctx.on_progress)
    ids = [c for c in train_cohort.case_ids if vols[c]["has_mask"]]
    masked = {c: vols[c] for c in ids}
    size = np.asarray(profile.roi) + 2 * cascade.jitter_vox
    windows = cut_windows(masked, training_centres(masked, localiser, train_cohort), size)
    # the window around the true tumour, shifted as far as the localiser typically errs
    transform = Compose(
        [
            RandSpatialCropd(keys=["image", "seg"], roi_size=tuple(profile.roi), random_size=False),
            _no_flip_augmentation(size, ctx.seed),
        ]
    )
    transform.set_random_state(seed=ctx.seed)
    seg.history = _fit_small_unet(
        seg.net,
        ids,
        [windows[c]["image"] for c in ids],
        [windows[c]["seg"] for c in ids],
        [True] * len(ids),
        profile.roi,
        profile.target_spacing_mm,
        epochs,
        transform,
        ctx,
        device,
        path,
    )
    return seg
