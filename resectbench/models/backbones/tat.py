"""``tat``: the paper's adapted TAT baseline (after Dong et al. 2023, arXiv 2308.00507) as a backbone.

Texture encoder + segmentation head (a SegResNet), a tumor-vessel distance module computed
from the network's own predicted probability maps, and a structural branch over 3D patches
cropped at the closest tumor-vessel points; the three are fused into one embedding. The
classification head, the clinical branch and the losses come from the recipe (``tat``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...data.labels import INDEX
from ...registry import component
from ...search_space import Categorical
from .base import BackboneOutput, as_roi, check_input, require_divisible
from .cnn3d import CNN3DBackbone

VESSELS = ("sma", "smv", "portal_vein", "celiac_trunk")  # the paper's four for TAT's distance module
_EPS = 1e-6


class SoftDistance(nn.Module):
    """Differentiable distance from every voxel to a soft mask, by repeated morphological dilation.

    ``d(x) = stride * sum_k (1 - dilate^k(p)(x))`` for ``k < steps``: for a binary mask this counts
    the dilations needed to reach ``x`` (exact up to the metric), for soft masks it interpolates,
    and it saturates at ``max_distance`` ("far"). Dilations alternate a 6-neighbour cross and a
    3x3x3 cube (an octagonal metric between chessboard and Euclidean distance). Maps are first
    max-pooled by ``stride`` (so thin vessels survive) to keep memory and time small. Max
    pooling passes gradients to the maximal voxel of each window, so ``d`` is differentiable in
    ``p``. Output: (B, C, *roi / stride) distances in voxels of the full-resolution ROI.
    """

    def __init__(self, max_distance: float = 16.0, stride: int = 2):
        super().__init__()
        self.stride = int(stride)
        self.steps = max(1, int(math.ceil(max_distance / self.stride)))
        self.max_distance = float(self.steps * self.stride)

    @staticmethod
    def dilate(p: torch.Tensor, cube: bool) -> torch.Tensor:
        if cube:
            return F.max_pool3d(p, 3, stride=1, padding=1)
        return torch.maximum(
            torch.maximum(
                F.max_pool3d(p, (3, 1, 1), stride=1, padding=(1, 0, 0)),
                F.max_pool3d(p, (1, 3, 1), stride=1, padding=(0, 1, 0)),
            ),
            F.max_pool3d(p, (1, 1, 3), stride=1, padding=(0, 0, 1)),
        )

    def forward(self, prob: torch.Tensor) -> torch.Tensor:
        current = F.max_pool3d(prob, self.stride) if self.stride > 1 else prob
        total = torch.zeros_like(current)
        for k in range(self.steps):
            total = total + (1 - current)
            if k + 1 < self.steps:
                current = self.dilate(current, cube=bool(k % 2))
        return total * self.stride


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the spatial axes weighted by ``weights`` (B, C, *spatial) -> (B, C)."""
    return (values * weights).sum(dim=(2, 3, 4)) / (weights.sum(dim=(2, 3, 4)) + _EPS)


def closest_attention(cost: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax over space of ``-cost / T``: attention on the voxels where ``cost`` is smallest."""
    return torch.softmax((-cost / temperature).flatten(2), dim=2).reshape(cost.shape)


def expected_point(attention: torch.Tensor) -> torch.Tensor:
    """Expected voxel index (d, h, w) under an attention map (B, C, D, H, W) -> (B, C, 3)."""
    coords = [torch.arange(n, device=attention.device, dtype=attention.dtype) for n in attention.shape[2:]]
    return torch.stack(
        [
            (attention.sum(dim=(3, 4)) * coords[0]).sum(-1),
            (attention.sum(dim=(2, 4)) * coords[1]).sum(-1),
            (attention.sum(dim=(2, 3)) * coords[2]).sum(-1),
        ],
        dim=-1,
    )


def crop_patches(volume: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """Trilinearly sample ``size^3`` patches of ``volume`` (B, C, D, H, W) centred at ``centres`` (B, 3).

    Differentiable in the volume and in the centres; outside the volume reads zeros.
    """
    shape = torch.tensor(volume.shape[2:], device=volume.device, dtype=volume.dtype)
    offsets = torch.arange(size, device=volume.device, dtype=volume.dtype) - (size - 1) / 2
    grid = torch.stack(torch.meshgrid(offsets, offsets, offsets, indexing="ij"), dim=-1)  # (P, P, P, 3) as (d, h, w)
    points = centres[:, None, None, None, :] + grid  # (B, P, P, P, 3)
    normalised = 2 * points / (shape - 1).clamp_min(1) - 1
    return F.grid_sample(volume, normalised.flip(-1), mode="bilinear", padding_mode="zeros", align_corners=True)


class PatchEncoder(nn.Module):
    """A small 3D CNN over a structural patch (CT, tumor probability, vessel probability)."""

    def __init__(self, in_channels: int, width: int, out_dim: int):
        super().__init__()

        def block(i, o, stride):
            return [nn.Conv3d(i, o, 3, stride=stride, padding=1), nn.GroupNorm(min(8, o), o), nn.ReLU(inplace=True)]

        self.net = nn.Sequential(
            *block(in_channels, width, 1),
            *block(width, 2 * width, 2),
            *block(2 * width, 4 * width, 2),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
            nn.Linear(4 * width, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@component(
    "tat",
    tags=("cnn", "3d", "segments", "geometry", "paper-baseline"),
    description="Adapted TAT baseline: texture SegResNet + seg head, soft tumor-vessel distances (SMA, SMV, "
    "PV, CA) from its own predicted masks, patches at the closest tumor-vessel points",
    search_space={
        "init_filters": Categorical([8, 16]),
        "patch_size": Categorical([16, 24]),
        "max_distance": Categorical([12.0, 16.0, 24.0]),
        "detach_masks": Categorical([False, True]),
    },
)
class TATBackbone(nn.Module):
    """The paper's adapted TAT baseline (after Dong et al. 2023) as an image backbone.

    Parts:

    1. **Texture encoder + segmentation head**: a ``cnn3d`` (MONAI SegResNet) on the CT; its
       pooled deepest features give the texture embedding and its decoder the segmentation
       logits (``n_seg_classes`` canonical classes, at least up to ``celiac_trunk``), trained by
       the recipe's auxiliary segmentation loss.
    2. **Tumor-vessel distance module** for SMA, SMV, portal vein and celiac trunk, computed
       from the softmax of the predicted logits (``mask_source = "predicted"``: no ground-truth
       mask is needed at test time). Differentiable distance fields (:class:`SoftDistance`:
       repeated dilation on a grid max-pooled by ``geometry_stride``, in voxels of the
       preprocessed ROI, saturating at ``max_distance``) to the tumor and to each vessel give,
       per vessel: the tumor-vessel distance (a soft minimum over voxels of distance-to-vessel
       plus ``max_distance * (1 - p_tumor)``, temperature ``temperature`` voxels), the fraction of
       tumor within ``contact_voxels`` of the vessel, the fraction of the vessel within
       ``contact_voxels`` of the tumor (an encasement proxy) and log vessel volume; plus log
       tumor volume (which lets the head discount distances when little tumor is predicted).
       An MLP embeds these 17 numbers.
    3. **Structural branch**: for each vessel, the tumor point closest to it (the expected
       position under the same attention) centres a ``patch_size^3`` patch of (CT, tumor
       probability, vessel probability), sampled trilinearly at full resolution; a shared
       small 3D CNN encodes each patch and the four codes are concatenated (vessel order fixed).
    4. **Fusion**: LayerNorm over [texture, structure, distance] then a linear layer to ``embed_dim``.

    Simplifications against Dong et al. (stated honestly): distances come from morphological
    soft distance fields, not from their neural distance network trained on explicit
    tumor-vessel distance targets; one patch per vessel at the single closest point rather than
    patches sampled along the whole contact; no separate transformer over vessel structure; the
    texture encoder is a SegResNet rather than their network. With ``detach_masks=False``
    (default) the classification loss also shapes the masks through the differentiable
    geometry; ``True`` leaves the masks to the segmentation loss alone.
    """

    #: masks used at test time come from this network's own segmentation head
    mask_source = "predicted"
    #: the vessels its distance module measures: training masks must name them (models/needs.py)
    measured_vessels = VESSELS

    def __init__(
        self,
        in_channels: int = 1,
        roi: Sequence[int] | int = (64, 64, 64),
        n_seg_classes: int = 16,
        embed_dim: int = 256,
        init_filters: int = 16,
        patch_size: int = 16,
        patch_width: int = 8,
        patch_dim: int = 64,
        distance_dim: int = 32,
        max_distance: float = 16.0,
        geometry_stride: int = 2,
        contact_voxels: float = 2.0,
        temperature: float = 0.5,
        detach_masks: bool = False,
    ):
        super().__init__()
        self.roi = as_roi(roi)
        self.in_channels = int(in_channels)
        self.embed_dim = int(embed_dim)
        self.n_seg_classes = int(n_seg_classes)
        needed = max(INDEX[v] for v in ("tumor", *VESSELS)) + 1
        if self.n_seg_classes < needed:
            raise ValueError(
                f"tat needs its segmentation head over the canonical classes up to celiac_trunk "
                f"(n_seg_classes >= {needed}); got n_seg_classes={n_seg_classes}"
            )
        require_divisible(self.roi, geometry_stride, "tat", "geometry_stride")
        self.segments = True
        self.texture = CNN3DBackbone(
            in_channels=in_channels,
            roi=self.roi,
            n_seg_classes=self.n_seg_classes,
            embed_dim=self.embed_dim,
            init_filters=init_filters,
        )
        self.distance = SoftDistance(max_distance, geometry_stride)
        self.contact_voxels = float(contact_voxels)
        self.temperature = float(temperature)
        self.detach_masks = bool(detach_masks)
        self.patch_size = int(patch_size)
        self.register_buffer("channels", torch.tensor([INDEX["tumor"], *(INDEX[v] for v in VESSELS)]), persistent=False)
        n_geometry = 4 * len(VESSELS) + 1
        self.distance_mlp = nn.Sequential(
            nn.LayerNorm(n_geometry),
            nn.Linear(n_geometry, distance_dim),
            nn.ReLU(inplace=True),
            nn.Linear(distance_dim, distance_dim),
        )
        self.patch_encoder = PatchEncoder(in_channels + 2, patch_width, patch_dim)
        fused = self.embed_dim + len(VESSELS) * patch_dim + distance_dim
        self.fuse = nn.Sequential(nn.LayerNorm(fused), nn.Linear(fused, self.embed_dim))
        self.last_geometry: dict[str, torch.Tensor] = {}

    def geometry(self, prob: torch.Tensor) -> dict[str, torch.Tensor]:
        """Soft geometry from probability maps (B, 1 + n_vessels, *roi): tumor first, then VESSELS.

        Distances and points are in voxels of the full-resolution ROI.
        """
        stride = self.distance.stride
        fields = self.distance(prob)  # (B, 1 + V, *roi / stride)
        to_tumor, to_vessel = fields[:, :1], fields[:, 1:]
        mass = F.avg_pool3d(prob, stride) if stride > 1 else prob  # soft occupancy per coarse cell
        tumor, vessels = mass[:, :1], mass[:, 1:]
        tumor_b = tumor.expand_as(vessels)
        near = lambda d: torch.sigmoid((self.contact_voxels - d) * 4.0)  # noqa: E731 - soft "within contact"
        # distance from the soft tumor set: a voxel pays max_distance for not being tumor, so faint
        # tumor probability elsewhere cannot look "close"; the soft minimum is the attention-weighted mean
        cost = (to_vessel + self.distance.max_distance * (1 - tumor_b)).clamp(max=self.distance.max_distance)
        attention = closest_attention(cost, self.temperature)
        cell = stride**3
        return {
            "min_distance": (attention * cost).sum(dim=(2, 3, 4)),  # (B, V) voxels
            "tumor_near_vessel": weighted_mean(near(to_vessel), tumor_b),  # (B, V) fraction of tumor
            "vessel_near_tumor": weighted_mean(near(to_tumor).expand_as(vessels), vessels),  # (B, V)
            "log_vessel_volume": torch.log1p(vessels.sum(dim=(2, 3, 4)) * cell),  # (B, V) log voxels
            "log_tumor_volume": torch.log1p(tumor.sum(dim=(2, 3, 4)) * cell),  # (B, 1)
            # centre of the coarse cell -> full-resolution voxel index
            "closest_points": expected_point(attention) * stride + (stride - 1) / 2,  # (B, V, 3)
        }

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        check_input(x, self.in_channels, self.roi, "tat")
        texture = self.texture(x)
        prob = torch.softmax(texture.seg_logits.float(), dim=1).index_select(1, self.channels)
        if self.detach_masks:
            prob = prob.detach()
        geo = self.geometry(prob)
        self.last_geometry = {k: v.detach() for k, v in geo.items()}
        scale = self.distance.max_distance  # distances in [0, max]: rescale to [0, 1] before the MLP
        numbers = torch.cat(
            [
                geo["min_distance"] / scale,
                geo["tumor_near_vessel"],
                geo["vessel_near_tumor"],
                geo["log_vessel_volume"],
                geo["log_tumor_volume"],
            ],
            dim=1,
        )
        distance_code = self.distance_mlp(numbers)
        patch_codes = []
        for v in range(len(VESSELS)):
            source = torch.cat([x.float(), prob[:, :1], prob[:, 1 + v : 2 + v]], dim=1)
            patch = crop_patches(source, geo["closest_points"][:, v], self.patch_size)
            patch_codes.append(self.patch_encoder(patch))
        fused = torch.cat([texture.embedding, *patch_codes, distance_code], dim=1)
        return BackboneOutput(embedding=self.fuse(fused), seg_logits=texture.seg_logits)
