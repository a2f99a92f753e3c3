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
from .base import BackboneOutput, as_roi, check_input
from .cnn3d import CNN3DBackbone

VESSELS = ("sma", "smv", "portal_vein", "celiac_trunk")  # the paper's four for TAT's distance module
_EPS = 1e-6


class SoftDistance(nn.Module):
    """Differentiable distance (in voxels) from every voxel to a soft mask, saturating at ``4 * sigma``.

    Blurring a probability map p with an *unnormalised* Gaussian (peak 1) gives
    ``sum_j p_j exp(-|x - x_j|^2 / 2 sigma^2)``, so ``-2 sigma^2 log`` of it is a soft minimum of
    the squared distances to the mask (exact for a single voxel; slightly below the hard minimum
    inside a blob). The kernel is truncated at 4 sigma, where distances saturate ("far").
    """

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)
        radius = max(1, int(math.ceil(4 * self.sigma)))
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
        self.register_buffer("kernel", torch.exp(-offsets ** 2 / (2 * self.sigma ** 2)), persistent=False)
        self.radius = radius
        self.max_distance = float(radius)

    def forward(self, prob: torch.Tensor) -> torch.Tensor:
        # prob: (B, C, D, H, W) in [0, 1] -> distances (B, C, D, H, W) in [0, max_distance]
        b, c = prob.shape[:2]
        x = prob.reshape(b * c, 1, *prob.shape[2:])
        k = self.kernel.to(x.dtype)
        for axis in range(3):  # separable: one 1D convolution per axis
            shape = [1, 1, 1, 1, 1]
            shape[2 + axis] = k.numel()
            padding = [0, 0, 0]
            padding[axis] = self.radius
            x = F.conv3d(x, k.view(shape), padding=tuple(padding))
        floor = math.exp(-self.max_distance ** 2 / (2 * self.sigma ** 2))
        squared = -2 * self.sigma ** 2 * torch.log(x.clamp_min(0) + floor)
        return torch.sqrt(squared.clamp(min=0, max=self.max_distance ** 2) + _EPS).reshape(prob.shape)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the spatial axes weighted by ``weights`` (B, C, *spatial) -> (B, C)."""
    return (values * weights).sum(dim=(2, 3, 4)) / (weights.sum(dim=(2, 3, 4)) + _EPS)


def soft_min(values: torch.Tensor, weights: torch.Tensor, temperature: float) -> torch.Tensor:
    """``-T log(sum w exp(-v / T) / sum w)``: a weighted soft minimum of ``values`` over space -> (B, C)."""
    logw = torch.log(weights + _EPS) - torch.log(weights.sum(dim=(2, 3, 4), keepdim=True) + _EPS)
    return -temperature * torch.logsumexp((logw - values / temperature).flatten(2), dim=2)


def soft_argmin_point(values: torch.Tensor, weights: torch.Tensor, temperature: float) -> torch.Tensor:
    """Expected voxel coordinate under softmax(log w - v / T): where ``values`` is smallest within ``weights``.

    (B, C, D, H, W) -> (B, C, 3) in voxel index units (d, h, w).
    """
    b, c = values.shape[:2]
    logits = (torch.log(weights + _EPS) - values / temperature).flatten(2)
    attention = torch.softmax(logits, dim=2).reshape(values.shape)
    coords = [torch.arange(n, device=values.device, dtype=values.dtype) for n in values.shape[2:]]
    return torch.stack([
        (attention.sum(dim=(3, 4)) * coords[0]).sum(-1),
        (attention.sum(dim=(2, 4)) * coords[1]).sum(-1),
        (attention.sum(dim=(2, 3)) * coords[2]).sum(-1),
    ], dim=-1)


def crop_patches(volume: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """Trilinearly sample ``size^3`` patches of ``volume`` (B, C, D, H, W) centred at ``centres`` (B, 3).

    Differentiable in the volume and in the centres; outside the volume reads zeros.
    """
    shape = torch.tensor(volume.shape[2:], device=volume.device, dtype=volume.dtype)
    offsets = torch.arange(size, device=volume.device, dtype=volume.dtype) - (size - 1) / 2
    grid = torch.stack(torch.meshgrid(offsets, offsets, offsets, indexing="ij"), dim=-1)   # (P, P, P, 3) as (d, h, w)
    points = centres[:, None, None, None, :] + grid                                        # (B, P, P, P, 3)
    normalised = 2 * points / (shape - 1).clamp_min(1) - 1
    return F.grid_sample(volume, normalised.flip(-1), mode="bilinear", padding_mode="zeros", align_corners=True)


class PatchEncoder(nn.Module):
    """A small 3D CNN over a structural patch (CT, tumor probability, vessel probability)."""

    def __init__(self, in_channels: int, width: int, out_dim: int):
        super().__init__()

        def block(i, o, stride):
            return [nn.Conv3d(i, o, 3, stride=stride, padding=1), nn.GroupNorm(min(8, o), o), nn.ReLU(inplace=True)]

        self.net = nn.Sequential(*block(in_channels, width, 1), *block(width, 2 * width, 2),
                                 *block(2 * width, 4 * width, 2), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                                 nn.Linear(4 * width, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@component("tat", tags=("cnn", "3d", "segments", "geometry", "paper-baseline"),
           description="Adapted TAT baseline: texture SegResNet + seg head, soft tumor-vessel distances (SMA, SMV, "
                       "PV, CA) from its own predicted masks, patches at the closest tumor-vessel points",
           search_space={"init_filters": Categorical([8, 16]), "patch_size": Categorical([16, 24]),
                         "distance_sigma": Categorical([2.0, 3.0, 4.0]), "detach_masks": Categorical([False, True])})
class TATBackbone(nn.Module):
    """The paper's adapted TAT baseline (after Dong et al. 2023) as an image backbone.

    Parts:

    1. **Texture encoder + segmentation head**: a ``cnn3d`` (MONAI SegResNet) on the CT; its
       pooled deepest features give the texture embedding and its decoder the segmentation
       logits (``n_seg_classes`` canonical classes, at least up to ``celiac_trunk``), trained by
       the recipe's auxiliary segmentation loss.
    2. **Tumor-vessel distance module** for SMA, SMV, portal vein and celiac trunk, computed
       from the softmax of the predicted logits (``mask_source = "predicted"``: no ground-truth
       mask is needed at test time). Soft distance fields (:class:`SoftDistance`, voxels of
       the preprocessed ROI, saturating at 4 ``distance_sigma``) to the tumor and to each vessel
       give per vessel: the soft minimum tumor-vessel distance, the fraction of tumor within
       ``contact_voxels`` of the vessel, the fraction of the vessel within ``contact_voxels`` of
       the tumor (an encasement proxy) and log vessel volume; plus log tumor volume. An MLP
       embeds these 17 numbers.
    3. **Structural branch**: for each vessel, the tumor point closest to it (a soft arg-min of
       the vessel distance over the tumor probability) centres a ``patch_size^3`` patch of
       (CT, tumor probability, vessel probability), sampled trilinearly; a shared small 3D CNN
       encodes each patch and the four codes are concatenated (vessel order fixed).
    4. **Fusion**: LayerNorm over [texture, structure, distance] then a linear layer to ``embed_dim``.

    Simplifications against Dong et al. (stated honestly): distances come from Gaussian soft
    distance fields, not from the paper's neural distance network trained on explicit
    tumor-vessel distance targets; one patch per vessel at the single closest point rather than
    patches sampled along the whole contact; no separate graph/transformer over vessel
    structure; texture encoder is a SegResNet rather than their UNet. With ``detach_masks=False``
    (default) the classification loss also shapes the masks through the differentiable
    geometry; ``True`` leaves the masks to the segmentation loss alone.
    """

    #: masks used at test time come from this network's own segmentation head
    mask_source = "predicted"

    def __init__(self, in_channels: int = 1, roi: Sequence[int] | int = (64, 64, 64), n_seg_classes: int = 16,
                 embed_dim: int = 256, init_filters: int = 16, patch_size: int = 16, patch_width: int = 8,
                 patch_dim: int = 64, distance_dim: int = 32, distance_sigma: float = 3.0,
                 contact_voxels: float = 1.5, temperature: float = 1.0, detach_masks: bool = False):
        super().__init__()
        self.roi = as_roi(roi)
        self.in_channels = int(in_channels)
        self.embed_dim = int(embed_dim)
        self.n_seg_classes = int(n_seg_classes)
        needed = max(INDEX[v] for v in ("tumor", *VESSELS)) + 1
        if self.n_seg_classes < needed:
            raise ValueError(f"tat needs its segmentation head over the canonical classes up to celiac_trunk "
                             f"(n_seg_classes >= {needed}); got n_seg_classes={n_seg_classes}")
        self.segments = True
        self.texture = CNN3DBackbone(in_channels=in_channels, roi=self.roi, n_seg_classes=self.n_seg_classes,
                                     embed_dim=self.embed_dim, init_filters=init_filters)
        self.distance = SoftDistance(distance_sigma)
        self.contact_voxels = float(contact_voxels)
        self.temperature = float(temperature)
        self.detach_masks = bool(detach_masks)
        self.patch_size = int(patch_size)
        self.register_buffer("channels", torch.tensor([INDEX["tumor"], *(INDEX[v] for v in VESSELS)]),
                             persistent=False)
        n_geometry = 4 * len(VESSELS) + 1
        self.distance_mlp = nn.Sequential(nn.LayerNorm(n_geometry), nn.Linear(n_geometry, distance_dim),
                                          nn.ReLU(inplace=True), nn.Linear(distance_dim, distance_dim))
        self.patch_encoder = PatchEncoder(in_channels + 2, patch_width, patch_dim)
        fused = self.embed_dim + len(VESSELS) * patch_dim + distance_dim
        self.fuse = nn.Sequential(nn.LayerNorm(fused), nn.Linear(fused, self.embed_dim))
        self.last_geometry: dict[str, torch.Tensor] = {}

    def geometry(self, prob: torch.Tensor) -> dict[str, torch.Tensor]:
        """Soft geometry from probability maps (B, 1 + n_vessels, *roi): tumor first, then VESSELS."""
        tumor, vessels = prob[:, :1], prob[:, 1:]
        fields = self.distance(prob)
        to_tumor, to_vessel = fields[:, :1], fields[:, 1:]
        near = lambda d: torch.sigmoid((self.contact_voxels - d) * 4.0)  # noqa: E731 - soft "within contact"
        tumor_b = tumor.expand_as(vessels)
        return {
            "min_distance": soft_min(to_vessel, tumor_b, self.temperature),        # (B, V) voxels
            "tumor_near_vessel": weighted_mean(near(to_vessel), tumor_b),          # (B, V) fraction of tumor
            "vessel_near_tumor": weighted_mean(near(to_tumor).expand_as(vessels), vessels),  # (B, V)
            "log_vessel_volume": torch.log1p(vessels.sum(dim=(2, 3, 4))),          # (B, V)
            "log_tumor_volume": torch.log1p(tumor.sum(dim=(2, 3, 4))),             # (B, 1)
            "closest_points": soft_argmin_point(to_vessel, tumor_b, self.temperature),  # (B, V, 3)
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
        numbers = torch.cat([geo["min_distance"] / scale, geo["tumor_near_vessel"], geo["vessel_near_tumor"],
                             geo["log_vessel_volume"], geo["log_tumor_volume"]], dim=1)
        distance_code = self.distance_mlp(numbers)
        patch_codes = []
        for v in range(len(VESSELS)):
            source = torch.cat([x.float(), prob[:, :1], prob[:, 1 + v:2 + v]], dim=1)
            patch = crop_patches(source, geo["closest_points"][:, v], self.patch_size)
            patch_codes.append(self.patch_encoder(patch))
        fused = torch.cat([texture.embedding, *patch_codes, distance_code], dim=1)
        return BackboneOutput(embedding=self.fuse(fused), seg_logits=texture.seg_logits)
