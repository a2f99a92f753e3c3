"""A continuous version of the paper's adaptive schedule: w_seg falls smoothly as the tumor Dice rises."""

from __future__ import annotations

import math

from ...registry import component
from ...search_space import Float
from .base import DiceDrivenSchedule


@component(
    "dice-smooth",
    tags=("adaptive",),
    description="Continuous dice-step: log w_seg falls linearly from log 3.0 at tumor Dice 0 to log 1.0 at "
    "tau_full (0.5); w_cls = 1 / w_seg",
    search_space={"tau_full": Float(0.3, 0.8)},
)
class DiceSmoothSchedule(DiceDrivenSchedule):
    """``w_seg(tau) = w_start * (w_end / w_start) ** min(tau / tau_full, 1)``, ``w_cls = 1 / w_seg``.

    A geometric (log-linear) interpolation between the step schedule's end points: 3.0 at
    tau = 0 and 1.0 from tau = tau_full (default 0.5, the step schedule's last threshold) on,
    continuous and monotone, so a small change in Dice never jumps the weights (e.g. tau 0.1 ->
    2.41, 0.3 -> 1.55). tau is measured as in ``dice-step``: the mean hard tumor Dice of the
    previous epoch's training batches, updated once per epoch; 0 before the first epoch; an
    epoch without a Dice keeps the previous value. ``tau_full`` is tunable.
    """

    name = "dice-smooth"

    def __init__(self, w_start: float = 3.0, w_end: float = 1.0, tau_full: float = 0.5):
        super().__init__()
        if w_start <= 0 or w_end <= 0:
            raise ValueError(f"loss schedule 'dice-smooth': weights must be positive, got {w_start}, {w_end}")
        if not 0.0 < tau_full <= 1.0:
            raise ValueError(f"loss schedule 'dice-smooth': tau_full must be in (0, 1], got {tau_full}")
        self.w_start, self.w_end, self.tau_full = float(w_start), float(w_end), float(tau_full)

    def w_seg_at(self, tau: float) -> float:
        fraction = min(max(tau, 0.0) / self.tau_full, 1.0)
        return math.exp(math.log(self.w_start) + fraction * (math.log(self.w_end) - math.log(self.w_start)))
