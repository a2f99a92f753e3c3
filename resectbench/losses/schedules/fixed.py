"""Constant loss weights (the paper's comparison points: 1/1, 2/0.5, 0.5/2)."""

from __future__ import annotations

from ...registry import component
from ...search_space import Categorical
from .base import LossSchedule


@component(
    "fixed",
    tags=("baseline",),
    description="Constant weights total = w_seg * L_seg + w_cls * L_cls (default 1 / 1; w_seg 0 drops segmentation)",
    search_space={"w_seg": Categorical([0.5, 1.0, 2.0]), "w_cls": Categorical([0.5, 1.0, 2.0])},
)
class FixedSchedule(LossSchedule):
    """Fixed weights ``w_seg`` and ``w_cls`` for every batch of every epoch.

    The paper compares fixed 1/1, 2/0.5 and 0.5/2 (w_seg/w_cls) with its adaptive schedule; the
    search space covers those values. ``w_seg=0`` turns the auxiliary segmentation off
    (``uses_segmentation`` False, like ``cls-only``).
    """

    name = "fixed"

    def __init__(self, w_seg: float = 1.0, w_cls: float = 1.0):
        super().__init__()
        if not (w_seg >= 0 and w_cls > 0):
            raise ValueError(
                f"loss schedule 'fixed': needs w_seg >= 0 and w_cls > 0, got w_seg={w_seg!r}, w_cls={w_cls!r}"
            )
        self.w_seg, self.w_cls = float(w_seg), float(w_cls)
        self.uses_segmentation = self.w_seg > 0

    def current_weights(self) -> dict[str, float]:
        return {"w_seg": self.w_seg, "w_cls": self.w_cls}
