"""MONAI dictionary transforms: the deterministic preprocessing chain and the training augmentation.

Preprocessing (cached by :class:`resectbench.data.images.VolumeStore`): load (canonical RAS, labels
remapped) -> channel-first -> orientation RAS -> resample to the target spacing (bilinear image,
nearest mask) -> HU clip -> crop/pad to the ROI -> z-score over the ROI.

Crop centre: the centre of the scan by default (``crop_center="image"``). Inference is mask-free, so
the crop must not depend on the mask; the synthetic phantoms are centred on the peri-pancreatic
region, and real scans should be cropped to that region beforehand (or the ROI made large enough).
``crop_center="mask"`` centres on the tumor (the pancreas when there is none) from the mask: an
oracle option for experiments only. The cascade of the ``cpu`` profile caches a larger context
volume this way and cuts the model's window from it with :func:`crop_around` at a centre that a
localiser predicted (:mod:`resectbench.models.cascade`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Hashable, Mapping

import numpy as np

from .labels import INDEX


@dataclass(frozen=True)
class AugmentationConfig:
    """The paper's augmentations (flips, 90-degree rotations, small affine, Gaussian noise, intensity shift)."""

    flip_prob: float = 0.5
    rot90_prob: float = 0.5
    affine_prob: float = 0.3
    rotate_range_rad: float = 0.1
    noise_prob: float = 0.3
    noise_std: float = 0.01
    shift_prob: float = 0.3
    shift_offset: float = 0.1


@dataclass(frozen=True)
class ImageConfig:
    """What a model gets to see. Part of the preprocessing cache key (except ``augmentation``)."""

    target_spacing: tuple[float, float, float] = (1.5, 1.5, 1.5)
    roi: tuple[int, int, int] = (64, 64, 64)
    hu_clip: tuple[float, float] = (-200.0, 300.0)
    crop_center: str = "image"  # "image" (mask-free, default) or "mask" (oracle; see module docstring)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)

    def __post_init__(self) -> None:
        from ..errors import ResectbenchError

        if self.crop_center not in ("image", "mask"):
            raise ResectbenchError(f"crop_center must be 'image' or 'mask', got {self.crop_center!r}")
        if len(self.roi) != 3 or min(self.roi) < 4:
            raise ResectbenchError(f"roi must be three sizes >= 4, got {self.roi}")
        if self.hu_clip[0] >= self.hu_clip[1]:
            raise ResectbenchError(f"hu_clip must be (low, high) with low < high, got {self.hu_clip}")

    @classmethod
    def from_profile(cls, profile, **changes) -> "ImageConfig":
        """Target spacing and ROI of a :class:`resectbench.profiles.Profile` (or its name)."""
        from ..profiles import get_profile

        p = get_profile(profile) if isinstance(profile, str) else profile
        return cls(target_spacing=tuple(p.target_spacing_mm), roi=tuple(p.roi), **changes)

    def cache_dict(self) -> dict:
        d = asdict(self)
        d.pop("augmentation")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _monai():
    import monai.transforms as mt

    return mt


class LoadCased:
    """{"case_id"} -> {"image": (X,Y,Z) float32 HU, "seg": (X,Y,Z) uint8 canonical, "has_mask", "affine"}."""

    def __init__(self, cohort):
        self.cohort = cohort

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        from monai.data import MetaTensor

        case = self.cohort.load_case(str(data["case_id"]))
        seg = case.mask if case.mask is not None else np.zeros(case.image.shape, dtype=np.uint8)
        return {
            "case_id": case.case_id,
            "has_mask": case.mask is not None,
            "image": MetaTensor(case.image, affine=case.affine),
            "seg": MetaTensor(seg.astype(np.float32), affine=case.affine),
        }


class CropToRoid:
    """Crop/pad image and seg to ``roi`` around the scan centre or the tumor (else pancreas) centroid."""

    def __init__(self, roi, center: str, pad_value: float):
        self.roi, self.center, self.pad_value = tuple(int(r) for r in roi), center, float(pad_value)

    def __call__(self, data: dict) -> dict:
        mt = _monai()
        d = dict(data)
        if self.center == "image" or not d["has_mask"]:
            for key, value in (("image", self.pad_value), ("seg", 0.0)):
                d[key] = mt.ResizeWithPadOrCrop(self.roi, mode="constant", value=value)(d[key])
            return d
        seg = np.asarray(d["seg"][0])
        fg = np.argwhere(seg == INDEX["tumor"])
        if not len(fg):
            fg = np.argwhere(seg == INDEX["pancreas"])
        centre = fg.mean(axis=0).round().astype(int) if len(fg) else np.asarray(seg.shape) // 2
        border = [r // 2 + 1 for r in self.roi]
        for key, value in (("image", self.pad_value), ("seg", 0.0)):
            padded = mt.BorderPad(border, mode="constant", value=value)(d[key])
            d[key] = mt.SpatialCrop(roi_center=(centre + np.asarray(border)).tolist(), roi_size=self.roi)(padded)
        return d


def world_to_voxel(affine: np.ndarray, point_mm) -> np.ndarray:
    """Continuous voxel coordinates of a world point (mm) on the grid of ``affine``."""
    return (np.linalg.inv(affine) @ np.append(np.asarray(point_mm, dtype=float), 1.0))[:3]


def window_start(centre_vox, size) -> np.ndarray:
    """First voxel of the ``size`` window centred on the voxel nearest ``centre_vox``."""
    return np.floor(np.asarray(centre_vox, dtype=float) + 0.5).astype(int) - np.asarray(size, dtype=int) // 2


def crop_around(array: np.ndarray, centre_vox, size, pad_value: float = 0.0) -> np.ndarray:
    """The ``size`` window of ``array`` (spatial axes last, any leading channel axes) whose centre is the
    voxel nearest ``centre_vox``; parts outside the array are filled with ``pad_value``."""
    size = np.asarray(size, dtype=int)
    spatial = np.asarray(array.shape[-3:])
    start = window_start(centre_vox, size)
    out = np.full(array.shape[:-3] + tuple(size), pad_value, dtype=array.dtype)
    lo, hi = np.maximum(start, 0), np.minimum(start + size, spatial)
    if np.any(hi <= lo):
        return out  # the window lies entirely outside the volume
    src = tuple(slice(a, b) for a, b in zip(lo, hi))
    dst = tuple(slice(a, b) for a, b in zip(lo - start, hi - start))
    out[(..., *dst)] = array[(..., *src)]
    return out


def preprocessing(cohort, config: ImageConfig):
    """The deterministic chain for ``cohort`` (a MONAI Compose over {"case_id"} dicts)."""
    mt = _monai()
    lo, hi = config.hu_clip
    return mt.Compose(
        [
            LoadCased(cohort),
            mt.EnsureChannelFirstd(keys=("image", "seg"), channel_dim="no_channel"),
            mt.Orientationd(keys=("image", "seg"), axcodes="RAS", labels=None),
            mt.Spacingd(
                keys=("image", "seg"), pixdim=config.target_spacing, mode=("bilinear", "nearest"), dtype=np.float32
            ),
            mt.ScaleIntensityRanged(keys="image", a_min=lo, a_max=hi, b_min=lo, b_max=hi, clip=True),
            CropToRoid(config.roi, config.crop_center, pad_value=lo),
            mt.NormalizeIntensityd(keys="image"),
        ]
    )


class _SegChannel:
    """Augmentation works on channel-first arrays: give seg a channel if it has none, and take it away after."""

    def __init__(self, add: bool):
        self.add = add

    def __call__(self, data: dict) -> dict:
        d = dict(data)
        if "seg" not in d:
            return d
        if self.add:
            d["_seg_had_channel"] = d["seg"].ndim == 4
            if not d["_seg_had_channel"]:
                d["seg"] = d["seg"][None]
        else:
            import torch

            seg = d["seg"]
            seg = torch.as_tensor(
                np.asarray(seg)
                if not isinstance(seg, torch.Tensor)
                else seg.as_tensor()
                if hasattr(seg, "as_tensor")
                else seg
            )
            seg = seg.round().to(torch.uint8)
            d["seg"] = seg if d.pop("_seg_had_channel") else seg[0]
        return d


def train_augmentation(config: ImageConfig | AugmentationConfig, seed: int = 0):
    """Random augmentation for training batches only (never for validation or test).

    Works on dicts with "image" (1, *roi) and optionally "seg" ((*roi) or (1, *roi)); returns torch
    tensors: image float32 (1, *roi), seg uint8 in the shape it came in. Seeded, so the same seed
    gives the same sequence of augmentations.
    """
    mt = _monai()
    aug = config.augmentation if isinstance(config, ImageConfig) else config
    roi = config.roi if isinstance(config, ImageConfig) else None
    keys = ("image", "seg")
    steps = [
        _SegChannel(add=True),
        mt.EnsureTyped(keys=keys, data_type="tensor", track_meta=False, allow_missing_keys=True),
    ]
    steps += [mt.RandFlipd(keys=keys, prob=aug.flip_prob, spatial_axis=a, allow_missing_keys=True) for a in range(3)]
    if roi is None or roi[0] == roi[1]:  # 90-degree turns in the axial plane keep the shape only if square
        steps.append(
            mt.RandRotate90d(keys=keys, prob=aug.rot90_prob, max_k=3, spatial_axes=(0, 1), allow_missing_keys=True)
        )
    steps += [
        mt.RandAffined(
            keys=keys,
            prob=aug.affine_prob,
            rotate_range=(aug.rotate_range_rad,) * 3,
            mode=("bilinear", "nearest"),
            padding_mode="border",
            allow_missing_keys=True,
        ),
        mt.RandGaussianNoised(keys="image", prob=aug.noise_prob, std=aug.noise_std),
        mt.RandShiftIntensityd(keys="image", offsets=aug.shift_offset, prob=aug.shift_prob),
        mt.EnsureTyped(keys=keys, data_type="tensor", track_meta=False, allow_missing_keys=True),
        _SegChannel(add=False),
    ]
    compose = mt.Compose(steps)
    compose.set_random_state(seed=seed)
    return compose
