"""What every image backbone returns, and the small pieces the built-in backbones share.

A backbone is an ``nn.Module`` built by a factory taking at least ``in_channels``, ``roi``,
``n_seg_classes`` (0 = no segmentation head) and ``embed_dim``. It exposes ``embed_dim`` and
``segments`` and maps a batch ``(B, in_channels, *roi)`` to a :class:`BackboneOutput`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from ...errors import ResectbenchError


@dataclass
class BackboneOutput:
    embedding: torch.Tensor  # (B, embed_dim)
    seg_logits: torch.Tensor | None = None  # (B, n_seg_classes, *roi) or None when the backbone does not segment


class VolumeBackbone(nn.Module):
    """What every 3D backbone records about its input and outputs (``MultitaskNet`` and the engine read these)."""

    def __init__(self, in_channels: int, roi: int | Sequence[int], embed_dim: int, n_seg_classes: int):
        super().__init__()
        self.roi = as_roi(roi)
        self.in_channels = int(in_channels)
        self.embed_dim = int(embed_dim)
        self.n_seg_classes = int(n_seg_classes)
        self.segments = self.n_seg_classes > 0


def as_roi(roi: int | Sequence[int]) -> tuple[int, int, int]:
    """``64`` or ``(64, 64, 64)`` -> a 3-tuple of positive ints."""
    if isinstance(roi, int):
        roi = (roi, roi, roi)
    roi = tuple(int(r) for r in roi)
    if len(roi) != 3 or min(roi) <= 0:
        raise ValueError(f"roi must be three positive voxel counts (D, H, W), got {roi!r}")
    return roi


def require_divisible(roi: tuple[int, int, int], divisor: int, backbone: str, why: str) -> None:
    """Raise a clear error when the ROI does not fit a network's down-sampling factor."""
    bad = [r for r in roi if r % divisor]
    if bad:
        fixed = tuple(max(divisor, round(r / divisor) * divisor) for r in roi)
        raise ValueError(
            f"{backbone}: every roi edge must be divisible by {divisor} ({why}); got roi={roi}. Try roi={fixed}."
        )


def check_input(x: torch.Tensor, in_channels: int, roi: tuple[int, int, int], backbone: str) -> None:
    """Shapes are checked once at the boundary so a wrong ROI fails with a message, not deep in a conv."""
    if x.ndim != 5 or x.shape[1] != in_channels or tuple(x.shape[2:]) != roi:
        raise ValueError(
            f"{backbone} expects input of shape (B, {in_channels}, {roi[0]}, {roi[1]}, {roi[2]}), got {tuple(x.shape)}"
        )


NORMS = ("instance", "batch", "group")


def norm_argument(norm_name: str, width: int, backbone: str):
    """MONAI ``norm_name`` for a UNETR-style decoder whose widths are multiples of ``width``.

    ``"group"`` becomes ``("group", {"num_groups": g})`` with the largest g in (8, 6, 4, 3, 2, 1)
    dividing ``width``, so it divides every decoder width.
    """
    if norm_name not in NORMS:
        raise ValueError(f"{backbone}: norm_name must be one of {NORMS}, got {norm_name!r}")
    if norm_name != "group":
        return norm_name
    groups = next(g for g in (8, 6, 4, 3, 2, 1) if width % g == 0)
    return ("group", {"num_groups": groups})


def n_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class PretrainedLoadError(ResectbenchError):
    """A pretrained checkpoint could not be read or does not fit the backbone."""


@dataclass
class LoadReport:
    """What a non-strict load did; kept on the backbone as ``pretrained_report``."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # backbone parameters left at their initialisation
    unexpected: list[str] = field(default_factory=list)  # checkpoint entries with no counterpart
    shape_mismatch: list[str] = field(default_factory=list)  # same name, different shape: skipped

    def summary(self) -> str:
        return (
            f"{self.path}: loaded {len(self.loaded)} tensors, {len(self.missing)} left initialised, "
            f"{len(self.unexpected)} unused, {len(self.shape_mismatch)} skipped for shape mismatch"
        )


_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "network", "weights")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights-only checkpoint (``torch.load(weights_only=True)``: no code runs).

    Accepts a bare state dict or one wrapped under a usual key (``state_dict``, ``model``, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise PretrainedLoadError(f"pretrained checkpoint {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types here (pickle, zip, EOF, Runtime)
        # weights_only refuses pickled code too: say so, since "corrupt" would mislead then
        raise PretrainedLoadError(
            f"pretrained checkpoint {str(path)!r} could not be read as a weights-only torch file "
            f"(corrupt, truncated, not a torch checkpoint, or it contains pickled code): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    for _ in range(3):  # unwrap {"state_dict": {...}} and the like, possibly nested
        if isinstance(obj, Mapping) and not _is_state_dict(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        raise PretrainedLoadError(
            f"pretrained checkpoint {str(path)!r} holds no state dict of tensors (top-level type {type(obj).__name__})"
        )
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _is_state_dict(obj: Mapping) -> bool:
    return bool(obj) and sum(isinstance(v, torch.Tensor) for v in obj.values()) >= max(1, len(obj) // 2)


def load_pretrained(
    module: nn.Module,
    path: str | Path,
    key_maps: Iterable[Callable[[str], str | None]] = (lambda k: k,),
    min_fraction: float = 0.05,
) -> LoadReport:
    """Load ``path`` into ``module`` non-strictly, trying each key mapping and keeping the best.

    A mapping turns a checkpoint key into a key of ``module.state_dict()`` (or None to drop it).
    Entries whose shape differs are skipped and reported. If fewer than ``min_fraction`` of the
    module's tensors would be loaded, the file does not belong to this backbone: error, naming it.
    """
    state = read_state_dict(path)
    own = module.state_dict()
    best: tuple[dict, LoadReport] | None = None
    for key_map in key_maps:
        report, chosen = LoadReport(path=str(path)), {}
        for key, value in state.items():
            target = key_map(key)
            if target is None or target not in own:
                report.unexpected.append(key)
            elif tuple(own[target].shape) != tuple(value.shape):
                report.shape_mismatch.append(
                    f"{target}: checkpoint {tuple(value.shape)} vs model {tuple(own[target].shape)}"
                )
            else:
                chosen[target] = value
        if best is None or len(chosen) > len(best[0]):
            report.loaded = sorted(chosen)
            report.missing = sorted(set(own) - set(chosen))
            best = (chosen, report)
    chosen, report = best
    if len(chosen) < max(1, min_fraction * len(own)):
        example = ", ".join(list(state)[:3])
        raise PretrainedLoadError(
            f"pretrained checkpoint {str(path)!r} does not match {type(module).__name__}: only {len(chosen)} of "
            f"{len(own)} tensors fit (checkpoint keys look like: {example}; "
            f"{len(report.shape_mismatch)} had the wrong shape)"
        )
    module.load_state_dict(chosen, strict=False)
    return report


#: vessels the NCCN rules turn on, for :func:`contact_features` (canonical names)
CONTACT_VESSELS = ("sma", "celiac_trunk", "common_hepatic_artery", "smv", "portal_vein", "ivc")
#: features per vessel (contact fraction of the most-encased slice, touching voxels, vessel in view) + tumour size
N_CONTACT_FEATURES = 1 + 3 * len(CONTACT_VESSELS)


@torch.no_grad()
def contact_features(seg_logits: torch.Tensor, min_boundary: int = 4) -> torch.Tensor:
    """(B, N_CONTACT_FEATURES) tumour-vessel contact read off the predicted (argmax) segmentation.

    Per vessel: the largest share, over axial slices (the last array axis: windows are RAS), of the
    vessel's boundary voxels that lie within one voxel of predicted tumour - a proxy of the NCCN
    contact angle / 360 - then log-counts of touching voxels and of vessel voxels in view; first the
    tumour's log-size. Scaled to about [0, 1]. Mask-free (the network's own prediction) and not
    differentiated: a pooled bottleneck collapses to the class prior before it finds this evidence
    (benchmarks/cascade.py, docs/models.md), while these features carry it as soon as the
    segmentation does (on ground-truth windows a logistic regression on them reaches macro-F1 0.86).
    """
    from ...vocabulary import STRUCTURE_INDEX

    labels = seg_logits.argmax(dim=1)
    pool = torch.nn.functional.max_pool3d
    tumour = (labels == STRUCTURE_INDEX["tumor"]).float()[:, None]
    near_tumour = pool(tumour, 3, stride=1, padding=1)
    feats = [torch.log1p(tumour.sum(dim=(1, 2, 3, 4))) / 8]
    for vessel in CONTACT_VESSELS:
        mask = (labels == STRUCTURE_INDEX[vessel]).float()[:, None]
        boundary = mask + pool(-mask, 3, stride=1, padding=1)  # mask minus its 1-voxel erosion
        touching = boundary * near_tumour
        per_slice_boundary = boundary.sum(dim=(1, 2, 3))
        share = touching.sum(dim=(1, 2, 3)) / per_slice_boundary.clamp(min=1)
        share = torch.where(per_slice_boundary >= min_boundary, share, torch.zeros_like(share))
        feats += [
            share.amax(dim=1),
            torch.log1p(touching.sum(dim=(1, 2, 3, 4))) / 5,
            torch.log1p(mask.sum(dim=(1, 2, 3, 4))) / 8,
        ]
    return torch.stack(feats, dim=1).to(seg_logits.dtype)
