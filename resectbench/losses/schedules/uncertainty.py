"""Learned homoscedastic-uncertainty weighting of the two losses (Kendall, Gal & Cipolla, 2018)."""

from __future__ import annotations

import torch
from torch import nn

from ...registry import component
from .base import LossSchedule


@component(
    "uncertainty",
    tags=("adaptive", "learned"),
    description="Kendall et al. 2018: learnable log-variances s; total = sum exp(-s_i) L_i + s_i / 2; "
    "reports effective weights exp(-s_i)",
    search_space={},
)
class UncertaintySchedule(LossSchedule):
    """Homoscedastic uncertainty weighting (Kendall et al., CVPR 2018).

    Two learnable log-variances ``s_seg = log sigma_seg^2`` and ``s_cls = log sigma_cls^2``;
    ``total = exp(-s_seg) * L_seg + s_seg / 2 + exp(-s_cls) * L_cls + s_cls / 2``, i.e.
    ``L / sigma^2 + log sigma`` per task, the paper's form for classification-type losses (both
    ours are). The effective weights ``exp(-s)`` are what :meth:`combine` reports as
    ``w_seg``/``w_cls``. Both start at 0 (weights 1, our choice, ``init_log_var``). The engine must
    optimise :meth:`parameters` together with the network (ideally without weight decay, which
    would pull the log-variances to 0). A batch without a segmentation loss updates only
    ``s_cls``. The weights are learned, so nothing is tuned.
    """

    name = "uncertainty"

    def __init__(self, init_log_var: float = 0.0):
        super().__init__()
        self.log_var_seg = nn.Parameter(torch.tensor(float(init_log_var)))
        self.log_var_cls = nn.Parameter(torch.tensor(float(init_log_var)))

    def current_weights(self) -> dict[str, float]:
        return {
            "w_seg": float(torch.exp(-self.log_var_seg.detach())),
            "w_cls": float(torch.exp(-self.log_var_cls.detach())),
        }

    def combine(self, seg_loss: torch.Tensor | None, cls_loss: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s_cls = self.log_var_cls.to(cls_loss.dtype)
        total = torch.exp(-s_cls) * cls_loss + 0.5 * s_cls
        if seg_loss is not None:
            s_seg = self.log_var_seg.to(seg_loss.dtype)
            total = total + torch.exp(-s_seg) * seg_loss + 0.5 * s_seg
        return total, self.current_weights()
