"""``ogm-ge``: damp the dominant modality's gradient, add Gaussian noise to it (OGM-GE)."""

from __future__ import annotations

import math

import torch

from ..registry import component
from ..search_space import Float
from .base import MODALITIES, BalancingStrategy, branch_parameters, require_two_modalities, unimodal_logits


@component(
    "ogm-ge",
    tags=("gradient-modulation",),
    description="On-the-fly gradient modulation + generalisation enhancement (Peng et al., CVPR 2022)",
    search_space={"alpha": Float(0.1, 1.0)},
)
class OGMGE(BalancingStrategy):
    """OGM-GE (Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient Modulation",
    CVPR 2022; GeWu-Lab/OGM-GE_CVPR2022). After each backward pass, each modality's score is the summed
    softmax probability of the true class from that modality alone; with ratio r = s_image / s_clinical,
    the dominant branch's gradient is multiplied by ``1 - tanh(alpha * (r - 1))`` (r > 1: the image branch;
    else the clinical branch with 1/r) and, with ``noise`` (GE), Gaussian noise of the gradient's own
    standard deviation is added to it, from ``start_epoch`` to ``end_epoch`` (None: the last).

    Our choices, where the paper's setting (a linear head on concatenated features, two encoders trained
    only by classification) differs from ours: a modality's logits are the fused head's with the other
    embedding zeroed (:func:`~resectbench.balancing.base.unimodal_logits`: works for any fusion); the noise
    goes to the damped branch only; the image backbone's gradient includes the auxiliary segmentation's,
    which is damped with it when the image dominates (on few cases the clinical branch is the one that
    does)."""

    name = "ogm-ge"

    def __init__(
        self, alpha: float = 0.5, noise: bool = True, start_epoch: int = 1, end_epoch: int | None = None, seed: int = 0
    ):
        if alpha < 0:
            raise ValueError(f"ogm-ge: alpha must be >= 0, got {alpha}")
        self.alpha, self.noise = float(alpha), bool(noise)
        self.start, self.end = int(start_epoch), end_epoch
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self._coeffs: dict[str, list[float]] = {m: [] for m in MODALITIES}

    def setup(self, net, n_classes):
        require_two_modalities(net, self.name)
        return []

    def start_epoch(self, epoch, max_epochs, net, optimizer):
        self.epoch = epoch
        return {}

    def active(self) -> bool:
        return self.epoch >= self.start and (self.end is None or self.epoch <= self.end)

    @torch.no_grad()
    def coefficients(self, net, out, labels) -> dict[str, float]:
        """The factor each branch's gradient is multiplied by for this batch."""
        logits = unimodal_logits(net, out.image_embedding.detach().float(), out.clinical_embedding.detach().float())
        rows = torch.arange(labels.shape[0])
        score = {m: float(torch.softmax(logits[m], dim=1)[rows, labels].sum()) for m in MODALITIES}
        ratio = score["image"] / max(score["clinical"], 1e-12)
        coeff = {m: 1.0 for m in MODALITIES}
        if ratio > 1:
            coeff["image"] = 1.0 - math.tanh(self.alpha * (ratio - 1.0))
        elif ratio < 1:
            coeff["clinical"] = 1.0 - math.tanh(self.alpha * (1.0 / max(ratio, 1e-12) - 1.0))
        return coeff

    def after_backward(self, net, out, labels):
        if not self.active():
            return {}
        coeff = self.coefficients(net, out, labels.cpu())
        for modality, c in coeff.items():
            self._coeffs[modality].append(c)
            if c >= 1.0:
                continue
            for p in branch_parameters(net, modality):
                if p.grad is None:
                    continue
                p.grad.mul_(c)
                if self.noise and p.grad.numel() > 1:
                    std = float(p.grad.std())
                    noise = torch.randn(p.grad.shape, generator=self.generator) * (std + 1e-8)
                    p.grad.add_(noise.to(p.grad.device, p.grad.dtype))
        return {}

    def end_epoch(self, epoch, net, valid):
        row = {f"ogm_coeff_{m}": (sum(v) / len(v) if v else 1.0) for m, v in self._coeffs.items()}
        self._coeffs = {m: [] for m in MODALITIES}
        return row

    def describe(self):
        return {
            "name": self.name,
            "alpha": self.alpha,
            "noise": self.noise,
            "start_epoch": self.start,
            "end_epoch": self.end,
        }
